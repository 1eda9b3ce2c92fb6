package keys

import (
	"bytes"
	"strings"
	"testing"
)

// TestBundleEveryBitFlip flips each bit of an encoded bundle (Bob's split
// bundle with one one-time prekey of each kind) and checks that
// ParseBundle rejects it with a typed error and a nil bundle (checklist
// items 1 and 2).
//
// The exceptions are the flips inside the one-time X25519 prekey entry
// (one_time_prekeys[0]: its id and its key), which is the one thing in a
// bundle no signature covers: a flipped id or key is another valid bundle,
// and one flip of the entry's tag that removes it (checkOneTimeDropped).
// Flipping the key's high bit is still refused (non-canonical encoding).
// For every accepted flip the test checks that nothing else changed, then
// runs the session start end to end: Bob, holding the genuine prekey,
// refuses it with ErrUnknownPrekey (a changed id names a key he does not
// hold) or ErrDecrypt (a changed key fails the confirmation).
//
// Every other protobuf framing flip fails to decode to a valid bundle:
// every field is signed or checked for length and type, and a changed tag
// or length turns the rest of the message into an unknown field, a wrong
// wire type, a missing key or a truncation, all refused.
//
// Thorough runs try all ~39,000 bits (about 5 s); -short and -race runs
// try every bit of the framing, ids, addresses and X25519 keys and one bit
// in eight bytes of the long fields (see sweepBits).
func TestBundleEveryBitFlip(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	raw := marshalBundle(t, bob.bundle())
	spans := bundleSpans(t, raw)
	bits := sweepBits(spans, thorough())
	t.Logf("bundle of %d bytes, trying %d of %d bit flips", len(raw), len(bits), 8*len(raw))
	accepted := parallelSweep(t, bits, func(t *testing.T, bit int) bool {
		b, err := ParseBundle(flipBit(raw, bit))
		if err != nil {
			if b != nil {
				t.Fatalf("bit %d: ParseBundle returned a bundle with an error", bit)
			}
			wantTyped(t, err)
			return false
		}
		return true
	})
	var idFlips, keyFlips, dropFlips int
	for _, bit := range accepted {
		s := spanAt(spans, bit/8)
		switch s.path {
		case "one_time_prekeys[0].id":
			idFlips++
			checkOneTimeFlip(t, alice, bob, raw, bit)
		case "one_time_prekeys[0].key":
			keyFlips++
			checkOneTimeFlip(t, alice, bob, raw, bit)
		case "one_time_prekeys[0].tag":
			dropFlips++
			checkOneTimeDropped(t, alice, bob, raw, bit)
		default:
			t.Errorf("bit %d in %s: ParseBundle accepted the flip", bit, s.path)
		}
	}
	// The id is one varint byte (100 = 0x64): flipping its top bit makes it
	// swallow the next byte and breaks the framing; the 7 others give
	// another id. The key is 33 bytes: the type byte and the key's high
	// bit are refused, the other 255 bits give another key. One flip of
	// the entry's tag drops the prekey (see checkOneTimeDropped).
	wantID, wantKey, wantDrop := 7, 8*32-1, 1
	if !thorough() {
		wantID, wantKey, wantDrop = idFlips, keyFlips, dropFlips // sampled: only check that the paths ran
	}
	if idFlips != wantID || keyFlips != wantKey || dropFlips != wantDrop || idFlips == 0 || keyFlips == 0 || dropFlips == 0 {
		t.Errorf("accepted %d id, %d key and %d tag flips, want %d, %d and %d", idFlips, keyFlips, dropFlips, wantID, wantKey, wantDrop)
	}
}

// checkOneTimeDropped checks the one framing flip that decodes: bit 4 of
// the one-time prekey entry's tag turns field 8 (one_time_prekeys) into
// field 10 (mailbox_key). Protobuf merges two occurrences of a singular
// message field, and the genuine mailbox key comes later and sets every
// field of the merged message (id, key, signature), so the result is
// Bob's genuine bundle without its one-time X25519 prekey. That is a
// bundle Bob signed every part of; an initiator who gets it runs a start
// without a one-time prekey, which Bob accepts, exactly as when a relay
// withholds one-time prekeys (X3DH allows this: the one-time prekey is
// optional and unsigned, and only adds forward secrecy). The prekey is
// not consumed.
func checkOneTimeDropped(t *testing.T, alice, bob *party, raw []byte, bit int) {
	t.Helper()
	b, err := ParseBundle(flipBit(raw, bit))
	if err != nil {
		t.Fatal(err)
	}
	want := bob.bundle()
	want.OneTimePrekeys = nil
	if len(b.OneTimePrekeys) != 0 || !bytes.Equal(marshalBundle(t, b), marshalBundle(t, want)) {
		t.Fatalf("bit %d: the bundle is not Bob's without its one-time prekey", bit)
	}
	m := parsedStart(t, alice, b)
	if m.HasOneTimePrekey {
		t.Fatal("the start names a one-time prekey")
	}
	if _, err := bob.respond(m); err != nil {
		t.Fatalf("a start without the one-time prekey: %v", err)
	}
}

// checkOneTimeFlip checks an accepted flip in the one-time prekey: the
// parsed bundle equals the genuine one but for that prekey, and a session
// started from it fails on Bob's side with a typed error, changing
// nothing.
func checkOneTimeFlip(t *testing.T, alice, bob *party, raw []byte, bit int) {
	t.Helper()
	b, err := ParseBundle(flipBit(raw, bit))
	if err != nil {
		t.Fatal(err)
	}
	fixed := *b
	fixed.OneTimePrekeys = []PublicOneTimePrekey{bob.otps[0].Public()}
	if !bytes.Equal(marshalBundle(t, &fixed), raw) {
		t.Fatalf("bit %d changed more than the one-time prekey", bit)
	}
	// The flipped encoding is canonical: parse then marshal gives it back.
	if !bytes.Equal(marshalBundle(t, b), flipBit(raw, bit)) {
		t.Fatalf("bit %d: re-marshal of the accepted bundle differs from it", bit)
	}
	m, _, err := initiate(alice.id, alice.addr, b, testEphSeed, testKEMSeed)
	if err != nil {
		wantErr(t, err, ErrLowOrderPoint) // the only refusal a canonical key can meet
		return
	}
	enc, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSessionStart(enc)
	if err != nil {
		t.Fatal(err)
	}
	before := bob.prekeyBytes()
	keys, err := bob.respond(got)
	if keys != nil || err == nil {
		t.Fatalf("bit %d: Bob accepted a start against a forged one-time prekey", bit)
	}
	want := ErrDecrypt
	if got.OneTimePrekeyID != bob.otps[0].id {
		want = ErrUnknownPrekey
	}
	wantErr(t, err, want)
	if !equalSnapshots(before, bob.prekeyBytes()) {
		t.Fatal("a failed Respond changed a prekey")
	}
}

// TestBundleSpans checks the walker the sweeps rely on: the spans tile the
// encoding and name every field.
func TestBundleSpans(t *testing.T) {
	raw := marshalBundle(t, bobSpec().build(t).bundle())
	spans := bundleSpans(t, raw)
	next := 0
	var paths []string
	for _, s := range spans {
		if s.start != next || s.end <= s.start {
			t.Fatalf("span %s [%d,%d) does not follow %d", s.path, s.start, s.end, next)
		}
		next = s.end
		paths = append(paths, s.path)
	}
	if next != len(raw) {
		t.Fatalf("spans end at %d of %d", next, len(raw))
	}
	all := strings.Join(paths, " ")
	for _, want := range []string{"version", "user", "device", "mailbox", "identity", "signed_prekey.signature",
		"pq_prekey.key", "one_time_prekeys[0].id", "one_time_prekeys[0].key", "one_time_pq_prekeys[0].signature", "mailbox_key.key"} {
		if !strings.Contains(all, want) {
			t.Errorf("no span %s", want)
		}
	}
}

package keys

import (
	"bytes"
	"crypto/ecdh"
	"errors"
	"math"
	"testing"

	"github.com/sealpost/sealpost/internal/kdf"
)

// TestSessionStart runs Initiate and Respond over every bundle shape and
// checks that both sides derive the same secret and associated data, that
// the associated data has the documented layout, and that the start names
// the prekeys the bundle offered.
func TestSessionStart(t *testing.T) {
	alice := aliceSpec().build(t)
	for _, tc := range bundleCases() {
		t.Run(tc.name, func(t *testing.T) {
			bob := tc.spec.build(t)
			b := bob.bundle()
			m, ak, err := Initiate(alice.id, alice.addr, b)
			if err != nil {
				t.Fatalf("Initiate: %v", err)
			}
			registerSecret("session secret", ak.Secret())
			m.Payload = []byte("first ratchet message")
			raw, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseSessionStart(raw)
			if err != nil {
				t.Fatalf("ParseSessionStart: %v", err)
			}
			checkNames(t, got, bob)
			before := bob.prekeyBytes()
			bk, err := bob.respond(got)
			if err != nil {
				t.Fatalf("Respond: %v", err)
			}
			if !bytes.Equal(ak.Secret(), bk.Secret()) || len(ak.Secret()) != SessionSecretSize {
				t.Fatal("the two sides derived different secrets")
			}
			if bytes.Equal(ak.Secret(), make([]byte, SessionSecretSize)) {
				t.Fatal("zero secret")
			}
			if !bytes.Equal(ak.AssociatedData(), bk.AssociatedData()) {
				t.Fatal("the two sides derived different associated data")
			}
			if want := wantAD(alice, bob); !bytes.Equal(ak.AssociatedData(), want) {
				t.Fatalf("associated data\n got %x\nwant %x", ak.AssociatedData(), want)
			}
			if !ak.Peer().Equal(bob.id.Public()) || !bk.Peer().Equal(alice.id.Public()) {
				t.Fatal("wrong peer identity")
			}
			if !ak.PeerRatchetKey().Equal(bob.spk.key.PublicKey()) || ak.RatchetKey() != nil {
				t.Fatal("initiator's ratchet keys")
			}
			if !bk.RatchetKey().Equal(bob.spk.key) || bk.PeerRatchetKey() != nil {
				t.Fatal("responder's ratchet keys")
			}
			if !bytes.Equal(got.Payload, m.Payload) {
				t.Fatal("payload lost")
			}
			if !equalSnapshots(before, bob.prekeyBytes()) {
				t.Fatal("Respond changed a prekey")
			}
			// A second start against the same bundle is fresh.
			_, ak2, err := Initiate(alice.id, alice.addr, b)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(ak.Secret(), ak2.Secret()) {
				t.Fatal("two starts gave the same secret")
			}
		})
	}
}

// checkNames checks the prekeys a start names against the bundle p
// published: the first one-time keys when there are any.
func checkNames(t testing.TB, m *SessionStart, p *party) {
	t.Helper()
	if m.SignedPrekeyID != p.spk.id {
		t.Errorf("signed prekey id %d, want %d", m.SignedPrekeyID, p.spk.id)
	}
	wantPQ, wantOneTime := p.pq.id, false
	if len(p.otpqs) > 0 {
		wantPQ, wantOneTime = p.otpqs[0].id, true
	}
	if m.PQPrekeyID != wantPQ || m.PQOneTime != wantOneTime {
		t.Errorf("pq prekey %d (one-time %t), want %d (%t)", m.PQPrekeyID, m.PQOneTime, wantPQ, wantOneTime)
	}
	if m.HasOneTimePrekey != (len(p.otps) > 0) || (len(p.otps) > 0 && m.OneTimePrekeyID != p.otps[0].id) {
		t.Errorf("one-time prekey %t %d", m.HasOneTimePrekey, m.OneTimePrekeyID)
	}
	if len(m.BaseKey()) != 1+X25519PublicKeySize || m.BaseKey()[0] != typeX25519 {
		t.Errorf("base key %x", m.BaseKey())
	}
}

// wantAD is the associated data docs/SPEC.md section 7.5 describes, built
// independently of transcript.associatedData.
func wantAD(initiator, responder *party) []byte {
	var b []byte
	b = appendBytes16(b, []byte(kdf.LabelAssociatedData))
	b = appendBytes16(b, append(typed(typeEd25519, initiator.id.public.signing[:]), typed(typeX25519, initiator.id.public.agreement[:])...))
	b = appendBytes16(b, append(typed(typeEd25519, responder.id.public.signing[:]), typed(typeX25519, responder.id.public.agreement[:])...))
	b = appendBytes16(b, []byte(initiator.addr.User))
	b = append(b, u32(initiator.addr.Device)...)
	b = appendBytes16(b, []byte(responder.addr.User))
	return append(b, u32(responder.addr.Device)...)
}

func equalSnapshots(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// respondErr runs Respond with the given prekeys, expects want, and checks
// that no prekey of p changed.
func respondErr(t testing.TB, p *party, m *SessionStart, spk *SignedPrekey, pq *PQPrekey, otp *OneTimePrekey, want error) {
	t.Helper()
	before := p.prekeyBytes()
	keys, err := Respond(p.id, p.addr, m, spk, pq, otp)
	if keys != nil {
		t.Error("Respond returned keys with an error")
	}
	wantErr(t, err, want)
	if !equalSnapshots(before, p.prekeyBytes()) {
		t.Fatal("a failed Respond changed a prekey")
	}
}

// parsedStart runs the deterministic initiate from alice to b and returns
// the start as the responder parses it.
func parsedStart(t testing.TB, alice *party, b *Bundle) *SessionStart {
	t.Helper()
	raw, _ := start(t, alice, b)
	m, err := ParseSessionStart(raw)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// reparse marshals a start changed in memory and parses it again, so that
// every case goes through the wire format.
func reparse(t testing.TB, m *SessionStart) *SessionStart {
	t.Helper()
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseSessionStart(raw)
	if err != nil {
		t.Fatalf("ParseSessionStart: %v", err)
	}
	return got
}

// TestRespondPrekeys covers checklist item 7 (TESTING.md): the responder must be
// handed exactly the prekeys the start names. Wrong ids, a missing or an
// extra one-time prekey, or a PQ prekey of the wrong kind are
// ErrUnknownPrekey; a key with the right id but other key material fails
// the confirmation with ErrDecrypt. Nothing changes.
func TestRespondPrekeys(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	m := parsedStart(t, alice, bob.bundle())
	noOTP := parsedStart(t, alice, bob.bundle().Split()[1])
	spkOther, _ := NewSignedPrekey(bob.spk.id+1, bob.spk.Bytes(), testExpiry, bob.id)
	spkSameID, _ := NewSignedPrekey(bob.spk.id, testSeed("other spk", 32), testExpiry, bob.id)
	pqOtherID, _ := NewPQPrekey(bob.otpqs[0].id+1, false, bob.otpqs[0].Bytes(), bob.id)
	pqWrongKind, _ := NewPQPrekey(bob.otpqs[0].id, true, bob.otpqs[0].Bytes(), bob.id)
	pqSameID, _ := NewPQPrekey(bob.otpqs[0].id, false, testSeed("other pq", 64), bob.id)
	otpOther, _ := NewOneTimePrekey(bob.otps[0].id+1, bob.otps[0].Bytes())
	otpSameID, _ := NewOneTimePrekey(bob.otps[0].id, testSeed("other otp", 32))
	spk, pq, otp := bob.spk, bob.otpqs[0], bob.otps[0]
	cases := []struct {
		name string
		m    *SessionStart
		spk  *SignedPrekey
		pq   *PQPrekey
		otp  *OneTimePrekey
		want error
	}{
		{"no signed prekey", m, nil, pq, otp, ErrUnknownPrekey},
		{"signed prekey with another id", m, spkOther, pq, otp, ErrUnknownPrekey},
		{"no pq prekey", m, spk, nil, otp, ErrUnknownPrekey},
		{"pq prekey with another id", m, spk, pqOtherID, otp, ErrUnknownPrekey},
		{"last-resort pq prekey for a one-time id", m, spk, pqWrongKind, otp, ErrUnknownPrekey},
		{"one-time pq prekey for the last-resort id", noOTP, spk, mustPQ(t, bob.pq.id, false, bob.pq.Bytes(), bob.id), nil, ErrUnknownPrekey},
		{"missing one-time prekey", m, spk, pq, nil, ErrUnknownPrekey},
		{"extra one-time prekey", noOTP, spk, bob.pq, otp, ErrUnknownPrekey},
		{"one-time prekey with another id", m, spk, pq, otpOther, ErrUnknownPrekey},
		{"signed prekey with the id but other key", m, spkSameID, pq, otp, ErrDecrypt},
		{"pq prekey with the id but other key", m, spk, pqSameID, otp, ErrDecrypt},
		{"one-time prekey with the id but other key", m, spk, pq, otpSameID, ErrDecrypt},
		{"all swapped for the last-resort start", noOTP, spk, pq, nil, ErrUnknownPrekey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			respondErr(t, bob, tc.m, tc.spk, tc.pq, tc.otp, tc.want)
		})
	}
	// The genuine keys still work afterwards (Respond changed nothing).
	if _, err := Respond(bob.id, bob.addr, m, spk, pq, otp); err != nil {
		t.Fatal(err)
	}
}

func mustPQ(t testing.TB, id uint32, lastResort bool, seed []byte, identity *IdentityPrivateKey) *PQPrekey {
	t.Helper()
	k, err := NewPQPrekey(id, lastResort, seed, identity)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBoundaryIDs is checklist item 12: prekey ids 0 and 2^32-1 establish a
// session, through the wire format.
func TestBoundaryIDs(t *testing.T) {
	alice := aliceSpec().build(t)
	for _, ids := range [][4]uint32{{0, 0, 0, 0}, {math.MaxUint32, math.MaxUint32, math.MaxUint32, math.MaxUint32}, {0, math.MaxUint32, 0, math.MaxUint32}} {
		s := newSpec("bob boundary", "bob", 2)
		s.SignedPrekey.ID, s.PQPrekey.ID = ids[0], ids[1]
		bob := s.withOneTime("bob", ids[2]).withOneTimePQ("bob", ids[3]).build(t)
		for _, b := range bob.bundle().Split() {
			b, err := ParseBundle(marshalBundle(t, b))
			if err != nil {
				t.Fatal(err)
			}
			m := parsedStart(t, alice, b)
			checkNames(t, m, partyFor(bob, b))
			if _, err := bob.respond(m); err != nil {
				t.Fatalf("ids %v: %v", ids, err)
			}
		}
	}
}

// partyFor returns p as seen through bundle b: only the one-time keys b
// carries.
func partyFor(p *party, b *Bundle) *party {
	q := *p
	q.otps, q.otpqs = nil, nil
	for _, k := range p.otps {
		for _, o := range b.OneTimePrekeys {
			if o.ID == k.id {
				q.otps = append(q.otps, k)
			}
		}
	}
	for _, k := range p.otpqs {
		for _, o := range b.OneTimePQPrekeys {
			if o.ID == k.id {
				q.otpqs = append(q.otpqs, k)
			}
		}
	}
	return &q
}

// TestKEMBinding is checklist item 4: a start whose KEM ciphertext was made
// against another PQ key, whose ciphertext has a flipped byte, or whose
// initiator used another PQ key under the same id, fails with ErrDecrypt,
// and the one-time prekeys are kept.
func TestKEMBinding(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	other := mustPQ(t, bob.otpqs[0].id, false, testSeed("re-encapsulation target", 64), bob.id)
	t.Run("ciphertext to another key", func(t *testing.T) {
		m := parsedStart(t, alice, bob.bundle())
		m.kemCiphertext, _ = other.Public().encapsulate(testSeed("kem 2", 32))
		m = reparse(t, m)
		respondErr(t, bob, m, bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
	})
	t.Run("ciphertext to the last-resort key", func(t *testing.T) {
		m := parsedStart(t, alice, bob.bundle())
		m.kemCiphertext, _ = bob.pq.Public().encapsulate(testSeed("kem 2", 32))
		m = reparse(t, m)
		respondErr(t, bob, m, bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
	})
	t.Run("flipped ciphertext byte", func(t *testing.T) {
		for _, i := range []int{0, 1, 777, PQCiphertextSize - 2, PQCiphertextSize - 1} {
			m := parsedStart(t, alice, bob.bundle())
			m.kemCiphertext[i] ^= 0x01
			m = reparse(t, m)
			respondErr(t, bob, m, bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
		}
	})
	t.Run("initiator used another key under the same id", func(t *testing.T) {
		b := bob.bundle()
		b.OneTimePQPrekeys[0] = other.Public() // signed by Bob, so Verify passes
		m := parsedStart(t, alice, b)
		respondErr(t, bob, m, bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
		if _, err := Respond(bob.id, bob.addr, m, bob.spk, other, bob.otps[0]); err != nil {
			t.Fatalf("the key the initiator used: %v", err)
		}
	})
}

// TestTranscriptBinding changes each field of the transcript alone and
// checks that the hash changes: every public key, id, flag, address and
// the KEM ciphertext are bound (docs/SPEC.md section 7.3).
func TestTranscriptBinding(t *testing.T) {
	alice, bob, mallory := aliceSpec().build(t), bobSpec().build(t), malloryspec().build(t)
	base := func() transcript {
		return transcript{
			initiator: alice.id.Public(), responder: bob.id.Public(),
			initiatorAddr: alice.addr, responderAddr: bob.addr,
			spk: bob.spk.Public().Bytes(), spkID: 1, pq: bob.pq.Public().Bytes(), pqID: 2,
			opk: bob.otps[0].Public().Bytes(), opkID: 3,
			base: bob.otps[0].Public().Bytes(), ct: make([]byte, PQCiphertextSize),
		}
	}
	ref := base()
	h0 := ref.hash()
	flip := func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-1] ^= 1; return c }
	for name, f := range map[string]func(x *transcript){
		"initiator":       func(x *transcript) { x.initiator = mallory.id.Public() },
		"responder":       func(x *transcript) { x.responder = mallory.id.Public() },
		"swapped roles":   func(x *transcript) { x.initiator, x.responder = x.responder, x.initiator },
		"initiator user":  func(x *transcript) { x.initiatorAddr.User += "x" },
		"initiator dev":   func(x *transcript) { x.initiatorAddr.Device++ },
		"responder user":  func(x *transcript) { x.responderAddr.User = "bo" },
		"responder dev":   func(x *transcript) { x.responderAddr.Device++ },
		"user boundary":   func(x *transcript) { x.initiatorAddr.User, x.responderAddr.User = "alic", "ebob" },
		"spk":             func(x *transcript) { x.spk = flip(x.spk) },
		"spk id":          func(x *transcript) { x.spkID++ },
		"pq":              func(x *transcript) { x.pq = flip(x.pq) },
		"pq id":           func(x *transcript) { x.pqID++ },
		"pq one-time":     func(x *transcript) { x.pqOneTime = true },
		"opk":             func(x *transcript) { x.opk = flip(x.opk) },
		"opk id":          func(x *transcript) { x.opkID++ },
		"no opk":          func(x *transcript) { x.opk, x.opkID = nil, 0 },
		"base":            func(x *transcript) { x.base = flip(x.base) },
		"ct":              func(x *transcript) { x.ct = flip(x.ct) },
		"ct shorter":      func(x *transcript) { x.ct = x.ct[:len(x.ct)-1] },
		"key type of spk": func(x *transcript) { x.spk = typed(typeXWing, x.spk[1:]) },
	} {
		x := base()
		f(&x)
		if x.hash() == h0 {
			t.Errorf("%s is not bound by the transcript hash", name)
		}
	}
	if again := base(); again.hash() != h0 {
		t.Fatal("transcript hash is not deterministic")
	}
}

// TestWrongAddress is checklist item 9: a start meant for another address,
// or claiming another initiator address, fails with ErrDecrypt.
func TestWrongAddress(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	m := parsedStart(t, alice, bob.bundle())
	for _, addr := range []Address{{User: "bob", Device: 3}, {User: "bo", Device: 2}, {User: "bob2", Device: 2}, {User: "carol", Device: 2}} {
		p := *bob
		p.addr = addr
		respondErr(t, &p, m, bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
	}
	forged := parsedStart(t, alice, bob.bundle())
	forged.Initiator = Address{User: "carol", Device: 1}
	respondErr(t, bob, reparse(t, forged), bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
}

// TestIdentityMismatch is checklist item 10: Mallory runs the key agreement
// with her identity key but claims Alice's identity. Bob fails it with
// ErrDecrypt.
func TestIdentityMismatch(t *testing.T) {
	alice, bob, mallory := aliceSpec().build(t), bobSpec().build(t), malloryspec().build(t)
	m := parsedStart(t, mallory, bob.bundle())
	if _, err := bob.respond(m); err != nil {
		t.Fatalf("Mallory's honest start: %v", err)
	}
	m.Identity = alice.id.Public()
	respondErr(t, bob, reparse(t, m), bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
	// The reverse: Alice's exchanges, Mallory's claimed identity.
	m = parsedStart(t, alice, bob.bundle())
	m.Identity = mallory.id.Public()
	respondErr(t, bob, reparse(t, m), bob.spk, bob.otpqs[0], bob.otps[0], ErrDecrypt)
}

// TestReflection: a bundle carrying the initiator's own identity, or a
// start carrying the responder's, is ErrMalformed.
func TestReflection(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	_, _, err := Initiate(bob.id, Address{User: "bob", Device: 9}, bob.bundle())
	wantErr(t, err, ErrMalformed)
	m := parsedStart(t, alice, bob.bundle())
	m.Identity = bob.id.Public()
	respondErr(t, bob, reparse(t, m), bob.spk, bob.otpqs[0], bob.otps[0], ErrMalformed)
}

// TestInitiateRefuses checks that Initiate verifies the bundle and its own
// address before anything else.
func TestInitiateRefuses(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	b := bob.bundle()
	b.SignedPrekey.signature[0] ^= 1
	_, _, err := Initiate(alice.id, alice.addr, b)
	wantErr(t, err, ErrBadSignature)
	_, _, err = Initiate(alice.id, Address{}, bob.bundle())
	wantErr(t, err, ErrMalformed)
	_, _, err = Initiate(alice.id, alice.addr, &Bundle{})
	wantErr(t, err, ErrMalformed)
	_, _, err = initiate(alice.id, alice.addr, bob.bundle(), make([]byte, 31), testKEMSeed)
	wantErr(t, err, ErrMalformed)
}

// TestLowOrderBaseKey puts each low-order point in the start's base key
// and the initiator's identity key (checklist item 3): non-canonical ones
// fail ParseSessionStart with ErrMalformed, the others fail Respond with
// ErrLowOrderPoint, and nothing changes.
func TestLowOrderBaseKey(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	highBit := parsedStart(t, alice, bob.bundle()).BaseKey()[1:]
	highBit[31] |= 0x80
	points := append(lowOrderPoints, lowOrderPoint{"valid key with the high bit set", hexOf(highBit), ErrMalformed})
	for _, place := range []string{"base key", "initiator identity"} {
		for _, pt := range points {
			t.Run(place+"/"+pt.name, func(t *testing.T) {
				m := parsedStart(t, alice, bob.bundle())
				key, err := ecdh.X25519().NewPublicKey(pt.bytes(t))
				if err != nil {
					t.Fatal(err)
				}
				if place == "base key" {
					m.baseKey = key
				} else {
					m.Identity = selfSigned(t, alice.id, pt.bytes(t))
				}
				raw, err := m.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				got, err := ParseSessionStart(raw)
				if pt.want == ErrMalformed {
					if got != nil {
						t.Error("ParseSessionStart returned a start with an error")
					}
					wantErr(t, err, ErrMalformed)
					return
				}
				if err != nil {
					t.Fatalf("ParseSessionStart: %v", err)
				}
				respondErr(t, bob, got, bob.spk, bob.otpqs[0], bob.otps[0], ErrLowOrderPoint)
			})
		}
	}
}

// TestRespondIsPure: Respond twice on the same start gives the same keys;
// refusing a replay is the caller's job (the Device remembers base keys
// and deletes one-time prekeys), which this documents.
func TestRespondIsPure(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	m := parsedStart(t, alice, bob.bundle())
	k1, err1 := bob.respond(m)
	k2, err2 := bob.respond(m)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.Secret(), k2.Secret()) || !bytes.Equal(k1.AssociatedData(), k2.AssociatedData()) {
		t.Fatal("Respond is not deterministic")
	}
	s := k1.Secret()
	s[0] ^= 1
	if bytes.Equal(s, k1.Secret()) {
		t.Fatal("Secret aliases the session keys")
	}
	ad := k1.AssociatedData()
	ad[0] ^= 1
	if bytes.Equal(ad, k1.AssociatedData()) {
		t.Fatal("AssociatedData aliases the session keys")
	}
}

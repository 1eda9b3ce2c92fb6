package sealpost_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

// The session-start items of the TESTING.md checklist, section A (4, 5, 9, 10) and the
// kind confusion of item 42, at the Device level: each bad first contact
// goes through Device.Receive and must leave the store byte-identical with
// no Apply (dmCapture, dmUnchanged), save no peer identity, and keep the
// one-time prekey: the genuine first contact afterwards succeeds, and only
// then is the prekey gone (a second initiator with the same blob gets
// ErrUnknownPrekey). The bad envelopes are made by a hand-built peer
// (adversary_helpers_test.go) with the public keys, ratchet and envelope/seal
// packages, so the outer HPKE layer is always genuine and the Device gets
// as far as its key agreement or ratchet.

// advNoPeer fails unless the device has no peer at addr.
func advNoPeer(t testing.TB, h *akErrs, p *party, addr sealpost.Address, what string) {
	t.Helper()
	_, _, err := p.PeerIdentity(addr)
	h.fails(t, what+": PeerIdentity of a rejected initiator", err, sealpost.ErrNoSession)
}

// advPinned fails unless the device pins id for addr, never changed.
func advPinned(t testing.TB, p *party, addr sealpost.Address, id keys.PublicIdentity, what string) {
	t.Helper()
	got, changed, err := p.PeerIdentity(addr)
	if err != nil || !got.Equal(id) || !changed.IsZero() {
		t.Fatalf("%s: PeerIdentity %v (changed %v), %v; want %v, never changed", what, got, changed, err, id)
	}
}

// advReject delivers raw to p, checks the error against want and that
// nothing changed.
func advReject(t testing.TB, h *akErrs, p *party, fs *faultyStore, raw []byte, what string, want ...error) {
	t.Helper()
	before := dmCapture(p, fs)
	in, err := p.Receive(ctx, raw)
	if in != nil {
		t.Fatalf("%s: Receive returned a result with error %v", what, err)
	}
	h.fails(t, what, err, want...)
	dmUnchanged(t, p, fs, before, what)
}

// advConsumed checks that the one-time prekeys of blob are gone: another
// initiator's start from the same blob is ErrUnknownPrekey, nothing changed.
func advConsumed(t testing.TB, h *akErrs, p *party, fs *faultyStore, blob *keys.Bundle, what string) {
	t.Helper()
	late := akNewPeer("late-initiator")
	h.peer(late)
	env, _ := late.start(t, blob).send("with a consumed one-time prekey")
	advReject(t, h, p, fs, env, what, sealpost.ErrUnknownPrekey)
	advNoPeer(t, h, p, late.addr, what)
}

// advAccept delivers a genuine envelope and checks its body.
func advAccept(t testing.TB, p *party, raw []byte, body string) *sealpost.Incoming {
	t.Helper()
	in, err := p.Receive(ctx, raw)
	if err != nil {
		t.Fatalf("%s: the genuine envelope: %v", p.addr, err)
	}
	if string(in.Body) != body || in.Redelivered {
		t.Fatalf("%s: got %q (redelivered %v), want %q", p.addr, in.Body, in.Redelivered, body)
	}
	if err := p.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	return in
}

// TestDeviceKEMBinding: session starts whose post-quantum part was changed
// after the initiator's key agreement: the start names another of Bob's
// ML-KEM prekeys (one-time or last resort) than the one its ciphertext was
// made for, or carries a ciphertext made for another of his keys (a
// re-encapsulation), or a flipped one. The responder's transcript then
// differs from the initiator's only in the post-quantum prekey or
// ciphertext: ErrDecrypt, nothing changed, no identity saved, both
// one-time prekeys kept. The genuine start then succeeds and consumes
// them (TESTING.md item 4).
func TestDeviceKEMBinding(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	h.device(bob)
	blobs := akBundles(t, bob, 2) // one-time i, one-time j, last resort
	alice := akNewPeer("alice")
	s := alice.start(t, blobs[0])
	genuine, _, raw := s.sendRaw("hello")
	toJ := alice.start(t, blobs[1])          // encapsulated to one-time PQ prekey j
	toLastResort := alice.start(t, blobs[2]) // to the last-resort PQ prekey
	h.peer(alice, s, toJ, toLastResort)
	ciphertext := func(o *akSession) []byte {
		_, _, r := o.sendRaw("x")
		m := akDecodeStart(t, r)
		if len(m.KemCiphertext) != keys.PQCiphertextSize {
			t.Fatalf("ciphertext of %d bytes", len(m.KemCiphertext))
		}
		return m.KemCiphertext
	}
	ctJ, ctLastResort := ciphertext(toJ), ciphertext(toLastResort)
	pqJ := blobs[1].OneTimePQPrekeys[0].ID

	variants := []struct {
		name string
		edit func(m *sealedpb.SessionStart)
	}{
		{"names one-time PQ prekey j, ciphertext for i", func(m *sealedpb.SessionStart) { m.PqPrekeyId = pqJ }},
		{"names the last-resort PQ prekey, ciphertext for i", func(m *sealedpb.SessionStart) {
			m.PqPrekeyId, m.PqOneTime = blobs[0].PQPrekey.ID, false
		}},
		{"ciphertext re-encapsulated to one-time PQ prekey j", func(m *sealedpb.SessionStart) { m.KemCiphertext = ctJ }},
		{"ciphertext re-encapsulated to the last-resort PQ prekey", func(m *sealedpb.SessionStart) { m.KemCiphertext = ctLastResort }},
		{"names j with j's ciphertext, rest for i", func(m *sealedpb.SessionStart) { m.PqPrekeyId, m.KemCiphertext = pqJ, ctJ }},
	}
	for _, i := range []int{0, 1, 800, keys.PQCiphertextSize - 1} {
		variants = append(variants, struct {
			name string
			edit func(m *sealedpb.SessionStart)
		}{fmt.Sprintf("ciphertext byte %d flipped", i), func(m *sealedpb.SessionStart) { m.KemCiphertext[i] ^= 0x01 }})
	}
	for _, v := range variants {
		advReject(t, h, bob, fs, s.sealStart(akEditStart(t, raw, v.edit)), v.name, sealpost.ErrDecrypt)
		advNoPeer(t, h, bob, alice.addr, v.name)
	}

	// The one-time prekeys are still there: the genuine start succeeds,
	// and so does another initiator's with blob j.
	advAccept(t, bob, genuine, "hello")
	advPinned(t, bob, alice.addr, alice.id.Public(), "after the genuine start")
	advConsumed(t, h, bob, fs, blobs[0], "blob i after the genuine start")
	carol := akNewPeer("carol")
	h.peer(carol)
	env, _ := carol.start(t, blobs[1]).send("blob j")
	advAccept(t, bob, env, "blob j")
	advConsumed(t, h, bob, fs, blobs[1], "blob j after its start")
	// And the session works both ways.
	out := send(t, bob, &party{addr: alice.addr}, "reply")
	if got := s.receive(out.Envelope); string(got.Body) != "reply" {
		t.Fatalf("Alice got %q", got.Body)
	}
	env, _ = s.send("after the reply")
	advAccept(t, bob, env, "after the reply")
}

// TestDeviceFirstMessageFlip: the first message with one byte flipped,
// inside the sealed session start (every field: addresses, identity, ids,
// base key, ciphertext, confirmation, and the ratchet message it carries,
// whose header and body only the ratchet authenticates) and in the outer
// HPKE envelope. Each is a typed error with nothing changed and no
// identity saved; the one-time prekey is kept, so the untouched original
// then decrypts, and only then is the prekey gone (TESTING.md item 5).
func TestDeviceFirstMessageFlip(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	h.device(bob)
	blobs := akBundles(t, bob, 1)
	alice := akNewPeer("alice")
	s := alice.start(t, blobs[0])
	h.peer(alice, s)
	genuine, _, raw := s.sendRaw("the original")

	payload := len(raw) - len(s.startRawPayloadless())
	if payload <= 0 {
		t.Fatal("no payload in the session start")
	}
	stride := 41
	if raceEnabled {
		stride = 97
	}
	var positions []int
	for i := 0; i < len(raw)-payload; i += stride {
		positions = append(positions, i)
	}
	// The payload (routing tag, ratchet version, encrypted header, nonce,
	// body, AEAD tag): denser, and its last bytes all.
	for i := len(raw) - payload; i < len(raw); i += stride / 4 {
		positions = append(positions, i)
	}
	for i := len(raw) - 16; i < len(raw); i += 3 {
		positions = append(positions, i)
	}
	for _, i := range positions {
		flipped := bytes.Clone(raw)
		flipped[i] ^= 0x04
		what := fmt.Sprintf("session start byte %d of %d flipped (payload from %d)", i, len(raw), len(raw)-payload)
		advReject(t, h, bob, fs, s.sealStart(flipped), what)
	}
	for i := 0; i < len(genuine); i += stride * 2 {
		flipped := bytes.Clone(genuine)
		flipped[i] ^= 0x80
		advReject(t, h, bob, fs, flipped, fmt.Sprintf("envelope byte %d of %d flipped", i, len(genuine)))
	}
	advNoPeer(t, h, bob, alice.addr, "after the flips")
	t.Logf("%d flipped session starts, %d flipped envelopes", len(positions), (len(genuine)+2*stride-1)/(2*stride))

	advAccept(t, bob, genuine, "the original")
	advPinned(t, bob, alice.addr, alice.id.Public(), "after the original")
	advConsumed(t, h, bob, fs, blobs[0], "the blob after the original")
}

// startRawPayloadless is the encoded start without a payload, to find
// where the payload begins (it is the last field).
func (s *akSession) startRawPayloadless() []byte {
	s.t.Helper()
	raw, err := s.start.MarshalBinary()
	if err != nil {
		s.t.Fatal(err)
	}
	return raw
}

// TestDeviceWrongRecipient: a genuine first message made for another of
// the user's devices (bob.2), or for another identity at Bob's address (a
// reinstall), delivered to Bob: sealed as made (routed to Bob's mailbox),
// re-sealed to Bob's mailbox key, and re-sealed with its prekey ids
// rewritten to Bob's own so that his key agreement runs with his keys.
// The recipient's identity and address are bound into the key agreement
// and the ratchet's associated data: every variant is rejected with
// nothing changed and no identity saved, and Bob's one-time prekey named
// in them is kept. The intended recipients accept their envelopes
// (TESTING.md item 9).
func TestDeviceWrongRecipient(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	bob2, _ := akPartyAt(t, sealpost.Address{User: "bob", Device: 2}, c)
	other, _ := akPartyAt(t, bob.addr, c) // another identity at Bob's address
	h.device(bob)
	h.device(bob2)
	h.device(other)
	own := akBundles(t, bob, 1)[0]
	alice := akNewPeer("alice")
	h.peer(alice)

	for _, target := range []*party{bob2, other} {
		blob := akBundles(t, target, 1)[0]
		s := alice.start(t, blob)
		h.peer(alice, s)
		genuine, _, raw := s.sendRaw("for " + target.addr.String())
		hd, body, err := wire.Parse(genuine)
		if err != nil {
			t.Fatal(err)
		}
		rerouted := wire.AppendEnvelope(nil, bob.Mailbox(), hd.Tag, body)
		ownIDs := akEditStart(t, raw, func(m *sealedpb.SessionStart) {
			id := own.OneTimePrekeys[0].ID
			m.SignedPrekeyId, m.PqPrekeyId, m.PqOneTime, m.OneTimePrekeyId = own.SignedPrekey.ID, own.OneTimePQPrekeys[0].ID, true, &id
		})
		name := "for " + target.addr.String() + " (identity " + target.Identity().String() + ")"
		advReject(t, h, bob, fs, rerouted, name+", rerouted to Bob's mailbox", sealpost.ErrDecrypt, sealpost.ErrMalformed)
		advReject(t, h, bob, fs, akSeal(t, own, raw), name+", re-sealed to Bob's mailbox key", sealpost.ErrDecrypt, sealpost.ErrUnknownPrekey)
		advReject(t, h, bob, fs, akSeal(t, own, ownIDs), name+", re-sealed with Bob's prekey ids", sealpost.ErrDecrypt)
		advNoPeer(t, h, bob, alice.addr, name)
		advAccept(t, target, genuine, "for "+target.addr.String())
	}
	// Bob's one-time prekey, named by the rewritten starts, is still there.
	s := alice.start(t, own)
	env, _ := s.send("for bob")
	advAccept(t, bob, env, "for bob")
	advConsumed(t, h, bob, fs, own, "Bob's blob after his start")
}

// TestDeviceIdentityMismatch: Mallory runs the key agreement with her own
// identity key but presents Alice's identity, and the reverse (Alice's key
// agreement presenting Mallory's identity), and Alice's genuine start with
// another initiator address: each is ErrDecrypt with nothing changed,
// before Bob knows Alice (no identity saved, the one-time prekey kept)
// and after (Alice's pinned identity unchanged, no identity-changed
// finding, the session with the real Alice still works) (TESTING.md item 10,
// and 41's claimed-sender case at the Device level).
func TestDeviceIdentityMismatch(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	h.device(bob)
	alice, mallory := akNewPeer("alice"), akNewPeer("mallory")
	mallory.addr = alice.addr // Mallory claims Alice's address too
	h.peer(alice)
	h.peer(mallory)

	attacks := func(blob *keys.Bundle, phase string) {
		t.Helper()
		m := mallory.start(t, blob)
		_, _, raw := m.sendRaw("I am Alice")
		a := alice.start(t, blob)
		_, _, araw := a.sendRaw("I am Mallory")
		h.peer(mallory, m)
		h.peer(alice, a)
		for _, v := range []struct {
			name string
			raw  []byte
		}{
			{"Mallory's keys, Alice's identity", akEditStart(t, raw, func(s *sealedpb.SessionStart) { s.InitiatorIdentity = alice.id.Public().Bytes() })},
			{"Alice's keys, Mallory's identity", akEditStart(t, araw, func(s *sealedpb.SessionStart) { s.InitiatorIdentity = mallory.id.Public().Bytes() })},
			{"Alice's start claiming alice.2", akEditStart(t, araw, func(s *sealedpb.SessionStart) { s.InitiatorDevice = 2 })},
			{"Alice's start claiming user alicf", akEditStart(t, araw, func(s *sealedpb.SessionStart) { s.InitiatorUser = "alicf" })},
		} {
			advReject(t, h, bob, fs, akSeal(t, blob, v.raw), phase+": "+v.name, sealpost.ErrDecrypt)
		}
		for _, addr := range []sealpost.Address{{User: "alice", Device: 2}, {User: "alicf", Device: 1}} {
			advNoPeer(t, h, bob, addr, phase)
		}
	}

	blobs := akBundles(t, bob, 1)
	attacks(blobs[0], "Bob does not know Alice")
	advNoPeer(t, h, bob, alice.addr, "Bob does not know Alice")
	s := alice.start(t, blobs[0])
	h.peer(alice, s)
	env, _ := s.send("the real Alice")
	advAccept(t, bob, env, "the real Alice")
	advConsumed(t, h, bob, fs, blobs[0], "after the real Alice")

	attacks(akBundles(t, bob, 1)[0], "Bob knows Alice")
	attacks(akBundles(t, bob, 0)[0], "Bob knows Alice, last resort")
	advPinned(t, bob, alice.addr, alice.id.Public(), "after the attacks")
	if f := bob.Findings(alice.addr); len(f) != 0 {
		t.Fatalf("findings after rejected attacks: %v", f)
	}
	out := send(t, bob, &party{addr: alice.addr}, "reply")
	if got := s.receive(out.Envelope); string(got.Body) != "reply" {
		t.Fatalf("Alice got %q", got.Body)
	}
	env, _ = s.send("still Alice")
	if in := advAccept(t, bob, env, "still Alice"); len(in.Findings) != 0 {
		t.Fatalf("findings: %v", in.Findings)
	}
}

// TestDeviceKindConfusion: contents of the wrong kind, each sealed
// genuinely so that only the content check can refuse them. On the
// first-contact path: a delivery receipt, a read receipt, a receipt with
// a body, an unknown kind. On an established session: a delivery or read
// receipt with a body, an unknown kind, and a content of another version.
// Every one is rejected with nothing changed (no session, identity or
// prekey use on the first-contact path), and the genuine message after
// them is accepted (TESTING.md item 42).
func TestDeviceKindConfusion(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	h.device(bob)
	blobs := akBundles(t, bob, 1)
	alice := akNewPeer("alice")
	s := alice.start(t, blobs[0])
	h.peer(alice, s)

	bad := func(kind sealpost.Kind, body string, edit func(*sealedpb.Content)) []byte {
		_, padded, _ := s.content(kind, []byte(body), edit)
		tag, msg := s.encrypt(padded)
		return s.frame(tag, msg)
	}
	for _, v := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"delivery receipt as a first contact", bad(sealpost.KindDelivered, "", nil), sealpost.ErrMalformed},
		{"read receipt as a first contact", bad(sealpost.KindRead, "", nil), sealpost.ErrMalformed},
		{"delivery receipt with a body as a first contact", bad(sealpost.KindDelivered, "body", nil), sealpost.ErrMalformed},
		{"kind 4 as a first contact", bad(4, "body", nil), sealpost.ErrMalformed},
		{"message without the sender's mailbox as a first contact", bad(sealpost.KindMessage, "body", func(c *sealedpb.Content) { c.SenderMailbox = nil }), sealpost.ErrMalformed},
	} {
		advReject(t, h, bob, fs, v.raw, v.name, v.want)
		advNoPeer(t, h, bob, alice.addr, v.name)
	}
	env, _ := s.send("first")
	advAccept(t, bob, env, "first")
	advConsumed(t, h, bob, fs, blobs[0], "after the genuine first contact")
	s.receive(send(t, bob, &party{addr: alice.addr}, "reply").Envelope)

	for _, v := range []struct {
		name string
		raw  []byte
		want error
	}{
		{"delivery receipt with a body", bad(sealpost.KindDelivered, "a body", nil), sealpost.ErrMalformed},
		{"read receipt with a body", bad(sealpost.KindRead, "a body", nil), sealpost.ErrMalformed},
		{"kind 0", bad(0, "a body", nil), sealpost.ErrMalformed},
		{"kind 200", bad(200, "", nil), sealpost.ErrMalformed},
		{"content version 2", bad(sealpost.KindMessage, "a body", func(c *sealedpb.Content) { c.Version = 2 }), sealpost.ErrUnsupportedVersion},
		{"receipt without its hash", bad(sealpost.KindDelivered, "", func(c *sealedpb.Content) { c.ReceiptHash = nil }), sealpost.ErrMalformed},
	} {
		advReject(t, h, bob, fs, v.raw, v.name, v.want)
	}
	env, _ = s.send("after the confusion")
	advAccept(t, bob, env, "after the confusion")
	advPinned(t, bob, alice.addr, alice.id.Public(), "after the confusion")
}

// TestUnopenedFirstContactError: a first-contact envelope that none of
// Bob's mailbox keys opens (sealed to another device's key, or damaged)
// must be ErrDecrypt, as Receive documents ("ErrDecrypt when no session or
// mailbox key opens it"), with nothing changed, whether or not Bob holds
// sessions (TESTING.md items 22, 41, 47).
func TestUnopenedFirstContactError(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	carol := newParty(t, "carol", c)
	alice := newParty(t, "alice", c)
	h.device(bob)
	h.device(alice)
	var wrong []error
	for _, withSessions := range []bool{false, true} {
		if withSessions {
			connect(t, alice, bob)
			receive(t, bob, send(t, alice, bob, "a session"))
		}
		for i := range 8 {
			dave := newParty(t, fmt.Sprint("dave", i), c)
			connect(t, dave, carol)
			o := send(t, dave, carol, "for carol")
			for _, raw := range [][]byte{reroute(t, o.Envelope, bob.Mailbox()), nil} {
				if raw == nil {
					connect(t, dave, bob)
					raw = flipAt(send(t, dave, bob, "for bob").Envelope, -5)
				}
				before := dmCapture(bob, fs)
				_, err := bob.Receive(ctx, raw)
				h.fails(t, "a first contact no mailbox key opens", err)
				dmUnchanged(t, bob, fs, before, "a first contact no mailbox key opens")
				if !errors.Is(err, sealpost.ErrDecrypt) {
					wrong = append(wrong, fmt.Errorf("with sessions %v: %w", withSessions, err))
				}
			}
		}
	}
	// Before be8572a, 16 of the 32 were ErrUnsupportedVersion: with a
	// session held, the slow path read the HPKE encapsulation's first
	// (random) byte as a ratchet version.
	if len(wrong) > 0 {
		t.Fatalf("%d of 32 unopened first contacts are not ErrDecrypt, e.g. %v", len(wrong), wrong[0])
	}
}

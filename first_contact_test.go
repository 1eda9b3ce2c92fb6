package sealpost_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
)

// TestFirstContactReplay: a first-contact envelope delivered again after it
// succeeded: before Done it is the kept result, after Done it is
// ErrDuplicate with nothing changed, also once the session it started has
// been replied to and once it has been evicted by newer sessions
// (TESTING.md item 6).
func TestFirstContactReplay(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob, fs := newFaultyParty(t, "bob", c)
	connect(t, alice, bob)
	first := send(t, alice, bob, "first")
	in, err := bob.Receive(ctx, first.Envelope)
	if err != nil || string(in.Body) != "first" || in.Redelivered {
		t.Fatalf("first delivery: %+v, %v", in, err)
	}
	before := dmCapture(bob, fs)
	again, err := bob.Receive(ctx, first.Envelope)
	if err != nil || !again.Redelivered || again.ID != in.ID {
		t.Fatalf("delivery before Done: %+v, %v", again, err)
	}
	dmUnchanged(t, bob, fs, before, "redelivery before Done")
	if err := bob.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	replay := func(when string) {
		t.Helper()
		before := dmCapture(bob, fs)
		if _, err := bob.Receive(ctx, first.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
			t.Fatalf("replay %s: %v, want ErrDuplicate", when, err)
		}
		dmUnchanged(t, bob, fs, before, "replay "+when)
	}
	replay("after Done")
	// A second envelope of the same session also carries the start: it is
	// a new message on the same session, not a second session.
	second := receive(t, bob, send(t, alice, bob, "second"))
	if len(second.Findings) != 0 {
		t.Fatalf("second envelope of the session: findings %v", second.Findings)
	}
	replay("after a second message")
	receive(t, alice, send(t, bob, alice, "reply"))
	replay("after the reply")
	// No second session: Alice's next message is a session envelope and
	// Bob's replies still reach her.
	receive(t, bob, send(t, alice, bob, "third"))
	receive(t, alice, send(t, bob, alice, "reply 2"))

	// Alice starts enough newer sessions that the first is evicted from
	// Bob's list; the replayed start must still not make a session.
	for i := range 5 {
		connect(t, alice, bob)
		receive(t, bob, send(t, alice, bob, fmt.Sprint("restart ", i)))
	}
	replay("after the session was evicted")
	receive(t, alice, send(t, bob, alice, "still fine"))

	// Once rotation drops the signed prekey the start used (a week past its
	// expiry), the record of
	// accepted starts for it goes too; the replay is still refused with
	// nothing changed (its mailbox key rotated away with the prekey, so it
	// no longer even opens).
	seen := func() (n int) {
		for k := range bob.store.Snapshot() {
			if strings.HasPrefix(k, "seen/") {
				n++
			}
		}
		return n
	}
	if seen() == 0 {
		t.Fatal("no record of accepted starts")
	}
	// Old prekeys are kept until a week past their expiry.
	c.advance(sealpost.PrekeyLifetime + 8*24*time.Hour)
	for range 4 {
		if err := bob.RotatePrekeys(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := seen(); n != 0 {
		t.Fatalf("%d records of accepted starts left after their signed prekeys were dropped", n)
	}
	before = dmCapture(bob, fs)
	if _, err := bob.Receive(ctx, first.Envelope); !errors.Is(err, sealpost.ErrDecrypt) {
		t.Fatalf("replay after rotation: %v, want ErrDecrypt", err)
	}
	dmUnchanged(t, bob, fs, before, "replay after rotation")
}

// TestUnknownPrekey: a session start naming a one-time prekey the
// responder never had, or one another initiator already consumed, is
// ErrUnknownPrekey with nothing changed; the device goes on working
// (TESTING.md item 7).
func TestUnknownPrekey(t *testing.T) {
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	alice, carol := newParty(t, "alice", c), newParty(t, "carol", c)
	blob := dmBlob(t, bob, 1, 0)

	// Alice uses the blob first and consumes its one-time prekey.
	dmStart(t, alice, bob, blob)
	receive(t, bob, send(t, alice, bob, "from alice"))

	// The relay (or an attacker) hands Carol the same blob.
	dmStart(t, carol, bob, blob)
	consumed := send(t, carol, bob, "from carol")
	before := dmCapture(bob, fs)
	if _, err := bob.Receive(ctx, consumed.Envelope); !errors.Is(err, sealpost.ErrUnknownPrekey) {
		t.Fatalf("consumed one-time prekey: %v, want ErrUnknownPrekey", err)
	}
	dmUnchanged(t, bob, fs, before, "consumed one-time prekey")

	// A bundle naming a one-time prekey Bob never made (one-time X25519
	// prekeys are not signed, so anybody can put one in a bundle).
	b, err := keys.ParseBundle(blob, testBundleClock)
	if err != nil {
		t.Fatal(err)
	}
	b.OneTimePrekeys = []keys.PublicOneTimePrekey{keys.GenerateOneTimePrekey(0xFFFF_FFF0).Public()}
	dave := newParty(t, "dave", c)
	if err := dave.StartSession(ctx, bob.addr, b); err != nil {
		t.Fatal(err)
	}
	unknown := send(t, dave, bob, "from dave")
	before = dmCapture(bob, fs)
	if _, err := bob.Receive(ctx, unknown.Envelope); !errors.Is(err, sealpost.ErrUnknownPrekey) {
		t.Fatalf("unknown one-time prekey: %v, want ErrUnknownPrekey", err)
	}
	dmUnchanged(t, bob, fs, before, "unknown one-time prekey")

	// A one-time prekey with one of Bob's ids but another key: the key
	// agreement cannot match. Any typed error, nothing stored.
	fresh := dmBlob(t, bob, 1, 0)
	b, err = keys.ParseBundle(fresh, testBundleClock)
	if err != nil {
		t.Fatal(err)
	}
	b.OneTimePrekeys = []keys.PublicOneTimePrekey{keys.GenerateOneTimePrekey(b.OneTimePrekeys[0].ID).Public()}
	erin := newParty(t, "erin", c)
	if err := erin.StartSession(ctx, bob.addr, b); err != nil {
		t.Fatal(err)
	}
	forged := send(t, erin, bob, "from erin")
	before = dmCapture(bob, fs)
	if _, err := bob.Receive(ctx, forged.Envelope); err == nil || !dmTyped(err) {
		t.Fatalf("substituted one-time prekey: %v, want a typed error", err)
	}
	dmUnchanged(t, bob, fs, before, "substituted one-time prekey")

	// Bob still works: the untouched fresh blob, and the last resort.
	dmStart(t, erin, bob, fresh)
	receive(t, bob, send(t, erin, bob, "erin again"))
	dmStart(t, carol, bob, dmBlob(t, bob, 0, 0))
	receive(t, bob, send(t, carol, bob, "carol again"))
	receive(t, carol, send(t, bob, carol, "hi carol"))
}

// TestLastResortStarts: session starts that use only the last-resort keys
// (a bundle without one-time prekeys). Different base keys, from two
// initiators or from one initiator twice, all succeed. A second first
// message with the same base key but another body can only come from a
// copy of the initiator's state taken after StartSession (a restored
// backup, a clone): it must be ErrDuplicate with nothing changed, both
// while Bob still holds that session and after newer sessions evicted it
// (TESTING.md item 8).
func TestLastResortStarts(t *testing.T) {
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	alice, carol := newParty(t, "alice", c), newParty(t, "carol", c)
	lastResort := dmBlob(t, bob, 0, 0)
	if b, _ := keys.ParseBundle(lastResort, testBundleClock); len(b.OneTimePrekeys)+len(b.OneTimePQPrekeys) != 0 {
		t.Fatal("the bundle has one-time prekeys")
	}

	dmStart(t, alice, bob, lastResort)
	afterStart := alice.store.Snapshot()
	a1 := send(t, alice, bob, "alice 1")
	dmStart(t, carol, bob, lastResort)
	c1 := send(t, carol, bob, "carol 1")
	for _, o := range []*sealpost.Outgoing{a1, c1} {
		receive(t, bob, o)
	}
	// One initiator twice from the same blob: a new base key.
	dmStart(t, alice, bob, lastResort)
	receive(t, bob, send(t, alice, bob, "alice 2"))
	receive(t, alice, send(t, bob, alice, "hi alice"))
	receive(t, carol, send(t, bob, carol, "hi carol"))

	// clone opens a copy of Alice's state right after her first start and
	// sends a first message with that base key.
	clone := func(body string) *sealpost.Outgoing {
		t.Helper()
		s := sealpost.NewMemoryStore()
		s.Restore(afterStart)
		d, err := sealpost.Open(ctx, s, alice.addr, sealpost.WithClock(c.now))
		if err != nil {
			t.Fatal(err)
		}
		return send(t, &party{Device: d, addr: alice.addr, store: s}, bob, body)
	}
	sameBase := func(what string, o *sealpost.Outgoing) error {
		t.Helper()
		before := dmCapture(bob, fs)
		_, err := bob.Receive(ctx, o.Envelope)
		if err == nil || !dmTyped(err) {
			t.Fatalf("%s: %v, want ErrDuplicate", what, err)
		}
		dmUnchanged(t, bob, fs, before, what)
		return err
	}
	whileHeld := sameBase("same base key, session held", clone("alice 1, again"))
	if _, err := bob.Receive(ctx, a1.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("exact replay of the first message: %v, want ErrDuplicate", err)
	}
	// Newer sessions evict the first from Bob's list (he keeps a few).
	for i := range 5 {
		dmStart(t, alice, bob, dmBlob(t, bob, 0, 0))
		receive(t, bob, send(t, alice, bob, fmt.Sprint("restart ", i)))
	}
	if err := sameBase("same base key, session evicted", clone("alice 1, once more")); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("same base key, session evicted: %v, want ErrDuplicate", err)
	}
	receive(t, alice, send(t, bob, alice, "still fine"))
	if !errors.Is(whileHeld, sealpost.ErrDuplicate) {
		t.Fatalf("regression of a fixed bug: a second first message with a seen base key is %v while Bob still holds that session (ErrDuplicate once it is evicted): receive.go acceptStart reuses the session by base key and the ratchet reports another body under a consumed tag as ErrDecrypt, so the respond() seen-base-key check never runs", whileHeld)
	}
}

// TestFirstContactWrongMailboxKey: a first-contact envelope sealed to
// another device's mailbox key but routed to Bob (its routing header
// rewritten to Bob's mailbox) is ErrDecrypt or ErrMalformed with nothing
// stored, also when the other device uses the same mailbox id as Bob
// (TESTING.md item 41).
func TestFirstContactWrongMailboxKey(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob, fs := newFaultyParty(t, "bob", c)
	carol := newParty(t, "carol", c)
	twin := newParty(t, "twin", c, sealpost.WithMailbox(bob.Mailbox()))
	for _, other := range []*party{carol, twin} {
		connect(t, alice, other)
		out := send(t, alice, other, "for "+other.addr.User)
		h, body, err := wire.Parse(out.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		rerouted := wire.AppendEnvelope(nil, bob.Mailbox(), h.Tag, body)
		before := dmCapture(bob, fs)
		_, err = bob.Receive(ctx, rerouted)
		if !errors.Is(err, sealpost.ErrDecrypt) && !errors.Is(err, sealpost.ErrMalformed) {
			t.Fatalf("sealed to %s's mailbox key: %v, want ErrDecrypt or ErrMalformed", other.addr, err)
		}
		dmUnchanged(t, bob, fs, before, "first contact sealed to another key")
		if _, _, err := bob.PeerIdentity(alice.addr); !errors.Is(err, sealpost.ErrNoSession) {
			t.Fatalf("Bob knows Alice after a rejected first contact: %v", err)
		}
	}
	// Bob's own first contact still works.
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "for bob"))
}

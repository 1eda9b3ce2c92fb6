package sealpost_test

// Session agreement after late starts, simultaneous starts and rollbacks
// (TESTING.md items 25, 26, 35): the Device answers on the session the peer
// used (promote), and the transcript accepts a rolled-back peer's new
// contents as forks instead of refusing them as duplicates.

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestLatePrekeyMessageAgreement (TESTING.md item 26): a late first contact
// of an older session arrives after a newer session exists. The checklist
// wants the old session promoted back; whatever the rule, both sides must
// then send on one session: after two exchanges, neither sends a first
// contact (a side sends first contacts while its current session is one
// the peer has never sent on). Delivery receipts are off so that no
// receipt on the other session hides the split.
func TestLatePrekeyMessageAgreement(t *testing.T) {
	for _, variant := range []string{"archived by Bob's own start", "older start arrives last"} {
		t.Run(variant, func(t *testing.T) {
			for run := range 6 {
				c := newClock()
				opts := sealpost.WithDeliveryReceipts(false)
				alice, bob := newParty(t, "alice", c, opts), newParty(t, "bob", c, opts)
				connect(t, alice, bob)
				old1, old2 := send(t, alice, bob, "old 1"), send(t, alice, bob, "old 2")
				switch variant {
				case "archived by Bob's own start":
					receive(t, bob, old1)
					connect(t, bob, alice)
				case "older start arrives last":
					connect(t, alice, bob)
					receive(t, bob, send(t, alice, bob, "new 1"))
					receive(t, bob, old1)
				}
				receive(t, bob, old2)
				reply := send(t, bob, alice, "reply")
				receive(t, alice, reply)
				if variant == "archived by Bob's own start" && arFirstContact(t, reply.Envelope) {
					t.Errorf("run %d: the old session was not promoted back: Bob's reply carries his own new start", run)
				}
				var a, b *sealpost.Outgoing
				for i := range 2 {
					a = send(t, alice, bob, fmt.Sprint("a", i))
					receive(t, bob, a)
					b = send(t, bob, alice, fmt.Sprint("b", i))
					receive(t, alice, b)
				}
				if arFirstContact(t, a.Envelope) || arFirstContact(t, b.Envelope) {
					t.Fatalf("run %d: after two exchanges Alice sends first contacts: %v, Bob: %v: the sides are on different sessions", run, arFirstContact(t, a.Envelope), arFirstContact(t, b.Envelope))
				}
			}
		})
	}
}

// TestRollbackHealsInOneRoundTrip (TESTING.md item 35): Alice's store is
// restored to before her last three messages (all received by Bob). After
// one round trip, her new messages must be accepted (with a finding), not
// refused: they are new messages the app sent.
func TestRollbackHealsInOneRoundTrip(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	old := alice.store.Snapshot()
	for i := range 3 {
		receive(t, bob, send(t, alice, bob, fmt.Sprint("before the rollback ", i)))
	}
	alice.store.Restore(old)
	alice = dmReopen(t, alice, c)
	first := send(t, alice, bob, "first after the rollback")
	if _, err := bob.Receive(ctx, first.Envelope); err != nil {
		t.Logf("first message after the rollback: %v", err)
	}
	receive(t, alice, send(t, bob, alice, "round trip"))
	for i := range 3 {
		o := send(t, alice, bob, fmt.Sprint("after the round trip ", i))
		in, err := bob.Receive(ctx, o.Envelope)
		if err != nil {
			t.Fatalf("message %d after a round trip: %v (duplicate: %v): a new message is refused", i, err, errors.Is(err, sealpost.ErrDuplicate))
		}
		_ = bob.Done(ctx, in.ID)
	}
}

// TestSimultaneousStartLateLostStart (TESTING.md item 25): the scenario "one
// side's first message lost" of TestSimultaneousStartScenarios, with its
// one-session check asserted: the late first message (the start that lost
// the tie-break) must not split the sides onto two sessions.
func TestSimultaneousStartLateLostStart(t *testing.T) {
	for run := range 6 {
		c := newClock()
		n := &ssNet{t: t}
		alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
		connect(t, alice, bob)
		connect(t, bob, alice)
		n.send(alice, bob) // lost until finish
		n.deliver(n.send(bob, alice))
		n.deliver(n.send(alice, bob))
		n.deliver(n.send(bob, alice))
		if !n.finish(alice, bob) {
			t.Fatalf("run %d: after the late first message and two exchanges the sides send on different sessions", run)
		}
	}
}

package sealpost_test

import (
	"bytes"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestAddressTakeover (ADVERSARIAL 53, issue 14 defect 4): Mallory opens a
// device at bob's address with a new identity and sends Alice one first
// contact made from her public (last-resort) bundle. The session Alice has
// with the real Bob keeps working both ways; nothing Alice sends goes to
// Mallory's mailbox.
func TestAddressTakeover(t *testing.T) {
	c := newClock()
	alice, _ := akPartyAt(t, sealpost.Address{User: "alice", Device: 1}, c)
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello bob"))
	receive(t, alice, send(t, bob, alice, "hello alice"))

	mallory := newParty(t, "bob", c) // bob's address, a new identity and mailbox
	lastResort := akBundles(t, alice, 0)[0]
	if err := mallory.StartSession(ctx, alice.addr, lastResort); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, send(t, mallory, alice, "I am bob now").Envelope); err != nil {
		t.Fatalf("Mallory's first contact: %v", err)
	}

	// Alice and the real Bob go on, both ways.
	for i := range 3 {
		out := send(t, alice, bob, "to bob")
		if !bytes.Equal(out.Mailbox, bob.Mailbox()) || bytes.Equal(out.Mailbox, mallory.Mailbox()) {
			t.Fatalf("message %d: Alice sent to mailbox %x, Bob's is %x, Mallory's %x", i, out.Mailbox, bob.Mailbox(), mallory.Mailbox())
		}
		if in, err := bob.Receive(ctx, out.Envelope); err != nil || string(in.Body) != "to bob" {
			t.Fatalf("message %d: the real Bob: %v", i, err)
		}
		in, err := alice.Receive(ctx, send(t, bob, alice, "to alice").Envelope)
		if err != nil || string(in.Body) != "to alice" {
			t.Fatalf("message %d: Alice from the real Bob: %v", i, err)
		}
	}
	id, _, err := alice.PeerIdentity(bob.addr)
	if err != nil || !id.Equal(bob.Identity()) {
		t.Fatalf("Alice's pinned identity for bob is no longer the real Bob's (%v)", err)
	}
}

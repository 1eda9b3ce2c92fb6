package sealpost_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestKEMProgress (issue 14): the Device reports each lane's mixed epochs;
// in a two-way conversation both lanes advance on both sides, each side's
// Own is the other's Peer within one epoch in flight, and a lane stays
// still while only one side talks. Unknown peers are ErrNoSession.
func TestKEMProgress(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	if _, err := alice.KEMProgress(bob.addr); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("before a session: %v", err)
	}
	connect(t, alice, bob)
	for i := range 300 {
		receive(t, bob, send(t, alice, bob, fmt.Sprint("a", i)))
		receive(t, alice, send(t, bob, alice, fmt.Sprint("b", i)))
	}
	a, err := alice.KEMProgress(bob.addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.KEMProgress(alice.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 300 messages each way: alice %+v, bob %+v", a, b)
	if a.Own == 0 || a.Peer == 0 || b.Own == 0 || b.Peer == 0 {
		t.Fatalf("a lane never mixed: alice %+v, bob %+v", a, b)
	}
	if d := int(a.Own) - int(b.Peer); d < -1 || d > 1 {
		t.Fatalf("alice's own lane %d, bob's view %d", a.Own, b.Peer)
	}
	if d := int(b.Own) - int(a.Peer); d < -1 || d > 1 {
		t.Fatalf("bob's own lane %d, alice's view %d", b.Own, a.Peer)
	}
	// One-way traffic completes no exchange: a KEM epoch needs the key one
	// way and the answer back.
	for i := range 200 {
		receive(t, bob, send(t, alice, bob, fmt.Sprint("only a", i)))
	}
	a2, _ := alice.KEMProgress(bob.addr)
	if a2.Own > a.Own+1 || a2.Peer > a.Peer+1 {
		t.Fatalf("one-way traffic advanced the lanes from %+v to %+v", a, a2)
	}
}

package sealpost_test

import (
	"errors"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestOpenCreated (issue 15 API review): Open reports whether it made a
// new identity; WithExisting refuses an empty store with ErrNotFound and
// writes nothing, and loads a store that holds the device.
func TestOpenCreated(t *testing.T) {
	s := sealpost.NewMemoryStore()
	addr := sealpost.Address{User: "alice", Device: 1}
	if d, err := sealpost.Open(ctx, s, addr, sealpost.WithExisting()); !errors.Is(err, sealpost.ErrNotFound) || d != nil {
		t.Fatalf("WithExisting on an empty store: %v, %v", d, err)
	}
	if len(s.Snapshot()) != 0 {
		t.Fatal("a refused Open wrote to the store")
	}
	d, err := sealpost.Open(ctx, s, addr)
	if err != nil || !d.Created() {
		t.Fatalf("first Open: created %v, %v", d != nil && d.Created(), err)
	}
	again, err := sealpost.Open(ctx, s, addr, sealpost.WithExisting())
	if err != nil || again.Created() || !again.Identity().Equal(d.Identity()) {
		t.Fatalf("reopening: %v", err)
	}
}

// TestPeers: Peers lists every peer by address with its pinned identity,
// whether it is pending, its unconfirmed identities and sessions.
func TestPeers(t *testing.T) {
	c := newClock()
	alice, bob, carol := newParty(t, "alice", c), newParty(t, "bob", c), newParty(t, "carol", c)
	if len(bob.Peers()) != 0 {
		t.Fatal("a new device lists peers")
	}
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hi"))
	connect(t, carol, bob)
	receive(t, bob, send(t, carol, bob, "a stranger"))
	receive(t, alice, send(t, bob, alice, "hello")) // bob answered alice, not carol
	mallory := newParty(t, "alice", c)
	connect(t, mallory, bob)
	receive(t, bob, send(t, mallory, bob, "another alice"))
	got := bob.Peers()
	if len(got) != 2 || got[0].Address != alice.addr || got[1].Address != carol.addr {
		t.Fatalf("Peers: %+v", got)
	}
	a, cl := got[0], got[1]
	if !a.Identity.Equal(alice.Identity()) || a.Pending || a.Unconfirmed != 1 || a.Sessions != 1 || a.LastActive.IsZero() {
		t.Fatalf("alice: %+v", a)
	}
	if !cl.Identity.Equal(carol.Identity()) || !cl.Pending || cl.Unconfirmed != 0 || cl.Sessions != 1 {
		t.Fatalf("carol: %+v", cl)
	}
}

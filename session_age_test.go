package sealpost_test

import (
	"bytes"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// TestSessionMaxAge: a session that has received nothing for longer than
// WithSessionMaxAge refuses Send with ErrNoSession; receiving resets the
// age, and a session started from a fresh bundle works (TESTING.md item 28).
func TestSessionMaxAge(t *testing.T) {
	c := newClock()
	const maxAge = time.Hour
	alice := newParty(t, "alice", c, sealpost.WithSessionMaxAge(maxAge))
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))

	// Exactly the maximum age is still allowed; receiving resets it.
	c.advance(maxAge)
	receive(t, bob, send(t, alice, bob, "at the limit"))
	c.advance(maxAge / 2)
	receive(t, alice, send(t, bob, alice, "keep-alive"))
	c.advance(maxAge)
	receive(t, bob, send(t, alice, bob, "an hour after the keep-alive"))

	c.advance(maxAge + time.Second)
	before := alice.store.Snapshot()
	if _, err := alice.Send(ctx, bob.addr, []byte("too old")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send on an old session: %v, want ErrNoSession", err)
	}
	if !maps.EqualFunc(before, alice.store.Snapshot(), bytes.Equal) {
		t.Fatal("a refused Send changed the store")
	}
	// Reopening does not revive it.
	alice = dmReopen(t, alice, c, sealpost.WithSessionMaxAge(maxAge))
	if _, err := alice.Send(ctx, bob.addr, []byte("too old")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send on an old session after reopening: %v, want ErrNoSession", err)
	}
	connect(t, alice, bob)
	in := receive(t, bob, send(t, alice, bob, "fresh session"))
	if string(in.Body) != "fresh session" {
		t.Fatalf("got %q", in.Body)
	}
	receive(t, alice, send(t, bob, alice, "welcome back"))
	receive(t, bob, send(t, alice, bob, "thanks"))
}

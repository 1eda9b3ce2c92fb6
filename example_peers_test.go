package sealpost_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost"
)

// Peers lists whom the device talks to; a pending peer contacted us and has
// not been answered yet.
func ExampleDevice_Peers() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	if _, err := bob.Receive(ctx, mustSend(alice.Send(ctx, bob.Address(), []byte("hi"))).Envelope); err != nil {
		panic(err)
	}
	for _, p := range bob.Peers() {
		fmt.Println(p.Address, "pending:", p.Pending, "sessions:", p.Sessions)
	}
	// Output: alice.1 pending: true sessions: 1
}

// On every start but the first, open with WithExisting: an empty store
// (a wrong path, a wiped directory) then fails instead of silently making
// a new identity that every peer would see as a reinstall.
func ExampleWithExisting() {
	ctx := context.Background()
	store := sealpost.NewMemoryStore()
	addr := sealpost.Address{User: "alice", Device: 1}
	if _, err := sealpost.Open(ctx, store, addr, sealpost.WithExisting()); errors.Is(err, sealpost.ErrNotFound) {
		fmt.Println("no device yet")
	}
	d, err := sealpost.Open(ctx, store, addr) // first run: create it
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", d.Created())
	d, err = sealpost.Open(ctx, store, addr, sealpost.WithExisting())
	if err != nil {
		panic(err)
	}
	fmt.Println("created:", d.Created())
	// Output:
	// no device yet
	// created: true
	// created: false
}

package sealpost_test

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost"
)

// post stands for the app's HTTP POST of an envelope to the relay; it
// reports whether the relay accepted it.
func post(out *sealpost.Outgoing) bool { return len(out.Envelope) > 0 }

// Every envelope Send (or Flush) returns stays in the device's outbox until
// the app reports the relay accepted it. An app that crashed before posting
// finds the envelope again with Unsent when it restarts.
func ExampleDevice_Sent() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	out := mustSend(alice.Send(ctx, bob.Address(), []byte("hello")))
	if post(out) {
		if err := alice.Sent(ctx, out); err != nil {
			panic(err) // the store failed: call Sent again later
		}
	}
	unsent, err := alice.Unsent(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("left in the outbox:", len(unsent))
	// Output: left in the outbox: 0
}

// After a restart, the app posts what the outbox still holds (posting an
// envelope twice is harmless: the receiver drops the copy) and reports it.
func ExampleDevice_Unsent() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	mustSend(alice.Send(ctx, bob.Address(), []byte("sent just before a crash")))

	// ... the app restarts and opens the device again ...
	unsent, err := alice.Unsent(ctx)
	if err != nil {
		panic(err)
	}
	for _, out := range unsent {
		if post(out) {
			if err := alice.Sent(ctx, out); err != nil {
				panic(err)
			}
		}
	}
	in, err := bob.Receive(ctx, unsent[0].Envelope)
	if err != nil {
		panic(err)
	}
	fmt.Printf("reposted %d; bob got %q\n", len(unsent), in.Body)
	// Output: reposted 1; bob got "sent just before a crash"
}

// KEMProgress shows the post-quantum ratchet at work: each lane mixes a
// fresh ML-KEM secret about every 75 messages each way.
func ExampleDevice_KEMProgress() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	for range 200 {
		if _, err := bob.Receive(ctx, mustSend(alice.Send(ctx, bob.Address(), []byte("ping"))).Envelope); err != nil {
			panic(err)
		}
		if _, err := alice.Receive(ctx, mustSend(bob.Send(ctx, alice.Address(), []byte("pong"))).Envelope); err != nil {
			panic(err)
		}
	}
	p, err := alice.KEMProgress(bob.Address())
	if err != nil {
		panic(err)
	}
	fmt.Println("both lanes mixed:", p.Own > 0 && p.Peer > 0)
	// Output: both lanes mixed: true
}

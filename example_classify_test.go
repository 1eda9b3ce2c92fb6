package sealpost_test

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost"
)

// ClassifyReceive tells an app what to do with an envelope Receive
// refused: retry it later, hold it for the user, or take it off the relay.
func ExampleClassifyReceive() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	out := mustSend(alice.Send(ctx, bob.Address(), []byte("hello")))
	in, err := bob.Receive(ctx, out.Envelope)
	if err != nil {
		panic(err)
	}
	if err := bob.Done(ctx, in.ID); err != nil {
		panic(err)
	}
	_, err = bob.Receive(ctx, out.Envelope) // the relay delivers it again
	switch sealpost.ClassifyReceive(err) {
	case sealpost.Retry, sealpost.Hold:
		fmt.Println("keep it")
	case sealpost.Duplicate, sealpost.Unreadable, sealpost.Rejected:
		fmt.Println("take it off the relay:", sealpost.ClassifyReceive(err))
	}
	// Output: take it off the relay: duplicate
}

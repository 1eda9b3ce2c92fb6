package sealpost_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost"
)

// In strict identity mode a peer whose identity key changed (a reinstall, a
// new phone, or someone else claiming the address) is refused until the
// app accepts the new identity with Trust, typically after the users have
// compared the new safety number. Nothing is stored while it is refused,
// so the same envelope is accepted once the identity is trusted.
func ExampleDevice_Trust() {
	ctx := context.Background()
	alice := exampleDevice("alice", sealpost.WithStrictIdentity())
	bob := exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	in, _ := bob.Receive(ctx, mustSend(alice.Send(ctx, bob.Address(), []byte("hi"))).Envelope)
	_ = bob.Done(ctx, in.ID)
	before, _ := alice.SafetyNumber(ctx, bob.Address())

	// Bob reinstalls: same address, new identity, and he writes first.
	bob = exampleDevice("bob")
	_ = bob.StartSession(ctx, alice.Address(), exampleBundle(alice))
	out := mustSend(bob.Send(ctx, alice.Address(), []byte("new phone, same bob")))

	_, err := alice.Receive(ctx, out.Envelope)
	var changed *sealpost.IdentityChangedError
	if !errors.As(err, &changed) {
		panic(err)
	}
	fmt.Println("refused:", errors.Is(err, sealpost.ErrIdentityChanged), "peer:", changed.Peer)
	pinned, _, _ := alice.PeerIdentity(bob.Address())
	fmt.Println("still pinned to the old identity:", pinned.Equal(changed.Old))

	// The app shows the change and the users compare safety numbers; once
	// they match, it trusts the new identity and the envelope is accepted.
	if err := alice.Trust(ctx, changed.Peer, changed.New); err != nil {
		panic(err)
	}
	in, err = alice.Receive(ctx, out.Envelope)
	if err != nil {
		panic(err)
	}
	after, _ := alice.SafetyNumber(ctx, bob.Address())
	fmt.Printf("after Trust: %q, new safety number: %v\n", in.Body, after != before)
	// Output:
	// refused: true peer: bob.1
	// still pinned to the old identity: true
	// after Trust: "new phone, same bob", new safety number: true
}

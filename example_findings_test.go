package sealpost_test

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// The transcript tells an app what the relay did. Here the relay holds back
// Alice's second message: Bob sees a gap at once, and Alice, from Bob's
// reply, sees which of her messages has not arrived (a drop, with its id).
// When the message turns up late, both findings close; a finding that stays
// open is a message the relay lost or withholds.
func ExampleDevice_Findings() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	deliver := func(to *sealpost.Device, out *sealpost.Outgoing) *sealpost.Incoming {
		in, err := to.Receive(ctx, out.Envelope)
		if err != nil {
			panic(err)
		}
		_ = to.Done(ctx, in.ID)
		return in
	}
	show := func(who string, fs []transcript.Finding) {
		if len(fs) == 0 {
			fmt.Println(who, "open findings: none")
		}
		for _, f := range fs {
			fmt.Println(who, "open finding:", f)
		}
	}

	m1, _ := alice.Send(ctx, bob.Address(), []byte("one"))
	m2, _ := alice.Send(ctx, bob.Address(), []byte("two")) // the relay holds this back
	m3, _ := alice.Send(ctx, bob.Address(), []byte("three"))
	deliver(bob, m1)
	in := deliver(bob, m3)
	fmt.Println("bob, receiving \"three\":", in.Findings[0])
	show("bob", bob.Findings(alice.Address()))

	reply := deliver(alice, mustSend(bob.Send(ctx, alice.Address(), []byte("got one and three"))))
	fmt.Println("alice, from bob's reply:", reply.Findings[0], "is \"two\":", reply.Findings[0].IDs[0] == m2.ID)

	// "two" arrives late: Bob's gap closes, and his next message tells
	// Alice he has everything.
	deliver(bob, m2)
	show("bob", bob.Findings(alice.Address()))
	deliver(alice, mustSend(bob.Send(ctx, alice.Address(), []byte("now got two"))))
	show("alice", alice.Findings(bob.Address()))
	// Output:
	// bob, receiving "three": gap: peer seq 2
	// bob open finding: gap: peer seq 2
	// alice, from bob's reply: drop: our seq 2 is "two": true
	// bob open findings: none
	// alice open findings: none
}

// Dismiss records that the user has seen a finding: Findings stops
// returning it, after a restart too. Here the relay lost a message for
// good; the app shows the gap once and dismisses it.
func ExampleDevice_Dismiss() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	for i, body := range []string{"one", "two", "three"} {
		out := mustSend(alice.Send(ctx, bob.Address(), []byte(body)))
		if i == 1 {
			continue // lost by the relay
		}
		if _, err := bob.Receive(ctx, out.Envelope); err != nil {
			panic(err)
		}
	}
	for _, f := range bob.Findings(alice.Address()) {
		fmt.Println("shown to the user:", f)
		if err := bob.Dismiss(ctx, alice.Address(), f); err != nil {
			panic(err)
		}
	}
	fmt.Println("open findings left:", len(bob.Findings(alice.Address())))
	// Output:
	// shown to the user: gap: peer seq 2
	// open findings left: 0
}

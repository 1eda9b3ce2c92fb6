package sealpost_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// newDevice opens a device on a memory store with a fixed clock and no
// receipt delay, so the examples print the same every time.
func newDevice(user string, now func() time.Time) *sealpost.Device {
	d, err := sealpost.Open(context.Background(), sealpost.NewMemoryStore(),
		sealpost.Address{User: user, Device: 1},
		sealpost.WithClock(now), sealpost.WithReceiptDelay(0, 0))
	if err != nil {
		panic(err)
	}
	return d
}

// bundleOf returns the first blob of the device's bundle, as a relay would
// hand it out, parsed and verified.
func bundleOf(d *sealpost.Device) *keys.Bundle {
	b, err := d.NewBundle(context.Background(), 1)
	if err != nil {
		panic(err)
	}
	blob, _ := b.Split()[0].MarshalBinary()
	parsed, err := keys.ParseBundle(blob, keys.WithClock(fixedClock)) // an app leaves out the clock: time.Now
	if err != nil {
		panic(err)
	}
	return parsed
}

func fixedClock() time.Time { return time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC) }

// Open creates a device on first use and loads it afterwards.
func ExampleOpen() {
	ctx := context.Background()
	store := sealpost.NewMemoryStore()
	self := sealpost.Address{User: "alice", Device: 1}

	d, err := sealpost.Open(ctx, store, self)
	if err != nil {
		panic(err)
	}
	again, err := sealpost.Open(ctx, store, self)
	if err != nil {
		panic(err)
	}
	fmt.Println("same identity after reopening:", d.Identity().Equal(again.Identity()))
	// Output:
	// same identity after reopening: true
}

// A whole exchange: Alice starts a session from Bob's bundle and sends; Bob
// receives, handles the message and replies.
func ExampleDevice_Send() {
	ctx := context.Background()
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	aliceAddr, bobAddr := alice.Address(), bob.Address()

	if err := alice.StartSession(ctx, bobAddr, bundleOf(bob)); err != nil {
		panic(err)
	}
	out, err := alice.Send(ctx, bobAddr, []byte("Hi Bob"))
	if err != nil {
		panic(err)
	}
	// out.Envelope goes to the relay, which routes it to out.Mailbox.
	in, err := bob.Receive(ctx, out.Envelope)
	if err != nil {
		panic(err)
	}
	fmt.Printf("bob got %q from %s\n", in.Body, in.From)
	_ = bob.Done(ctx, in.ID) // after the app has stored the message

	reply, _ := bob.Send(ctx, aliceAddr, []byte("Hi Alice"))
	in, _ = alice.Receive(ctx, reply.Envelope)
	fmt.Printf("alice got %q from %s\n", in.Body, in.From)
	// Output:
	// bob got "Hi Bob" from alice.1
	// alice got "Hi Alice" from bob.1
}

// Receive keeps each result until Done, so a crash between Receive and the
// app saving the message loses nothing: the relay redelivers it.
func ExampleDevice_Receive() {
	ctx := context.Background()
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	_ = alice.StartSession(ctx, bob.Address(), bundleOf(bob))
	out, _ := alice.Send(ctx, bob.Address(), []byte("important"))

	in, _ := bob.Receive(ctx, out.Envelope)
	again, _ := bob.Receive(ctx, out.Envelope) // redelivered before Done
	fmt.Println(string(again.Body), "redelivered:", again.Redelivered)

	_ = bob.Done(ctx, in.ID)
	_, err := bob.Receive(ctx, out.Envelope)
	fmt.Println("after Done, duplicate:", errors.Is(err, sealpost.ErrDuplicate))
	// Output:
	// important redelivered: true
	// after Done, duplicate: true
}

// Delivery receipts are queued on receive and read receipts by Acknowledge;
// Flush releases them once their random delay has passed.
func ExampleDevice_Flush() {
	ctx := context.Background()
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	_ = alice.StartSession(ctx, bob.Address(), bundleOf(bob))
	out, _ := alice.Send(ctx, bob.Address(), []byte("hello"))
	in, _ := bob.Receive(ctx, out.Envelope)
	_ = bob.Done(ctx, in.ID)

	receipts, _ := bob.Flush(ctx) // the delay is zero in this example
	r, _ := alice.Receive(ctx, receipts[0].Envelope)
	fmt.Println(r.Kind, "for my message:", r.Delivered[0] == out.ID)
	// Output:
	// delivered for my message: true
}

// Acknowledge queues a read receipt; it rides along with the next message.
func ExampleDevice_Acknowledge() {
	ctx := context.Background()
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	_ = alice.StartSession(ctx, bob.Address(), bundleOf(bob))
	out, _ := alice.Send(ctx, bob.Address(), []byte("did you read this?"))
	in, _ := bob.Receive(ctx, out.Envelope)
	_ = bob.Done(ctx, in.ID)

	_ = bob.Acknowledge(ctx, alice.Address(), sealpost.KindRead, in.ID)
	reply, _ := bob.Send(ctx, alice.Address(), []byte("yes"))
	got, _ := alice.Receive(ctx, reply.Envelope)
	fmt.Printf("%q, and read: %v\n", got.Body, len(got.Read) == 1 && got.Read[0] == out.ID)
	// Output:
	// "yes", and read: true
}

// Both sides compute the same safety number to compare out of band.
func ExampleDevice_SafetyNumber() {
	ctx := context.Background()
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	_ = alice.StartSession(ctx, bob.Address(), bundleOf(bob))
	out, _ := alice.Send(ctx, bob.Address(), []byte("hi"))
	_, _ = bob.Receive(ctx, out.Envelope)

	a, _ := alice.SafetyNumber(bob.Address())
	b, _ := bob.SafetyNumber(alice.Address())
	fmt.Println("same on both sides:", a == b, "digits:", len(a)-11)
	// Output:
	// same on both sides: true digits: 60
}

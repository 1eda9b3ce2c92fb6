package sealpost_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// newDeviceAt opens a device for addr, like newDevice.
func newDeviceAt(addr sealpost.Address, opts ...sealpost.Option) *sealpost.Device {
	opts = append([]sealpost.Option{sealpost.WithClock(fixedClock), sealpost.WithReceiptDelay(0, 0)}, opts...)
	d, err := sealpost.Open(context.Background(), sealpost.NewMemoryStore(), addr, opts...)
	if err != nil {
		panic(err)
	}
	return d
}

// hello has from start a session with to and send it one message, which to
// receives and handles.
func hello(from, to *sealpost.Device, body string) *sealpost.Incoming {
	ctx := context.Background()
	if err := from.StartSession(ctx, to.Address(), bundleOf(to)); err != nil {
		panic(err)
	}
	out, err := from.Send(ctx, to.Address(), []byte(body))
	if err != nil {
		panic(err)
	}
	in, err := to.Receive(ctx, out.Envelope)
	if err != nil {
		panic(err)
	}
	_ = to.Done(ctx, in.ID)
	return in
}

// A second identity claiming a known address (a reinstall, a new phone, or
// an impostor) is delivered marked Unconfirmed; replies keep going to the
// pinned identity until the app accepts the new one with Trust.
func ExampleDevice_Trust() {
	ctx := context.Background()
	alice := newDevice("alice", fixedClock)
	bob := newDevice("bob", fixedClock)
	hello(bob, alice, "hi alice")

	newPhone := newDevice("bob", fixedClock) // Bob reinstalled: a new identity at bob.1
	in := hello(newPhone, alice, "new phone, same bob")
	fmt.Printf("%q unconfirmed: %v\n", in.Body, in.Unconfirmed)
	out, _ := alice.Send(ctx, bob.Address(), []byte("is that you?"))
	fmt.Println("reply goes to the old phone:", string(out.Mailbox) == string(bob.Mailbox()))

	// The user compared the new safety number with Bob and accepts it.
	number := keys.SafetyNumber(alice.Identity(), "alice", in.Identity, "bob")
	fmt.Println(len(number)-11, "digits to compare")
	_ = alice.Trust(ctx, bob.Address(), in.Identity)
	out, _ = alice.Send(ctx, bob.Address(), []byte("welcome back"))
	fmt.Println("reply goes to the new phone:", string(out.Mailbox) == string(newPhone.Mailbox()))
	// Output:
	// "new phone, same bob" unconfirmed: true
	// reply goes to the old phone: true
	// 60 digits to compare
	// reply goes to the new phone: true
}

// UnconfirmedIdentities lists the identities waiting for Trust.
func ExampleDevice_UnconfirmedIdentities() {
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	hello(bob, alice, "hi")
	other := newDevice("bob", fixedClock)
	hello(other, alice, "it's bob, honest")
	ids := alice.UnconfirmedIdentities(bob.Address())
	fmt.Println(len(ids), "waiting:", ids[0].Equal(other.Identity()))
	// Output:
	// 1 waiting: true
}

// Block refuses a sender's envelopes before decrypting them.
func ExampleDevice_Block() {
	ctx := context.Background()
	alice, spammer := newDevice("alice", fixedClock), newDevice("spammer", fixedClock)
	hello(spammer, alice, "buy now")

	_ = alice.Block(ctx, sealpost.Sender{Address: spammer.Address()})
	out, _ := spammer.Send(ctx, alice.Address(), []byte("buy now!!"))
	_, err := alice.Receive(ctx, out.Envelope)
	fmt.Println("blocked:", errors.Is(err, sealpost.ErrBlocked))
	// Output:
	// blocked: true
}

// Unblock lets a sender's envelopes through again.
func ExampleDevice_Unblock() {
	ctx := context.Background()
	alice, bob := newDevice("alice", fixedClock), newDevice("bob", fixedClock)
	hello(bob, alice, "hi")
	_ = alice.Block(ctx, sealpost.Sender{Identity: bob.Identity()})
	out, _ := bob.Send(ctx, alice.Address(), []byte("sorry"))
	_, err := alice.Receive(ctx, out.Envelope)
	fmt.Println("while blocked:", errors.Is(err, sealpost.ErrBlocked))

	_ = alice.Unblock(ctx, sealpost.Sender{Identity: bob.Identity()})
	in, _ := alice.Receive(ctx, out.Envelope) // the relay delivers it again
	fmt.Printf("after Unblock: %q\n", in.Body)
	// Output:
	// while blocked: true
	// after Unblock: "sorry"
}

// Forget deletes everything about a peer.
func ExampleDevice_Forget() {
	ctx := context.Background()
	alice, stranger := newDevice("alice", fixedClock), newDevice("stranger", fixedClock)
	hello(stranger, alice, "hello?")

	_ = alice.Forget(ctx, stranger.Address())
	_, err := alice.Send(ctx, stranger.Address(), []byte("hi"))
	fmt.Println("no session:", errors.Is(err, sealpost.ErrNoSession))
	// Output:
	// no session: true
}

// WithMaxPendingPeers bounds the strangers a device keeps before it has
// answered them: the oldest unanswered one is evicted.
func ExampleWithMaxPendingPeers() {
	alice := newDeviceAt(sealpost.Address{User: "alice", Device: 1}, sealpost.WithMaxPendingPeers(2))
	var first sealpost.Address
	for i := range 3 {
		s := newDevice(fmt.Sprint("stranger", i), fixedClock)
		if i == 0 {
			first = s.Address()
		}
		hello(s, alice, "hi")
	}
	_, _, err := alice.PeerIdentity(first)
	fmt.Println("the first stranger was evicted:", errors.Is(err, sealpost.ErrNoSession))
	// Output:
	// the first stranger was evicted: true
}

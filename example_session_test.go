package sealpost_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// exampleDevice opens a device for user on a memory store, with a fixed
// clock and no receipt delay so that the examples print the same every run.
func exampleDevice(user string, opts ...sealpost.Option) *sealpost.Device {
	return exampleDeviceIn(sealpost.NewMemoryStore(), user, opts...)
}

// exampleClock is the examples' fixed time, so that their bundles never
// expire whatever the date they run on.
func exampleClock() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }

// exampleDeviceIn opens the device user in store s.
func exampleDeviceIn(s sealpost.Store, user string, opts ...sealpost.Option) *sealpost.Device {
	opts = append([]sealpost.Option{sealpost.WithClock(exampleClock), sealpost.WithReceiptDelay(0, 0)}, opts...)
	d, err := sealpost.Open(context.Background(), s, sealpost.Address{User: user, Device: 1}, opts...)
	if err != nil {
		panic(err)
	}
	return d
}

// exampleBundle returns the device's first bundle blob, as a relay hands it
// out, parsed and verified.
func exampleBundle(d *sealpost.Device) *keys.Bundle {
	b, err := d.NewBundle(context.Background(), 1)
	if err != nil {
		panic(err)
	}
	blob, err := b.Split()[0].MarshalBinary()
	if err != nil {
		panic(err)
	}
	parsed, err := keys.ParseBundle(blob, keys.WithClock(exampleClock))
	if err != nil {
		panic(err)
	}
	return parsed
}

func mustSend(out *sealpost.Outgoing, err error) *sealpost.Outgoing {
	if err != nil {
		panic(err)
	}
	return out
}

// Bob publishes a bundle with two one-time prekeys of each kind, split into
// blobs: one per one-time prekey and a last-resort blob without any. The
// relay stores the blobs as opaque bytes and hands each one-time blob to one
// initiator only; Alice parses the one she gets (which verifies every
// signature in it) and starts a session from it.
func ExampleDevice_StartSession() {
	ctx := context.Background()
	alice, bob := exampleDevice("alice"), exampleDevice("bob")

	// Bob's side: make the bundle and upload its blobs.
	bundle, err := bob.NewBundle(ctx, 2)
	if err != nil {
		panic(err)
	}
	var relay [][]byte
	for _, part := range bundle.Split() {
		blob, err := part.MarshalBinary()
		if err != nil {
			panic(err)
		}
		relay = append(relay, blob)
	}
	fmt.Println("blobs uploaded:", len(relay))

	// Alice's side: fetch one blob, parse and verify it, start, send.
	blob, relay := relay[0], relay[1:]
	parsed, err := keys.ParseBundle(blob, keys.WithClock(exampleClock)) // an app leaves out the clock: time.Now
	if err != nil {
		panic(err) // ErrBadSignature or ErrMalformed: a bad or forged blob
	}
	fmt.Println("blob for:", parsed.Address, "one-time prekeys:", len(parsed.OneTimePrekeys))
	if err := alice.StartSession(ctx, parsed.Address, parsed); err != nil {
		panic(err)
	}
	out, _ := alice.Send(ctx, bob.Address(), []byte("hello from a one-time prekey"))

	in, err := bob.Receive(ctx, out.Envelope)
	if err != nil {
		panic(err)
	}
	fmt.Printf("bob got %q\n", in.Body)

	// A relay that hands the same one-time blob out twice breaks the
	// second session: Bob deleted that prekey when Alice's start arrived.
	carol := exampleDevice("carol")
	_ = carol.StartSession(ctx, parsed.Address, parsed)
	late, _ := carol.Send(ctx, bob.Address(), []byte("hello with a used prekey"))
	_, err = bob.Receive(ctx, late.Envelope)
	fmt.Println("second use of a one-time blob:", errors.Is(err, sealpost.ErrUnknownPrekey))

	// The last blob has no one-time prekeys: the relay hands it to anyone
	// once the others are gone.
	last, _ := keys.ParseBundle(relay[len(relay)-1], keys.WithClock(exampleClock))
	fmt.Println("last-resort blob one-time prekeys:", len(last.OneTimePrekeys))

	// A bundle for another address is refused before any key is used.
	err = alice.StartSession(ctx, sealpost.Address{User: "carol", Device: 1}, last)
	fmt.Println("bundle for the wrong address:", errors.Is(err, sealpost.ErrMalformed))
	// Output:
	// blobs uploaded: 3
	// blob for: bob.1 one-time prekeys: 1
	// bob got "hello from a one-time prekey"
	// second use of a one-time blob: true
	// last-resort blob one-time prekeys: 0
	// bundle for the wrong address: true
}

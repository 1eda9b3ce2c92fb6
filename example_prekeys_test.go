package sealpost_test

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/keys"
)

// prekeyRelay stands in for the relay's bundle store: one-time blobs are
// handed out once each, the last-resort blob to anyone after that.
type prekeyRelay struct {
	oneTime    [][]byte
	lastResort []byte
}

// upload replaces the last-resort blob and adds the one-time blobs of b.
func (r *prekeyRelay) upload(b *keys.Bundle) {
	parts := b.Split()
	for i, p := range parts {
		blob, err := p.MarshalBinary()
		if err != nil {
			panic(err)
		}
		if i == len(parts)-1 {
			r.lastResort = blob
		} else {
			r.oneTime = append(r.oneTime, blob)
		}
	}
}

// fetch hands out the next blob, parsed.
func (r *prekeyRelay) fetch() *keys.Bundle {
	blob := r.lastResort
	if len(r.oneTime) > 0 {
		blob, r.oneTime = r.oneTime[0], r.oneTime[1:]
	}
	b, err := keys.ParseBundle(blob, keys.WithClock(exampleClock))
	if err != nil {
		panic(err)
	}
	return b
}

// A device keeps its relay stocked with one-time prekeys and rotates its
// medium-term keys on a schedule. One-time prekeys give each new session
// its own forward-secret exchange; once they run out, new sessions still
// start from the last-resort keys, so an app tops them up when the relay
// reports that few are left (here: fewer than 2) rather than waiting for
// none. RotatePrekeys (for example weekly) replaces the signed prekey, the
// last-resort PQ prekey and the mailbox key, and keeps the three previous
// ones of each, so that a start made from a blob fetched before the
// rotation still works; after that the app publishes a new bundle.
func ExampleDevice_RotatePrekeys() {
	ctx := context.Background()
	bob := exampleDevice("bob")
	relay := &prekeyRelay{}
	const lowWater, batch = 2, 5

	b, _ := bob.NewBundle(ctx, batch)
	relay.upload(b)
	for _, user := range []string{"carol", "dave", "erin", "frank"} {
		peer := exampleDevice(user)
		_ = peer.StartSession(ctx, bob.Address(), relay.fetch())
		in, err := bob.Receive(ctx, mustSend(peer.Send(ctx, bob.Address(), []byte("hi bob"))).Envelope)
		if err != nil {
			panic(err)
		}
		_ = bob.Done(ctx, in.ID)
	}
	fmt.Println("one-time blobs left:", len(relay.oneTime))
	if len(relay.oneTime) < lowWater {
		b, _ := bob.NewBundle(ctx, batch) // fresh one-time prekeys, saved before it returns
		relay.upload(b)
		fmt.Println("topped up to:", len(relay.oneTime))
	}

	// Alice fetches a blob, then Bob rotates before her first message lands.
	alice := exampleDevice("alice")
	fetched := relay.fetch()
	if err := bob.RotatePrekeys(ctx); err != nil {
		panic(err)
	}
	rotated, _ := bob.NewBundle(ctx, 0)
	relay.upload(rotated) // the new last-resort blob
	fmt.Println("new signed prekey published:", rotated.SignedPrekey.ID != fetched.SignedPrekey.ID)

	_ = alice.StartSession(ctx, bob.Address(), fetched)
	_, err := bob.Receive(ctx, mustSend(alice.Send(ctx, bob.Address(), []byte("sent from an older blob"))).Envelope)
	fmt.Println("start from a blob fetched before the rotation:", err == nil)

	// A blob older than the kept keys is refused: its first contact is
	// sealed to a mailbox key, and names a signed prekey, that Bob no
	// longer holds (rotated-out prekeys are kept until a week past their
	// expiry, at most 8 of each kind). Initiators should fetch a blob just
	// before they start.
	stale := relay.fetch()
	for range 9 {
		_ = bob.RotatePrekeys(ctx)
	}
	grace := exampleDevice("grace")
	_ = grace.StartSession(ctx, bob.Address(), stale)
	_, err = bob.Receive(ctx, mustSend(grace.Send(ctx, bob.Address(), []byte("too late"))).Envelope)
	fmt.Println("start from a blob nine rotations old refused:", err != nil)
	// Output:
	// one-time blobs left: 1
	// topped up to: 6
	// new signed prekey published: true
	// start from a blob fetched before the rotation: true
	// start from a blob nine rotations old refused: true
}

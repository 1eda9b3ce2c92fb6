package sealpost_test

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// After Bob's store is restored from a backup, he calls Restored and starts
// a new session from Alice's current bundle. His first message tells
// Alice's device how far his restored state goes; Alice's app gets a
// PeerRestored finding naming the messages Bob lost and sends them again
// with Resend, under their ids.
func ExampleDevice_Restored() {
	ctx := context.Background()
	bobStore := sealpost.NewMemoryStore()
	alice, bob := exampleDevice("alice"), exampleDeviceIn(bobStore, "bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	exchange := func(from, to *sealpost.Device, body string) *sealpost.Incoming {
		in, err := to.Receive(ctx, mustSend(from.Send(ctx, to.Address(), []byte(body))).Envelope)
		if err != nil {
			panic(err)
		}
		return in
	}
	exchange(alice, bob, "hello")
	exchange(bob, alice, "hi")
	backup := bobStore.Snapshot()
	sentAfter := map[sealpost.MessageID]string{} // Alice's app keeps what it sent
	lost := mustSend(alice.Send(ctx, bob.Address(), []byte("the plan, after the backup")))
	sentAfter[lost.ID] = "the plan, after the backup"
	if _, err := bob.Receive(ctx, lost.Envelope); err != nil {
		panic(err)
	}

	// Bob's phone is restored from the backup.
	bobStore.Restore(backup)
	bob = exampleDeviceIn(bobStore, "bob")
	if err := bob.Restored(ctx); err != nil {
		panic(err)
	}
	_, err := bob.Send(ctx, alice.Address(), []byte("on the old session"))
	fmt.Println("send before a new session:", err != nil)
	if err := bob.StartSession(ctx, alice.Address(), exampleBundle(alice)); err != nil {
		panic(err)
	}
	back := exchange(bob, alice, "I restored my phone")
	for _, f := range back.Findings {
		if f.Kind != transcript.PeerRestored {
			continue
		}
		for _, id := range f.IDs {
			if body, ok := sentAfter[id]; ok {
				in, err := bob.Receive(ctx, mustSend(alice.Resend(ctx, bob.Address(), id, []byte(body))).Envelope)
				if err != nil {
					panic(err)
				}
				fmt.Printf("bob got %q again (repeated: %v)\n", in.Body, in.Repeated)
			}
		}
	}
	// Output:
	// send before a new session: true
	// bob got "the plan, after the backup" again (repeated: false)
}

package sealpost_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// TestCancelledContext: every Device method that takes a context returns
// the context's error at once when it is already cancelled, and changes
// nothing: no Apply, the store byte for byte as it was.
func TestCancelledContext(t *testing.T) {
	c := newClock()
	alice, fs := newFaultyParty(t, "alice", c)
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	in, err := alice.Receive(ctx, send(t, bob, alice, "hi").Envelope)
	if err != nil {
		t.Fatal(err)
	}
	out := send(t, alice, bob, "in the outbox")
	spare := send(t, bob, alice, "not yet received")
	bundle := akBundles(t, bob, 0)[0]
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Send":          func() error { _, err := alice.Send(cancelled, bob.addr, []byte("x")); return err },
		"Resend":        func() error { _, err := alice.Resend(cancelled, bob.addr, out.ID, []byte("x")); return err },
		"Receive":       func() error { _, err := alice.Receive(cancelled, spare.Envelope); return err },
		"Done":          func() error { return alice.Done(cancelled, in.ID) },
		"Acknowledge":   func() error { return alice.Acknowledge(cancelled, bob.addr, sealpost.KindRead, in.ID) },
		"Flush":         func() error { _, err := alice.Flush(cancelled); return err },
		"Sent":          func() error { return alice.Sent(cancelled, out) },
		"Unsent":        func() error { _, err := alice.Unsent(cancelled); return err },
		"StartSession":  func() error { return alice.StartSession(cancelled, bob.addr, bundle) },
		"NewBundle":     func() error { _, err := alice.NewBundle(cancelled, 1); return err },
		"RotatePrekeys": func() error { return alice.RotatePrekeys(cancelled) },
		"Trust":         func() error { return alice.Trust(cancelled, bob.addr, bob.Identity()) },
		"Block":         func() error { return alice.Block(cancelled, sealpost.Sender{Address: bob.addr}) },
		"Unblock":       func() error { return alice.Unblock(cancelled, sealpost.Sender{Address: bob.addr}) },
		"Forget":        func() error { return alice.Forget(cancelled, bob.addr) },
		"Restored":      func() error { return alice.Restored(cancelled) },
		"Dismiss": func() error {
			return alice.Dismiss(cancelled, bob.addr, transcript.Finding{Kind: transcript.IdentityChanged})
		},
		"Open": func() error {
			_, err := sealpost.Open(cancelled, sealpost.NewMemoryStore(), alice.addr)
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			before := dmCapture(alice, fs)
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a cancelled context: %v, want context.Canceled", name, err)
			}
			dmUnchanged(t, alice, fs, before, name)
		})
	}
	// The device still works with a live context.
	receive(t, alice, spare)
}

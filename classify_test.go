package sealpost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/internal/wire"
)

// TestClassifyReceive sorts the errors Receive really returns: each case
// makes its envelope, receives it, and checks the Failure the app is told.
func TestClassifyReceive(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	done := send(t, alice, bob, "received and done")
	receive(t, bob, done)
	receive(t, alice, send(t, bob, alice, "reply")) // confirmed: session envelopes from here
	tampered := send(t, alice, bob, "tampered")
	spam := newParty(t, "spam", c)
	connect(t, spam, bob)
	if err := bob.Block(ctx, sealpost.Sender{Address: spam.addr}); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		recv func() error
		want sealpost.Failure
	}{
		{"a replay after Done", func() error { _, err := bob.Receive(ctx, done.Envelope); return err }, sealpost.Duplicate},
		{"a known tag with a flipped body byte", func() error {
			_, err := bob.Receive(ctx, flipAt(tampered.Envelope, -1))
			return err
		}, sealpost.Rejected},
		{"an unknown tag", func() error {
			_, err := bob.Receive(ctx, wire.AppendEnvelope(nil, bob.Mailbox(), [16]byte{1}, bytes.Repeat([]byte{3}, 400)))
			return err
		}, sealpost.Unreadable},
		{"another mailbox", func() error {
			_, err := bob.Receive(ctx, reroute(t, tampered.Envelope, []byte("elsewhere")))
			return err
		}, sealpost.Rejected},
		{"a blocked sender", func() error { _, err := bob.Receive(ctx, send(t, spam, bob, "buy").Envelope); return err }, sealpost.Rejected},
		{"a cancelled context", func() error { _, err := bob.Receive(cancelled, tampered.Envelope); return err }, sealpost.Retry},
		{"a store failure", func() error { return fmt.Errorf("bolt: %w", errors.New("disk full")) }, sealpost.Retry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.recv()
			if err == nil {
				t.Fatal("received")
			}
			if got := sealpost.ClassifyReceive(err); got != tc.want {
				t.Fatalf("ClassifyReceive(%v) = %v, want %v", err, got, tc.want)
			}
		})
	}
	// The tampered envelope itself is still readable, and a nil error is
	// no failure.
	receive(t, bob, tampered)
	if f := sealpost.ClassifyReceive(nil); f != 0 {
		t.Fatalf("ClassifyReceive(nil) = %v", f)
	}
}

// TestClassifyReceiveSentinels pins the class of every sentinel Receive
// can return, and of an identity change in strict mode.
func TestClassifyReceiveSentinels(t *testing.T) {
	want := map[error]sealpost.Failure{
		sealpost.ErrIdentityChanged:    sealpost.Hold,
		sealpost.ErrDuplicate:          sealpost.Duplicate,
		sealpost.ErrExpiredKey:         sealpost.Unreadable,
		sealpost.ErrTooManySkipped:     sealpost.Unreadable,
		sealpost.ErrUnknownPrekey:      sealpost.Unreadable,
		sealpost.ErrNoSession:          sealpost.Unreadable,
		sealpost.ErrDecrypt:            sealpost.Rejected,
		sealpost.ErrMalformed:          sealpost.Rejected,
		sealpost.ErrUnsupportedVersion: sealpost.Rejected,
		sealpost.ErrTooLarge:           sealpost.Rejected,
		sealpost.ErrBadSignature:       sealpost.Rejected,
		sealpost.ErrLowOrderPoint:      sealpost.Rejected,
		sealpost.ErrBlocked:            sealpost.Rejected,
		sealpost.ErrExpired:            sealpost.Rejected,
		sealpost.ErrNotFound:           sealpost.Retry,
		context.DeadlineExceeded:       sealpost.Retry,
	}
	for err, f := range want {
		if got := sealpost.ClassifyReceive(fmt.Errorf("wrapped: %w", err)); got != f {
			t.Errorf("%v: %v, want %v", err, got, f)
		}
	}
	ic := &sealpost.IdentityChangedError{}
	if got := sealpost.ClassifyReceive(ic); got != sealpost.Hold {
		t.Errorf("IdentityChangedError: %v, want hold", got)
	}
	both := fmt.Errorf("%w: %w", sealpost.ErrDecrypt, sealpost.ErrNoSession)
	if got := sealpost.ClassifyReceive(both); got != sealpost.Unreadable {
		t.Errorf("ErrDecrypt with ErrNoSession: %v, want unreadable", got)
	}
	for f := sealpost.Retry; f <= sealpost.Rejected; f++ {
		if s := f.String(); s == "" || s[0] == 'F' {
			t.Errorf("Failure %d has no name: %q", f, s)
		}
	}
}

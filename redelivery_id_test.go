package sealpost_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestRedeliveryByEnvelopeID pins what a redelivery is (the kept result is
// found by the envelope's routing tag and its last 16 bytes, the seal's
// authenticator): the same envelope, or a copy edited where the seal does
// not cover it with those two parts kept, gets the kept result back and no
// new plaintext; a copy with another authenticator or for another mailbox
// is refused; after Done each is ErrDuplicate or refused.
func TestRedeliveryByEnvelopeID(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "start"))
	receive(t, alice, send(t, bob, alice, "reply"))
	out := send(t, alice, bob, "kept until Done")
	env := out.Envelope
	in, err := bob.Receive(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(i int) []byte {
		e := bytes.Clone(env)
		e[i] ^= 1
		return e
	}
	mailboxAt := 2 // version, mailbox length, then the mailbox
	middle, last := len(env)-100, len(env)-1
	cases := []struct {
		name      string
		env       []byte
		before    error // nil: the kept result, Redelivered
		afterDone error
	}{
		{"same envelope", env, nil, sealpost.ErrDuplicate},
		{"body byte edited", edit(middle), nil, sealpost.ErrDuplicate},
		{"authenticator edited", edit(last), sealpost.ErrDecrypt, sealpost.ErrDecrypt},
		{"other mailbox", edit(mailboxAt), sealpost.ErrMalformed, sealpost.ErrMalformed},
	}
	for _, done := range []bool{false, true} {
		if done {
			if err := bob.Done(ctx, in.ID); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range cases {
			want := tc.before
			if done {
				want = tc.afterDone
			}
			got, err := bob.Receive(ctx, tc.env)
			switch {
			case want != nil && !errors.Is(err, want):
				t.Fatalf("%s (done %v): %v, want %v", tc.name, done, err, want)
			case want == nil && (err != nil || !got.Redelivered || got.ID != in.ID || string(got.Body) != "kept until Done"):
				t.Fatalf("%s (done %v): %v, want the kept result", tc.name, done, err)
			}
		}
	}
	// The conversation goes on.
	receive(t, bob, send(t, alice, bob, "after"))
}

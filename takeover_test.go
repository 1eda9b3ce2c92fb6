package sealpost_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// takeoverFixture is Alice (on a faultyStore) with a session with the real
// Bob both ways, and Mallory: a device at Bob's address with its own
// identity and mailbox, holding only Alice's public last-resort bundle.
type takeoverFixture struct {
	c                *clock
	alice, bob, mal  *party
	fs               *faultyStore
	toMallory, toBob int // envelopes Alice produced for each mailbox
	malloryFirstEnv  []byte
}

func newTakeover(t *testing.T, opts ...sealpost.Option) *takeoverFixture {
	t.Helper()
	fx := &takeoverFixture{c: newClock()}
	fx.alice, fx.fs = akPartyAt(t, sealpost.Address{User: "alice", Device: 1}, fx.c, opts...)
	fx.bob = newParty(t, "bob", fx.c, sealpost.WithReceiptDelay(0, 0))
	connect(t, fx.alice, fx.bob)
	receive(t, fx.bob, send(t, fx.alice, fx.bob, "hello bob"))
	receive(t, fx.alice, send(t, fx.bob, fx.alice, "hello alice"))
	fx.mal = newParty(t, "bob", fx.c, sealpost.WithReceiptDelay(0, 0)) // bob's address, a new identity and mailbox
	if err := fx.mal.StartSession(ctx, fx.alice.addr, akBundles(t, fx.alice, 0)[0]); err != nil {
		t.Fatal(err)
	}
	fx.malloryFirstEnv = send(t, fx.mal, fx.alice, "I am bob now").Envelope
	return fx
}

// out records where an envelope of Alice's goes and returns it.
func (fx *takeoverFixture) out(t *testing.T, o *sealpost.Outgoing) *sealpost.Outgoing {
	t.Helper()
	switch {
	case bytes.Equal(o.Mailbox, fx.mal.Mailbox()):
		fx.toMallory++
	case bytes.Equal(o.Mailbox, fx.bob.Mailbox()):
		fx.toBob++
	default:
		t.Fatalf("Alice sent to an unknown mailbox %x", o.Mailbox)
	}
	return o
}

// exchange runs n round trips between Alice and the real Bob, with Alice's
// receipts flushed, and checks each side sees the other as it should.
func (fx *takeoverFixture) exchange(t *testing.T, n int) {
	t.Helper()
	for range n {
		o := fx.out(t, send(t, fx.alice, fx.bob, "to bob"))
		if in, err := fx.bob.Receive(ctx, o.Envelope); err != nil || string(in.Body) != "to bob" {
			t.Fatalf("the real Bob: %v", err)
		}
		in, err := fx.alice.Receive(ctx, send(t, fx.bob, fx.alice, "to alice").Envelope)
		if err != nil || string(in.Body) != "to alice" {
			t.Fatalf("Alice from the real Bob: %v", err)
		}
		if in.Unconfirmed || !in.Identity.Equal(fx.bob.Identity()) || hasKind(in.Findings, transcript.IdentityChanged) {
			t.Fatalf("the real Bob's message: unconfirmed %t, findings %v", in.Unconfirmed, in.Findings)
		}
		if err := fx.alice.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		outs, err := fx.alice.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			fx.out(t, o)
		}
	}
}

// TestAddressTakeover (TESTING.md item 53, issue 14 defect 4): Mallory claims
// Bob's address with a new identity and sends Alice a first contact from
// her public bundle. Alice and the real Bob go on both ways; Mallory's
// messages arrive marked Unconfirmed with Mallory's identity and an
// identity-changed finding; nothing Alice sends (messages, receipts, a
// session start to a bundle with Mallory's identity) goes to Mallory until
// Alice trusts that identity, which then switches where her messages go
// and archives the real Bob's identity as the unconfirmed one. This
// failed before issue 14: Mallory's start replaced Bob's identity and
// sessions, Alice's replies went to Mallory's mailbox, and the real Bob's
// messages were ErrDecrypt.
func TestAddressTakeover(t *testing.T) {
	fx := newTakeover(t)
	alice, bob, mal := fx.alice, fx.bob, fx.mal
	number, _ := alice.SafetyNumber(bob.addr)

	in, err := alice.Receive(ctx, fx.malloryFirstEnv)
	if err != nil {
		t.Fatalf("Mallory's first contact: %v", err)
	}
	if in.From != bob.addr || !in.Unconfirmed || !in.Identity.Equal(mal.Identity()) || !hasKind(in.Findings, transcript.IdentityChanged) {
		t.Fatalf("Mallory's message: from %s, unconfirmed %t, findings %v", in.From, in.Unconfirmed, in.Findings)
	}
	if err := alice.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	fx.exchange(t, 3)
	// Mallory writes again on its session; still unconfirmed.
	if in := receive(t, alice, send(t, mal, alice, "really")); !in.Unconfirmed || !in.Identity.Equal(mal.Identity()) {
		t.Fatal("Mallory's second message is not marked unconfirmed")
	}
	fx.exchange(t, 2)

	id, _, err := alice.PeerIdentity(bob.addr)
	if err != nil || !id.Equal(bob.Identity()) {
		t.Fatalf("the pinned identity is no longer the real Bob's (%v)", err)
	}
	if n, _ := alice.SafetyNumber(bob.addr); n != number {
		t.Fatal("the safety number changed")
	}
	if ids := alice.UnconfirmedIdentities(bob.addr); len(ids) != 1 || !ids[0].Equal(mal.Identity()) {
		t.Fatalf("UnconfirmedIdentities: %d", len(ids))
	}
	if fs := alice.Findings(bob.addr); !hasKind(fs, transcript.IdentityChanged) {
		t.Fatalf("Findings does not report the other identity: %v", fs)
	}
	// A session start to a bundle carrying Mallory's identity is refused,
	// with nothing written.
	before := dmCapture(alice, fx.fs)
	var ice *sealpost.IdentityChangedError
	if err := alice.StartSession(ctx, bob.addr, akBundles(t, mal, 0)[0]); !errors.As(err, &ice) || !ice.New.Equal(mal.Identity()) {
		t.Fatalf("StartSession to Mallory's bundle: %v, want IdentityChangedError", err)
	}
	dmUnchanged(t, alice, fx.fs, before, "StartSession to Mallory's bundle")
	if fx.toMallory != 0 || fx.toBob == 0 {
		t.Fatalf("before Trust Alice sent %d envelopes to Mallory, %d to Bob", fx.toMallory, fx.toBob)
	}

	// Alice accepts the new identity (a real reinstall looks the same):
	// her messages now go to it, and the old one is archived.
	if err := alice.Trust(ctx, bob.addr, mal.Identity()); err != nil {
		t.Fatal(err)
	}
	if n, _ := alice.SafetyNumber(bob.addr); n == number {
		t.Fatal("the safety number did not change with Trust")
	}
	o := fx.out(t, send(t, alice, bob, "welcome"))
	if fx.toMallory != 1 {
		t.Fatal("after Trust Alice's message did not go to the trusted identity")
	}
	if in := receive(t, mal, o); string(in.Body) != "welcome" {
		t.Fatal("the trusted identity cannot read Alice's message")
	}
	in, err = alice.Receive(ctx, send(t, bob, alice, "it is still me").Envelope)
	if err != nil || !in.Unconfirmed || !in.Identity.Equal(bob.Identity()) {
		t.Fatalf("the archived identity's message after Trust: %v, unconfirmed %t", err, in != nil && in.Unconfirmed)
	}
	if ids := alice.UnconfirmedIdentities(bob.addr); len(ids) != 1 || !ids[0].Equal(bob.Identity()) {
		t.Fatal("the archived identity is not listed as unconfirmed")
	}
}

// TestAddressTakeoverStrict: in strict mode Mallory's first contact is
// ErrIdentityChanged with nothing written, and Alice and the real Bob go
// on (the behaviour strict mode always had).
func TestAddressTakeoverStrict(t *testing.T) {
	fx := newTakeover(t, sealpost.WithStrictIdentity())
	before := dmCapture(fx.alice, fx.fs)
	_, err := fx.alice.Receive(ctx, fx.malloryFirstEnv)
	var ice *sealpost.IdentityChangedError
	if !errors.As(err, &ice) || !errors.Is(err, sealpost.ErrIdentityChanged) || !ice.New.Equal(fx.mal.Identity()) || !ice.Old.Equal(fx.bob.Identity()) {
		t.Fatalf("strict: %v, want IdentityChangedError", err)
	}
	dmUnchanged(t, fx.alice, fx.fs, before, "strict: Mallory's first contact")
	fx.exchange(t, 3)
	if fx.toMallory != 0 || len(fx.alice.UnconfirmedIdentities(fx.bob.addr)) != 0 {
		t.Fatal("strict: Mallory got an envelope or a place")
	}
}

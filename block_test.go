package sealpost_test

import (
	"errors"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// TestBlockedSender (issue 14): once Bob blocks Alice's address, her
// envelopes on their session and her new first contacts are ErrBlocked,
// with the store byte-identical and no Apply, even for a first contact
// naming a one-time prekey (which stays unconsumed); Carol is unaffected.
// The block survives a restart; after Unblock Alice's envelopes, held back
// meanwhile, are received again.
func TestBlockedSender(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	h.device(bob)
	alice, carol := newParty(t, "alice", c), newParty(t, "carol", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hi"))
	receive(t, alice, send(t, bob, alice, "hello"))
	connect(t, carol, bob)

	if err := bob.Block(ctx, sealpost.Sender{Address: alice.addr}); err != nil {
		t.Fatal(err)
	}
	held := send(t, alice, bob, "on the session")
	before := dmCapture(bob, fs)
	_, err := bob.Receive(ctx, held.Envelope)
	h.fails(t, "session envelope from a blocked address", err, sealpost.ErrBlocked)
	dmUnchanged(t, bob, fs, before, "session envelope from a blocked address")

	// A new first contact, here with a one-time prekey: refused once the
	// seal is opened, before the key agreement.
	blob := akBundles(t, bob, 1)[0]
	alice2 := akNewPeer("alice")
	s := alice2.start(t, blob)
	h.peer(alice2, s)
	first, _ := s.send("a new start")
	before = dmCapture(bob, fs)
	_, err = bob.Receive(ctx, first)
	h.fails(t, "first contact from a blocked address", err, sealpost.ErrBlocked)
	dmUnchanged(t, bob, fs, before, "first contact from a blocked address")

	// Carol is not blocked.
	receive(t, bob, send(t, carol, bob, "from carol"))

	// The block is saved.
	fs = &faultyStore{MemoryStore: bob.store}
	d, err := sealpost.Open(ctx, fs, bob.addr, sealpost.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	bob = &party{Device: d, addr: bob.addr, store: bob.store}
	before = dmCapture(bob, fs)
	_, err = bob.Receive(ctx, held.Envelope)
	h.fails(t, "session envelope after a restart", err, sealpost.ErrBlocked)
	dmUnchanged(t, bob, fs, before, "session envelope from a blocked address after a restart")

	if err := bob.Unblock(ctx, sealpost.Sender{Address: alice.addr}); err != nil {
		t.Fatal(err)
	}
	if in := receive(t, bob, held); string(in.Body) != "on the session" {
		t.Fatal("the held envelope after Unblock")
	}
	if in := receive(t, bob, &sealpost.Outgoing{Envelope: first}); string(in.Body) != "a new start" {
		t.Fatal("the held first contact after Unblock")
	}
}

// TestBlockedIdentity: blocking an identity refuses it at any address it
// claims (its session and a first contact claiming another address), and
// nothing else.
func TestBlockedIdentity(t *testing.T) {
	h := akTrack(t)
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	h.device(bob)
	alice, carol := newParty(t, "alice", c), newParty(t, "carol", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hi"))
	connect(t, carol, bob)
	receive(t, bob, send(t, carol, bob, "hi"))

	if err := bob.Block(ctx, sealpost.Sender{Identity: alice.Identity()}); err != nil {
		t.Fatal(err)
	}
	applies := fs.applies
	if err := bob.Block(ctx, sealpost.Sender{Identity: alice.Identity()}); err != nil || fs.applies != applies {
		t.Fatalf("blocking again: %v, %d Applys", err, fs.applies-applies)
	}
	before := dmCapture(bob, fs)
	_, err := bob.Receive(ctx, send(t, alice, bob, "blocked").Envelope)
	h.fails(t, "blocked identity's session envelope", err, sealpost.ErrBlocked)
	dmUnchanged(t, bob, fs, before, "blocked identity's session envelope")

	// The same identity claiming another address (a device made by hand
	// with Alice's identity key).
	other := &akPeer{id: aliceIdentity(t, alice), addr: sealpost.Address{User: "not-alice", Device: 7}, mailbox: []byte("mbx")}
	s := other.start(t, akBundles(t, bob, 0)[0])
	env, _ := s.send("it's me again")
	before = dmCapture(bob, fs)
	_, err = bob.Receive(ctx, env)
	h.fails(t, "blocked identity at another address", err, sealpost.ErrBlocked)
	dmUnchanged(t, bob, fs, before, "blocked identity at another address")

	receive(t, bob, send(t, carol, bob, "carol goes on"))
	if err := bob.Block(ctx, sealpost.Sender{}); !errors.Is(err, sealpost.ErrMalformed) {
		t.Fatalf("Block with an empty Sender: %v", err)
	}
}

// aliceIdentity returns the identity private key of a Device's party, found
// in its store as the hygiene check finds it.
func aliceIdentity(t *testing.T, p *party) *keys.IdentityPrivateKey {
	t.Helper()
	k, err := keys.NewIdentityFromSeed(akFindSeed(p.store.Snapshot(), p.Identity()))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

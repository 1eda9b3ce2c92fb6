package sealpost_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// TestStartSessionExpiredBundle (issue 14): StartSession checks the
// bundle's expiry with the device's clock (WithClock): a bundle of Bob's
// taken just before it expires starts a session, the same bundle at its
// expiry is ErrExpired with nothing written.
func TestStartSessionExpiredBundle(t *testing.T) {
	c := newClock()
	bob := newParty(t, "bob", c)
	blob := akBundles(t, bob, 0)[0]
	alice, fs := akPartyAt(t, sealpost.Address{User: "alice", Device: 1}, c)
	c.advance(sealpost.PrekeyLifetime)
	before := dmCapture(alice, fs)
	if err := alice.StartSession(ctx, bob.addr, blob); !errors.Is(err, sealpost.ErrExpired) {
		t.Fatalf("StartSession with an expired bundle: %v, want ErrExpired", err)
	}
	dmUnchanged(t, alice, fs, before, "StartSession with an expired bundle")
	c.advance(-time.Second)
	if err := alice.StartSession(ctx, bob.addr, blob); err != nil {
		t.Fatalf("StartSession a second before expiry: %v", err)
	}
	receive(t, bob, send(t, alice, bob, "just in time"))
}

// TestBundleRotatesItself: Bundle hands out the current prekeys for
// PrekeyRotation, then rotates them first, so it never publishes keys
// that expire in less than PrekeyLifetime - PrekeyRotation.
func TestBundleRotatesItself(t *testing.T) {
	c := newClock()
	bob := newParty(t, "bob", c)
	b0 := akBundles(t, bob, 0)[0]
	c.advance(sealpost.PrekeyRotation - time.Second)
	if b := akBundles(t, bob, 0)[0]; b.SignedPrekey.ID != b0.SignedPrekey.ID {
		t.Fatal("Bundle rotated before PrekeyRotation")
	}
	c.advance(time.Second)
	b := akBundles(t, bob, 0)[0]
	if b.SignedPrekey.ID == b0.SignedPrekey.ID || b.MailboxKey.ID == b0.MailboxKey.ID || b.PQPrekey.ID == b0.PQPrekey.ID {
		t.Fatal("Bundle did not rotate after PrekeyRotation")
	}
	if want := c.now().Add(sealpost.PrekeyLifetime).Truncate(time.Second); !b.SignedPrekey.Expires.Equal(want) || !b.MailboxKey.Expires.Equal(want) {
		t.Fatalf("rotated keys expire at %v and %v, want %v", b.SignedPrekey.Expires, b.MailboxKey.Expires, want)
	}
}

// TestPrekeyRetention: with weekly rotation a session start made from a
// bundle fetched just before a rotation is accepted until a week past the
// bundle's expiry, however many rotations came between; after that its
// keys are gone and it is refused with nothing changed.
func TestPrekeyRetention(t *testing.T) {
	for _, late := range []bool{false, true} {
		c := newClock()
		bob, fs := newFaultyParty(t, "bob", c)
		blob := akBundles(t, bob, 0)[0]
		alice := newParty(t, "alice", c)
		if err := alice.StartSession(ctx, bob.addr, blob); err != nil {
			t.Fatal(err)
		}
		first := send(t, alice, bob, "sent before the rotations")
		weeks := 5 // 35 days: past the expiry, within the grace
		if late {
			weeks = 6 // 42 days: past expiry and grace
		}
		for range weeks {
			c.advance(sealpost.PrekeyRotation)
			if err := bob.RotatePrekeys(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if !late {
			receive(t, bob, first)
			continue
		}
		before := dmCapture(bob, fs)
		if _, err := bob.Receive(ctx, first.Envelope); !errors.Is(err, sealpost.ErrDecrypt) && !errors.Is(err, sealpost.ErrUnknownPrekey) {
			t.Fatalf("a start for prekeys dropped a week past expiry: %v", err)
		}
		dmUnchanged(t, bob, fs, before, "a start for dropped prekeys")
	}
}

// TestPendingStartOutlivesItsBundle: a session start rides on every
// message until the peer replies; after a restart the initiator reads its
// saved bundle as of the session's start, so it goes on sending past the
// bundle's expiry instead of failing. The devices' clock is in 2001, so a
// read by the real date would fail too.
func TestPendingStartOutlivesItsBundle(t *testing.T) {
	c := &clock{t: time.Unix(1_000_000_000, 0)}
	bob, alice := newParty(t, "bob", c), newParty(t, "alice", c)
	b, err := bob.NewBundle(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.StartSession(ctx, bob.addr, b); err != nil {
		t.Fatal(err)
	}
	send(t, alice, bob, "lost")
	c.advance(sealpost.PrekeyLifetime + 24*time.Hour)
	alice = dmReopen(t, alice, c)
	out := send(t, alice, bob, "after expiry")
	if in := receive(t, bob, out); string(in.Body) != "after expiry" {
		t.Fatal("wrong body")
	}
	receive(t, alice, send(t, bob, alice, "got it"))
}

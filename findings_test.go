package sealpost_test

import (
	"bytes"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// TestDismissIdentityChanged: an identity claiming the address raises an
// identity-changed finding; Dismiss settles it, after a restart too; a new
// claimant raises it again; Trust of the pinned identity settles it too.
func TestDismissIdentityChanged(t *testing.T) {
	fx := newTakeover(t)
	alice, bob := fx.alice, fx.bob
	receive(t, alice, &sealpost.Outgoing{Envelope: fx.malloryFirstEnv})
	fs := alice.Findings(bob.addr)
	if len(fs) != 1 || fs[0].Kind != transcript.IdentityChanged {
		t.Fatalf("findings %v, want one identity change", fs)
	}
	if err := alice.Dismiss(ctx, bob.addr, fs[0]); err != nil {
		t.Fatal(err)
	}
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("after Dismiss: %v", fs)
	}
	alice = dmReopen(t, alice, fx.c)
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("after Dismiss and a restart: %v", fs)
	}
	if err := alice.Dismiss(ctx, bob.addr, transcript.Finding{Kind: transcript.IdentityChanged}); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("Dismiss of a settled finding: %v, want ErrNotFound", err)
	}
	// The messages of the settled claimant are still marked.
	if in := receive(t, alice, send(t, fx.mal, alice, "still me")); !in.Unconfirmed || !hasKind(in.Findings, transcript.IdentityChanged) {
		t.Fatalf("a settled claimant's message: unconfirmed %v, findings %v", in.Unconfirmed, in.Findings)
	}
	// A second claimant raises it again; keeping the pinned identity with
	// Trust settles it.
	eve := newParty(t, "bob", fx.c)
	if err := eve.StartSession(ctx, alice.addr, akBundles(t, alice, 0)[0]); err != nil {
		t.Fatal(err)
	}
	receive(t, alice, send(t, eve, alice, "I am bob too"))
	if fs := alice.Findings(bob.addr); len(fs) != 1 || fs[0].Kind != transcript.IdentityChanged {
		t.Fatalf("a new claimant: findings %v", fs)
	}
	if err := alice.Trust(ctx, bob.addr, bob.Identity()); err != nil {
		t.Fatal(err)
	}
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("after Trust of the pinned identity: %v", fs)
	}
}

// TestTrustSettlesIdentityChanged: Trust of a new identity settles the
// finding (the replaced identity does not raise it); the next claimant does.
func TestTrustSettlesIdentityChanged(t *testing.T) {
	fx := newTakeover(t)
	alice, bob, mal := fx.alice, fx.bob, fx.mal
	receive(t, alice, &sealpost.Outgoing{Envelope: fx.malloryFirstEnv})
	if err := alice.Trust(ctx, bob.addr, mal.Identity()); err != nil {
		t.Fatal(err)
	}
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("after Trust switched identities: %v", fs)
	}
	if _, changed, err := alice.PeerIdentity(bob.addr); err != nil || changed.IsZero() {
		t.Fatalf("PeerIdentity does not report the switch (%v)", err)
	}
	alice = dmReopen(t, alice, fx.c)
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("after Trust and a restart: %v", fs)
	}
}

// TestDismissTranscriptFinding: a gap is dismissed by its range; when it
// grows it is a new finding; dismissing an unknown finding is ErrNotFound;
// a failing store changes nothing.
func TestDismissTranscriptFinding(t *testing.T) {
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	alice := newParty(t, "alice", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "1"))
	send(t, alice, bob, "2: lost")
	receive(t, bob, send(t, alice, bob, "3"))
	open := bob.Findings(alice.addr)
	if len(open) != 1 || open[0].Kind != transcript.Gap {
		t.Fatalf("findings %v, want one gap", open)
	}
	before := bob.store.Snapshot()
	fs.fail = true
	if err := bob.Dismiss(ctx, alice.addr, open[0]); err == nil {
		t.Fatal("Dismiss with a failing store returned nil")
	}
	fs.fail = false
	if after := bob.store.Snapshot(); !maps.EqualFunc(before, after, bytes.Equal) {
		t.Fatal("a failed Dismiss changed the store")
	}
	if len(bob.Findings(alice.addr)) != 1 {
		t.Fatal("a failed Dismiss dismissed the finding")
	}
	if err := bob.Dismiss(ctx, alice.addr, open[0]); err != nil {
		t.Fatal(err)
	}
	if got := bob.Findings(alice.addr); len(got) != 0 {
		t.Fatalf("after Dismiss: %v", got)
	}
	send(t, alice, bob, "4: lost")
	receive(t, bob, send(t, alice, bob, "5"))
	if got := bob.Findings(alice.addr); len(got) != 1 || got[0].Kind != transcript.Gap {
		t.Fatalf("a second gap: findings %v", got)
	}
	unknown := transcript.Finding{Kind: transcript.Fork, Seq: 9, ToSeq: 10}
	if err := bob.Dismiss(ctx, alice.addr, unknown); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("Dismiss of a finding that is not open: %v, want ErrNotFound", err)
	}
}

// TestDismissKeepsOtherDismissals: dismissing one finding keeps the
// earlier dismissals of every kind that is still open (an unanswered
// session once came back when a gap was dismissed after it).
func TestDismissKeepsOtherDismissals(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	send(t, bob, alice, "lost")
	receive(t, alice, send(t, bob, alice, "after the lost one")) // a gap at Alice
	for range sealpost.DefaultUnansweredCount {
		c.advance(8 * time.Hour)
		send(t, alice, bob, "unread") // never delivered: unanswered
	}
	var gap, unanswered transcript.Finding
	for _, f := range alice.Findings(bob.addr) {
		switch f.Kind {
		case transcript.Gap:
			gap = f
		case transcript.Unanswered:
			unanswered = f
		}
	}
	if gap.Kind == 0 || unanswered.Kind == 0 {
		t.Fatalf("findings %v: want a gap and an unanswered session", alice.Findings(bob.addr))
	}
	if err := alice.Dismiss(ctx, bob.addr, unanswered); err != nil {
		t.Fatal(err)
	}
	if err := alice.Dismiss(ctx, bob.addr, gap); err != nil {
		t.Fatal(err)
	}
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("after dismissing both: %v", fs)
	}
	if err := alice.Dismiss(ctx, bob.addr, gap); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("dismissing a dismissed finding again: %v, want ErrNotFound", err)
	}
}

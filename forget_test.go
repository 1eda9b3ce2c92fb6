package sealpost_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sealpost/sealpost"
)

// peerRecords returns the store keys that name the peer at addr (its
// records and those of its sessions, transcripts, receipt queues and kept
// index) and the directory entries naming it.
func peerRecords(p *party, addr sealpost.Address) []string {
	var out []string
	name := addr.String()
	for k, v := range p.store.Snapshot() {
		if strings.Contains(k, "/"+name+"/") || strings.HasSuffix(k, "/"+name) || strings.Contains(k, "/"+name+"#") ||
			strings.HasPrefix(k, "peers/") && strings.Contains(string(v), name) {
			out = append(out, k)
		}
	}
	return out
}

// TestForget (issue 14): Forget deletes every record of a peer, pinned and
// unconfirmed identities alike, its kept results included, in one Apply;
// the others are untouched, also after a restart (the peer directory moves
// its last entry into the freed slot). Send and PeerIdentity then report
// no session; the forgotten peer's old first contact is still a replay
// (ErrDuplicate, nothing changed), and a new first contact from it is a new
// peer. Forgetting an unknown peer does nothing; a failing Apply changes
// nothing.
func TestForget(t *testing.T) {
	c := newClock()
	bob, fs := newFaultyParty(t, "bob", c)
	alice, carol, dave := newParty(t, "alice", c), newParty(t, "carol", c), newParty(t, "dave", c)
	var aliceFirst *sealpost.Outgoing
	for _, p := range []*party{alice, carol, dave} {
		connect(t, p, bob)
		o := send(t, p, bob, "hi from "+p.addr.User)
		receive(t, bob, o)
		receive(t, p, send(t, bob, p, "hi "+p.addr.User))
		if p == alice {
			aliceFirst = o
		}
	}
	// An unconfirmed identity at Alice's address, and a result of Alice's
	// kept (not Done).
	mallory := newParty(t, "alice", c)
	connect(t, mallory, bob)
	receive(t, bob, send(t, mallory, bob, "me too"))
	if _, err := bob.Receive(ctx, send(t, alice, bob, "not done").Envelope); err != nil {
		t.Fatal(err)
	}
	if len(peerRecords(bob, alice.addr)) == 0 {
		t.Fatal("no records of Alice to forget")
	}

	// A failing Apply changes nothing.
	fs.fail = true
	before := dmCapture(bob, fs)
	if err := bob.Forget(ctx, alice.addr); err == nil {
		t.Fatal("Forget with a failing store succeeded")
	}
	fs.fail = false
	if !equalSnap(before.snap, bob.store.Snapshot()) {
		t.Fatal("a failed Forget changed the store")
	}
	if _, _, err := bob.PeerIdentity(alice.addr); err != nil {
		t.Fatal("a failed Forget dropped Alice")
	}

	kept := func() (n int) {
		for k := range bob.store.Snapshot() {
			if strings.HasPrefix(k, "kept/") {
				n++
			}
		}
		return n
	}
	keptBefore := kept()
	applies := fs.applies
	if err := bob.Forget(ctx, alice.addr); err != nil {
		t.Fatal(err)
	}
	if kept() != keptBefore-1 {
		t.Fatalf("kept results %d before Forget, %d after; want Alice's one gone", keptBefore, kept())
	}
	if fs.applies != applies+1 {
		t.Fatalf("Forget made %d Applys", fs.applies-applies)
	}
	if left := peerRecords(bob, alice.addr); len(left) != 0 {
		t.Fatalf("records left after Forget: %v", left)
	}
	if _, _, err := bob.PeerIdentity(alice.addr); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("PeerIdentity after Forget: %v", err)
	}
	if _, err := bob.Send(ctx, alice.addr, []byte("x")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send after Forget: %v", err)
	}
	if ids := bob.UnconfirmedIdentities(alice.addr); len(ids) != 0 {
		t.Fatal("the unconfirmed identity survived Forget")
	}
	applies = fs.applies
	if err := bob.Forget(ctx, sealpost.Address{User: "nobody", Device: 1}); err != nil || fs.applies != applies {
		t.Fatalf("Forget of an unknown peer: %v, %d Applys", err, fs.applies-applies)
	}

	// The others go on, also after a restart.
	check := func(bob *party) {
		t.Helper()
		for _, p := range []*party{carol, dave} {
			receive(t, bob, send(t, p, bob, "still here"))
			receive(t, p, send(t, bob, p, "good"))
		}
	}
	check(bob)
	d, err := sealpost.Open(ctx, fs, bob.addr, sealpost.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	bob = &party{Device: d, addr: bob.addr, store: bob.store}
	check(bob)

	// Alice's old first contact is still a replay.
	before = dmCapture(bob, fs)
	if _, err := bob.Receive(ctx, aliceFirst.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("Alice's old first contact after Forget: %v, want ErrDuplicate", err)
	}
	dmUnchanged(t, bob, fs, before, "Alice's old first contact after Forget")
	// A new session from Alice makes her a new peer.
	connect(t, alice, bob)
	in := receive(t, bob, send(t, alice, bob, "hello again"))
	if in.Unconfirmed || !in.Identity.Equal(alice.Identity()) {
		t.Fatal("Alice's new first contact after Forget is not pinned afresh")
	}
}

func equalSnap(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || string(v) != string(w) {
			return false
		}
	}
	return true
}

package sealpost_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// TestRestoredRecovers is the restore of issue 15, item 2b: Bob restores
// his store from a backup taken before Alice's messages m1..m3 arrived, so
// he has lost them, although he received and acknowledged them. Bob calls
// Restored; his Send refuses the old session until he starts a new one
// from Alice's current bundle; his first content on it says what the
// restored state holds; Alice reports a PeerRestored finding naming
// m1..m3, resends them under the same ids on the new session, and Bob
// receives each once. Messages in both directions then flow on the new
// session, and the old one never becomes current again.
func TestRestoredRecovers(t *testing.T) {
	c, alice, bob := confirmedPair(t)
	backup := bob.store.Snapshot()

	lost := map[sealpost.MessageID]string{}
	for _, body := range []string{"m1", "m2", "m3"} {
		o := send(t, alice, bob, body)
		lost[o.ID] = body
		receive(t, bob, o)
	}
	receive(t, alice, send(t, bob, alice, "got them")) // acknowledges m1..m3

	bob.store.Restore(backup)
	bob = dmReopen(t, bob, c, sealpost.WithReceiptDelay(0, 0))
	if err := bob.Restored(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, alice.addr, []byte("on the old session")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send after Restored: %v, want ErrNoSession", err)
	}
	// After a reopen the flag holds too.
	bob = dmReopen(t, bob, c, sealpost.WithReceiptDelay(0, 0))
	if _, err := bob.Send(ctx, alice.addr, []byte("on the old session")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send after Restored and a reopen: %v, want ErrNoSession", err)
	}
	connect(t, bob, alice)
	back := receive(t, alice, send(t, bob, alice, "I am back"))
	var restored *transcript.Finding
	for i := range back.Findings {
		if back.Findings[i].Kind == transcript.PeerRestored {
			restored = &back.Findings[i]
		}
	}
	if restored == nil {
		t.Fatalf("Alice's findings %v: no PeerRestored", back.Findings)
	}
	if len(restored.IDs) < len(lost) {
		t.Fatalf("PeerRestored names %d contents, want at least the %d messages lost", len(restored.IDs), len(lost))
	}
	// Alice resends the messages among the ids (the rest are receipts,
	// which the app does not hold).
	var resent []*sealpost.Outgoing
	for _, id := range restored.IDs {
		if body, ok := lost[id]; ok {
			o, err := alice.Resend(ctx, bob.addr, id, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			resent = append(resent, o)
		}
	}
	if len(resent) != len(lost) {
		t.Fatalf("resent %d of the %d lost messages", len(resent), len(lost))
	}
	for _, o := range resent {
		in := receive(t, bob, o)
		if in.ID != o.ID || in.Repeated || lost[in.ID] != string(in.Body) {
			t.Fatalf("Bob got %q (id %v, repeated %v), want %q", in.Body, in.ID, in.Repeated, lost[o.ID])
		}
		delete(lost, in.ID)
	}
	if len(lost) != 0 {
		t.Fatalf("%d messages never reached Bob", len(lost))
	}
	// The new session is current on both sides and carries the
	// conversation; a second resend of the same id is Repeated.
	for i := range 3 {
		receive(t, bob, send(t, alice, bob, "after"))
		in := receive(t, alice, send(t, bob, alice, "after"))
		if i == 2 && hasKind(in.Findings, transcript.PeerRestored) {
			t.Fatalf("Bob still announces his restore after Alice acknowledged it: %v", in.Findings)
		}
	}
	again, err := alice.Resend(ctx, bob.addr, resent[0].ID, []byte("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if in := receive(t, bob, again); !in.Repeated {
		t.Fatal("a message resent twice is not reported Repeated")
	}
	if n := len(alice.Findings(bob.addr)) + len(bob.Findings(alice.addr)); n != 0 {
		t.Logf("open findings after the recovery: Alice %v, Bob %v", alice.Findings(bob.addr), bob.Findings(alice.addr))
	}
}

// TestRestoredStaleNeverCurrent: after Restored, a message that still
// arrives on a stale session is received, and the session stays stale:
// Send keeps refusing until a new session exists, and once one does, a
// late message on the old one does not make it current again.
func TestRestoredStaleNeverCurrent(t *testing.T) {
	c, alice, bob := confirmedPair(t)
	backup := bob.store.Snapshot()
	late1 := send(t, alice, bob, "late 1") // on the session the backup holds
	late2 := send(t, alice, bob, "late 2")

	bob.store.Restore(backup)
	bob = dmReopen(t, bob, c, sealpost.WithReceiptDelay(0, 0))
	if err := bob.Restored(ctx); err != nil {
		t.Fatal(err)
	}
	if in := receive(t, bob, late1); string(in.Body) != "late 1" {
		t.Fatalf("late message on the stale session: %q", in.Body)
	}
	if _, err := bob.Send(ctx, alice.addr, []byte("x")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send after a message on the stale session: %v, want ErrNoSession", err)
	}
	outs, err := bob.Flush(ctx)
	if err != nil || len(outs) != 0 {
		t.Fatalf("Flush sent %d envelopes on stale sessions (%v)", len(outs), err)
	}
	connect(t, bob, alice)
	first := send(t, bob, alice, "new session")
	if in := receive(t, bob, late2); string(in.Body) != "late 2" {
		t.Fatalf("late message on the stale session: %q", in.Body)
	}
	// Bob still sends on the new session: its start rides along until
	// Alice replies, so Alice can read both.
	second := send(t, bob, alice, "still the new session")
	for _, o := range []*sealpost.Outgoing{first, second} {
		receive(t, alice, o)
	}
	receive(t, bob, send(t, alice, bob, "reply on the new session"))
	if info := bob.Peers(); len(info) != 1 || info[0].Sessions != 2 {
		t.Fatalf("Bob's peers %+v, want one peer with two sessions", info)
	}
}

// TestRestoredStoreFailure: a Restored whose Apply fails changes nothing,
// and Send still works on the old sessions.
func TestRestoredStoreFailure(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob, fs := newFaultyParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	before := bob.store.Snapshot()
	fs.fail = true
	if err := bob.Restored(ctx); err == nil {
		t.Fatal("Restored with a failing store returned nil")
	}
	fs.fail = false
	if after := bob.store.Snapshot(); !maps.EqualFunc(before, after, bytes.Equal) {
		t.Fatalf("a failed Restored changed the store (%s)", dmStoreDiff(before, after))
	}
	receive(t, alice, send(t, bob, alice, "still on the old session"))
	if _, err := bob.Resend(ctx, alice.addr, sealpost.MessageID{}, []byte("x")); !errors.Is(err, sealpost.ErrMalformed) {
		t.Fatalf("Resend of the zero id: %v, want ErrMalformed", err)
	}
}

// TestUnreportedRestore: Bob restores a backup and does not call Restored.
// What Alice sends on the old session Bob cannot read, and nothing tells
// Alice, until her Findings report the session unanswered (ten contents
// unacknowledged, nothing received for three days). Her app then starts a
// new session from Bob's current bundle and resends the ids the finding
// names; Bob receives Alice's new start while holding a session she
// confirmed, so he marks it stale, and both go on on the new session with
// no message lost.
func TestUnreportedRestore(t *testing.T) {
	c, alice, bob := confirmedPair(t)
	backup := bob.store.Snapshot()
	for range 3 { // Bob reads these, then loses them with the restore
		receive(t, bob, send(t, alice, bob, "before"))
		receive(t, alice, send(t, bob, alice, "ack"))
	}
	bob.store.Restore(backup)
	bob = dmReopen(t, bob, c, sealpost.WithReceiptDelay(0, 0))

	sent := map[sealpost.MessageID]string{}
	for i := range sealpost.DefaultUnansweredCount {
		c.advance(8 * time.Hour)
		body := fmt.Sprint("unread ", i)
		o := send(t, alice, bob, body)
		sent[o.ID] = body
		if _, err := bob.Receive(ctx, o.Envelope); err == nil {
			t.Fatalf("Bob's restored state read message %d of a session that moved on", i)
		}
		if hasKind(alice.Findings(bob.addr), transcript.Unanswered) && i < sealpost.DefaultUnansweredCount-1 {
			t.Fatalf("unanswered after %d messages", i+1)
		}
	}
	var unanswered *transcript.Finding
	for _, f := range alice.Findings(bob.addr) {
		if f.Kind == transcript.Unanswered {
			unanswered = &f
		}
	}
	if unanswered == nil {
		t.Fatalf("Alice's findings after %d unanswered messages over 80 hours: %v", sealpost.DefaultUnansweredCount, alice.Findings(bob.addr))
	}
	connect(t, alice, bob)
	var got int
	for _, id := range unanswered.IDs {
		body, ok := sent[id]
		if !ok {
			continue
		}
		o, err := alice.Resend(ctx, bob.addr, id, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		in := receive(t, bob, o)
		if in.ID != id || string(in.Body) != body || in.Repeated {
			t.Fatalf("Bob got %q (repeated %v), want %q", in.Body, in.Repeated, body)
		}
		got++
	}
	if got != len(sent) {
		t.Fatalf("resent %d of %d", got, len(sent))
	}
	if hasKind(alice.Findings(bob.addr), transcript.Unanswered) {
		t.Fatal("the new session is reported unanswered")
	}
	for range 3 {
		receive(t, alice, send(t, bob, alice, "on the new session"))
		receive(t, bob, send(t, alice, bob, "on the new session"))
	}
	if fs := alice.Findings(bob.addr); hasKind(fs, transcript.Unanswered) {
		t.Fatalf("Alice's findings at the end: %v", fs)
	}
	// Dismissing the finding of the old session is possible too, but it
	// is gone by itself once the current session answers.
}

// TestNewStartReplacesConfirmedSession: a new start from the pinned
// identity while we hold a session it confirmed marks that session stale
// and names what we sent on it unacknowledged (PeerRestored); a crossing
// start against our unconfirmed session does not.
func TestNewStartReplacesConfirmedSession(t *testing.T) {
	c, alice, bob := confirmedPair(t)
	unacked := send(t, alice, bob, "never acknowledged") // lost
	connect(t, bob, alice)                               // Bob lost his session and starts anew
	in := receive(t, alice, send(t, bob, alice, "new session"))
	var f *transcript.Finding
	for i := range in.Findings {
		if in.Findings[i].Kind == transcript.PeerRestored {
			f = &in.Findings[i]
		}
	}
	if f == nil || len(f.IDs) != 1 || f.IDs[0] != unacked.ID {
		t.Fatalf("findings %v: want PeerRestored naming the unacknowledged message", in.Findings)
	}
	// The new session is current; the old one stale: a late message on
	// it is read but does not move Alice back to it.
	receive(t, bob, unacked)
	receive(t, bob, send(t, alice, bob, "on the new session"))

	// Crossing starts: neither side had replied, nothing is reported.
	carol, dave := newParty(t, "carol", c), newParty(t, "dave", c)
	connect(t, carol, dave)
	connect(t, dave, carol)
	a := send(t, carol, dave, "from carol")
	b := send(t, dave, carol, "from dave")
	if in := receive(t, dave, a); hasKind(in.Findings, transcript.PeerRestored) {
		t.Fatalf("a crossing start reported as a restore: %v", in.Findings)
	}
	if in := receive(t, carol, b); hasKind(in.Findings, transcript.PeerRestored) {
		t.Fatalf("a crossing start reported as a restore: %v", in.Findings)
	}
}

// TestReinstalledPeer: Bob reinstalls (a new store, a new identity at his
// address). Alice's last messages to the old identity never reached the
// new one. Bob's new device contacts her; once Alice's app trusts the new
// identity, Findings names what the old one never acknowledged, and her
// app resends it to the new one under the same ids.
func TestReinstalledPeer(t *testing.T) {
	c, alice, bob := confirmedPair(t)
	lost := map[sealpost.MessageID]string{}
	for _, body := range []string{"sent to the old phone", "and again"} {
		o := send(t, alice, bob, body)
		lost[o.ID] = body
	}
	newBob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0)) // reinstalled
	connect(t, newBob, alice)
	if in := receive(t, alice, send(t, newBob, alice, "new phone, who dis")); !in.Unconfirmed {
		t.Fatal("a new identity at Bob's address is not unconfirmed")
	}
	if hasKind(alice.Findings(bob.addr), transcript.PeerRestored) {
		t.Fatal("PeerRestored before Alice trusted the new identity")
	}
	if err := alice.Trust(ctx, bob.addr, newBob.Identity()); err != nil {
		t.Fatal(err)
	}
	var f *transcript.Finding
	for _, g := range alice.Findings(bob.addr) {
		if g.Kind == transcript.PeerRestored {
			f = &g
		}
	}
	if f == nil || len(f.IDs) != len(lost) {
		t.Fatalf("findings after Trust: %v, want PeerRestored naming the %d lost messages", alice.Findings(bob.addr), len(lost))
	}
	for _, id := range f.IDs {
		o, err := alice.Resend(ctx, bob.addr, id, []byte(lost[id]))
		if err != nil {
			t.Fatal(err)
		}
		if in := receive(t, newBob, o); string(in.Body) != lost[id] || in.ID != id {
			t.Fatalf("the new Bob got %q", in.Body)
		}
	}
	if err := alice.Dismiss(ctx, bob.addr, *f); err != nil {
		t.Fatal(err)
	}
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("findings left: %v", fs)
	}
}

// confirmedPair returns Alice and Bob with a session both have used (so
// envelopes are session envelopes, not first contacts), receipts sent at
// once, on one clock.
func confirmedPair(t *testing.T) (*clock, *party, *party) {
	t.Helper()
	c := newClock()
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	return c, alice, bob
}

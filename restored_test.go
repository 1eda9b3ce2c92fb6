package sealpost_test

import (
	"bytes"
	"errors"
	"maps"
	"testing"

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
	c := newClock()
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
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
	c := newClock()
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
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

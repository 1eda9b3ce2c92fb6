package sealpost_test

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestOutboxAfterRestart (issue 15): every envelope Send and Flush return
// stays in the outbox until Sent, across a restart; Unsent hands back
// exactly the unreported ones, oldest first, with the same bytes, mailbox
// and id; the receiver takes a re-posted envelope as a redelivery; Sent
// twice, or of an envelope from elsewhere, changes nothing.
func TestOutboxAfterRestart(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	first := send(t, alice, bob, "one")
	second := send(t, alice, bob, "two")
	third := send(t, alice, bob, "three")
	if err := alice.Sent(ctx, second); err != nil {
		t.Fatal(err)
	}
	receive(t, bob, first)
	receipts, err := bob.Flush(ctx)
	if err != nil || len(receipts) != 1 {
		t.Fatalf("Flush: %d envelopes, %v", len(receipts), err)
	}

	// The app crashed before posting first and third, and bob's receipt.
	alice = dmReopen(t, alice, c)
	bob = dmReopen(t, bob, c, sealpost.WithReceiptDelay(0, 0))
	got, err := alice.Unsent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("Unsent: %d envelopes, want 2", len(got))
	}
	for i, want := range []*sealpost.Outgoing{first, third} {
		if !bytes.Equal(got[i].Envelope, want.Envelope) || !bytes.Equal(got[i].Mailbox, want.Mailbox) ||
			got[i].ID != want.ID || got[i].To != want.To {
			t.Fatalf("Unsent[%d] is not the envelope Send returned", i)
		}
	}
	bobs, err := bob.Unsent(ctx)
	if err != nil || len(bobs) != 1 || !bytes.Equal(bobs[0].Envelope, receipts[0].Envelope) || bobs[0].ID != (sealpost.MessageID{}) {
		t.Fatalf("bob's Unsent: %d, %v", len(bobs), err)
	}
	// Posted again: first is a redelivery (bob already holds it), third
	// is new.
	if in, err := bob.Receive(ctx, got[0].Envelope); !errors.Is(err, sealpost.ErrDuplicate) && (err != nil || !in.Redelivered) {
		t.Fatalf("re-posted first: %v", err)
	}
	if in := receive(t, bob, got[1]); string(in.Body) != "three" {
		t.Fatalf("third: %q", in.Body)
	}
	if in := receive(t, alice, bobs[0]); in.Kind != sealpost.KindDelivered {
		t.Fatalf("the receipt: kind %v", in.Kind)
	}
	if err := alice.Sent(ctx, got...); err != nil {
		t.Fatal(err)
	}
	before := alice.store.Snapshot()
	if err := alice.Sent(ctx, append(got, second, bobs[0], nil)...); err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(before, alice.store.Snapshot(), bytes.Equal) {
		t.Fatal("Sent of envelopes already reported changed the store")
	}
	alice = dmReopen(t, alice, c)
	if left, err := alice.Unsent(ctx); err != nil || len(left) != 0 {
		t.Fatalf("after Sent and a restart: %d left, %v", len(left), err)
	}
	// Slots are not reused after a restart: a new envelope is new.
	fourth := send(t, alice, bob, "four")
	if left, _ := alice.Unsent(ctx); len(left) != 1 || !bytes.Equal(left[0].Envelope, fourth.Envelope) {
		t.Fatal("the envelope sent after the restart is not the one in the outbox")
	}
}

// TestOutboxSentStoreFailure: a Sent whose Apply fails forgets nothing;
// called again it does.
func TestOutboxSentStoreFailure(t *testing.T) {
	c := newClock()
	alice, fs := newFaultyParty(t, "alice", c)
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	out := send(t, alice, bob, "hi")
	fs.fail = true
	if err := alice.Sent(ctx, out); err == nil {
		t.Fatal("Sent with a failing store succeeded")
	}
	fs.fail = false
	if left, err := alice.Unsent(ctx); err != nil || len(left) != 1 {
		t.Fatalf("after a failed Sent: %d unsent, %v", len(left), err)
	}
	if err := alice.Sent(ctx, out); err != nil {
		t.Fatal(err)
	}
	if left, _ := alice.Unsent(ctx); len(left) != 0 {
		t.Fatal("Sent did not forget the envelope")
	}
}

// TestOutboxFull: with MaxUnsent envelopes not reported sent, Send and
// Flush refuse with ErrOutboxFull and change nothing (no key spent: the
// next envelope after a Sent is the next in its chain); one Sent makes
// room.
func TestOutboxFull(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	var outs []*sealpost.Outgoing
	for len(outs) < sealpost.MaxUnsent-1 {
		outs = append(outs, send(t, alice, bob, "m"))
	}
	before := alice.store.Snapshot()
	if _, err := alice.Send(ctx, bob.addr, []byte("one too many")); !errors.Is(err, sealpost.ErrOutboxFull) {
		t.Fatalf("Send with a full outbox: %v", err)
	}
	if !maps.EqualFunc(before, alice.store.Snapshot(), bytes.Equal) {
		t.Fatal("a refused Send changed the store")
	}
	receive(t, alice, send(t, bob, alice, "queue a receipt"))
	if got, err := alice.Flush(ctx); !errors.Is(err, sealpost.ErrOutboxFull) || len(got) != 0 {
		t.Fatalf("Flush with a full outbox: %d envelopes, %v", len(got), err)
	}
	if err := alice.Sent(ctx, outs[0]); err != nil {
		t.Fatal(err)
	}
	next := send(t, alice, bob, "after Sent")
	for _, o := range outs {
		receive(t, bob, o)
	}
	if in := receive(t, bob, next); string(in.Body) != "after Sent" {
		t.Fatal("the envelope after Sent")
	}
}

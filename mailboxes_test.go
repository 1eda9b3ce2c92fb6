package sealpost_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
)

// TestReplyMailboxes: with reply mailboxes, a conversation of 1,000
// envelopes sends nothing after the first contact to either published
// mailbox; each conversation has mailboxes of its own; a rotation loses
// nothing (envelopes in flight to the replaced mailbox arrive until it
// expires), and after its grace period the old mailbox is refused.
func TestReplyMailboxes(t *testing.T) {
	c := newClock()
	opt := sealpost.WithReplyMailboxes(24 * time.Hour)
	alice, bob := newParty(t, "alice", c, opt), newParty(t, "bob", c, opt)
	carol := newParty(t, "carol", c, opt)
	connect(t, alice, bob)
	connect(t, carol, bob)
	published := map[string]string{string(alice.Mailbox()): "alice", string(bob.Mailbox()): "bob"}
	var outs []*sealpost.Outgoing
	deliver := func(to *party, o *sealpost.Outgoing) {
		t.Helper()
		outs = append(outs, o)
		in, err := to.Receive(ctx, o.Envelope)
		if err != nil {
			t.Fatalf("%s Receive: %v", to.addr, err)
		}
		if err := to.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	flush := func(from, to *party) {
		t.Helper()
		rs, err := from.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range rs {
			deliver(to, o)
		}
	}
	firstContacts := 0
	for len(outs) < 1000 {
		o := send(t, alice, bob, "to bob")
		if bytes.Equal(o.Mailbox, bob.Mailbox()) {
			firstContacts++
		}
		deliver(bob, o)
		deliver(alice, send(t, bob, alice, "to alice"))
		if len(outs)%20 == 0 {
			c.advance(3 * time.Second)
			flush(alice, bob)
			flush(bob, alice)
		}
	}
	for i, o := range outs[firstContacts:] {
		if who, ok := published[string(o.Mailbox)]; ok {
			t.Fatalf("envelope %d after the first contact went to %s's published mailbox", firstContacts+i, who)
		}
	}
	if firstContacts != 1 {
		t.Fatalf("%d envelopes went to bob's published mailbox, want the first contact only", firstContacts)
	}
	// Bob's mailbox for alice is not his mailbox for carol.
	deliver(bob, send(t, carol, bob, "hi"))
	toCarol := send(t, bob, carol, "hi carol")
	toAlice := send(t, bob, alice, "hi alice")
	if bytes.Equal(toCarol.Mailbox, toAlice.Mailbox) {
		t.Fatal("bob gave alice and carol the same mailbox")
	}
	deliver(carol, toCarol)
	deliver(alice, toAlice)
	mailboxes := bob.Mailboxes()
	if len(mailboxes) != 3 || mailboxes[1].Owner == nil || bytes.Equal(mailboxes[1].ID, mailboxes[2].ID) {
		t.Fatalf("bob's mailboxes: %d", len(mailboxes))
	}

	// A day later alice's next content carries her new mailbox. Bob
	// sends twice before he hears of it: both go to the old one, and both
	// arrive, one of them after alice's rotation was received.
	c.advance(25 * time.Hour)
	old := send(t, bob, alice, "in flight 1")
	rotated := send(t, alice, bob, "new mailbox")
	old2 := send(t, bob, alice, "in flight 2")
	deliver(alice, old)
	deliver(bob, rotated)
	next := send(t, bob, alice, "to the new one")
	if bytes.Equal(next.Mailbox, old.Mailbox) || !bytes.Equal(old2.Mailbox, old.Mailbox) {
		t.Fatal("bob did not switch to alice's new mailbox")
	}
	deliver(alice, old2)
	deliver(alice, next)
	var grace bool
	for _, m := range alice.Mailboxes() {
		grace = grace || bytes.Equal(m.ID, old.Mailbox) && !m.Expires.IsZero()
	}
	if !grace {
		t.Fatal("the replaced mailbox is not listed with its expiry")
	}
	// Past the grace period the replaced mailbox is refused.
	late := send(t, bob, alice, "too late")
	lateEnv := bytes.Clone(late.Envelope)
	copy(lateEnv[2:], old.Mailbox) // as if it had gone to the old mailbox
	if h, err := envelope.Parse(lateEnv); err != nil || !bytes.Equal(h.Mailbox, old.Mailbox) {
		t.Fatalf("the readdressed envelope: %v", err)
	}
	c.advance(sealpost.MailboxGrace + time.Hour)
	if _, err := alice.Receive(ctx, lateEnv); !errors.Is(err, sealpost.ErrMalformed) {
		t.Fatalf("an envelope to an expired mailbox: %v", err)
	}
	// Restarted, alice still holds her mailboxes.
	re, err := sealpost.Open(ctx, alice.store, alice.addr, sealpost.WithClock(c.now), opt)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.Mailboxes(); len(got) != len(alice.Mailboxes()) {
		t.Fatalf("after a restart: %d mailboxes, before %d", len(got), len(alice.Mailboxes()))
	}
	if in, err := re.Receive(ctx, late.Envelope); err != nil || string(in.Body) != "too late" {
		t.Fatalf("after a restart: %v", err)
	}
}

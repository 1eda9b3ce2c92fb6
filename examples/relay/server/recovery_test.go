package server_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
	"github.com/sealpost/sealpost/transcript"
)

// peerApp is a device with the app state a recovery needs: its mailbox
// subscription and the history of what it sent and received.
type peerApp struct {
	t    *testing.T
	dev  *sealpost.Device
	mem  *sealpost.MemoryStore
	c    *client.Client
	sub  *client.Subscription
	sent map[sealpost.MessageID]string // what the app sent, for resending
	last sealpost.MessageID            // the id of the last message sent
	got  map[sealpost.MessageID]string // the app's history
}

func newPeerApp(t *testing.T, tr *testRelay, mem *sealpost.MemoryStore, addr sealpost.Address) *peerApp {
	t.Helper()
	dev, err := sealpost.Open(context.Background(), mem, addr, sealpost.WithReceiptDelay(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	p := &peerApp{t: t, dev: dev, mem: mem, c: tr.client(), sent: map[sealpost.MessageID]string{}, got: map[sealpost.MessageID]string{}}
	p.subscribe(tr)
	return p
}

func (p *peerApp) subscribe(tr *testRelay) {
	p.t.Helper()
	sub, err := p.c.Subscribe(context.Background(), p.dev.Mailbox(), tr.own(p.dev.Mailbox()))
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { sub.Close() })
	p.sub = sub
}

// send posts a message through the relay and reports it Sent.
func (p *peerApp) send(to sealpost.Address, body string) {
	p.t.Helper()
	o, err := p.dev.Send(context.Background(), to, []byte(body))
	if err != nil {
		p.t.Fatal(err)
	}
	p.post(o)
	p.sent[o.ID], p.last = body, o.ID
}

func (p *peerApp) post(o *sealpost.Outgoing) {
	p.t.Helper()
	ctx := context.Background()
	if err := postRetry(ctx, p.c, o.Envelope); err != nil {
		p.t.Fatal(err)
	}
	if err := p.dev.Sent(ctx, o); err != nil {
		p.t.Fatal(err)
	}
}

// drain receives what the relay holds for the device until it stays
// quiet, acknowledging each delivery, and returns the findings seen.
func (p *peerApp) drain() []transcript.Finding {
	p.t.Helper()
	ctx := context.Background()
	var findings []transcript.Finding
	for {
		d, ok := next(p.t, p.sub, 500*time.Millisecond)
		if !ok {
			return findings
		}
		in, err := p.dev.Receive(ctx, d.Envelope)
		if err == nil {
			if in.Kind == sealpost.KindMessage && !in.Repeated {
				if _, dup := p.got[in.ID]; dup {
					p.t.Fatalf("message %v shown twice", in.ID)
				}
				p.got[in.ID] = string(in.Body)
			}
			findings = append(findings, in.Findings...)
			if err := p.dev.Done(ctx, in.ID); err != nil {
				p.t.Fatal(err)
			}
		} else if f := sealpost.ClassifyReceive(err); f == sealpost.Retry || f == sealpost.Hold {
			p.t.Fatalf("Receive: %v (%v)", err, f)
		}
		if err := p.sub.Ack(ctx, d.ID); err != nil {
			p.t.Fatal(err)
		}
		// Receipts go back at once (the delay is zero).
		outs, err := p.dev.Flush(ctx)
		if err != nil {
			p.t.Fatal(err)
		}
		for _, o := range outs {
			p.post(o)
		}
	}
}

// resend sends again the messages a PeerRestored finding names.
func (p *peerApp) resend(to sealpost.Address, findings []transcript.Finding) int {
	p.t.Helper()
	n := 0
	for _, f := range findings {
		if f.Kind != transcript.PeerRestored && f.Kind != transcript.Unanswered {
			continue
		}
		for _, id := range f.IDs {
			if body, ok := p.sent[id]; ok {
				o, err := p.dev.Resend(context.Background(), to, id, []byte(body))
				if err != nil {
					p.t.Fatal(err)
				}
				p.post(o)
				n++
			}
		}
	}
	return n
}

// TestRestoreThroughRelay: Bob restores his phone from a backup taken
// before three of Alice's messages arrived (the relay has deleted them:
// he had acknowledged them). He calls Restored and starts a new session
// from Alice's bundle on the relay; Alice's device names the three, her
// app resends them, and Bob's app ends with every message, none twice.
func TestRestoreThroughRelay(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1})
	alice := newPeerApp(t, tr, sealpost.NewMemoryStore(), aliceAddr)
	bobMem := sealpost.NewMemoryStore()
	bob := newPeerApp(t, tr, bobMem, bobAddr)
	publish(t, alice.c, alice.dev, 2)
	publish(t, bob.c, bob.dev, 2)
	startSession(t, alice.c, alice.dev, bobAddr)
	alice.send(bobAddr, "hello")
	bob.drain()
	bob.send(aliceAddr, "hi")
	alice.drain()

	backup, history := bobMem.Snapshot(), maps.Clone(bob.got)
	for _, body := range []string{"the plan", "the time", "the place"} {
		alice.send(bobAddr, body)
	}
	bob.drain()
	alice.drain() // Bob's receipts
	if len(bob.got) != 4 {
		t.Fatalf("Bob got %d messages before the restore", len(bob.got))
	}

	// The restore: Bob's store and app history go back to the backup.
	bobMem.Restore(backup)
	dev, err := sealpost.Open(context.Background(), bobMem, bobAddr, sealpost.WithReceiptDelay(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	bob.dev, bob.got = dev, history
	if err := bob.dev.Restored(context.Background()); err != nil {
		t.Fatal(err)
	}
	startSession(t, bob.c, bob.dev, aliceAddr)
	bob.send(aliceAddr, "I restored my phone")
	findings := alice.drain()
	if n := alice.resend(bobAddr, findings); n != 3 {
		t.Fatalf("Alice resent %d messages (findings %v), want the 3 Bob lost", n, findings)
	}
	bob.drain()
	for id, body := range alice.sent {
		if bob.got[id] != body {
			t.Fatalf("Bob's app lacks %q after the recovery", body)
		}
	}
	// The conversation goes on both ways on the new session.
	alice.send(bobAddr, "welcome back")
	bob.drain()
	bob.send(aliceAddr, "thanks")
	alice.drain()
	if bob.got[alice.last] != "welcome back" {
		t.Fatal("the conversation did not go on")
	}
}

// TestReinstallThroughRelay: Bob's phone is wiped and he reinstalls (a new
// identity and mailbox at his address); two of Alice's messages were still
// in his old mailbox. His new device publishes and contacts Alice; once her
// app trusts the new identity, her device names what the old one never
// acknowledged, and her app resends it to the new one.
func TestReinstallThroughRelay(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1})
	alice := newPeerApp(t, tr, sealpost.NewMemoryStore(), aliceAddr)
	oldBob := newPeerApp(t, tr, sealpost.NewMemoryStore(), bobAddr)
	publish(t, alice.c, alice.dev, 2)
	publish(t, oldBob.c, oldBob.dev, 2)
	startSession(t, alice.c, alice.dev, bobAddr)
	alice.send(bobAddr, "hello")
	oldBob.drain()
	oldBob.send(aliceAddr, "hi")
	alice.drain()
	alice.send(bobAddr, "are you there?") // never read: the phone is wiped
	alice.send(bobAddr, "call me")

	bob := newPeerApp(t, tr, sealpost.NewMemoryStore(), bobAddr) // the reinstall
	publish(t, bob.c, bob.dev, 2)
	startSession(t, bob.c, bob.dev, aliceAddr)
	bob.send(aliceAddr, "new phone, same Bob")
	alice.drain()
	ids := alice.dev.UnconfirmedIdentities(bobAddr)
	if len(ids) != 1 || !ids[0].Equal(bob.dev.Identity()) {
		t.Fatalf("Alice holds %d unconfirmed identities at Bob's address", len(ids))
	}
	// The users compare safety numbers; Alice's app trusts the new one.
	if err := alice.dev.Trust(context.Background(), bobAddr, bob.dev.Identity()); err != nil {
		t.Fatal(err)
	}
	if n := alice.resend(bobAddr, alice.dev.Findings(bobAddr)); n != 2 {
		t.Fatalf("Alice resent %d messages, want the 2 the old phone never read (findings %v)", n, alice.dev.Findings(bobAddr))
	}
	bob.drain()
	for _, body := range []string{"are you there?", "call me"} {
		found := false
		for _, got := range bob.got {
			found = found || got == body
		}
		if !found {
			t.Fatalf("the new phone lacks %q", body)
		}
	}
	alice.send(bobAddr, "got your new number")
	bob.drain()
	if bob.got[alice.last] != "got your new number" {
		t.Fatal("the conversation with the new phone did not go on")
	}
}

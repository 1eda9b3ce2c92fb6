// Command quickstart runs Alice, Bob and a relay in one process through a
// sealpost conversation: a post-quantum session start from a published
// bundle, messages both ways, one delivered out of order, one dropped by the
// relay (which the transcript reports), delivery and read receipts, and
// safety numbers. Beside what each device saw, it prints what the relay
// saw: mailbox, size and tag, never a sender, content or kind.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/keys"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// relay stores bundle blobs and routes envelopes by mailbox, reading
// nothing but the routing header (envelope.Parse).
type relay struct {
	out     io.Writer
	bundles map[string][][]byte
	queues  map[string][][]byte
}

func (r *relay) publish(user string, blobs [][]byte) { r.bundles[user] = blobs }

// fetch hands out each one-time blob once, then the last-resort one.
func (r *relay) fetch(user string) []byte {
	list := r.bundles[user]
	if len(list) > 1 {
		r.bundles[user] = list[1:]
	}
	return list[0]
}

func (r *relay) post(o *sealpost.Outgoing) error {
	h, err := envelope.Parse(o.Envelope)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "      relay: %5d bytes for mailbox %x, tag %x…\n", len(o.Envelope), h.Mailbox[:4], h.Tag[:6])
	r.queues[string(h.Mailbox)] = append(r.queues[string(h.Mailbox)], o.Envelope)
	return nil
}

// take removes and returns the mailbox's queue.
func (r *relay) take(mailbox []byte) [][]byte {
	q := r.queues[string(mailbox)]
	delete(r.queues, string(mailbox))
	return q
}

type user struct {
	name string
	dev  *sealpost.Device
	out  io.Writer
	last *sealpost.Incoming // the last message received
}

// receiveAll takes the user's envelopes from the relay, prints what arrived
// and tells the device each result is handled.
func (u *user) receiveAll(ctx context.Context, r *relay, order ...int) error {
	q := r.take(u.dev.Mailbox())
	if order == nil {
		for i := range q {
			order = append(order, i)
		}
	}
	for _, i := range order {
		in, err := u.dev.Receive(ctx, q[i])
		if err != nil {
			return fmt.Errorf("%s: %w", u.name, err)
		}
		switch in.Kind {
		case sealpost.KindMessage:
			fmt.Fprintf(u.out, "%-5s got %q from %s\n", u.name, in.Body, in.From)
			u.last = in
		default:
			fmt.Fprintf(u.out, "%-5s got a %s receipt for %d message(s)\n", u.name, in.Kind, len(in.Receipts))
		}
		if len(in.Read) > 0 && in.Kind == sealpost.KindMessage {
			fmt.Fprintf(u.out, "%-5s   … with a read receipt for %d message(s) riding along\n", u.name, len(in.Read))
		}
		for _, f := range in.Findings {
			fmt.Fprintf(u.out, "%-5s   transcript finding: %v\n", u.name, f)
		}
		if err := u.dev.Done(ctx, in.ID); err != nil {
			return err
		}
	}
	return nil
}

func (u *user) send(ctx context.Context, r *relay, to sealpost.Address, body string) error {
	fmt.Fprintf(u.out, "%-5s sends %q\n", u.name, body)
	o, err := u.dev.Send(ctx, to, []byte(body))
	if err != nil {
		return err
	}
	return r.post(o)
}

func run(out io.Writer) error {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := &relay{out: out, bundles: map[string][][]byte{}, queues: map[string][][]byte{}}
	aliceAddr, bobAddr := sealpost.Address{User: "alice", Device: 1}, sealpost.Address{User: "bob", Device: 1}
	aliceDev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), aliceAddr, sealpost.WithClock(clock))
	if err != nil {
		return err
	}
	bobDev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), bobAddr, sealpost.WithClock(clock))
	if err != nil {
		return err
	}
	alice, bob := &user{name: "alice", dev: aliceDev, out: out}, &user{name: "bob", dev: bobDev, out: out}

	// Bob publishes a bundle, split into one blob per one-time prekey.
	bundle, err := bob.dev.Bundle(ctx, 2)
	if err != nil {
		return err
	}
	var blobs [][]byte
	for _, b := range bundle.Split() {
		blob, err := b.MarshalBinary()
		if err != nil {
			return err
		}
		blobs = append(blobs, blob)
	}
	r.publish("bob", blobs)
	fmt.Fprintf(out, "bob   published %d bundle blobs; the relay stores them unread\n", len(blobs))

	// Alice starts a session (X25519 + ML-KEM-1024) and writes.
	parsed, err := keys.ParseBundle(r.fetch("bob"), keys.WithClock(clock)) // the example's fixed clock; an app uses time.Now
	if err != nil {
		return err
	}
	if err := alice.dev.StartSession(ctx, bobAddr, parsed); err != nil {
		return err
	}
	fmt.Fprintln(out, "alice started a post-quantum session from one blob")
	for _, s := range []string{"Hi Bob!", "Lunch at noon?"} {
		if err := alice.send(ctx, r, bobAddr, s); err != nil {
			return err
		}
	}
	if err := bob.receiveAll(ctx, r); err != nil {
		return err
	}
	if err := bob.send(ctx, r, aliceAddr, "Yes, see you there."); err != nil {
		return err
	}
	if err := alice.receiveAll(ctx, r); err != nil {
		return err
	}

	// Two messages delivered out of order, then one the relay drops.
	fmt.Fprintln(out, "\n-- the relay delivers the next two in reverse order")
	for _, s := range []string{"first", "second"} {
		if err := alice.send(ctx, r, bobAddr, s); err != nil {
			return err
		}
	}
	if err := bob.receiveAll(ctx, r, 1, 0); err != nil {
		return err
	}
	fmt.Fprintln(out, "\n-- the relay drops the next message")
	if err := alice.send(ctx, r, bobAddr, "this one is dropped"); err != nil {
		return err
	}
	r.take(bob.dev.Mailbox())
	if err := alice.send(ctx, r, bobAddr, "did you get my last one?"); err != nil {
		return err
	}
	if err := bob.receiveAll(ctx, r); err != nil {
		return err
	}

	// Receipts leave after a random delay, batched; a read receipt rides
	// along with Bob's next message.
	fmt.Fprintln(out, "\n-- 30 s later, Bob's queued delivery receipts leave as one envelope")
	now = now.Add(31 * time.Second)
	receipts, err := bob.dev.Flush(ctx)
	if err != nil {
		return err
	}
	for _, o := range receipts {
		if err := r.post(o); err != nil {
			return err
		}
	}
	if err := alice.receiveAll(ctx, r); err != nil {
		return err
	}
	fmt.Fprintln(out, "bob   reads Alice's last message; the read receipt waits for his reply")
	if err := bob.dev.Acknowledge(ctx, aliceAddr, sealpost.KindRead, bob.last.ID); err != nil {
		return err
	}
	if err := bob.send(ctx, r, aliceAddr, "No, something went missing."); err != nil {
		return err
	}
	if err := alice.receiveAll(ctx, r); err != nil {
		return err
	}

	a, err := alice.dev.SafetyNumber(ctx, bobAddr)
	if err != nil {
		return err
	}
	b, err := bob.dev.SafetyNumber(ctx, aliceAddr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsafety number (alice) %s\nsafety number (bob)   %s\n", a, b)
	if a != b {
		return fmt.Errorf("safety numbers differ")
	}
	fmt.Fprintln(out, "\nThe relay saw mailboxes, sizes and tags only: no sender, no content, and")
	fmt.Fprintln(out, "messages and receipts of one size.")
	return nil
}

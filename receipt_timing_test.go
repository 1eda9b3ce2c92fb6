package sealpost_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// Receipt timing (TESTING.md item 40, docs/SPEC.md §14): with the default options a
// receipt leaves only from Flush, after a random delay in
// [DefaultReceiptDelayMin, DefaultReceiptDelayMax] counted from the first
// receipt queued for the peer, and all receipts queued for one peer leave
// together. A seeded simulation of the statistical disclosure attack on
// the relay's log then shows what that delay buys.

// rtParty opens a device with the library's default receipt delay (no
// WithReceiptDelay option) on the test clock.
func rtParty(t testing.TB, user string, c *clock, opts ...sealpost.Option) *party {
	t.Helper()
	s := sealpost.NewMemoryStore()
	addr := sealpost.Address{User: user, Device: 1}
	d, err := sealpost.Open(ctx, s, addr, append([]sealpost.Option{sealpost.WithClock(c.now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &party{Device: d, addr: addr, store: s}
}

// rtStep is how often the tests call Flush, as an app would on a timer.
const rtStep = 250 * time.Millisecond

// rtFlushUntil calls Flush every rtStep until something comes out or limit
// has passed, and returns what came out and when.
func rtFlushUntil(t testing.TB, p *party, c *clock, limit time.Time) ([]*sealpost.Outgoing, time.Time) {
	t.Helper()
	for {
		outs, err := p.Flush(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) > 0 || !c.t.Before(limit) {
			return outs, c.t
		}
		c.advance(rtStep)
	}
}

// TestReceiptDelayDefault: one message at a time; the delivery receipt
// leaves from Flush no earlier than 1 s and no later than 30 s after the
// message arrived, and the delays spread over the range.
func TestReceiptDelayDefault(t *testing.T) {
	trials := 60
	if testing.Short() {
		trials = 20
	}
	c := newClock()
	alice, bob := rtParty(t, "alice", c), rtParty(t, "bob", c)
	connect(t, alice, bob)
	var delays []time.Duration
	for range trials {
		out := send(t, alice, bob, "ping")
		receive(t, bob, out)
		arrived := c.t
		outs, at := rtFlushUntil(t, bob, c, arrived.Add(sealpost.DefaultReceiptDelayMax))
		d := at.Sub(arrived)
		if len(outs) != 1 {
			t.Fatalf("no receipt within %v of the message (%d envelopes)", d, len(outs))
		}
		if d < sealpost.DefaultReceiptDelayMin || d > sealpost.DefaultReceiptDelayMax {
			t.Fatalf("receipt left %v after the message, outside [%v, %v]", d, sealpost.DefaultReceiptDelayMin, sealpost.DefaultReceiptDelayMax)
		}
		r := receive(t, alice, outs[0])
		if r.Kind != sealpost.KindDelivered || !slices.Equal(r.Delivered, []sealpost.MessageID{out.ID}) {
			t.Fatalf("receipt %v %v, want delivered for %v", r.Kind, r.Delivered, out.ID)
		}
		delays = append(delays, d)
		c.advance(time.Second)
	}
	lo, hi := slices.Min(delays), slices.Max(delays)
	var sum time.Duration
	for _, d := range delays {
		sum += d
	}
	mean := sum / time.Duration(len(delays))
	t.Logf("%d receipts: delay min %v, mean %v, max %v", len(delays), lo, mean, hi)
	// Uniform on [1 s, 30 s]: the mean is 15.5 s with a standard error of
	// about 1.1 s (60 trials) or 1.9 s (20); the bounds are over 4 sigma.
	if hi-lo < 10*time.Second || mean < 7*time.Second || mean > 24*time.Second {
		t.Fatalf("receipt delays are not spread over the range: min %v, mean %v, max %v", lo, mean, hi)
	}
}

// TestReceiptBatchPerPeer: messages from two peers arriving over a few
// seconds; the receipts leave per peer, one envelope each, carrying every
// id queued for that peer before it left, within [1 s, 30 s] of the first
// message of the batch. Nothing leaves without Flush.
func TestReceiptBatchPerPeer(t *testing.T) {
	c := newClock()
	bob := rtParty(t, "bob", c)
	alice, carol := rtParty(t, "alice", c), rtParty(t, "carol", c)
	connect(t, alice, bob)
	connect(t, carol, bob)
	start := c.t
	queued := map[sealpost.Address][]sealpost.MessageID{}
	for i := range 6 {
		for _, p := range []*party{alice, carol} {
			if p == carol && i%2 == 1 {
				continue
			}
			out := send(t, p, bob, fmt.Sprint("m", i))
			receive(t, bob, out)
			queued[p.addr] = append(queued[p.addr], out.ID)
		}
		c.advance(100 * time.Millisecond)
	}
	got := map[sealpost.Address][]sealpost.MessageID{}
	deadline := start.Add(sealpost.DefaultReceiptDelayMax)
	for len(got) < 2 {
		outs, at := rtFlushUntil(t, bob, c, deadline)
		if len(outs) == 0 {
			t.Fatalf("by %v after the first message only %d peers got receipts", at.Sub(start), len(got))
		}
		if d := at.Sub(start); d < sealpost.DefaultReceiptDelayMin {
			t.Fatalf("receipts left %v after the first message", d)
		}
		for _, o := range outs {
			if _, dup := got[o.To]; dup {
				t.Fatalf("a second receipt envelope for %s", o.To)
			}
			from := map[sealpost.Address]*party{alice.addr: alice, carol.addr: carol}[o.To]
			r := receive(t, from, o)
			if r.Kind != sealpost.KindDelivered || len(r.Findings) != 0 {
				t.Fatalf("receipt for %s: %v, findings %v", o.To, r.Kind, r.Findings)
			}
			got[o.To] = r.Delivered
		}
		c.advance(rtStep)
	}
	for addr, ids := range queued {
		if !slices.Equal(got[addr], ids) {
			t.Fatalf("receipts for %s: %v, want %v in one batch", addr, got[addr], ids)
		}
	}
	c.advance(time.Minute)
	if outs, err := bob.Flush(ctx); err != nil || len(outs) != 0 {
		t.Fatalf("a later Flush: %d envelopes, %v", len(outs), err)
	}
}

// rtLogEntry is one line of the relay's log: when it saw an envelope and
// the mailbox it was for. The simulation also records, for scoring only,
// whether it carried receipts and from which recipient.
type rtLogEntry struct {
	at      time.Duration
	mailbox string
	receipt bool
	truth   string // for receipts: the mailbox of the recipient that sent it
}

// rtSimulation runs the statistical disclosure attack. pairs senders each
// send to their own recipient, at the times of a Poisson process of the
// given total rate (a message's sender is chosen uniformly), messages in
// all. Each recipient's app calls Flush every rtStep, and each sender
// receives its receipts. The relay logs (time, mailbox) of every envelope
// and nothing else.
//
// The attacker knows which mailboxes belong to the recipients it watches.
// For every envelope into another mailbox X, it guesses that X's
// correspondent is the watched recipient that most recently received an
// envelope: the link a receipt sent right after delivery gives away. It is
// scored on the envelopes that carried receipts. The result is the
// fraction it got right.
func rtSimulation(t *testing.T, seed uint64, pairs, messages int, rate float64, opts ...sealpost.Option) float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 40))
	c := newClock()
	start := c.t
	var senders, recipients []*party
	watched := map[string]bool{}
	for i := range pairs {
		s := rtParty(t, fmt.Sprint("sender", i), c, opts...)
		r := rtParty(t, fmt.Sprint("recipient", i), c, opts...)
		connect(t, s, r)
		senders, recipients = append(senders, s), append(recipients, r)
		watched[string(r.Mailbox())] = true
	}
	byAddr := map[sealpost.Address]*party{}
	for _, s := range senders {
		byAddr[s.addr] = s
	}
	var log []rtLogEntry
	tick := func(at time.Duration) {
		c.t = start.Add(at)
		for _, r := range recipients {
			outs, err := r.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range outs {
				log = append(log, rtLogEntry{at: at, mailbox: string(o.Mailbox), receipt: true, truth: string(r.Mailbox())})
				receive(t, byAddr[o.To], o)
			}
		}
	}
	var now, nextTick time.Duration
	for range messages {
		now += time.Duration(rng.ExpFloat64() / rate * float64(time.Second))
		for ; nextTick <= now; nextTick += rtStep {
			tick(nextTick)
		}
		c.t = start.Add(now)
		i := rng.IntN(pairs)
		out := send(t, senders[i], recipients[i], "hello")
		log = append(log, rtLogEntry{at: now, mailbox: string(out.Mailbox)})
		receive(t, recipients[i], out)
	}
	for end := now + sealpost.DefaultReceiptDelayMax + time.Second; nextTick <= end; nextTick += rtStep {
		tick(nextTick)
	}

	right, total := 0, 0
	for k, e := range log {
		if !e.receipt {
			continue
		}
		guess := ""
		for j := k - 1; j >= 0; j-- {
			if watched[log[j].mailbox] {
				guess = log[j].mailbox
				break
			}
		}
		total++
		if guess == e.truth {
			right++
		}
	}
	if total == 0 {
		t.Fatal("no receipts in the simulation")
	}
	return float64(right) / float64(total)
}

// TestStatisticalDisclosure compares the attacker's accuracy with the
// default receipt delay and with immediate receipts (WithReceiptDelay(0,
// 0)).
//
// Parameters: 8 sender/recipient pairs, 200 messages (100 with -short) at
// a total rate of one every 4 s, Flush every 250 ms. With immediate
// receipts the receipt follows its message within 250 ms, and another
// message lands in between about 3% of the time: the attacker is right
// ~97% of the time. With the default 1-30 s delay about 4 other messages
// land in between on average, so the most recent recipient is the right
// one about 1/8 of the time plus the ~13% of receipts that leave before
// any other message: ~25%. The bounds (immediate > 0.9, jittered < 0.5)
// leave several standard errors (about 0.04 with ~100 receipts) on both
// sides, for every seed.
func TestStatisticalDisclosure(t *testing.T) {
	const pairs, rate = 8, 0.25
	messages, seeds := 200, []uint64{1, 2, 3}
	if testing.Short() {
		messages, seeds = 100, seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			immediate := rtSimulation(t, seed, pairs, messages, rate, sealpost.WithReceiptDelay(0, 0))
			jittered := rtSimulation(t, seed, pairs, messages, rate)
			t.Logf("attacker accuracy: immediate receipts %.2f, default delay %.2f (chance %.2f)", immediate, jittered, 1.0/pairs)
			if immediate <= 0.9 {
				t.Fatalf("with immediate receipts the attacker is right %.2f of the time; the simulation does not model the attack", immediate)
			}
			if jittered >= 0.5 {
				t.Fatalf("with the default receipt delay the attacker is right %.2f of the time, want < 0.5", jittered)
			}
		})
	}
}

// TestReceiptsLookLikeMessages: on the relay's side a delayed receipt is
// an envelope of the same size as a short message, to the same mailbox.
func TestReceiptsLookLikeMessages(t *testing.T) {
	c := newClock()
	alice, bob := rtParty(t, "alice", c), rtParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	msg := send(t, bob, alice, "short")
	receive(t, alice, msg)
	receive(t, bob, send(t, alice, bob, "another"))
	outs, _ := rtFlushUntil(t, bob, c, c.t.Add(sealpost.DefaultReceiptDelayMax))
	if len(outs) != 1 {
		t.Fatalf("%d receipt envelopes", len(outs))
	}
	if len(outs[0].Envelope) != len(msg.Envelope) || !bytes.Equal(outs[0].Mailbox, msg.Mailbox) {
		t.Fatalf("receipt: %d bytes to %x; message: %d bytes to %x", len(outs[0].Envelope), outs[0].Mailbox, len(msg.Envelope), msg.Mailbox)
	}
}

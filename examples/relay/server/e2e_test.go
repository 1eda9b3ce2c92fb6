package server_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/examples/boltstore"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

var e2eMessages = flag.Int("e2e.messages", 2000, "messages each way in TestEndToEnd (300 with -short)")

var (
	aliceAddr = sealpost.Address{User: "alice", Device: 1}
	bobAddr   = sealpost.Address{User: "bob", Device: 1}
)

// publish uploads the device's bundle, split into one blob per one-time
// prekey and the last resort.
func publish(t *testing.T, c *client.Client, d *sealpost.Device, oneTime int) {
	t.Helper()
	ctx := context.Background()
	b, err := d.NewBundle(ctx, oneTime)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for _, part := range b.Split() {
		raw, err := part.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, raw)
	}
	a := d.Address()
	if err := c.PutBundle(ctx, uploadKey, a.User, a.Device, blobs[:len(blobs)-1], blobs[len(blobs)-1]); err != nil {
		t.Fatal(err)
	}
}

// startSession fetches the peer's bundle from the relay and starts a session.
func startSession(t *testing.T, c *client.Client, d *sealpost.Device, peer sealpost.Address) {
	t.Helper()
	ctx := context.Background()
	blob, _, err := c.FetchBundle(ctx, peer.User, peer.Device)
	if err != nil {
		t.Fatal(err)
	}
	b, err := keys.ParseBundle(blob)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.StartSession(ctx, peer, b); err != nil {
		t.Fatal(err)
	}
}

// postRetry posts until the relay has stored the envelope, riding out a
// relay restart. A refusal other than 429/503/507 is returned.
func postRetry(ctx context.Context, c *client.Client, env []byte) error {
	for {
		err := c.Post(ctx, env)
		var se *client.StatusError
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &se) && se.Code != http.StatusTooManyRequests &&
			se.Code != http.StatusServiceUnavailable && se.Code != http.StatusInsufficientStorage:
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRestartKeepsEnvelopes stores envelopes for Bob, has him take some
// and acknowledge fewer, restarts the relay, and checks that everything
// not acknowledged comes back and decrypts, and nothing acknowledged does.
func TestRestartKeepsEnvelopes(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	bobStore, err := boltstore.Open(filepath.Join(t.TempDir(), "bob.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bobStore.Close()
	bob, err := sealpost.Open(ctx, bobStore, bobAddr)
	if err != nil {
		t.Fatal(err)
	}
	alice, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), aliceAddr)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, c, bob, 2)
	startSession(t, c, alice, bobAddr)
	const n = 20
	want := map[sealpost.MessageID]string{}
	for i := range n {
		body := fmt.Sprintf("message %d", i)
		o, err := alice.Send(ctx, bobAddr, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Post(ctx, o.Envelope); err != nil {
			t.Fatal(err)
		}
		want[o.ID] = body
	}

	got := map[sealpost.MessageID]bool{}
	receive := func(d client.Delivery) {
		t.Helper()
		in, err := bob.Receive(ctx, d.Envelope)
		if err != nil {
			t.Fatalf("Receive: %v", err)
		}
		if in.Redelivered || got[in.ID] || want[in.ID] != string(in.Body) {
			t.Fatalf("got %q (id %x, redelivered %v)", in.Body, in.ID, in.Redelivered)
		}
		got[in.ID] = true
		if err := bob.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	owner := tr.own(bob.Mailbox())
	sub, err := c.Subscribe(ctx, bob.Mailbox(), owner)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		d, ok := next(t, sub, 10*time.Second)
		if !ok {
			t.Fatalf("delivery %d missing", i)
		}
		if i < 5 { // the rest are delivered but never handled
			receive(d)
			if err := sub.Ack(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.pending(bob.Mailbox()) != n-5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := tr.pending(bob.Mailbox()); p != n-5 {
		t.Fatalf("pending %d before the restart, want %d", p, n-5)
	}

	tr.restart()
	for range sub.C() { // the rest were delivered too, and are dropped unhandled
	}
	if p := tr.pending(bob.Mailbox()); p != n-5 {
		t.Fatalf("pending %d after the restart, want %d", p, n-5)
	}
	sub, err = c.Subscribe(ctx, bob.Mailbox(), owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for i := 5; i < n; i++ {
		d, ok := next(t, sub, 10*time.Second)
		if !ok {
			t.Fatalf("delivery %d missing after the restart", i)
		}
		receive(d)
		if err := sub.Ack(ctx, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	if d, ok := next(t, sub, 300*time.Millisecond); ok {
		t.Fatalf("an extra delivery of %d bytes", len(d.Envelope))
	}
	if len(got) != n {
		t.Fatalf("received %d of %d", len(got), n)
	}
	deadline = time.Now().Add(5 * time.Second)
	for tr.pending(bob.Mailbox()) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p := tr.pending(bob.Mailbox()); p != 0 {
		t.Fatalf("pending %d after every ack", p)
	}
}

// agent is one device of TestEndToEnd: it sends, receives, acknowledges
// and flushes receipts through the relay.
type agent struct {
	name  string
	dev   *sealpost.Device
	c     *client.Client
	owner *client.Key // of dev.Mailbox()
	peer  sealpost.Address
	rng   *rand.Rand
	fail  func(format string, args ...any)

	mu        sync.Mutex
	sent      map[sealpost.MessageID]bool
	got       map[sealpost.MessageID]bool
	delivered map[sealpost.MessageID]bool
	read      map[sealpost.MessageID]bool
	ready     chan struct{} // closed once it can send (has a session)
	readyOnce sync.Once
	dups      atomic.Int64 // ErrDuplicate: redeliveries the device caught
	reconnect atomic.Int64
}

func newAgent(name string, dev *sealpost.Device, c *client.Client, peer sealpost.Address, seed uint64, fail func(string, ...any)) *agent {
	return &agent{name: name, dev: dev, c: c, peer: peer, rng: rand.New(rand.NewPCG(seed, 1)), fail: fail,
		sent: map[sealpost.MessageID]bool{}, got: map[sealpost.MessageID]bool{},
		delivered: map[sealpost.MessageID]bool{}, read: map[sealpost.MessageID]bool{},
		ready: make(chan struct{})}
}

func (a *agent) markReady() { a.readyOnce.Do(func() { close(a.ready) }) }

// receiveLoop subscribes, handles deliveries and resubscribes when the
// connection ends (a relay restart) or at random (a client reconnect).
func (a *agent) receiveLoop(ctx context.Context, reconnectEvery int) {
	a.mu.Lock()
	rng := rand.New(rand.NewPCG(a.rng.Uint64(), 2))
	a.mu.Unlock()
	for ctx.Err() == nil {
		sub, err := a.c.Subscribe(ctx, a.dev.Mailbox(), a.owner)
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		a.reconnect.Add(1)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case d, ok := <-sub.C():
				if !ok {
					break loop
				}
				if !a.handle(ctx, d.Envelope) {
					break loop
				}
				if rng.IntN(reconnectEvery) == 0 {
					break loop // handled but never acknowledged: it comes back
				}
				if err := sub.Ack(ctx, d.ID); err != nil {
					break loop // the relay redelivers; the device says ErrDuplicate
				}
				if rng.IntN(reconnectEvery) == 0 {
					break loop
				}
			}
		}
		sub.Close()
	}
}

// handle receives one envelope; false means stop (a failure was reported).
func (a *agent) handle(ctx context.Context, env []byte) bool {
	in, err := a.dev.Receive(ctx, env)
	if errors.Is(err, sealpost.ErrDuplicate) {
		a.dups.Add(1)
		return true
	}
	if err != nil {
		a.fail("%s: Receive: %v", a.name, err)
		return false
	}
	a.mu.Lock()
	for _, id := range in.Delivered {
		a.delivered[id] = true
	}
	for _, id := range in.Read {
		a.read[id] = true
	}
	dup := in.Kind == sealpost.KindMessage && a.got[in.ID]
	if in.Kind == sealpost.KindMessage {
		a.got[in.ID] = true
	}
	a.mu.Unlock()
	switch {
	case dup || in.Redelivered:
		a.fail("%s: message %x received twice (redelivered %v)", a.name, in.ID, in.Redelivered)
		return false
	}
	for _, f := range in.Findings {
		// Gaps and drops are open while envelopes are redelivered out of
		// order; anything else means the relay broke the conversation.
		if f.Kind != transcript.Gap && f.Kind != transcript.Drop {
			a.fail("%s: transcript finding %v", a.name, f)
			return false
		}
	}
	if in.Kind == sealpost.KindMessage {
		a.markReady()
		if err := a.dev.Acknowledge(ctx, a.peer, sealpost.KindRead, in.ID); err != nil {
			a.fail("%s: Acknowledge: %v", a.name, err)
			return false
		}
	}
	if err := a.dev.Done(ctx, in.ID); err != nil {
		a.fail("%s: Done: %v", a.name, err)
		return false
	}
	return true
}

func (a *agent) sendLoop(ctx context.Context, n int) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return
	}
	for i := range n {
		o, err := a.dev.Send(ctx, a.peer, fmt.Appendf(nil, "%s %d", a.name, i))
		if err != nil {
			a.fail("%s: Send: %v", a.name, err)
			return
		}
		a.mu.Lock()
		a.sent[o.ID] = true
		a.mu.Unlock()
		if err := postRetry(ctx, a.c, o.Envelope); err != nil {
			if ctx.Err() == nil {
				a.fail("%s: post: %v", a.name, err)
			}
			return
		}
	}
}

func (a *agent) flushLoop(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		outs, err := a.dev.Flush(ctx)
		if err != nil && ctx.Err() == nil {
			a.fail("%s: Flush: %v", a.name, err)
		}
		for _, o := range outs {
			if err := postRetry(ctx, a.c, o.Envelope); err != nil {
				if ctx.Err() == nil {
					a.fail("%s: post receipt: %v", a.name, err)
				}
				return
			}
		}
	}
}

// progress returns the messages received from the peer, and of the
// messages sent, how many have a delivery (or read) and a read receipt.
func (a *agent) progress() (got, sent, delivered, read int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.sent {
		if a.delivered[id] || a.read[id] {
			delivered++
		}
		if a.read[id] {
			read++
		}
	}
	return len(a.got), len(a.sent), delivered, read
}

// TestEndToEnd runs Alice and Bob through the relay on loopback sockets:
// -e2e.messages each way, with delivery and read receipts, random client
// reconnects and one relay restart in the middle. Nothing may be lost,
// nothing duplicated, and every receipt must arrive.
func TestEndToEnd(t *testing.T) {
	n := *e2eMessages
	if testing.Short() {
		n = min(n, 300)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := startRelay(t, server.Config{Rate: -1})
	var failed atomic.Bool
	fail := func(format string, args ...any) {
		if failed.CompareAndSwap(false, true) {
			t.Errorf(format, args...)
		}
		cancel()
	}
	opts := []sealpost.Option{sealpost.WithReceiptDelay(0, 50*time.Millisecond)}
	aliceDev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), aliceAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	bobDev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), bobAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c := tr.client()
	publish(t, c, bobDev, 5)
	startSession(t, c, aliceDev, bobAddr)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	alice := newAgent("alice", aliceDev, tr.client(), bobAddr, seed, fail)
	bob := newAgent("bob", bobDev, tr.client(), aliceAddr, seed+1, fail)
	alice.owner = tr.own(aliceDev.Mailbox())
	bob.owner = tr.own(bobDev.Mailbox())
	alice.markReady() // Bob can send once he has heard from Alice

	start := time.Now()
	var wg sync.WaitGroup
	for _, a := range []*agent{alice, bob} {
		wg.Go(func() { a.receiveLoop(ctx, max(n/5, 10)) })
		wg.Go(func() { a.sendLoop(ctx, n) })
		wg.Go(func() { a.flushLoop(ctx) })
	}
	restarted := false
	deadline := time.Now().Add(90 * time.Second)
	report := func() string {
		var s bytes.Buffer
		for _, a := range []*agent{alice, bob} {
			got, sent, del, read := a.progress()
			fmt.Fprintf(&s, "%s: received %d/%d, sent %d, delivered %d, read %d, duplicates caught %d, connections %d; ",
				a.name, got, n, sent, del, read, a.dups.Load(), a.reconnect.Load())
		}
		return s.String()
	}
	for {
		ag, as, ad, ar := alice.progress()
		bg, bs, bd, br := bob.progress()
		if ag == n && bg == n && as == n && bs == n && ad == n && bd == n && ar == n && br == n {
			break
		}
		if !restarted && ag+bg >= n {
			tr.restart()
			restarted = true
			t.Logf("relay restarted after %v: %s", time.Since(start).Round(time.Millisecond), report())
		}
		if failed.Load() {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("not done in time: %s", report())
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	cancel()
	wg.Wait()
	t.Logf("%d messages each way with receipts in %v (%.0f messages/s): %s", n, took.Round(time.Millisecond),
		float64(2*n)/took.Seconds(), report())
	if failed.Load() {
		return
	}
	if !restarted {
		t.Error("the relay was never restarted")
	}
	// Every gap has closed and the peer's last report names no drop.
	for _, a := range []*agent{alice, bob} {
		if f := a.dev.Findings(a.peer); len(f) > 0 {
			t.Errorf("%s: open findings at the end: %v", a.name, f)
		}
	}
}

package server_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// TestStallRecovered stalls a connection's consumer (the relay drops what
// it yields, as an ordered consumer whose reset never fired delivers
// nothing) while envelopes wait, and checks that the stall check replaces
// the consumer within the stall timeout and a margin: every envelope is
// delivered once, and sealpost_relay_delivery_stalls_total moved. A
// connection that is idle with an envelope in flight is no stall.
func TestStallRecovered(t *testing.T) {
	ctx := context.Background()
	const stall = time.Second
	tr := startRelay(t, server.Config{Rate: -1, StallTimeout: stall})
	c := tr.client()
	mbx := []byte("stalled")
	owner := tr.own(mbx)

	tr.current().StallNextDelivery()
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	start := time.Now()
	var envs [][]byte
	for i := range 3 {
		env := fakeEnvelope(mbx, byte(i), 64)
		envs = append(envs, env)
		if err := c.Post(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	// Detected at most a check interval (stall/2) after the timeout.
	var ids []uint64
	for i := range envs {
		d, ok := next(t, sub, stall+stall/2+2*time.Second-time.Since(start))
		if !ok {
			t.Fatalf("delivery %d did not resume after %v", i, time.Since(start))
		}
		if !bytes.Equal(d.Envelope, envs[i]) {
			t.Fatalf("delivery %d: wrong envelope", i)
		}
		ids = append(ids, d.ID)
	}
	t.Logf("resumed after %v", time.Since(start))
	if n := getMetrics(t, tr).value(t, "sealpost_relay_delivery_stalls_total"); n != 1 {
		t.Fatalf("sealpost_relay_delivery_stalls_total = %v, want 1", n)
	}
	waitConsumers(t, tr.consumers, 1, "the stalled consumer replaced, not added to")

	// Two acknowledged, one left in flight: nothing undelivered, so a
	// quiet connection is not stalled, and nothing comes twice.
	if err := sub.AckSync(ctx, ids[:2]...); err != nil {
		t.Fatal(err)
	}
	if d, ok := next(t, sub, 2*stall+stall/2); ok {
		t.Fatalf("delivered again: %d", d.ID)
	}
	if n := getMetrics(t, tr).value(t, "sealpost_relay_delivery_stalls_total"); n != 1 {
		t.Fatalf("sealpost_relay_delivery_stalls_total = %v after an idle spell, want 1", n)
	}
	// The replacement consumer delivers what is posted later.
	env := fakeEnvelope(mbx, 9, 64)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	if d, ok := next(t, sub, 5*time.Second); !ok || !bytes.Equal(d.Envelope, env) {
		t.Fatal("no delivery after the replacement")
	}
}

// TestAckConfirmed checks the ack confirmations: AckSync returns once the
// relay deleted the envelope, and a confirmed envelope is not delivered
// again, even after the relay restarts. While DeleteMsg fails there is no
// confirmation, the client sends its ack again, and the envelope is
// delivered again on the next connection; once DeleteMsg works again the
// re-sent ack is confirmed.
func TestAckConfirmed(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	c.AckRetry = 300 * time.Millisecond
	mbx := []byte("confirmed")
	owner := tr.own(mbx)
	a, b := fakeEnvelope(mbx, 1, 32), fakeEnvelope(mbx, 2, 32)
	for _, env := range [][]byte{a, b} {
		if err := c.Post(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	da, ok := next(t, sub, 5*time.Second)
	if !ok || !bytes.Equal(da.Envelope, a) {
		t.Fatal("no delivery of a")
	}
	db, ok := next(t, sub, 5*time.Second)
	if !ok || !bytes.Equal(db.Envelope, b) {
		t.Fatal("no delivery of b")
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = sub.AckSync(actx, da.ID)
	cancel()
	if err != nil {
		t.Fatalf("AckSync: %v", err)
	}
	if n := tr.pending(mbx); n != 1 {
		t.Fatalf("pending after a confirmed ack = %d, want 1", n)
	}

	// DeleteMsg fails: no confirmation, however often the client re-sends.
	tr.current().FailDeletes(true)
	actx, cancel = context.WithTimeout(ctx, time.Second) // three re-sends
	err = sub.AckSync(actx, db.ID)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AckSync with DeleteMsg failing = %v, want the deadline", err)
	}
	if n := getMetrics(t, tr).value(t, "sealpost_relay_ack_delete_failures_total"); n < 2 {
		t.Fatalf("sealpost_relay_ack_delete_failures_total = %v, want the ack and a re-send", n)
	}
	// DeleteMsg works again: the client's own re-send (every AckRetry)
	// deletes it, and acknowledging it once more is confirmed at once.
	tr.current().FailDeletes(false)
	for deadline := time.Now().Add(3 * time.Second); tr.pending(mbx) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the unconfirmed ack was not sent again")
		}
	}
	actx, cancel = context.WithTimeout(ctx, 2*time.Second)
	err = sub.AckSync(actx, db.ID, da.ID)
	cancel()
	if err != nil {
		t.Fatalf("AckSync of acks already confirmed: %v", err)
	}
	sub.Close()

	// An unconfirmed ack: delivered again on the next connection.
	cc := tr.client()
	cc.AckRetry = time.Hour // no re-send in this test
	e := fakeEnvelope(mbx, 3, 32)
	if err := c.Post(ctx, e); err != nil {
		t.Fatal(err)
	}
	tr.current().FailDeletes(true)
	sub, err = cc.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	de, ok := next(t, sub, 5*time.Second)
	if !ok || !bytes.Equal(de.Envelope, e) {
		t.Fatal("no delivery of e")
	}
	actx, cancel = context.WithTimeout(ctx, 500*time.Millisecond)
	err = sub.AckSync(actx, de.ID)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AckSync with DeleteMsg failing = %v, want the deadline", err)
	}
	sub.Close()
	tr.current().FailDeletes(false)

	// After a restart: a and b (confirmed) never again, e once more.
	tr.restart()
	sub, err = cc.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, ok := next(t, sub, 5*time.Second)
	if !ok || !bytes.Equal(d.Envelope, e) {
		t.Fatal("the unconfirmed envelope was not delivered again")
	}
	if err := sub.AckSync(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if d, ok := next(t, sub, 500*time.Millisecond); ok {
		t.Fatalf("a confirmed envelope delivered again: %q", d.Envelope)
	}
	if n := tr.pending(mbx); n != 0 {
		t.Fatalf("pending at the end = %d, want 0", n)
	}
}

// TestAckOldClient checks that a client that does not ask for
// confirmations (the protocol before them: no confirm=1) gets none, and
// its acknowledgement still deletes.
func TestAckOldClient(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	mbx := []byte("old-client")
	owner := tr.own(mbx)
	env := fakeEnvelope(mbx, 1, 32)
	if err := tr.client().Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	conn := rawSubscribe(t, tr, mbx, owner)
	defer conn.CloseNow()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	typ, data, err := conn.Read(rctx)
	cancel()
	if err != nil || typ != websocket.MessageBinary || !bytes.Equal(data[server.DeliveryIDSize:], env) {
		t.Fatalf("delivery: %v %v", typ, err)
	}
	if err := conn.Write(ctx, websocket.MessageBinary, data[:server.DeliveryIDSize]); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); tr.pending(mbx) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the acknowledgement did not delete")
		}
	}
	rctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	typ, _, err = conn.Read(rctx)
	cancel()
	if err == nil {
		t.Fatalf("an old client got a %v message after its ack", typ)
	}
}

// TestConsumerDeletedBehindRelay deletes a connection's consumer through
// the NATS API while the WebSocket stays open, then posts: delivery goes
// on within the stall timeout and a margin (nats.go's ordered consumer
// notices the deletion itself, or the stall check replaces it).
func TestConsumerDeletedBehindRelay(t *testing.T) {
	ctx := context.Background()
	const stall = time.Second
	tr := startRelay(t, server.Config{Rate: -1, StallTimeout: stall})
	c := tr.client()
	mbx := []byte("deleted-consumer")
	owner := tr.own(mbx)
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitConsumers(t, tr.consumers, 1, "one connection open")
	if err := tr.current().DeleteMailboxConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env := fakeEnvelope(mbx, 1, 32)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	d, ok := next(t, sub, stall+stall/2+2*time.Second)
	if !ok || !bytes.Equal(d.Envelope, env) {
		t.Fatalf("no delivery %v after the consumer's deletion", time.Since(start))
	}
	t.Logf("delivered after %v, stalls %v", time.Since(start),
		getMetrics(t, tr).value(t, "sealpost_relay_delivery_stalls_total"))
	if err := sub.AckSync(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	waitConsumers(t, tr.consumers, 1, "one consumer for the open connection")
}

// TestConsumerPausedBehindRelay pauses a connection's consumer through the
// NATS API (JetStream then delivers it nothing, and the ordered consumer
// sees no error to reset on) while envelopes are posted: the stall check
// replaces it within the stall timeout and a margin.
func TestConsumerPausedBehindRelay(t *testing.T) {
	ctx := context.Background()
	const stall = time.Second
	tr := startRelay(t, server.Config{Rate: -1, StallTimeout: stall})
	c := tr.client()
	mbx := []byte("paused-consumer")
	owner := tr.own(mbx)
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitConsumers(t, tr.consumers, 1, "one connection open")
	if err := tr.current().PauseMailboxConsumers(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	env := fakeEnvelope(mbx, 1, 32)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	d, ok := next(t, sub, stall+stall/2+2*time.Second)
	if !ok || !bytes.Equal(d.Envelope, env) {
		t.Fatalf("no delivery %v after the consumer's pause", time.Since(start))
	}
	t.Logf("delivered after %v", time.Since(start))
	if n := getMetrics(t, tr).value(t, "sealpost_relay_delivery_stalls_total"); n < 1 {
		t.Fatalf("sealpost_relay_delivery_stalls_total = %v, want at least 1", n)
	}
	if err := sub.AckSync(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	waitConsumers(t, tr.consumers, 1, "the paused consumer replaced")
}

package sealpost_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/internal/wire"
)

// backlog makes a mailbox backlog for Bob: Alice's messages with copies,
// reorders, garbage and a replay of one already received, and returns it
// with Bob's store before any of it.
func backlog(t *testing.T, seed uint64, n int) (alice, bob *party, fs *faultyStore, envs [][]byte, before map[string][]byte) {
	c := newClock()
	alice = newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob, fs = newFaultyParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	old := send(t, alice, bob, "already received")
	receive(t, bob, old)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range n {
		o := send(t, alice, bob, "backlog")
		if err := alice.Sent(ctx, o); err != nil {
			t.Fatal(err)
		}
		envs = append(envs, o.Envelope)
		if i%7 == 0 {
			envs = append(envs, o.Envelope) // delivered twice
		}
	}
	// Reordered within runs of 100, as a relay's backlog is; now and then
	// a whole run moves ahead (more than MaxSkip for some).
	for i := 0; i < len(envs); i += 100 {
		run := envs[i:min(i+100, len(envs))]
		r.Shuffle(len(run), func(a, b int) { run[a], run[b] = run[b], run[a] })
	}
	if len(envs) > 2500 {
		moved := slices.Clone(envs[2000:2100])
		envs = slices.Insert(slices.Delete(envs, 2000, 2100), 100, moved...)
	}
	envs = append(envs, old.Envelope)                                                            // after Done: ErrDuplicate
	envs = append(envs, wire.AppendEnvelope(nil, bob.Mailbox(), [16]byte{9}, make([]byte, 300))) // garbage
	envs = append(envs, flipAt(envs[0], -1))                                                     // tampered
	return alice, bob, fs, envs, bob.store.Snapshot()
}

// batchSize is the messages of TestReceiveBatch's backlog: 8,700, which
// with the copies and bad envelopes make 9,949 envelopes, just under
// MaxBatch; 1,000 with -short or -race.
func batchSize() int {
	if testing.Short() || raceEnabled {
		return 1000
	}
	return 8700
}

// TestReceiveBatch: a batch gives each envelope what Receive one by one
// gives it, writes the same store, and calls Apply once. The backlog is
// shuffled, so some envelopes are more than ratchet.MaxSkip ahead of
// their chain; both ways refuse the same ones.
func TestReceiveBatch(t *testing.T) {
	_, bob, fs, envs, before := backlog(t, 1, batchSize())
	// The same backlog received one envelope at a time, from the same
	// store, as the reference.
	ref := sealpost.NewMemoryStore()
	ref.Restore(before)
	one, err := sealpost.Open(ctx, ref, bob.addr, sealpost.WithClock(newClock().now), sealpost.WithReceiptDelay(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	fs.applies = 0
	got, err := bob.ReceiveBatch(ctx, envs)
	if err != nil {
		t.Fatal(err)
	}
	if fs.applies != 1 {
		t.Fatalf("%d Applies for a batch, want 1", fs.applies)
	}
	if len(got) != len(envs) {
		t.Fatalf("%d results for %d envelopes", len(got), len(envs))
	}
	var ok, failed int
	for i, raw := range envs {
		in, err := one.Receive(ctx, raw)
		switch {
		case (err == nil) != (got[i].Err == nil):
			t.Fatalf("envelope %d: batch %v, alone %v", i, got[i].Err, err)
		case err != nil:
			if sealpost.ClassifyReceive(err) != sealpost.ClassifyReceive(got[i].Err) {
				t.Fatalf("envelope %d: batch %v, alone %v", i, got[i].Err, err)
			}
			failed++
		default:
			b := got[i].Incoming
			if b.ID != in.ID || !bytes.Equal(b.Body, in.Body) || b.Redelivered != in.Redelivered || len(b.Findings) != len(in.Findings) {
				t.Fatalf("envelope %d: batch %+v, alone %+v", i, b, in)
			}
			ok++
		}
	}
	if ok < len(envs)/2 || failed < 3 {
		t.Fatalf("%d received, %d refused: the backlog is not what the test meant", ok, failed)
	}
	if !maps.EqualFunc(bob.store.Snapshot(), ref.Snapshot(), bytes.Equal) {
		t.Fatalf("the batch wrote another store than one Receive per envelope (%s)", dmStoreDiff(bob.store.Snapshot(), ref.Snapshot()))
	}
}

// TestReceiveBatchStoreFailure: when the batch's one Apply fails, nothing
// is released, the store is as before, and the device (reloaded from it)
// receives the same backlog again with the same results.
func TestReceiveBatchStoreFailure(t *testing.T) {
	alice, bob, fs, envs, before := backlog(t, 2, 60)
	fs.fail = true
	got, err := bob.ReceiveBatch(ctx, envs)
	fs.fail = false
	if err == nil || got != nil {
		t.Fatalf("a failing Apply: %d results, %v", len(got), err)
	}
	if !maps.EqualFunc(bob.store.Snapshot(), before, bytes.Equal) {
		t.Fatal("a failed batch changed the store")
	}
	again, err := bob.ReceiveBatch(ctx, envs)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, r := range again {
		if r.Err == nil && !r.Incoming.Redelivered {
			n++
		}
	}
	if n != 60 {
		t.Fatalf("after the failed batch, %d new messages, want 60", n)
	}
	// The device goes on.
	receive(t, bob, send(t, alice, bob, "after"))
	receive(t, alice, send(t, bob, alice, "after"))
}

func TestReceiveBatchLimits(t *testing.T) {
	_, bob, fs, _, _ := backlog(t, 3, 1)
	fs.applies = 0
	if _, err := bob.ReceiveBatch(ctx, make([][]byte, sealpost.MaxBatch+1)); !errors.Is(err, sealpost.ErrTooLarge) {
		t.Fatalf("MaxBatch+1 envelopes: %v", err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bob.ReceiveBatch(cancelled, [][]byte{{1}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled context: %v", err)
	}
	if got, err := bob.ReceiveBatch(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("an empty batch: %v, %v", got, err)
	}
	if got, err := bob.ReceiveBatch(ctx, [][]byte{{1, 2, 3}}); err != nil || got[0].Err == nil {
		t.Fatalf("a batch of garbage: %v", err)
	}
	if fs.applies != 0 {
		t.Fatalf("%d Applies for batches that changed nothing", fs.applies)
	}
}

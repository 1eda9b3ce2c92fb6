package sealpost

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/record"
)

// failingStore is a MemoryStore whose next Apply fails when fail is set.
type failingStore struct {
	*MemoryStore
	fail bool
}

var errInjected = errors.New("injected store failure")

func (s *failingStore) Apply(ctx context.Context, b *Batch) error {
	if s.fail {
		s.fail = false
		return errInjected
	}
	return s.MemoryStore.Apply(ctx, b)
}

// checkIndex fails unless every tag every session of d expects leads to
// its peer in the device's tag index.
func checkIndex(t *testing.T, d *Device) {
	t.Helper()
	for _, p := range d.peers {
		for _, s := range p.sessions {
			for tag := range s.r.ExpectedTags() {
				if d.tags[tag] != p {
					t.Fatalf("a tag session %s expects is not indexed", s.keyID)
				}
			}
		}
	}
}

// startedPair opens Bob on store and Alice on a memory store, and has
// Alice start a session with Bob (nothing sent yet).
func startedPair(t *testing.T, store Store) (bob, alice *Device) {
	t.Helper()
	ctx := context.Background()
	bob, err := Open(ctx, store, Address{User: "bob", Device: 1})
	if err != nil {
		t.Fatal(err)
	}
	alice, err = Open(ctx, NewMemoryStore(), Address{User: "alice", Device: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bob.NewBundle(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.StartSession(ctx, bob.Address(), b); err != nil {
		t.Fatal(err)
	}
	return bob, alice
}

// TestIndexAfterFailedCommit: after a commit fails, the peer's sessions
// are rewound and their tags indexed again, so the message whose commit
// failed is found by its tag on redelivery, not by trial decryption; the
// same after a failed send.
func TestIndexAfterFailedCommit(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{MemoryStore: NewMemoryStore()}
	bob, alice := startedPair(t, store)
	exchange := func(from, to *Device, body string) []byte {
		out, err := from.Send(ctx, to.Address(), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return out.Envelope
	}
	if _, err := bob.Receive(ctx, exchange(alice, bob, "start")); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Receive(ctx, exchange(bob, alice, "reply")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		env := exchange(alice, bob, "m")
		store.fail = true
		if i == 1 {
			// A failed send first: its key stays spent.
			if _, err := bob.Send(ctx, alice.Address(), []byte("lost")); !errors.Is(err, errInjected) {
				t.Fatalf("send on a failing store: %v", err)
			}
		} else if _, err := bob.Receive(ctx, env); !errors.Is(err, errInjected) {
			t.Fatalf("receive on a failing store: %v", err)
		}
		checkIndex(t, bob)
		bob.slowTrials = 0
		in, err := bob.Receive(ctx, env)
		if err != nil {
			t.Fatal(err)
		}
		if bob.slowTrials != 0 {
			t.Fatalf("round %d: the message was found by trial decryption on %d sessions", i, bob.slowTrials)
		}
		if err := bob.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		checkIndex(t, bob)
	}
}

// TestIndexProperty: over a random two-way conversation with failing
// commits on both sides, lost and reordered envelopes, every tag each
// session expects is indexed after every step.
func TestIndexProperty(t *testing.T) {
	ctx := context.Background()
	stores := [2]*failingStore{{MemoryStore: NewMemoryStore()}, {MemoryStore: NewMemoryStore()}}
	var devs [2]*Device
	for i, name := range []string{"alice", "bob"} {
		d, err := Open(ctx, stores[i], Address{User: name, Device: 1})
		if err != nil {
			t.Fatal(err)
		}
		devs[i] = d
	}
	b, err := devs[1].NewBundle(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := devs[0].StartSession(ctx, devs[1].Address(), b); err != nil {
		t.Fatal(err)
	}
	start, err := devs[0].Send(ctx, devs[1].Address(), []byte("start"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := devs[1].Receive(ctx, start.Envelope); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(7, 11))
	var inflight [2][][]byte // towards devs[i]
	for step := range 600 {
		from := rnd.IntN(2)
		to := 1 - from
		switch r := rnd.IntN(10); {
		case r < 4:
			stores[from].fail = rnd.IntN(5) == 0
			out, err := devs[from].Send(ctx, devs[to].Address(), []byte("m"))
			if err == nil {
				inflight[to] = append(inflight[to], out.Envelope)
			} else if !errors.Is(err, errInjected) {
				t.Fatal(err)
			}
		case r < 9 && len(inflight[to]) > 0:
			i := rnd.IntN(min(3, len(inflight[to])))
			env := inflight[to][i]
			stores[to].fail = rnd.IntN(5) == 0
			in, err := devs[to].Receive(ctx, env)
			switch {
			case errors.Is(err, errInjected):
				continue // stays in flight
			case err != nil:
				t.Fatalf("step %d: %v", step, err)
			}
			inflight[to] = append(inflight[to][:i], inflight[to][i+1:]...)
			if err := devs[to].Done(ctx, in.ID); err != nil && !errors.Is(err, errInjected) {
				t.Fatal(err)
			}
		case len(inflight[to]) > 0:
			i := rnd.IntN(len(inflight[to])) // lost
			inflight[to] = append(inflight[to][:i], inflight[to][i+1:]...)
		}
		stores[0].fail, stores[1].fail = false, false
		checkIndex(t, devs[0])
		checkIndex(t, devs[1])
	}
}

// keysStore records the keys of every batch applied.
type keysStore struct {
	*MemoryStore
	batches [][]string
}

func (s *keysStore) Apply(ctx context.Context, b *Batch) error {
	var keys []string
	b.Each(func(k string, _ []byte, _ bool) error { keys = append(keys, k); return nil })
	s.batches = append(s.batches, keys)
	return s.MemoryStore.Apply(ctx, b)
}

// TestBatchReuse: the Device reuses its batch after each Apply, and every
// batch holds only its own operations: a Done writes only the kept index
// and deletes the kept result, a Send never touches kept results, a
// failed commit leaves nothing for the next one.
func TestBatchReuse(t *testing.T) {
	ctx := context.Background()
	ks := &keysStore{MemoryStore: NewMemoryStore()}
	fs := &failingStore{MemoryStore: ks.MemoryStore}
	bob, alice := startedPair(t, ks)
	deliver := func(body string) *Incoming {
		out, err := alice.Send(ctx, bob.Address(), []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		in, err := bob.Receive(ctx, out.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	in := deliver("start")
	for i := range 20 {
		ks.batches = nil
		if err := bob.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Send(ctx, alice.Address(), []byte("reply")); err != nil {
			t.Fatal(err)
		}
		if i%5 == 4 {
			// A failed commit in between: its operations must not reach
			// the next batch.
			bob.store = fs
			fs.fail = true
			if _, err := bob.Send(ctx, alice.Address(), []byte("lost")); !errors.Is(err, errInjected) {
				t.Fatalf("send on a failing store: %v", err)
			}
			bob.store = ks
		}
		in = deliver("next")
		if len(ks.batches) != 3 {
			t.Fatalf("round %d: %d batches applied, want 3", i, len(ks.batches))
		}
		done, send := ks.batches[0], ks.batches[1]
		if len(done) != 2 || !strings.HasPrefix(done[0], record.KeyKeptPrefix) || !strings.HasPrefix(done[1], record.KeyKeptIndexPrefix) {
			t.Fatalf("round %d: Done applied %q", i, done)
		}
		for _, k := range send {
			if strings.HasPrefix(k, record.KeyKeptPrefix) || strings.HasPrefix(k, record.KeyKeptIndexPrefix) {
				t.Fatalf("round %d: Send applied %q", i, send)
			}
		}
	}
}

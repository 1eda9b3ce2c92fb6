package sealpost_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// countingStore is a MemoryStore that counts what each Apply writes: the
// bytes of every put (key and value) and the deletes (and their keys'
// bytes).
type countingStore struct {
	*sealpost.MemoryStore
	mu      sync.Mutex
	last    applyCount // the last Apply
	applies int
}

type applyCount struct {
	put, deletes, deleted int // put bytes; deletes and their key bytes
}

func (s *countingStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	var n applyCount
	_ = b.Each(func(key string, value []byte, deleted bool) error {
		if deleted {
			n.deletes++
			n.deleted += len(key)
		} else {
			n.put += len(key) + len(value)
		}
		return nil
	})
	s.mu.Lock()
	s.last, s.applies = n, s.applies+1
	s.mu.Unlock()
	return s.MemoryStore.Apply(ctx, b)
}

// TestFirstContactFlood (TESTING.md item 52, issue 14 defect 3): 650
// strangers each send one first contact from the public last-resort
// bundle. The bytes each costs the victim's store do not grow with the
// number of earlier ones (before issue 14 they grew from 2.2 KB to 25 KB:
// the device record listed every peer and the set of accepted starts was
// rewritten whole); at most DefaultMaxPendingPeers unanswered strangers are
// kept, the oldest evicted, while a stranger the victim answered and the
// real conversation are unaffected, also after a restart; an evicted
// stranger's first contact replayed is ErrDuplicate with nothing changed.
func TestFirstContactFlood(t *testing.T) {
	const n = 650
	c := newClock()
	cs := &countingStore{MemoryStore: sealpost.NewMemoryStore()}
	addr := sealpost.Address{User: "victim", Device: 1}
	open := func() *party {
		d, err := sealpost.Open(ctx, cs, addr, sealpost.WithClock(c.now), sealpost.WithReceiptDelay(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		return &party{Device: d, addr: addr, store: cs.MemoryStore}
	}
	victim := open()
	friend := newParty(t, "friend", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, friend, victim)
	receive(t, victim, send(t, friend, victim, "hi"))
	receive(t, friend, send(t, victim, friend, "hello"))

	lastResort := akBundles(t, victim, 0)[0]
	written := map[int]applyCount{}
	strangers := make([]*akSession, n+1)
	firsts := make([][]byte, n+1)
	const answered = 3
	for i := 1; i <= n; i++ {
		p := akNewPeer(fmt.Sprintf("stranger%d", i))
		strangers[i] = p.start(t, lastResort)
		firsts[i], _ = strangers[i].send("buy now")
		in, err := victim.Receive(ctx, firsts[i])
		if err != nil {
			t.Fatalf("first contact %d: %v", i, err)
		}
		written[i] = cs.last
		if err := victim.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		if i == answered { // the victim answers one stranger: kept for good
			strangers[i].receive(send(t, victim, &party{addr: p.addr}, "who are you?").Envelope)
		}
		if i%50 == 0 {
			receive(t, victim, send(t, friend, victim, "still here"))
			receive(t, friend, send(t, victim, friend, "me too"))
		}
		c.advance(time.Second)
	}
	for _, i := range []int{1, 100, 200, 600, n} {
		w := written[i]
		t.Logf("first contact %d: %d bytes put, %d deletes (%d key bytes)", i, w.put, w.deletes, w.deleted)
	}
	for _, i := range []int{100, 200, 600, n} {
		if written[i].put > written[1].put+512 {
			t.Errorf("first contact %d put %d bytes, the first %d: the cost grows with earlier first contacts", i, written[i].put, written[1].put)
		}
	}
	if written[600].deletes != written[200].deletes || written[100].deletes != 0 {
		t.Errorf("first contacts 100, 200 and 600 delete %d, %d and %d records", written[100].deletes, written[200].deletes, written[600].deletes)
	}

	check := func(victim *party, when string) {
		t.Helper()
		peers, size := 0, 0
		for k, v := range cs.Snapshot() {
			size += len(k) + len(v)
			if strings.HasPrefix(k, "peer/") {
				peers++
			}
		}
		// The friend, the answered stranger and the newest pending ones.
		if want := 2 + sealpost.DefaultMaxPendingPeers; peers != want {
			t.Fatalf("%s: %d peers in the store, want %d", when, peers, want)
		}
		t.Logf("%s: %d peers, store %d bytes", when, peers, size)
		for i, want := range map[int]bool{1: false, answered: true, n - sealpost.DefaultMaxPendingPeers: false,
			n - sealpost.DefaultMaxPendingPeers + 1: true, n: true} {
			if _, _, err := victim.PeerIdentity(strangers[i].p.addr); (err == nil) != want {
				t.Fatalf("%s: stranger %d kept: %v, want %t", when, i, err, want)
			}
		}
		receive(t, victim, send(t, friend, victim, "after the flood"))
		receive(t, friend, send(t, victim, friend, "all fine"))
		env, _ := strangers[answered].send("thanks")
		receive(t, victim, &sealpost.Outgoing{Envelope: env})
	}
	check(victim, "after the flood")
	victim = open()
	check(victim, "after a restart")

	// An evicted stranger's first contact again: a replay, refused.
	fs := &faultyStore{MemoryStore: cs.MemoryStore}
	d, err := sealpost.Open(ctx, fs, addr, sealpost.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	victim = &party{Device: d, addr: addr, store: cs.MemoryStore}
	before := dmCapture(victim, fs)
	if _, err := victim.Receive(ctx, firsts[1]); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("an evicted stranger's first contact again: %v, want ErrDuplicate", err)
	}
	dmUnchanged(t, victim, fs, before, "replayed first contact of an evicted stranger")
}

package sealpost_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

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

// TestFirstContactFlood (ADVERSARIAL 52, issue 14 defect 3): 650 strangers
// each send one first contact from the public last-resort bundle. The
// bytes each one costs the victim's store stay constant in the number of
// earlier ones, and the real conversation is unaffected.
func TestFirstContactFlood(t *testing.T) {
	const n = 650
	c := newClock()
	cs := &countingStore{MemoryStore: sealpost.NewMemoryStore()}
	addr := sealpost.Address{User: "victim", Device: 1}
	d, err := sealpost.Open(ctx, cs, addr, sealpost.WithClock(c.now), sealpost.WithReceiptDelay(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	victim := &party{Device: d, addr: addr, store: cs.MemoryStore}
	friend := newParty(t, "friend", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, friend, victim)
	receive(t, victim, send(t, friend, victim, "hi"))
	receive(t, friend, send(t, victim, friend, "hello"))

	lastResort := akBundles(t, victim, 0)[0]
	written := map[int]applyCount{}
	for i := 1; i <= n; i++ {
		p := akNewPeer(fmt.Sprintf("stranger%d", i))
		env, _ := p.start(t, lastResort).send("buy now")
		in, err := victim.Receive(ctx, env)
		if err != nil {
			t.Fatalf("first contact %d: %v", i, err)
		}
		written[i] = cs.last
		if err := victim.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			receive(t, victim, send(t, friend, victim, "still here"))
			receive(t, friend, send(t, victim, friend, "me too"))
		}
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
	if written[600].deletes != written[200].deletes {
		t.Errorf("first contacts 200 and 600 delete %d and %d records", written[200].deletes, written[600].deletes)
	}
}

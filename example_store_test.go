package sealpost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/sealpost/sealpost"
)

// mapStore is a Store of your own: a map guarded by a mutex. Get returns a
// copy of the value, or an error matching sealpost.ErrNotFound. Apply is all
// or nothing: it builds the next state aside and swaps it in only when every
// operation is in, so a failure leaves the store as it was. A store on a
// database does the same with one transaction per Apply (see
// examples/boltstore for bbolt).
type mapStore struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail error // when set, the next Apply fails with it and writes nothing
}

func newMapStore() *mapStore { return &mapStore{m: map[string][]byte{}} }

func (s *mapStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, fmt.Errorf("mapstore: %q: %w", key, sealpost.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

func (s *mapStore) Apply(_ context.Context, b *sealpost.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail; err != nil {
		s.fail = nil
		return err
	}
	next := maps.Clone(s.m)
	err := b.Each(func(key string, value []byte, deleted bool) error {
		if deleted {
			delete(next, key)
		} else {
			// The Device never changes a value after Apply, so keeping it
			// is allowed; keeping the Batch itself is not.
			next[key] = value
		}
		return nil
	})
	if err != nil {
		return err // next is dropped: nothing was written
	}
	s.m = next
	return nil
}

// same reports whether the store holds exactly snap.
func (s *mapStore) same(snap map[string][]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.EqualFunc(s.m, snap, bytes.Equal)
}

// snapshot returns a copy of the store's contents.
func (s *mapStore) snapshot() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// Any type with Get and Apply can hold a Device. Because Apply is atomic, a
// failed write never loses an accepted message or reuses a key: the
// operation that asked for it returns the error and changes nothing.
func ExampleStore() {
	ctx := context.Background()
	store := newMapStore()
	alice, err := sealpost.Open(ctx, store, sealpost.Address{User: "alice", Device: 1})
	if err != nil {
		panic(err)
	}
	bob := exampleDevice("bob")
	if err := alice.StartSession(ctx, bob.Address(), exampleBundle(bob)); err != nil {
		panic(err)
	}
	saved := store.snapshot()

	store.fail = errors.New("disk full")
	out, err := alice.Send(ctx, bob.Address(), []byte("lost?"))
	fmt.Println("send with a failing store:", err, "envelope:", out != nil, "store unchanged:", store.same(saved))

	out, err = alice.Send(ctx, bob.Address(), []byte("not lost"))
	if err != nil {
		panic(err)
	}
	in, _ := bob.Receive(ctx, out.Envelope)
	fmt.Printf("bob got %q\n", in.Body)

	// The state is in the store: a Device opened on it again carries on.
	again, err := sealpost.Open(ctx, store, sealpost.Address{User: "alice", Device: 1})
	if err != nil {
		panic(err)
	}
	out, _ = again.Send(ctx, bob.Address(), []byte("after a restart"))
	in, _ = bob.Receive(ctx, out.Envelope)
	fmt.Printf("bob got %q\n", in.Body)
	// Output:
	// send with a failing store: disk full envelope: false store unchanged: true
	// bob got "not lost"
	// bob got "after a restart"
}

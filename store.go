package sealpost

import (
	"context"
	"maps"
	"sync"
)

// Store is the app's durable key-value store, where a Device keeps its
// identity, prekeys, sessions, transcripts, receipt queues and the results
// it has not yet been told are handled. Values hold private keys: the store
// must be as private as the device itself.
//
// Get returns ErrNotFound (errors.Is) when key is absent, and a copy of the
// value otherwise. Apply writes every Put and Delete of the batch
// atomically, or none of them: a Device relies on this to never lose an
// accepted message and never reuse a key. An error from Apply means
// nothing was written; a store that cannot tell (a timeout) should retry
// until it can. Apply may keep the values it is given (they are never
// changed afterwards) but not the Batch itself: the Device reuses it once
// Apply returns, as io.Writer implementations must not keep p.
type Store interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Apply(ctx context.Context, b *Batch) error
}

// Batch is a set of puts and deletes applied together by Store.Apply. Later
// operations on the same key replace earlier ones.
type Batch struct {
	ops   []batchOp  // in the order each key was first touched
	first [8]batchOp // room for the ops of a message, without growing
	key   [96]byte   // scratch for record checksums (records.go)
}

type batchOp struct {
	key     string
	value   []byte
	deleted bool
}

// Put records that key is to hold value. The batch keeps value as given;
// the caller must not change it afterwards.
func (b *Batch) Put(key string, value []byte) {
	if value == nil {
		value = []byte{}
	}
	b.set(batchOp{key: key, value: value})
}

// Delete records that key is to be removed.
func (b *Batch) Delete(key string) { b.set(batchOp{key: key, deleted: true}) }

// set adds op, replacing an earlier one on the same key. A Device's
// batches touch a handful of keys, so a scan beats a map.
func (b *Batch) set(op batchOp) {
	for i := range b.ops {
		if b.ops[i].key == op.key {
			b.ops[i] = op
			return
		}
	}
	if b.ops == nil {
		b.ops = b.first[:0]
	}
	b.ops = append(b.ops, op)
}

// Len returns the number of keys the batch touches.
func (b *Batch) Len() int { return len(b.ops) }

// Each calls fn for every key in the order first touched, with its final
// value, or with deleted true.
func (b *Batch) Each(fn func(key string, value []byte, deleted bool) error) error {
	for _, op := range b.ops {
		if err := fn(op.key, op.value, op.deleted); err != nil {
			return err
		}
	}
	return nil
}

// MemoryStore is a Store in memory, for tests and for apps that keep state
// elsewhere. It is safe for concurrent use.
type MemoryStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string][]byte{}} }

// Get returns a copy of the value at key, or ErrNotFound.
func (s *MemoryStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.m[key]
	if !ok {
		return nil, ErrNotFound
	}
	return append([]byte{}, v...), nil
}

// Apply applies the batch atomically. It keeps the batch's values without
// copying them (Batch.Put's contract says they do not change); Get and
// Snapshot hand out copies.
func (s *MemoryStore) Apply(_ context.Context, b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range b.ops {
		if op.deleted {
			delete(s.m, op.key)
		} else {
			s.m[op.key] = op.value
		}
	}
	return nil
}

// Snapshot returns a copy of the whole store, for tests that compare state
// before and after an operation, or restore an old snapshot.
func (s *MemoryStore) Snapshot() map[string][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string][]byte, len(s.m))
	for k, v := range s.m {
		out[k] = append([]byte{}, v...)
	}
	return out
}

// Restore replaces the store's contents with a snapshot.
func (s *MemoryStore) Restore(snap map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m = maps.Clone(snap)
}

package sealpost

import (
	"bytes"
	"context"
	"fmt"

	"github.com/sealpost/sealpost/internal/record"
)

// Received is the outcome of one envelope of ReceiveBatch: what Receive
// would have returned for it.
type Received struct {
	Incoming *Incoming
	Err      error
}

// MaxBatch bounds the envelopes of one ReceiveBatch: the writes of a batch
// are held in memory until its one Apply, about 2 KB per envelope.
const MaxBatch = 10_000

// ReceiveBatch receives many envelopes, a mailbox's backlog after being
// offline, with one Store.Apply for all of them (a group commit: one
// fsync on a disk store instead of one per envelope). Each envelope gets
// what Receive would give it, in order, as if received one after the
// other: a bad envelope gets its error in its Received and changes
// nothing, and the others go on. Nothing is released before the Apply: if
// it fails, ReceiveBatch returns no results and the error, the device's
// state is as it was before the call, and the same envelopes can be
// received again. It returns ErrTooLarge for more than MaxBatch envelopes.
func (d *Device) ReceiveBatch(ctx context.Context, envelopes [][]byte) ([]Received, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(envelopes) > MaxBatch {
		return nil, fmt.Errorf("%w: %d envelopes in one batch, at most %d", ErrTooLarge, len(envelopes), MaxBatch)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	real := d.store
	ov := &overlay{inner: real, idx: map[string]int{}}
	d.store, d.batching, d.keptDirty = ov, true, d.keptDirty[:0]
	out := make([]Received, len(envelopes))
	for i, raw := range envelopes {
		out[i].Incoming, out[i].Err = d.receive(ctx, raw)
	}
	d.store, d.batching = real, false
	// Each kept index once, as it stands after the last envelope.
	idx := new(Batch)
	var err error
	for _, p := range d.keptDirty {
		p.keptDirty = false
		if p.gone || err != nil {
			continue // evicted or forgotten in the batch: its records are deleted
		}
		var raw []byte
		if raw, err = p.encodeKept(); err == nil {
			putRecord(idx, p.keptIndexKey(), raw)
		}
	}
	d.keptDirty = d.keptDirty[:0]
	if err == nil {
		ov.add(idx)
		if len(ov.ops) == 0 {
			return out, nil
		}
		if err = real.Apply(ctx, &Batch{ops: ov.ops}); err == nil {
			return out, nil
		}
	}
	// The memory holds what the store does not: read it all back.
	if rerr := d.reload(ctx); rerr != nil {
		return nil, fmt.Errorf("%w; reading the device back failed too, open it again: %w", err, rerr)
	}
	return nil, err
}

// overlay is the store a ReceiveBatch runs on: Apply keeps the writes in
// memory, coalesced by key, and Get sees them before the store below.
type overlay struct {
	inner Store
	idx   map[string]int
	ops   []batchOp
}

func (o *overlay) Get(ctx context.Context, key string) ([]byte, error) {
	if i, ok := o.idx[key]; ok {
		if o.ops[i].deleted {
			return nil, ErrNotFound
		}
		return bytes.Clone(o.ops[i].value), nil
	}
	return o.inner.Get(ctx, key)
}

// Apply records b. It keeps the values as given, as Batch.Put does: the
// Device never changes a value it put.
func (o *overlay) Apply(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.add(b)
	return nil
}

// add records b's operations, a later one on a key replacing an earlier.
func (o *overlay) add(b *Batch) {
	for _, op := range b.ops {
		if i, ok := o.idx[op.key]; ok {
			o.ops[i] = op
			continue
		}
		o.idx[op.key] = len(o.ops)
		o.ops = append(o.ops, op)
	}
}

// reload replaces the device's state in memory with what its store holds,
// after a failed Apply left memory ahead of the store. On error nothing
// changes.
func (d *Device) reload(ctx context.Context) error {
	raw, err := getRecord(ctx, d.store, record.KeyDevice)
	if err != nil {
		return err
	}
	fresh := newDevice(d.store, d.self, d.opts)
	if err := fresh.load(ctx, raw); err != nil {
		return err
	}
	d.adoptState(fresh)
	return nil
}

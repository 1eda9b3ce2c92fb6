package sealpost

import (
	"context"

	"github.com/sealpost/sealpost/internal/outbox"
)

// Every Outgoing a Device returns (from Send and Flush) is saved in its
// outbox in the same Apply that spent its key (internal/outbox), so a
// crash between that commit and the app handing the envelope to the relay
// loses nothing: Unsent hands it back after a restart.

// MaxUnsent is how many envelopes a Device keeps in its outbox. Past it,
// Send and Flush return ErrOutboxFull, changing nothing, until the app
// reports some Sent: nothing waiting is ever dropped.
const MaxUnsent = outbox.Max

// Sent reports that the relay accepted these envelopes: the Device forgets
// them with one Apply. Call it once the relay confirmed each post (an HTTP
// 2xx, not just a write to a socket). Envelopes already reported, or not
// from this Device's outbox, are ignored. If the store fails, nothing is
// forgotten and the error is returned: call Sent again.
func (d *Device) Sent(ctx context.Context, outs ...*Outgoing) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var one [1]uint64 // the usual call reports one envelope
	slots := one[:0]
	for _, o := range outs {
		if o != nil && o.boxed {
			slots = append(slots, o.slot)
		}
	}
	b := d.newBatch()
	if !d.box.StageSent(slots, (*framingBatch)(b)) {
		d.recycle(b)
		return nil
	}
	err := d.store.Apply(ctx, b)
	d.recycle(b)
	if err != nil {
		return err
	}
	d.box.Remove(slots)
	return nil
}

// framingBatch is a Batch whose Put frames the record with its checksum
// (putRecord), for the internal packages that stage records.
type framingBatch Batch

func (b *framingBatch) Put(key string, value []byte) { putRecord((*Batch)(b), key, value) }
func (b *framingBatch) Delete(key string)            { (*Batch)(b).Delete(key) }

// Unsent returns the envelopes not yet reported Sent, oldest first, read
// from the store: after a restart, post each again (the receiver drops an
// envelope it already holds) and report it Sent. An Outgoing still being
// posted by another goroutine is among them too.
func (d *Device) Unsent(ctx context.Context) ([]*Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*Outgoing
	for _, slot := range d.box.Slots() {
		raw, err := getRecord(ctx, d.store, outbox.Key(slot))
		if err != nil {
			return nil, err
		}
		e, err := outbox.Decode(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, &Outgoing{To: e.To, Mailbox: e.Mailbox, Envelope: e.Envelope, ID: e.ID, slot: slot, boxed: true})
	}
	return out, nil
}

// putOutgoing adds o's outbox entry to b.
func (d *Device) putOutgoing(b *Batch, o *Outgoing) error {
	raw, err := outbox.Encode(&outbox.Entry{To: o.To, ID: o.ID, Mailbox: o.Mailbox, Envelope: o.Envelope})
	if err != nil {
		return err
	}
	o.key = outbox.Key(o.slot)
	putRecord(b, o.key, raw)
	return nil
}

// loadOutbox reads which envelopes the outbox holds.
func (d *Device) loadOutbox(ctx context.Context) error {
	box, err := outbox.Load(func(key string) ([]byte, error) { return getRecord(ctx, d.store, key) })
	if err != nil {
		return err
	}
	d.box = box
	return nil
}

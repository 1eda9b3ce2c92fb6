package sealpost

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/internal/blocklist"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
)

// Sender names senders to Block or Unblock: every envelope from an
// address, whatever identity presents it (Address set), or from an
// identity, at whatever address (Identity set). With both set, Block
// blocks each.
type Sender struct {
	Address  Address
	Identity keys.PublicIdentity
}

// MaxBlocked is how many senders (addresses and identities together) a
// device can block. Block refuses one more with ErrTooLarge, so the block
// record, rewritten whole on each change, stays small (at most about
// 280 KB).
const MaxBlocked = blocklist.Max

// Block refuses every envelope from the sender, from now on and after a
// restart (the list is saved with one Apply): Receive returns ErrBlocked
// for it after one routing-tag lookup (an envelope on a session) or one
// seal opening (a first contact, whose sealed start names the sender),
// before any key agreement or decryption, and changes nothing in the store
// (no Apply). An envelope on a session whose routing tag has run past what
// the session expects is ErrDecrypt instead: blocked peers' sessions are
// not tried. Block keeps what the device holds about the sender; Forget
// deletes it. It returns ErrMalformed for a Sender with neither field set
// and ErrTooLarge when MaxBlocked senders are blocked already.
func (d *Device) Block(ctx context.Context, s Sender) error {
	return d.setBlocked(ctx, s, true)
}

// Unblock undoes Block for the sender (each field that is set); envelopes
// from it are received again. Unblocking a sender that is not blocked does
// nothing.
func (d *Device) Unblock(ctx context.Context, s Sender) error {
	return d.setBlocked(ctx, s, false)
}

func (d *Device) setBlocked(ctx context.Context, s Sender, on bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.Address == (Address{}) && s.Identity.IsZero() {
		return fmt.Errorf("%w: a Sender names an address or an identity", ErrMalformed)
	}
	if s.Address != (Address{}) {
		if err := validAddress(s.Address); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var fp *[keys.FingerprintSize]byte
	if !s.Identity.IsZero() {
		f := s.Identity.Fingerprint()
		fp = &f
	}
	// Every change goes one way (all blocked or all unblocked), so the
	// count tells whether anything changed.
	next := d.blocked.With(s.Address, fp, on)
	if next.Len() == d.blocked.Len() {
		return nil // already so
	}
	if next.Len() > MaxBlocked {
		return fmt.Errorf("%w: more than %d blocked senders", ErrTooLarge, MaxBlocked)
	}
	b := d.newBatch()
	if next.Len() == 0 {
		b.Delete(record.KeyBlock)
	} else {
		putRecord(b, record.KeyBlock, next.Encode())
	}
	err := d.store.Apply(ctx, b)
	d.recycle(b)
	if err != nil {
		return err
	}
	d.blocked = next
	return nil
}

// loadBlocklist reads the block record (absent: nothing blocked).
func (d *Device) loadBlocklist(ctx context.Context) error {
	raw, err := getRecord(ctx, d.store, record.KeyBlock)
	switch {
	case errors.Is(err, ErrNotFound):
		d.blocked = blocklist.List{}
		return nil
	case err != nil:
		return err
	}
	d.blocked, err = blocklist.Decode(raw)
	return err
}

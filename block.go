package sealpost

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/internal/fixed"
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

// blocklist is the blocked addresses and identity fingerprints, saved in
// the "block" record.
type blocklist struct {
	addrs map[Address]bool
	ids   map[[keys.FingerprintSize]byte]bool
}

// blocks reports whether an envelope from addr with the identity of
// fingerprint fp is refused. It costs nothing while nothing is blocked.
func (l *blocklist) blocks(addr Address, fp *[keys.FingerprintSize]byte) bool {
	if len(l.addrs) == 0 && len(l.ids) == 0 {
		return false
	}
	return l.addrs[addr] || l.ids[*fp]
}

// clone returns a copy of the list.
func (l *blocklist) clone() blocklist {
	out := blocklist{addrs: map[Address]bool{}, ids: map[[keys.FingerprintSize]byte]bool{}}
	for a := range l.addrs {
		out.addrs[a] = true
	}
	for f := range l.ids {
		out.ids[f] = true
	}
	return out
}

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
	next := d.blocked.clone()
	if s.Address != (Address{}) {
		setOrDelete(next.addrs, s.Address, on)
	}
	if !s.Identity.IsZero() {
		setOrDelete(next.ids, s.Identity.Fingerprint(), on)
	}
	if len(next.addrs) == len(d.blocked.addrs) && len(next.ids) == len(d.blocked.ids) {
		return nil // already so
	}
	if len(next.addrs)+len(next.ids) > MaxBlocked {
		return fmt.Errorf("%w: more than %d blocked senders", ErrTooLarge, MaxBlocked)
	}
	b := d.newBatch()
	if len(next.addrs)+len(next.ids) == 0 {
		b.Delete(record.KeyBlock)
	} else {
		putRecord(b, record.KeyBlock, next.encode())
	}
	err := d.store.Apply(ctx, b)
	d.recycle(b)
	if err != nil {
		return err
	}
	d.blocked = next
	return nil
}

func setOrDelete[K comparable](m map[K]bool, k K, on bool) {
	if on {
		m[k] = true
	} else {
		delete(m, k)
	}
}

// Entry kinds in the block record.
const (
	blockAddress  = 1
	blockIdentity = 2
)

// encode returns the block record, in a buffer with room for the checksum.
// Layout (integers big-endian), addresses first, each part sorted:
//
//	version   1   record.Layout
//	count     4   entries
//	entries   each a kind byte, then for kind 1 (an address) the device
//	          4 and the user (length 2, 1..keys.MaxUserLength bytes), for
//	          kind 2 (an identity) its fingerprint, 32 bytes
//
// Nothing follows.
func (l *blocklist) encode() []byte {
	addrs := make([]Address, 0, len(l.addrs))
	for a := range l.addrs {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b Address) int {
		return cmp.Or(strings.Compare(a.User, b.User), cmp.Compare(a.Device, b.Device))
	})
	ids := make([][keys.FingerprintSize]byte, 0, len(l.ids))
	for f := range l.ids {
		ids = append(ids, f)
	}
	slices.SortFunc(ids, func(a, b [keys.FingerprintSize]byte) int { return bytes.Compare(a[:], b[:]) })
	b := binary.BigEndian.AppendUint32([]byte{record.Layout}, uint32(len(addrs)+len(ids)))
	for _, a := range addrs {
		b = binary.BigEndian.AppendUint32(append(b, blockAddress), a.Device)
		b = append(binary.BigEndian.AppendUint16(b, uint16(len(a.User))), a.User...)
	}
	for _, f := range ids {
		b = append(append(b, blockIdentity), f[:]...)
	}
	return b
}

// MaxBlocked is how many senders (addresses and identities together) a
// device can block. Block refuses one more with ErrTooLarge, so the block
// record, rewritten whole on each change, stays small (at most about
// 280 KB), and the decoder refuses a count above it without allocating.
const MaxBlocked = 4096

// decodeBlocklist decodes the block record (layout on encode). It returns
// ErrUnsupportedVersion for another version and ErrMalformed for anything
// else that is not such a record: a truncation, trailing bytes, an unknown
// kind, a bad user, an entry twice or out of order.
func decodeBlocklist(raw []byte) (blocklist, error) {
	if len(raw) == 0 {
		return blocklist{}, fmt.Errorf("%w: empty block record", ErrMalformed)
	}
	if raw[0] != record.Layout {
		return blocklist{}, fmt.Errorf("%w: block record version %d", ErrUnsupportedVersion, raw[0])
	}
	l := blocklist{addrs: map[Address]bool{}, ids: map[[keys.FingerprintSize]byte]bool{}}
	r := fixed.NewReader(raw[1:])
	n := r.Count(uint64(r.U32()), MaxBlocked, 1)
	for range n {
		switch r.U8() {
		case blockAddress:
			a := Address{Device: r.U32()}
			a.User = string(r.Bytes(r.Count(uint64(r.U16()), keys.MaxUserLength, 1)))
			if validAddress(a) != nil || l.addrs[a] {
				r.Fail()
			}
			l.addrs[a] = true
		case blockIdentity:
			f := r.A32()
			if l.ids[f] {
				r.Fail()
			}
			l.ids[f] = true
		default:
			r.Fail()
		}
		if !r.Ok() {
			break
		}
	}
	if !r.Done() {
		return blocklist{}, fmt.Errorf("%w: block record", ErrMalformed)
	}
	if !bytes.Equal(l.encode(), raw) {
		return blocklist{}, fmt.Errorf("%w: block record not in order", ErrMalformed)
	}
	return l, nil
}

// loadBlocklist reads the block record (absent: nothing blocked).
func (d *Device) loadBlocklist(ctx context.Context) error {
	raw, err := getRecord(ctx, d.store, record.KeyBlock)
	switch {
	case errors.Is(err, ErrNotFound):
		d.blocked = blocklist{}
		return nil
	case err != nil:
		return err
	}
	d.blocked, err = decodeBlocklist(raw)
	return err
}

// Package outbox keeps every envelope a Device produces until the app says
// the relay accepted it. Send commits the envelope's record in the same
// Apply as the ratchet step that spent its key, so a crash between that
// commit and the app posting the envelope loses nothing: reopening hands
// the envelope back, and posting it twice is harmless (the receiver drops
// a redelivered envelope).
//
// Each envelope is a record of its own under a slot number, "out/<slot>",
// slots counting up from 0. The head record, "outbox", saves the bounds
// as of the last Sent: from, the oldest slot that may still be held, and
// to, one past the newest slot created by then. Send writes only its
// entry (no head), so the slots created since the last Sent are found on
// Open by reading on from the saved to until a slot is absent; slots are
// created in order and a slot below the saved to is never used again.
package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/fixed"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
)

// Max is how many envelopes the outbox holds: past it, a Device refuses
// to produce more (ErrOutboxFull) until the app reports some as sent, so
// nothing is ever dropped and Open reads a bounded number of records.
const Max = 4096

// KeyHead is the store key of the head record.
const KeyHead = "outbox"

// keyPrefix is the prefix of the entries' keys.
const keyPrefix = "out/"

// maxEnvelope bounds a saved envelope (the envelope package's cap).
const maxEnvelope = 1 << 20

// Entry is one envelope waiting for Sent.
type Entry struct {
	To       keys.Address
	ID       [16]byte // the message id, zero for receipts
	Mailbox  []byte
	Envelope []byte
}

// Key returns the store key of the entry in slot.
func Key(slot uint64) string {
	var b [len(keyPrefix) + 20]byte // one allocation: the string
	return string(strconv.AppendUint(append(b[:0], keyPrefix...), slot, 10))
}

// entryFixed is an entry's size without its variable parts.
const entryFixed = 1 + 4 + 2 + 16 + 1 + 4

// Encode returns the entry record, in a buffer of exactly its size plus
// room for the checksum. Layout (integers big-endian):
//
//	version       1   record.Layout
//	device        4   the recipient's device number
//	user_len      2   1..keys.MaxUserLength
//	user          the recipient's user name
//	id            16  the message id (zeros for receipts)
//	mailbox_len   1   1..255
//	mailbox       the mailbox the envelope is posted to
//	envelope_len  4   1..2^20
//	envelope      the envelope
//
// Nothing follows. It returns ErrMalformed for an entry out of bounds.
func Encode(e *Entry) ([]byte, error) {
	if e.To.User == "" || len(e.To.User) > keys.MaxUserLength || len(e.Mailbox) == 0 || len(e.Mailbox) > 255 ||
		len(e.Envelope) == 0 || len(e.Envelope) > maxEnvelope {
		return nil, fmt.Errorf("%w: outbox entry out of bounds", errs.ErrMalformed)
	}
	b := make([]byte, 0, entryFixed+len(e.To.User)+len(e.Mailbox)+len(e.Envelope)+record.ChecksumSize)
	b = append(b, record.Layout)
	b = binary.BigEndian.AppendUint32(b, e.To.Device)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.To.User)))
	b = append(b, e.To.User...)
	b = append(b, e.ID[:]...)
	b = append(b, byte(len(e.Mailbox)))
	b = append(b, e.Mailbox...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(e.Envelope)))
	return append(b, e.Envelope...), nil
}

// Decode decodes an entry record (layout on Encode). It returns
// ErrUnsupportedVersion for another version and ErrMalformed for anything
// else that is not such a record. The entry's slices are copies.
func Decode(raw []byte) (*Entry, error) {
	if err := record.CheckVersion(raw, "outbox entry"); err != nil {
		return nil, err
	}
	r := fixed.NewReader(raw[1:])
	e := &Entry{}
	e.To.Device = r.U32()
	e.To.User = string(r.Bytes(r.Count(uint64(r.U16()), keys.MaxUserLength, 1)))
	e.ID = r.A16()
	e.Mailbox = slices.Clone(r.Bytes(r.Count(uint64(r.U8()), 255, 1)))
	e.Envelope = slices.Clone(r.Bytes(r.Count(uint64(r.U32()), maxEnvelope, 1)))
	if !r.Done() || e.To.User == "" || len(e.Mailbox) == 0 || len(e.Envelope) == 0 {
		return nil, fmt.Errorf("%w: outbox entry", errs.ErrMalformed)
	}
	return e, nil
}

// headSize is the head record's size: version, from, to.
const headSize = 1 + 8 + 8

// encodeHead returns the head record (version record.Layout, from 8, to
// 8, big-endian; nothing follows), with room for the checksum.
func encodeHead(from, to uint64) []byte {
	b := make([]byte, 0, headSize+record.ChecksumSize)
	b = append(b, record.Layout)
	b = binary.BigEndian.AppendUint64(b, from)
	return binary.BigEndian.AppendUint64(b, to)
}

// decodeHead decodes the head record: ErrUnsupportedVersion for another
// version, ErrMalformed for another size or bounds out of order or
// further apart than Max.
func decodeHead(raw []byte) (from, to uint64, err error) {
	if err := record.CheckVersion(raw, "outbox head"); err != nil {
		return 0, 0, err
	}
	if len(raw) != headSize {
		return 0, 0, fmt.Errorf("%w: outbox head", errs.ErrMalformed)
	}
	from, to = binary.BigEndian.Uint64(raw[1:]), binary.BigEndian.Uint64(raw[9:])
	if to < from || to-from > Max {
		return 0, 0, fmt.Errorf("%w: outbox head bounds", errs.ErrMalformed)
	}
	return from, to, nil
}

// Box is the outbox's state in memory: which slots hold an entry, and the
// next slot to use. It holds no envelopes; they are read from the store
// when asked for.
type Box struct {
	next uint64
	live map[uint64]string // slot to its store key, "" until known
}

// Load reads the outbox through get, which returns a record's value
// (checksum checked) or an error matching ErrNotFound when it is absent.
// It reads the head, every slot it bounds, and the slots after it up to
// the first absent one; the entries themselves are only checked to exist.
func Load(get func(key string) ([]byte, error)) (*Box, error) {
	b := &Box{live: map[uint64]string{}}
	var from, to uint64
	raw, err := get(KeyHead)
	switch {
	case errors.Is(err, errs.ErrNotFound):
	case err != nil:
		return nil, err
	default:
		if from, to, err = decodeHead(raw); err != nil {
			return nil, err
		}
	}
	has := func(slot uint64) (bool, error) {
		_, err := get(Key(slot))
		if errors.Is(err, errs.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	for slot := from; slot < to; slot++ {
		ok, err := has(slot)
		if err != nil {
			return nil, err
		}
		if ok {
			b.live[slot] = ""
		}
	}
	b.next = to
	for {
		ok, err := has(b.next)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if len(b.live) >= Max {
			return nil, fmt.Errorf("%w: outbox holds more than %d entries", errs.ErrMalformed, Max)
		}
		b.live[b.next] = ""
		b.next++
	}
	return b, nil
}

// Len returns how many entries the outbox holds.
func (b *Box) Len() int { return len(b.live) }

// Has reports whether slot holds an entry.
func (b *Box) Has(slot uint64) bool {
	_, ok := b.live[slot]
	return ok
}

// Reserve returns the first of the slots for the next n entries (they
// follow it), without changing b: Add each once the Apply that writes it
// succeeds. It returns
// ErrOutboxFull when the outbox would hold more than Max.
func (b *Box) Reserve(n int) (uint64, error) {
	if len(b.live)+n > Max {
		return 0, fmt.Errorf("%w: %d envelopes not reported sent", errs.ErrOutboxFull, len(b.live))
	}
	return b.next, nil
}

// Add records that the entry in slot was committed.
func (b *Box) Add(slot uint64) { b.AddKeyed(slot, "") }

// AddKeyed is Add for an entry whose store key (Key(slot)) the caller has
// already built, so that StageSent need not build it again.
func (b *Box) AddKeyed(slot uint64, key string) {
	b.live[slot] = key
	b.next = max(b.next, slot+1)
}

// Slots returns the slots holding entries, oldest first.
func (b *Box) Slots() []uint64 {
	out := make([]uint64, 0, len(b.live))
	for s := range b.live {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Writer is where StageSent stages its changes: a batch whose Put frames
// the record (with its checksum) as every record is.
type Writer interface {
	Put(key string, value []byte)
	Delete(key string)
}

// StageSent stages into w the removal of the entries in slots that b
// holds (others are ignored) and the new head, and reports whether it
// staged anything; Remove the slots once the Apply succeeds.
//
// The new head's from is the oldest slot still held, found by a scan of
// the held slots: cheap while the app reports envelopes as they go out,
// at most Max steps when it has fallen behind.
func (b *Box) StageSent(slots []uint64, w Writer) bool {
	staged := false
	for i, s := range slots {
		if key, ok := b.live[s]; ok && !slices.Contains(slots[:i], s) {
			if key == "" {
				key = Key(s)
			}
			w.Delete(key)
			staged = true
		}
	}
	if !staged {
		return false
	}
	from := b.next
	for s := range b.live {
		if s < from && !slices.Contains(slots, s) {
			from = s
		}
	}
	w.Put(KeyHead, encodeHead(from, b.next))
	return true
}

// Remove records that the entries in slots were deleted.
func (b *Box) Remove(slots []uint64) {
	for _, s := range slots {
		delete(b.live, s)
	}
}

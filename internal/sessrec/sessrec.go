// Package sessrec is the session record of a Device, "sess/<name>/<session
// id in hex>": a session's metadata, the transcript's head, the ratchet's
// head and the queued read receipts, in one fixed layout rewritten with
// every message (docs/SPEC.md §17.4). The root package holds the session;
// this package only encodes and decodes its record.
package sessrec

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/fixed"
	"github.com/sealpost/sealpost/internal/receiptq"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// Meta is what a session record holds besides the transcript's
// live state: the fields of "sess/<address>/<session id in hex>". The
// ratchet state, the transcript's log blocks, the queued delivery
// receipts' blocks and the pending start are records of their own.
type Meta struct {
	// BaseKey is the session start's base key; the session id is the
	// first 16 bytes of its SHA-256.
	BaseKey   []byte
	Initiator bool
	// Pending: the peer has not replied to our session start, which is
	// saved in its own record and rides on every send until then.
	Pending bool
	// Stale: the session predates a restore from a backup, ours
	// (Restored) or the peer's (it said so in a content's resume field).
	// It still receives, but it is never current again and sends nothing.
	Stale bool
	// Announce: our contents on this session carry the resume field
	// (the peer's stale sessions with what they hold), until the peer
	// acknowledges one of them.
	Announce             bool
	CreatedUnixNano      int64
	LastReceivedUnixNano int64
	// Transcript is the transcript head as decoded from the record
	// (transcript.AppendHead); it aliases the record and is read only.
	Transcript []byte
	// RatchetHead is the head of the ratchet's split save
	// (ratchet.SaveSplit), which changes with every message and so lives
	// here rather than in a record of its own; it aliases the record.
	RatchetHead []byte
	// Receipts are receipts for messages received on this session, not
	// yet sent; nil when none were ever queued since the last send took
	// them all.
	Receipts *ReceiptQueue
}

// ReceiptQueue holds receipts not yet sent to a peer. The queued delivery
// receipts are those with index DeliveredFrom up to (not including)
// DeliveredTo, saved 16 ids per block (internal/receiptq); read receipts are few
// and saved in the session record.
type ReceiptQueue struct {
	Read          [][]byte // 16-byte ids
	DueUnixNano   int64    // when Flush may send them
	DeliveredFrom uint64
	DeliveredTo   uint64
}

// Sizes in the session record.
const (
	// BaseKeySize is the size of a session start's base key
	// (keys.SessionStart.BaseKey): type byte and X25519 key.
	BaseKeySize = 1 + keys.X25519PublicKeySize
	recordFixed = 1 + 1 + 8 + 8 + 1 + BaseKeySize + 4 + 2
	queueFixed  = 8 + 8 + 8 + 2
	// Flags of the session record.
	FlagInitiator = 1 << 0
	FlagPending   = 1 << 1
	FlagReceipts  = 1 << 2
	FlagStale     = 1 << 3
	FlagAnnounce  = 1 << 4
)

// Encode returns the session record from its live state, in a buffer of
// exactly its size plus room for the checksum (record.ChecksumSize). Layout
// (integers big-endian, times in Unix nanoseconds as two's complement):
//
//	version         1   record.Layout
//	flags           1   bit 0 initiator, bit 1 pending (a PendingStart
//	                    record exists), bit 2 the receipt section follows,
//	                    bit 3 stale, bit 4 announce (store layout 6);
//	                    other bits 0
//	created         8   when the session was made
//	last_received   8   when it last received (Send refuses a session
//	                    idle longer than the maximum age)
//	base_key_len    1   = 33
//	base_key        33  the session start's base key
//	transcript_len  4   at most transcript.MaxStateSize
//	transcript      the transcript head (transcript.AppendHead)
//	ratchet_len     2   at most ratchet.SplitHeadSize
//	ratchet         the ratchet's head (ratchet.SaveSplit; its other
//	                parts are the "rat/..." records), appended by
//	                appendRatchet
//
// and, when flag bit 2 is set, the receipt queue:
//
//	due             8   when Flush may send the queued receipts
//	delivered_from  8   index of the oldest queued delivery receipt
//	delivered_to    8   one past the newest (at most 256 more than from);
//	                    the ids are in the "rq/..." blocks
//	read_count      2   at most 256
//	read            16 each, the queued read-receipt ids, oldest first
//
// Nothing follows.
//
// conv is the session's transcript, pending whether its pending start
// record exists, and delivered the bounds of its queued delivery receipts.
func Encode(m *Meta, conv *transcript.Conversation, pending bool, delivered receiptq.Queue, appendRatchet func([]byte) ([]byte, error)) ([]byte, error) {
	if len(m.BaseKey) != BaseKeySize {
		return nil, fmt.Errorf("%w: session base key of %d bytes", errs.ErrMalformed, len(m.BaseKey))
	}
	var read [][]byte
	var due int64
	if m.Receipts != nil {
		read, due = m.Receipts.Read, m.Receipts.DueUnixNano
	}
	queue := m.Receipts != nil || delivered.To != 0
	head := conv.HeadSize()
	n := recordFixed + head
	flags := byte(0)
	if m.Initiator {
		flags |= FlagInitiator
	}
	if pending {
		flags |= FlagPending
	}
	if queue {
		flags |= FlagReceipts
		n += queueFixed + 16*len(read)
	}
	if m.Stale {
		flags |= FlagStale
	}
	if m.Announce {
		flags |= FlagAnnounce
	}
	b := make([]byte, 0, n+ratchet.SplitHeadSize+record.ChecksumSize)
	b = append(b, record.Layout, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(m.CreatedUnixNano))
	b = binary.BigEndian.AppendUint64(b, uint64(m.LastReceivedUnixNano))
	b = append(b, BaseKeySize)
	b = append(b, m.BaseKey...)
	b = binary.BigEndian.AppendUint32(b, uint32(head))
	b = conv.AppendHead(b)
	at := len(b)
	b, err := appendRatchet(append(b, 0, 0))
	if err != nil {
		return nil, err
	}
	rl := len(b) - at - 2
	if rl > ratchet.SplitHeadSize {
		return nil, fmt.Errorf("%w: ratchet head of %d bytes", errs.ErrMalformed, rl)
	}
	binary.BigEndian.PutUint16(b[at:], uint16(rl))
	n += rl
	if queue {
		b = binary.BigEndian.AppendUint64(b, uint64(due))
		b = binary.BigEndian.AppendUint64(b, delivered.From)
		b = binary.BigEndian.AppendUint64(b, delivered.To)
		b = binary.BigEndian.AppendUint16(b, uint16(len(read)))
		for _, id := range read {
			b = append(b, id...)
		}
	}
	if len(b) != n {
		return nil, fmt.Errorf("%w: session record of %d bytes, want %d", errs.ErrMalformed, len(b), n)
	}
	return b, nil
}

// Decode decodes a session record (layout on Encode). It
// returns errs.ErrUnsupportedVersion for another version and errs.ErrMalformed for
// anything else that is not such a record: a truncation, trailing bytes,
// an unknown flag, a base key of another size, a count past its bound or
// past the input, queue bounds out of order. The transcript head is
// checked by its own decoder. Transcript aliases raw; nothing else does.
func Decode(raw []byte) (*Meta, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty saved session", errs.ErrMalformed)
	}
	if raw[0] != record.Layout {
		return nil, fmt.Errorf("%w: saved session version %d", errs.ErrUnsupportedVersion, raw[0])
	}
	r := fixed.NewReader(raw[1:])
	flags := r.U8()
	m := &Meta{Initiator: flags&FlagInitiator != 0, Pending: flags&FlagPending != 0,
		Stale: flags&FlagStale != 0, Announce: flags&FlagAnnounce != 0,
		CreatedUnixNano: int64(r.U64()), LastReceivedUnixNano: int64(r.U64())}
	if flags&^(FlagInitiator|FlagPending|FlagReceipts|FlagStale|FlagAnnounce) != 0 || r.U8() != BaseKeySize {
		r.Fail()
	}
	m.BaseKey = bytes.Clone(r.Bytes(BaseKeySize))
	m.Transcript = r.Bytes(r.Count(uint64(r.U32()), transcript.MaxStateSize, 1))
	m.RatchetHead = r.Bytes(r.Count(uint64(r.U16()), ratchet.SplitHeadSize, 1))
	if flags&FlagReceipts != 0 {
		q := &ReceiptQueue{DueUnixNano: int64(r.U64()), DeliveredFrom: r.U64(), DeliveredTo: r.U64()}
		if q.DeliveredTo < q.DeliveredFrom || q.DeliveredTo-q.DeliveredFrom > receiptq.Capacity {
			r.Fail()
		}
		if n := r.Count(uint64(r.U16()), receiptq.Capacity, 16); n > 0 {
			flat := bytes.Clone(r.Bytes(16 * n))
			q.Read = make([][]byte, n)
			for i := range q.Read {
				q.Read[i] = flat[16*i : 16*i+16 : 16*i+16]
			}
		}
		m.Receipts = q
	}
	if !r.Done() {
		return nil, fmt.Errorf("%w: saved session record", errs.ErrMalformed)
	}
	return m, nil
}

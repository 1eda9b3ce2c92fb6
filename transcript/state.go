package transcript

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/internal/fixed"
)

// StateVersion is the saved-state format this build writes and reads. Any
// other version is ErrUnsupportedVersion. A later version may change every
// field after the version. Version 1 was a protocol-buffer message
// (the statepb.Transcript message, since removed); version 2 is the fixed layout on AppendBinary.
const StateVersion = 2

// MaxStateSize bounds saved state that UnmarshalBinary reads (512 KiB). The
// bounds above allow at most about 230 KiB (two full logs, MaxMissing
// segments, MaxSticky findings; TestLargestState builds it), so anything
// larger is corrupt.
const MaxStateSize = 512 << 10

// Sizes in the saved layout.
const (
	sentRecord     = 16 + 32     // a sent-log entry
	receivedRecord = 8 + 16 + 32 // a received-log entry
	segmentRecord  = 8 + 8 + 32 + 32
	findingFixed   = 1 + 1 + 8 + 8 + 1 // a finding without its ids
	stateFixed     = 1 + 8 + 32 + 3*8 + 8 + 32 + 8 + 8
	maxFindingIDs  = 2
)

// MarshalBinary encodes c deterministically (equal conversations encode
// to equal bytes) in the layout AppendBinary describes. It does not fail.
func (c *Conversation) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, c.stateSize(true)))
}

// AppendBinary appends c's saved state to b and returns the result. It
// does not fail. The layout (version 2; integers big-endian):
//
//	version          1   StateVersion
//	sent             8   our contents sent; the newest has seq sent
//	sent_head        32  hash of content sent (zero when sent is 0)
//	ack_from         8   the peer content carrying its newest report (0: none)
//	ack_count        8   the report: the peer had our first ack_count contents
//	ack_above        8   and content ack_above (0: none) but none between
//	received         8   every peer seq up to received arrived or was given up
//	received_head    32  hash of peer content received (zero when 0)
//	highest          8   the highest peer seq that arrived
//	received_logged  8   peer contents ever added to the received log (0: as
//	                     many as the log below holds; MarshalBinary writes 0,
//	                     a head from AppendHead the real total)
//	nsegments        2   runs of peer contents above received, ascending;
//	                     each: from 8, to 8, prev 32 (what content from
//	                     claims as previous hash), head 32 (hash of to)
//	nfindings        1   sticky findings, oldest first; each: kind 1
//	                     (Fork or Lost), outgoing 1 (0 or 1), seq 8, to_seq 8,
//	                     nids 1 (at most 2), ids 16 each
//	nsent            4   sent-log entries, oldest first, the last one seq
//	                     sent; each: id 16, hash 32
//	nreceived        4   received-log entries in arrival order; each: seq 8,
//	                     id 16, hash 32
//
// Nothing follows: trailing bytes are ErrMalformed.
func (c *Conversation) AppendBinary(b []byte) ([]byte, error) {
	return c.appendState(b, true, 0), nil
}

// stateSize returns the size of c's encoding, with its logs or not.
func (c *Conversation) stateSize(logs bool) int {
	n := stateFixed + 2 + len(c.in.segs)*segmentRecord + 1 + 4 + 4
	for _, f := range c.sticky {
		n += findingFixed + 16*len(f.IDs)
	}
	if logs {
		n += c.out.log.len()*sentRecord + c.in.log.len()*receivedRecord
	}
	return n
}

// appendState appends the layout of AppendBinary, with the logs or with
// none, and logged as received_logged.
func (c *Conversation) appendState(b []byte, logs bool, logged uint64) []byte {
	b = append(b, StateVersion)
	b = binary.BigEndian.AppendUint64(b, c.out.sent)
	b = append(b, c.out.head[:]...)
	b = binary.BigEndian.AppendUint64(b, c.out.ackFrom)
	b = binary.BigEndian.AppendUint64(b, c.out.ackCount)
	b = binary.BigEndian.AppendUint64(b, c.out.ackAbove)
	b = binary.BigEndian.AppendUint64(b, c.in.count)
	b = append(b, c.in.head[:]...)
	b = binary.BigEndian.AppendUint64(b, c.in.highest)
	b = binary.BigEndian.AppendUint64(b, logged)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.in.segs))) // at most MaxMissing
	for _, s := range c.in.segs {
		b = binary.BigEndian.AppendUint64(b, s.from)
		b = binary.BigEndian.AppendUint64(b, s.to)
		b = append(b, s.prev[:]...)
		b = append(b, s.head[:]...)
	}
	b = append(b, byte(len(c.sticky))) // at most MaxSticky
	for _, f := range c.sticky {
		b = append(b, byte(f.Kind), boolByte(f.Outgoing))
		b = binary.BigEndian.AppendUint64(b, f.Seq)
		b = binary.BigEndian.AppendUint64(b, f.ToSeq)
		b = append(b, byte(len(f.IDs))) // at most maxFindingIDs
		for _, id := range f.IDs {
			b = append(b, id[:]...)
		}
	}
	if !logs {
		return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(c.out.log.len())) // at most MaxLog
	for i := range c.out.log.len() {
		e := c.out.log.at(i)
		b = append(b, e.id[:]...)
		b = append(b, e.hash[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(c.in.log.len())) // at most MaxLog
	for i := range c.in.log.len() {
		e := c.in.log.at(i)
		b = binary.BigEndian.AppendUint64(b, e.seq)
		b = append(b, e.id[:]...)
		b = append(b, e.hash[:]...)
	}
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// saved is decoded saved state before its invariants are checked. The
// logs are packed entries as in the layout.
type saved struct {
	sent                        uint64
	sentHead                    [32]byte
	ackFrom, ackCount, ackAbove uint64
	received                    uint64
	receivedHead                [32]byte
	highest, receivedLogged     uint64
	segments                    []segment
	findings                    []Finding
	sentLog, receivedLog        []byte
}

// UnmarshalBinary replaces c with the state in data, from MarshalBinary.
// It returns ErrUnsupportedVersion for another format version and
// ErrMalformed for anything that does not decode or breaks an invariant
// (a bound, an order, a length); then c is unchanged. It never panics.
func (c *Conversation) UnmarshalBinary(data []byte) error {
	m, err := decodeState(data)
	if err != nil {
		return err
	}
	d, err := decode(m, false)
	if err != nil {
		return err
	}
	*c = *d
	return nil
}

// decodeState decodes saved state, checking its size, version and layout
// (not yet its invariants).
func decodeState(data []byte) (*saved, error) {
	if len(data) > MaxStateSize {
		return nil, fmt.Errorf("%w: transcript state larger than %d bytes", ErrMalformed, MaxStateSize)
	}
	if len(data) == 0 {
		return nil, malformed("empty")
	}
	if data[0] != StateVersion {
		return nil, fmt.Errorf("%w: transcript state version %d", ErrUnsupportedVersion, data[0])
	}
	r := fixed.NewReader(data[1:])
	m := &saved{sent: r.U64(), sentHead: r.A32(), ackFrom: r.U64(), ackCount: r.U64(), ackAbove: r.U64(),
		received: r.U64(), receivedHead: r.A32(), highest: r.U64(), receivedLogged: r.U64()}
	if n := r.Count(uint64(r.U16()), MaxMissing, segmentRecord); n > 0 {
		m.segments = make([]segment, n)
		for i := range m.segments {
			m.segments[i] = segment{from: r.U64(), to: r.U64(), prev: r.A32(), head: r.A32()}
		}
	}
	if n := r.Count(uint64(r.U8()), MaxSticky, findingFixed); n > 0 {
		m.findings = make([]Finding, n)
		for i := range m.findings {
			f := Finding{Kind: Kind(r.U8()), Outgoing: r.Bool(), Seq: r.U64(), ToSeq: r.U64()}
			if k := r.Count(uint64(r.U8()), maxFindingIDs, 16); k > 0 {
				f.IDs = make([][16]byte, k)
				for j := range f.IDs {
					f.IDs[j] = r.A16()
				}
			}
			m.findings[i] = f
		}
	}
	n := r.Count(uint64(r.U32()), MaxStateSize/sentRecord, sentRecord)
	m.sentLog = r.Bytes(n * sentRecord)
	n = r.Count(uint64(r.U32()), MaxStateSize/receivedRecord, receivedRecord)
	m.receivedLog = r.Bytes(n * receivedRecord)
	if !r.Done() {
		return nil, malformed("layout (truncated, a bad count or trailing bytes)")
	}
	return m, nil
}

// decode builds a Conversation from decoded state whose logs are filled
// in. split says the logs came from blocks: then each must be whole (the
// newest min(count, MaxLog) entries).
func decode(m *saved, split bool) (*Conversation, error) {
	var d Conversation
	if err := d.decodeOutgoing(m, split); err != nil {
		return nil, err
	}
	if err := d.decodeIncoming(m, split); err != nil {
		return nil, err
	}
	if err := d.decodeFindings(m.findings); err != nil {
		return nil, err
	}
	if d.out.ackFrom > d.in.highest {
		return nil, malformed("ack report from a peer seq never received")
	}
	return &d, nil
}

func malformed(what string) error {
	return fmt.Errorf("%w: transcript state: %s", ErrMalformed, what)
}

func (d *Conversation) decodeOutgoing(m *saved, split bool) error {
	o := &d.out
	o.head, o.sent = m.sentHead, m.sent
	n := len(m.sentLog) / sentRecord
	if len(m.sentLog)%sentRecord != 0 || n > MaxLog || uint64(n) > o.sent || (o.sent > 0 && n == 0) ||
		(split && uint64(n) != min(o.sent, MaxLog)) {
		return malformed("sent log length")
	}
	entries := make([]sentEntry, 0, n)
	for b := m.sentLog; len(b) > 0; b = b[sentRecord:] {
		entries = append(entries, sentEntry{id: [16]byte(b[:16]), hash: [32]byte(b[16:sentRecord])})
	}
	o.log.load(entries, o.sent)
	if (o.sent == 0 && o.head != [32]byte{}) || (o.sent > 0 && o.log.at(o.log.len()-1).hash != o.head) {
		return malformed("sent head is not the newest logged hash")
	}
	o.ackFrom, o.ackCount, o.ackAbove = m.ackFrom, m.ackCount, m.ackAbove
	report := Fields{Seq: 1, AckCount: o.ackCount, AckAbove: o.ackAbove}
	switch {
	case o.ackFrom == 0 && (o.ackCount != 0 || o.ackAbove != 0):
		return malformed("ack report without a peer content")
	case o.ackCount > o.sent || o.ackAbove > o.sent || report.check() != nil:
		return malformed("ack report")
	}
	return nil
}

func (d *Conversation) decodeIncoming(m *saved, split bool) error {
	in := &d.in
	in.head, in.count, in.highest = m.receivedHead, m.received, m.highest
	if in.count > in.highest || (in.count == 0 && in.head != [32]byte{}) {
		return malformed("received prefix")
	}
	if len(m.segments) > MaxMissing {
		return malformed("too many segments")
	}
	end := in.count
	for _, s := range m.segments {
		if s.from <= end || s.from-end < 2 || s.to < s.from || s.to > in.highest {
			return malformed("segment order")
		}
		end = s.to
	}
	in.segs = m.segments
	if end != in.highest || in.missing() > MaxMissing {
		return malformed("segments do not end at the highest seq, or too many missing")
	}
	return in.decodeLog(m.receivedLog, m.receivedLogged, split)
}

// decodeLog loads the received log: b holds its entries, the newest of
// which was the total-th ever added (total 0: b holds them all).
func (in *incoming) decodeLog(b []byte, total uint64, split bool) error {
	n := len(b) / receivedRecord
	if total == 0 {
		total = uint64(n)
	}
	if len(b)%receivedRecord != 0 || n > MaxLog || uint64(n) > total || (split && uint64(n) != min(total, MaxLog)) {
		return malformed("received log length")
	}
	entries := make([]receivedEntry, 0, n)
	for ; len(b) > 0; b = b[receivedRecord:] {
		e := receivedEntry{seq: binary.BigEndian.Uint64(b), id: [16]byte(b[8:24]), hash: [32]byte(b[24:receivedRecord])}
		if e.seq == 0 || e.seq > in.highest {
			return malformed("received log seq")
		}
		entries = append(entries, e)
	}
	in.log.load(entries, total)
	return nil
}

func (d *Conversation) decodeFindings(fs []Finding) error {
	if len(fs) > MaxSticky {
		return malformed("too many findings")
	}
	for _, f := range fs {
		switch {
		case f.Kind != Fork && f.Kind != Lost:
			return malformed("finding kind")
		case f.Seq > f.ToSeq || len(f.IDs) > maxFindingIDs:
			return malformed("finding range or ids")
		case f.Kind == Lost && (f.Outgoing || f.Seq == 0 || f.ToSeq > d.in.count || len(f.IDs) > 0):
			return malformed("lost finding")
		}
		if slices.ContainsFunc(d.sticky, f.same) {
			return malformed("repeated finding")
		}
		d.sticky = append(d.sticky, f)
	}
	return nil
}

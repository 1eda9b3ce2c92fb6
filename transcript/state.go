package transcript

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/statepb"
	"google.golang.org/protobuf/proto"
)

// StateVersion is the saved-state format this build writes and reads. Any
// other version is ErrUnsupportedVersion. A later version may change every
// field after the version.
const StateVersion = 1

// MaxStateSize bounds saved state that UnmarshalBinary reads (512 KiB). The
// bounds above allow at most about 254 KiB (two full logs, MaxMissing
// segments, MaxSticky findings; TestLargestState builds it), so anything
// larger is corrupt.
const MaxStateSize = 512 << 10

// Sizes of the packed log records in saved state.
const (
	sentRecord     = 16 + 32
	receivedRecord = 8 + 16 + 32
)

// MarshalBinary encodes c as a statepb.Transcript of version StateVersion,
// deterministically: equal conversations encode to equal bytes. It does
// not fail.
func (c *Conversation) MarshalBinary() ([]byte, error) {
	m := c.state()
	m.SentLog, m.ReceivedLog = c.packSent(), c.packReceived()
	return pbstrict.Marshal(m)
}

// state returns c's saved state without its logs.
func (c *Conversation) state() *statepb.Transcript {
	m := &statepb.Transcript{
		Version:      StateVersion,
		Sent:         c.out.sent,
		SentHead:     c.out.head[:],
		AckFrom:      c.out.ackFrom,
		AckCount:     c.out.ackCount,
		AckAbove:     c.out.ackAbove,
		Received:     c.in.count,
		ReceivedHead: c.in.head[:],
		Highest:      c.in.highest,
	}
	for _, s := range c.in.segs {
		m.Segments = append(m.Segments, &statepb.TranscriptSegment{From: s.from, To: s.to, Prev: s.prev[:], Head: s.head[:]})
	}
	for _, f := range c.sticky {
		pf := &statepb.TranscriptFinding{Kind: uint32(f.Kind), Outgoing: f.Outgoing, Seq: f.Seq, ToSeq: f.ToSeq}
		for _, id := range f.IDs {
			pf.Ids = append(pf.Ids, id[:]...)
		}
		m.Findings = append(m.Findings, pf)
	}
	return m
}

// packSent and packReceived lay the logs out oldest first, in one
// allocation each.
func (c *Conversation) packSent() []byte {
	b := make([]byte, c.out.log.len()*sentRecord)
	for i, off := 0, 0; i < c.out.log.len(); i, off = i+1, off+sentRecord {
		e := c.out.log.at(i)
		copy(b[off:], e.id[:])
		copy(b[off+16:], e.hash[:])
	}
	return b
}

func (c *Conversation) packReceived() []byte {
	b := make([]byte, c.in.log.len()*receivedRecord)
	for i, off := 0, 0; i < c.in.log.len(); i, off = i+1, off+receivedRecord {
		e := c.in.log.at(i)
		binary.BigEndian.PutUint64(b[off:], e.seq)
		copy(b[off+8:], e.id[:])
		copy(b[off+24:], e.hash[:])
	}
	return b
}

// UnmarshalBinary replaces c with the state in data, from MarshalBinary.
// It returns ErrUnsupportedVersion for another format version and
// ErrMalformed for anything that does not decode or breaks an invariant
// (a bound, an order, a hash length); then c is unchanged. It never panics.
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

// decodeState decodes saved state, checking its size and version.
func decodeState(data []byte) (*statepb.Transcript, error) {
	if len(data) > MaxStateSize {
		return nil, fmt.Errorf("%w: transcript state larger than %d bytes", ErrMalformed, MaxStateSize)
	}
	m := new(statepb.Transcript)
	if err := pbstrict.Unmarshal(data, m); err != nil {
		// Version first: a later version may carry fields this build lacks.
		var v statepb.Transcript
		if proto.Unmarshal(data, &v) == nil && v.Version != StateVersion {
			return nil, fmt.Errorf("%w: transcript state version %d", ErrUnsupportedVersion, v.Version)
		}
		return nil, fmt.Errorf("%w: transcript state encoding", ErrMalformed)
	}
	if m.Version != StateVersion {
		return nil, fmt.Errorf("%w: transcript state version %d", ErrUnsupportedVersion, m.Version)
	}
	return m, nil
}

// decode builds a Conversation from decoded state whose logs are filled
// in. split says the logs came from blocks: then each must be whole (the
// newest min(count, MaxLog) entries).
func decode(m *statepb.Transcript, split bool) (*Conversation, error) {
	var d Conversation
	if err := d.decodeOutgoing(m, split); err != nil {
		return nil, err
	}
	if err := d.decodeIncoming(m, split); err != nil {
		return nil, err
	}
	if err := d.decodeFindings(m.Findings); err != nil {
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

// hash32 reads a 32-byte hash field.
func hash32(b []byte, what string) ([32]byte, error) {
	if len(b) != 32 {
		return [32]byte{}, malformed(what + " is not 32 bytes")
	}
	return [32]byte(b), nil
}

func (d *Conversation) decodeOutgoing(m *statepb.Transcript, split bool) error {
	o := &d.out
	var err error
	if o.head, err = hash32(m.SentHead, "sent head"); err != nil {
		return err
	}
	o.sent = m.Sent
	n := len(m.SentLog) / sentRecord
	if len(m.SentLog)%sentRecord != 0 || n > MaxLog || uint64(n) > o.sent || (o.sent > 0 && n == 0) ||
		(split && uint64(n) != min(o.sent, MaxLog)) {
		return malformed("sent log length")
	}
	entries := make([]sentEntry, 0, n)
	for b := m.SentLog; len(b) > 0; b = b[sentRecord:] {
		entries = append(entries, sentEntry{id: [16]byte(b[:16]), hash: [32]byte(b[16:sentRecord])})
	}
	o.log.load(entries, o.sent)
	if (o.sent == 0 && o.head != [32]byte{}) || (o.sent > 0 && o.log.at(o.log.len()-1).hash != o.head) {
		return malformed("sent head is not the newest logged hash")
	}
	o.ackFrom, o.ackCount, o.ackAbove = m.AckFrom, m.AckCount, m.AckAbove
	report := Fields{Seq: 1, AckCount: o.ackCount, AckAbove: o.ackAbove}
	switch {
	case o.ackFrom == 0 && (o.ackCount != 0 || o.ackAbove != 0):
		return malformed("ack report without a peer content")
	case o.ackCount > o.sent || o.ackAbove > o.sent || report.check() != nil:
		return malformed("ack report")
	}
	return nil
}

func (d *Conversation) decodeIncoming(m *statepb.Transcript, split bool) error {
	in := &d.in
	var err error
	if in.head, err = hash32(m.ReceivedHead, "received head"); err != nil {
		return err
	}
	in.count, in.highest = m.Received, m.Highest
	if in.count > in.highest || (in.count == 0 && in.head != [32]byte{}) {
		return malformed("received prefix")
	}
	if len(m.Segments) > MaxMissing {
		return malformed("too many segments")
	}
	end := in.count
	for _, ps := range m.Segments {
		s := segment{from: ps.From, to: ps.To}
		if s.from <= end || s.from-end < 2 || s.to < s.from || s.to > in.highest {
			return malformed("segment order")
		}
		if s.prev, err = hash32(ps.Prev, "segment prev"); err != nil {
			return err
		}
		if s.head, err = hash32(ps.Head, "segment head"); err != nil {
			return err
		}
		in.segs = append(in.segs, s)
		end = s.to
	}
	if end != in.highest || in.missing() > MaxMissing {
		return malformed("segments do not end at the highest seq, or too many missing")
	}
	return in.decodeLog(m.ReceivedLog, m.ReceivedLogged, split)
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

func (d *Conversation) decodeFindings(pfs []*statepb.TranscriptFinding) error {
	if len(pfs) > MaxSticky {
		return malformed("too many findings")
	}
	for _, pf := range pfs {
		f := Finding{Kind: Kind(pf.Kind), Outgoing: pf.Outgoing, Seq: pf.Seq, ToSeq: pf.ToSeq}
		switch {
		case pf.Kind != uint32(Fork) && pf.Kind != uint32(Lost):
			return malformed("finding kind")
		case f.Seq > f.ToSeq || len(pf.Ids)%16 != 0 || len(pf.Ids) > 2*16:
			return malformed("finding range or ids")
		case f.Kind == Lost && (f.Outgoing || f.Seq == 0 || f.ToSeq > d.in.count || len(pf.Ids) > 0):
			return malformed("lost finding")
		}
		for b := pf.Ids; len(b) > 0; b = b[16:] {
			f.IDs = append(f.IDs, [16]byte(b[:16]))
		}
		if slices.ContainsFunc(d.sticky, f.same) {
			return malformed("repeated finding")
		}
		d.sticky = append(d.sticky, f)
	}
	return nil
}

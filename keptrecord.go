package sealpost

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/sealpost/sealpost/internal/fixed"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

// keptEntry indexes a received result kept until the app calls Done.
type keptEntry struct {
	env      [32]byte // envelopeID of the envelope: the result's key and redelivery check
	id       MessageID
	received int64  // Unix nanoseconds, for the age limit
	key      string // keptKey(env) once built; not saved
}

// storeKey returns the key of the kept result, built once.
func (k *keptEntry) storeKey() string {
	if k.key == "" {
		k.key = keptKey(k.env)
	}
	return k.key
}

// keptEntrySize is the size of a kept-index entry.
const keptEntrySize = 32 + 16 + 8

// keptKey returns the store key of the kept result of the envelope with
// id env: "kept/" and the id in hex, built in one allocation.
func keptKey(env [32]byte) string {
	var b [len(record.KeyKeptPrefix) + 2*len(env)]byte
	copy(b[:], record.KeyKeptPrefix)
	hex.Encode(b[len(record.KeyKeptPrefix):], env[:])
	return string(b[:])
}

// envelopeID names an envelope for the redelivery check: its routing tag
// and its last 16 bytes, the authenticator of its seal (the Poly1305 tag
// of the ratchet message's body, or of the HPKE ciphertext of a first
// contact). Two deliveries of one envelope have the same id; a genuine new
// message never has the id of another, since tags are unique per message
// key (random for first contacts) and the authenticator is a one-time MAC;
// and a message sealed again under a spent key after a rollback carries a
// new authenticator (the ratchet's body nonce is synthetic). An edited copy
// of a kept envelope that keeps both parts returns the kept result again,
// as the genuine copy would; it is never new plaintext. This costs nothing
// where a SHA-256 of the whole envelope cost a few hundred nanoseconds on
// every Receive.
func envelopeID(tag [16]byte, raw []byte) (id [32]byte) {
	copy(id[:16], tag[:])
	copy(id[16:], raw[max(0, len(raw)-16):])
	return id
}

// encodeKept returns the kept index record, "keptidx/<address>", in a
// buffer of exactly its size plus room for the checksum. Layout (integers
// big-endian):
//
//	version   1   record.Layout
//	count     4   entries, oldest first
//	entries   56 each: envelope id 32 (envelopeID, the tail of its
//	              "kept/" key), message id 16, received 8
//	              (Unix nanoseconds, two's complement)
//
// Nothing follows.
func (p *peer) encodeKept() ([]byte, error) {
	n := 1 + 4 + keptEntrySize*len(p.kept)
	b := make([]byte, 0, n+record.ChecksumSize)
	b = append(b, record.Layout)
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.kept))) // bounded by the kept limits
	for _, k := range p.kept {
		b = append(b, k.env[:]...)
		b = append(b, k.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(k.received))
	}
	return b, nil
}

// decodeKept loads the kept index record (absent: empty). It returns
// ErrUnsupportedVersion for another version and ErrMalformed for a
// truncation, trailing bytes or a count past the input.
func (p *peer) decodeKept(raw []byte) error {
	p.keptRaw = raw
	if raw == nil {
		p.kept = nil
		return nil
	}
	kept, err := decodeKeptIndex(raw)
	if err != nil {
		return err
	}
	p.kept = kept
	return nil
}

func decodeKeptIndex(raw []byte) ([]keptEntry, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty saved kept index", ErrMalformed)
	}
	if raw[0] != record.Layout {
		return nil, fmt.Errorf("%w: saved kept index version %d", ErrUnsupportedVersion, raw[0])
	}
	r := fixed.NewReader(raw[1:])
	kept := make([]keptEntry, r.Count(uint64(r.U32()), math.MaxInt32, keptEntrySize))
	for i := range kept {
		kept[i] = keptEntry{env: r.A32(), id: r.A16(), received: int64(r.U64())}
	}
	if !r.Done() {
		return nil, fmt.Errorf("%w: saved kept index", ErrMalformed)
	}
	return kept, nil
}

// Sizes in a kept result.
const (
	keptFixed        = 1 + 1 + 4 + 2 + 16 + 4 + 2 + 2 + 2
	keptFindingFixed = 1 + 1 + 8 + 8 + 2
	// maxKeptFindingIDs bounds a finding's ids: a receipt mismatch names
	// at most the delivered and read ids of one content.
	maxKeptFindingIDs = 2 * maxReceiptBatch
)

// encodeKeptResult returns the kept result record, "kept/<envelope id
// in hex>", in a buffer of exactly its size plus room for the checksum.
// Layout (integers big-endian):
//
//	version      1   record.Layout
//	kind         1   Kind: 1 message, 2 delivered, 3 read
//	device       4   the sender's device number
//	user_len     2   1..keys.MaxUserLength
//	user         the sender's user name
//	id           16  the message id
//	body_len     4   at most MaxBodySize
//	body         the message body
//	delivered_n  2   at most 256; then 16 bytes per delivered id
//	read_n       2   at most 256; then 16 bytes per read id
//	findings_n   2   then each finding: kind 1 (transcript.Kind, Gap to
//	                 IdentityChanged), outgoing 1 (0 or 1), seq 8,
//	                 to_seq 8, ids_n 2 (at most 512), 16 bytes per id
//
// Nothing follows.
func encodeKeptResult(in *Incoming) ([]byte, error) {
	n := keptFixed + len(in.From.User) + len(in.Body) + 16*(len(in.Delivered)+len(in.Read))
	for _, f := range in.Findings {
		n += keptFindingFixed + 16*len(f.IDs)
	}
	if len(in.From.User) > keys.MaxUserLength || len(in.Body) > MaxBodySize || len(in.Delivered) > maxReceiptBatch ||
		len(in.Read) > maxReceiptBatch || len(in.Findings) > math.MaxUint16 {
		return nil, fmt.Errorf("%w: kept result out of bounds", ErrMalformed)
	}
	b := make([]byte, 0, n+record.ChecksumSize)
	b = append(b, record.Layout, byte(in.Kind))
	b = binary.BigEndian.AppendUint32(b, in.From.Device)
	b = binary.BigEndian.AppendUint16(b, uint16(len(in.From.User)))
	b = append(b, in.From.User...)
	b = append(b, in.ID[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(in.Body)))
	b = append(b, in.Body...)
	b = appendIDs(b, in.Delivered)
	b = appendIDs(b, in.Read)
	b = binary.BigEndian.AppendUint16(b, uint16(len(in.Findings)))
	for _, f := range in.Findings {
		if len(f.IDs) > maxKeptFindingIDs {
			return nil, fmt.Errorf("%w: kept finding with %d ids", ErrMalformed, len(f.IDs))
		}
		out := byte(0)
		if f.Outgoing {
			out = 1
		}
		b = append(b, byte(f.Kind), out)
		b = binary.BigEndian.AppendUint64(b, f.Seq)
		b = binary.BigEndian.AppendUint64(b, f.ToSeq)
		b = binary.BigEndian.AppendUint16(b, uint16(len(f.IDs)))
		for _, id := range f.IDs {
			b = append(b, id[:]...)
		}
	}
	return b, nil
}

func appendIDs(b []byte, ids []MessageID) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(ids))) // at most maxReceiptBatch
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// decodeKeptResult decodes a kept result (layout on encodeKeptResult),
// marked Redelivered. It returns ErrUnsupportedVersion for another
// version and ErrMalformed for anything else that is not such a record: a
// truncation, trailing bytes, a kind out of range, a user name out of
// bounds, a byte that must be 0 or 1, a count past its bound or the input.
func decodeKeptResult(raw []byte) (*Incoming, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty kept result", ErrMalformed)
	}
	if raw[0] != record.Layout {
		return nil, fmt.Errorf("%w: kept result version %d", ErrUnsupportedVersion, raw[0])
	}
	r := fixed.NewReader(raw[1:])
	c := &content{kind: Kind(r.U8())}
	var from Address
	from.Device = r.U32()
	from.User = string(r.Bytes(r.Count(uint64(r.U16()), keys.MaxUserLength, 1)))
	c.id = r.A16()
	c.body = append([]byte(nil), r.Bytes(r.Count(uint64(r.U32()), MaxBodySize, 1))...)
	c.delivered = readIDs(&r, maxReceiptBatch)
	c.read = readIDs(&r, maxReceiptBatch)
	findings := make([]transcript.Finding, r.Count(uint64(r.U16()), math.MaxUint16, keptFindingFixed))
	for i := range findings {
		f := transcript.Finding{Kind: transcript.Kind(r.U8()), Outgoing: r.Bool(), Seq: r.U64(), ToSeq: r.U64()}
		if f.Kind < transcript.Gap || f.Kind > transcript.IdentityChanged {
			r.Fail()
		}
		if n := r.Count(uint64(r.U16()), maxKeptFindingIDs, 16); n > 0 {
			f.IDs = make([][16]byte, n)
			for j := range f.IDs {
				f.IDs[j] = r.A16()
			}
		}
		findings[i] = f
	}
	if !r.Done() || c.kind < KindMessage || c.kind > KindRead || from.User == "" {
		return nil, fmt.Errorf("%w: kept result", ErrMalformed)
	}
	if len(findings) == 0 {
		findings = nil
	}
	in := incomingFrom(from, c, findings)
	in.Redelivered = true
	return in, nil
}

// readIDs reads a 2-byte count, at most max, and that many 16-byte ids.
func readIDs(r *fixed.Reader, max int) []MessageID {
	n := r.Count(uint64(r.U16()), max, 16)
	if n == 0 {
		return nil
	}
	ids := make([]MessageID, n)
	for i := range ids {
		ids[i] = r.A16()
	}
	return ids
}

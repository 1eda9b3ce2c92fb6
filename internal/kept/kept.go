// Package kept is the results a Device keeps until the app calls Done:
// each result in its own record ("kept/<envelope id in hex>"), and per
// peer an index of them ("keptidx/<address>"), so that an envelope the
// relay delivers again returns the same result (marked Redelivered)
// without decrypting anything, and nothing accepted is lost between
// Receive and the app storing it.
package kept

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/fixed"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

// Entry indexes a received result kept until the app calls Done.
type Entry struct {
	Env      [32]byte // EnvelopeID of the envelope: the result's key and redelivery check
	ID       [16]byte // the message id
	Received int64    // Unix nanoseconds, for the age limit
	key      string   // Key(Env) once built; not saved
}

// NewEntry returns the entry of a result kept under key (Key(env)).
func NewEntry(env [32]byte, id [16]byte, received int64, key string) Entry {
	return Entry{Env: env, ID: id, Received: received, key: key}
}

// StoreKey returns the key of the kept result, built once.
func (k *Entry) StoreKey() string {
	if k.key == "" {
		k.key = Key(k.Env)
	}
	return k.key
}

// entrySize is the size of a kept-index entry.
const entrySize = 32 + 16 + 8

// Key returns the store key of the kept result of the envelope with
// id env: "kept/" and the id in hex, built in one allocation.
func Key(env [32]byte) string {
	var b [len(record.KeyKeptPrefix) + 2*len(env)]byte
	copy(b[:], record.KeyKeptPrefix)
	hex.Encode(b[len(record.KeyKeptPrefix):], env[:])
	return string(b[:])
}

// EnvelopeID names an envelope for the redelivery check: its routing tag
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
func EnvelopeID(tag [16]byte, raw []byte) (id [32]byte) {
	copy(id[:16], tag[:])
	copy(id[16:], raw[max(0, len(raw)-16):])
	return id
}

// EncodeIndex returns the kept index record of entries, "keptidx/<address>", in a
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
func EncodeIndex(entries []Entry) []byte {
	n := 1 + 4 + entrySize*len(entries)
	b := make([]byte, 0, n+record.ChecksumSize)
	b = append(b, record.Layout)
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries))) // bounded by the kept limits
	for _, k := range entries {
		b = append(b, k.Env[:]...)
		b = append(b, k.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(k.Received))
	}
	return b
}

// DecodeIndex decodes a kept index record (layout on EncodeIndex). It
// returns ErrUnsupportedVersion for another version and errs.ErrMalformed for
// a truncation, trailing bytes or a count past the input.
func DecodeIndex(raw []byte) ([]Entry, error) {
	if err := record.CheckVersion(raw, "saved kept index"); err != nil {
		return nil, err
	}
	r := fixed.NewReader(raw[1:])
	kept := make([]Entry, r.Count(uint64(r.U32()), math.MaxInt32, entrySize))
	for i := range kept {
		kept[i] = Entry{Env: r.A32(), ID: r.A16(), Received: int64(r.U64())}
	}
	if !r.Done() {
		return nil, fmt.Errorf("%w: saved kept index", errs.ErrMalformed)
	}
	return kept, nil
}

// Result is a kept result: what Receive returned for an envelope, saved
// until the app calls Done so that a redelivery returns it again. ID is
// the root package's message id type.
type Result[ID ~[16]byte] struct {
	Kind      uint8 // 1 message, 2 delivered, 3 read
	From      keys.Address
	ID        ID
	Body      []byte
	Delivered []ID
	Read      []ID
	Findings  []transcript.Finding
	// Attachments are the message's attachment pointers as they came in
	// the content (attach.Pointer encodings); the caller parses them.
	Attachments [][]byte
	// Repeated: the peer sent a content with this id before, and it was
	// received (the peer sent it again after a restore).
	Repeated bool
	// SyncFor is set on a copy from one's own other device: the user it
	// concerns (docs/SPEC.md section 22.5).
	SyncFor string
}

// Bounds of a kept result.
const (
	// MaxIDs bounds the delivered and the read ids of a result: one
	// receipt content's worth.
	MaxIDs = 256
	// maxFindingIDs bounds a finding's ids: a receipt mismatch names at
	// most the delivered and read ids of one content.
	maxFindingIDs = 2 * MaxIDs
	// MaxAttachments bounds a message's attachments, MaxAttachmentSize
	// one attachment pointer's encoding.
	MaxAttachments    = 16
	MaxAttachmentSize = 1024
	keptFixed         = 1 + 1 + 4 + 2 + 16 + 4 + 2 + 2 + 2 + 1 + 1
	findingFixed      = 1 + 1 + 8 + 8 + 2
)

// EncodeResult returns the kept result record, "kept/<envelope id
// in hex>", in a buffer of exactly its size plus room for the checksum.
// Layout (integers big-endian):
//
//	version      1   record.Layout
//	kind         1   Kind: 1 message, 2 delivered, 3 read, 4 account
//	device       4   the sender's device number
//	user_len     2   1..keys.MaxUserLength
//	user         the sender's user name
//	id           16  the message id
//	body_len     4   at most maxBody
//	body         the message body
//	delivered_n  2   at most 256; then 16 bytes per delivered id
//	read_n       2   at most 256; then 16 bytes per read id
//	findings_n   2   then each finding: kind 1 (transcript.Kind, Gap to
//	                 PeerRestored), outgoing 1 (0 or 1), seq 8,
//	                 to_seq 8, ids_n 2 (at most 512), 16 bytes per id
//	attachments_n 1  at most MaxAttachments; then each: length 2
//	                 (1..MaxAttachmentSize) and the pointer's encoding
//	flags        1   bit 0 repeated (store layout 6), bit 1 sync;
//	                 no other bit
//	sync_for     with the sync bit: length 2 (1..keys.MaxUserLength)
//	             and the user name
//
// Nothing follows.
func EncodeResult[ID ~[16]byte](in *Result[ID], maxBody int) ([]byte, error) {
	n := keptFixed + len(in.From.User) + len(in.Body) + 16*(len(in.Delivered)+len(in.Read)) + syncSize(in.SyncFor)
	for _, f := range in.Findings {
		n += findingFixed + 16*len(f.IDs)
	}
	for _, a := range in.Attachments {
		if len(a) == 0 || len(a) > MaxAttachmentSize {
			return nil, fmt.Errorf("%w: kept attachment of %d bytes", errs.ErrMalformed, len(a))
		}
		n += 2 + len(a)
	}
	if len(in.From.User) > keys.MaxUserLength || len(in.Body) > maxBody || len(in.Delivered) > MaxIDs ||
		len(in.Read) > MaxIDs || len(in.Findings) > math.MaxUint16 || len(in.Attachments) > MaxAttachments ||
		len(in.SyncFor) > keys.MaxUserLength {
		return nil, fmt.Errorf("%w: kept result out of bounds", errs.ErrMalformed)
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
		if len(f.IDs) > maxFindingIDs {
			return nil, fmt.Errorf("%w: kept finding with %d ids", errs.ErrMalformed, len(f.IDs))
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
	b = append(b, byte(len(in.Attachments)))
	for _, a := range in.Attachments {
		b = append(binary.BigEndian.AppendUint16(b, uint16(len(a))), a...)
	}
	flags := byte(0)
	if in.Repeated {
		flags |= flagRepeated
	}
	if in.SyncFor != "" {
		flags |= flagSync
	}
	b = append(b, flags)
	if in.SyncFor != "" {
		b = append(binary.BigEndian.AppendUint16(b, uint16(len(in.SyncFor))), in.SyncFor...)
	}
	return b, nil
}

// The flags of a kept result.
const (
	flagRepeated = 1 << 0
	flagSync     = 1 << 1
)

func syncSize(user string) int {
	if user == "" {
		return 0
	}
	return 2 + len(user)
}

func appendIDs[ID ~[16]byte](b []byte, ids []ID) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(ids))) // at most MaxIDs
	for _, id := range ids {
		b = append(b, id[:]...)
	}
	return b
}

// DecodeResult decodes a kept result (layout on EncodeResult). It returns ErrUnsupportedVersion for another
// version and errs.ErrMalformed for anything else that is not such a record: a
// truncation, trailing bytes, a kind out of range, a user name out of
// bounds, a byte that must be 0 or 1, a count past its bound or the input.
func DecodeResult[ID ~[16]byte](raw []byte, maxBody int) (*Result[ID], error) {
	if err := record.CheckVersion(raw, "kept result"); err != nil {
		return nil, err
	}
	r := fixed.NewReader(raw[1:])
	c := &Result[ID]{Kind: r.U8()}
	c.From.Device = r.U32()
	c.From.User = string(r.Bytes(r.Count(uint64(r.U16()), keys.MaxUserLength, 1)))
	c.ID = r.A16()
	c.Body = append([]byte(nil), r.Bytes(r.Count(uint64(r.U32()), maxBody, 1))...)
	c.Delivered = readIDs[ID](&r, MaxIDs)
	c.Read = readIDs[ID](&r, MaxIDs)
	findings := make([]transcript.Finding, r.Count(uint64(r.U16()), math.MaxUint16, findingFixed))
	for i := range findings {
		f := transcript.Finding{Kind: transcript.Kind(r.U8()), Outgoing: r.Bool(), Seq: r.U64(), ToSeq: r.U64()}
		if f.Kind < transcript.Gap || f.Kind > transcript.PeerRestored {
			r.Fail()
		}
		if n := r.Count(uint64(r.U16()), maxFindingIDs, 16); n > 0 {
			f.IDs = make([][16]byte, n)
			for j := range f.IDs {
				f.IDs[j] = r.A16()
			}
		}
		findings[i] = f
	}
	if n := r.Count(uint64(r.U8()), MaxAttachments, 3); n > 0 {
		c.Attachments = make([][]byte, n)
		for i := range c.Attachments {
			c.Attachments[i] = append([]byte(nil), r.Bytes(r.Count(uint64(r.U16()), MaxAttachmentSize, 1))...)
		}
	}
	flags := r.U8()
	c.Repeated = flags&flagRepeated != 0
	if flags&flagSync != 0 {
		c.SyncFor = string(r.Bytes(r.Count(uint64(r.U16()), keys.MaxUserLength, 1)))
	}
	if !r.Done() || c.Kind < 1 || c.Kind > 4 || c.From.User == "" || flags&^(flagRepeated|flagSync) != 0 {
		return nil, fmt.Errorf("%w: kept result", errs.ErrMalformed)
	}
	if len(findings) > 0 {
		c.Findings = findings
	}
	return c, nil
}

// readIDs reads a 2-byte count, at most max, and that many 16-byte ids.
func readIDs[ID ~[16]byte](r *fixed.Reader, max int) []ID {
	n := r.Count(uint64(r.U16()), max, 16)
	if n == 0 {
		return nil
	}
	ids := make([]ID, n)
	for i := range ids {
		ids[i] = r.A16()
	}
	return ids
}

package sealpost

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/internal/contentwire"
	"github.com/sealpost/sealpost/internal/kept"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

// contentVersion is the version of the Content format inside every sealed
// payload; any other is ErrUnsupportedVersion.
const contentVersion = 1

// Content limits.
const (
	// MaxBodySize bounds a message body. Envelopes are capped at 256 KiB;
	// this leaves room for padding and framing. Until the peer first
	// replies, every envelope also carries the session start, which is
	// capped at 128 KiB, so Send returns ErrTooLarge for bodies over about
	// 120 KiB on a session the peer has not yet confirmed. Larger payloads
	// belong in a blob store, with the message carrying the reference and
	// key.
	MaxBodySize = 200 << 10
	// MaxAttachments bounds the files one message carries. Each is an
	// attach.Pointer of at most about 900 bytes inside the seal; the files
	// themselves are in a blob store (envelope/attach).
	MaxAttachments = kept.MaxAttachments
)

// MessageID names one message or receipt: 16 random bytes chosen by the
// sender.
type MessageID [16]byte

// String returns the id in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

func newMessageID() MessageID {
	var id MessageID
	rand.Read(id[:])
	return id
}

// Kind tells a message from a receipt. On the wire they look the same.
type Kind uint8

// The kinds of content.
const (
	KindMessage   Kind = iota + 1 // a message with a body
	KindDelivered                 // a delivery receipt
	KindRead                      // a read receipt
	// KindAccount carries a change of the sender's account: a new device
	// list (a device added or removed), or the provisioning of a device
	// being linked. It has no body; Incoming.Devices says what changed.
	KindAccount
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindMessage:
		return "message"
	case KindDelivered:
		return "delivered"
	case KindRead:
		return "read"
	case KindAccount:
		return "account"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// content is a decoded Content.
type content struct {
	id          MessageID
	kind        Kind
	body        []byte
	delivered   []MessageID
	read        []MessageID
	receiptHash []byte
	attachments []*attach.Pointer
	resume      []resumePoint
	readSync    []MessageID
	pb          sealedpb.Content // the decoded fields, in the same allocation
}

// resumePoint is one entry of a content's resume field: a session the
// sender held before it restored a backup, and how many of our contents on
// it the restored state held (docs/SPEC.md §15.10).
type resumePoint struct {
	session [16]byte
	held    uint64
}

// resumePointSize is the size of one resume entry: session id, count.
const resumePointSize = 16 + 8

func (r resumePoint) encode() []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, resumePointSize), r.session[:]...), r.held)
}

// decodeResume parses a content's resume entries: at most maxSessions,
// each of resumePointSize bytes, no session named twice.
func decodeResume(raw [][]byte) ([]resumePoint, error) {
	if len(raw) > maxSessions {
		return nil, fmt.Errorf("%w: content resumes %d sessions", ErrMalformed, len(raw))
	}
	var out []resumePoint
	for _, r := range raw {
		if len(r) != resumePointSize {
			return nil, fmt.Errorf("%w: content resume entry", ErrMalformed)
		}
		pt := resumePoint{session: [16]byte(r), held: binary.BigEndian.Uint64(r[16:])}
		if slices.ContainsFunc(out, func(o resumePoint) bool { return o.session == pt.session }) {
			return nil, fmt.Errorf("%w: content resumes a session twice", ErrMalformed)
		}
		out = append(out, pt)
	}
	return out, nil
}

// decodeContent parses and validates a Content. It returns
// ErrUnsupportedVersion for another version and ErrMalformed for anything
// else that is not a well-formed content: a bad id, an unknown kind, a body
// on a receipt, a receipt without ids, too many ids.
func decodeContent(raw []byte) (*content, error) {
	c := new(content)
	pb := &c.pb
	if err := contentwire.Parse(raw, pb); err != nil {
		return nil, fmt.Errorf("%w: content encoding", ErrMalformed)
	}
	if pb.Version != contentVersion {
		return nil, fmt.Errorf("%w: content version %d", ErrUnsupportedVersion, pb.Version)
	}
	if pb.Kind < uint32(KindMessage) || pb.Kind > uint32(KindAccount) {
		return nil, fmt.Errorf("%w: content kind %d", ErrMalformed, pb.Kind)
	}
	c.kind, c.body, c.receiptHash = Kind(pb.Kind), pb.Body, pb.ReceiptHash
	if len(pb.Id) != len(c.id) {
		return nil, fmt.Errorf("%w: content id", ErrMalformed)
	}
	copy(c.id[:], pb.Id)
	var err error
	if c.delivered, err = decodeIDs(pb.Delivered); err != nil {
		return nil, err
	}
	if c.read, err = decodeIDs(pb.Read); err != nil {
		return nil, err
	}
	if c.attachments, err = decodePointers(pb.Attachments); err != nil {
		return nil, err
	}
	if c.resume, err = decodeResume(pb.Resume); err != nil {
		return nil, err
	}
	if c.readSync, err = decodeIDs(pb.ReadSync); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *content) validate() error {
	receipts := len(c.delivered) + len(c.read)
	switch {
	case c.kind < KindMessage || c.kind > KindAccount:
		return fmt.Errorf("%w: content kind %d", ErrMalformed, c.kind)
	case c.kind == KindAccount && (len(c.delivered) > 0 || len(c.read) > 0 ||
		len(c.pb.DeviceList) == 0 && len(c.pb.Provision) == 0 && len(c.pb.TrustedList) == 0):
		return fmt.Errorf("%w: an account content without a device list", ErrMalformed)
	case len(c.pb.TrustedList) > 0 && (c.kind != KindAccount || c.pb.SyncFor == "" || len(c.pb.Provision) > 0):
		return fmt.Errorf("%w: a trusted list outside a trust sync", ErrMalformed)
	case len(c.readSync) > 0 && (c.kind != KindRead || c.pb.SyncFor == ""):
		return fmt.Errorf("%w: read-sync ids outside a read sync", ErrMalformed)
	case (len(c.pb.Provision) > 0) != (len(c.pb.ProvisionMac) > 0) || len(c.pb.Provision) > 0 && c.kind != KindAccount:
		return fmt.Errorf("%w: provisioning fields", ErrMalformed)
	case len(c.pb.SyncFor) > keys.MaxUserLength:
		return fmt.Errorf("%w: sync user", ErrMalformed)
	case len(c.pb.ReplyMailbox) > 0 && (len(c.pb.ReplyMailbox) < 8+1 || len(c.pb.ReplyMailbox) > 8+envelope.MaxMailboxLength):
		return fmt.Errorf("%w: reply mailbox", ErrMalformed)
	case c.kind != KindMessage && len(c.body) > 0:
		return fmt.Errorf("%w: a receipt with a body", ErrMalformed)
	case c.kind != KindMessage && len(c.attachments) > 0:
		return fmt.Errorf("%w: a receipt with attachments", ErrMalformed)
	case c.kind == KindDelivered && (len(c.delivered) == 0 || len(c.read) > 0):
		return fmt.Errorf("%w: delivery receipt ids", ErrMalformed)
	case c.kind == KindRead && len(c.read) == 0 && len(c.readSync) == 0:
		return fmt.Errorf("%w: read receipt without ids", ErrMalformed)
	case len(c.body) > MaxBodySize:
		return fmt.Errorf("%w: body over %d bytes", ErrTooLarge, MaxBodySize)
	case receipts > 0 && len(c.receiptHash) != 32:
		return fmt.Errorf("%w: receipt hash", ErrMalformed)
	case receipts == 0 && len(c.receiptHash) != 0:
		return fmt.Errorf("%w: receipt hash without receipts", ErrMalformed)
	}
	if p := &c.pb; (p.Seq == 0) || len(p.Prev) != 32 || len(p.AckHash) != 32 {
		return fmt.Errorf("%w: content transcript fields", ErrMalformed)
	}
	return nil
}

func decodeIDs(raw [][]byte) ([]MessageID, error) {
	if len(raw) > maxReceiptBatch {
		return nil, fmt.Errorf("%w: more than %d receipt ids", ErrMalformed, maxReceiptBatch)
	}
	var out []MessageID
	for _, r := range raw {
		if len(r) != len(MessageID{}) {
			return nil, fmt.Errorf("%w: receipt id", ErrMalformed)
		}
		out = append(out, MessageID(r))
	}
	return out, nil
}

// decodePointers parses a content's attachment pointers: at most
// MaxAttachments, each a valid attach.Pointer (ErrMalformed otherwise).
func decodePointers(raw [][]byte) ([]*attach.Pointer, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > MaxAttachments {
		return nil, fmt.Errorf("%w: more than %d attachments", ErrMalformed, MaxAttachments)
	}
	out := make([]*attach.Pointer, len(raw))
	for i, r := range raw {
		p, err := attach.ParsePointer(r)
		if err != nil {
			return nil, fmt.Errorf("%w: attachment %d: %w", ErrMalformed, i, err)
		}
		out[i] = p
	}
	return out, nil
}

// encodePointers marshals attachments for a content: at most
// MaxAttachments, each valid (ErrTooLarge, ErrMalformed otherwise).
func encodePointers(ptrs []*attach.Pointer) ([][]byte, error) {
	if len(ptrs) > MaxAttachments {
		return nil, fmt.Errorf("%w: more than %d attachments", ErrTooLarge, MaxAttachments)
	}
	var out [][]byte
	for i, p := range ptrs {
		if p == nil {
			return nil, fmt.Errorf("%w: attachment %d is nil", ErrMalformed, i)
		}
		raw, err := p.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: attachment %d: %w", ErrMalformed, i, err)
		}
		out = append(out, raw)
	}
	return out, nil
}

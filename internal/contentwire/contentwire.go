// Package contentwire is the codec of sealedpb.Content, the plaintext of
// every message, receipt and session start, written out by hand so the
// per-message path needs no protobuf reflection. The wire format stays
// sealedpb.Content (docs/SPEC.md §12):
// Append writes exactly the bytes of its deterministic protobuf
// encoding (fields in number order, zero values and empty bytes left out,
// every repeated element written), and Parse accepts exactly what
// pbstrict.Unmarshal accepts (a known field with another wire type, an
// unknown field or a malformed field is an error; a repeated scalar field
// keeps its last value; uint32 fields keep the low 32 bits of the varint,
// as the protobuf library does). TestContentCodecMatchesProtobuf and
// FuzzContentCodec hold both to the protobuf library.
package contentwire

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sealpost/sealpost/proto/sealedpb"
)

// Field numbers of sealedpb.Content.
const (
	fieldVersion       = 1
	fieldID            = 2
	fieldKind          = 3
	fieldBody          = 4
	fieldDelivered     = 5
	fieldRead          = 6
	fieldReceiptHash   = 7
	fieldSeq           = 8
	fieldPrev          = 9
	fieldAckCount      = 10
	fieldAckHash       = 11
	fieldAckAbove      = 12
	fieldSenderMailbox = 13
	fieldAttachments   = 14
	fieldResume        = 15
	fieldOwnList       = 16
	fieldPeerList      = 17
	fieldDeviceList    = 18
	fieldSyncFor       = 19
	fieldProvision     = 20
	fieldProvisionMAC  = 21
	fieldReadSync      = 22
	fieldTrustedList   = 23
	fieldReplyMailbox  = 24
)

// Size returns the size of c's encoding.
func Size(c *sealedpb.Content) int {
	n := varintFieldSize(fieldVersion, uint64(c.Version)) + bytesFieldSize(fieldID, c.Id) +
		varintFieldSize(fieldKind, uint64(c.Kind)) + bytesFieldSize(fieldBody, c.Body) +
		bytesFieldSize(fieldReceiptHash, c.ReceiptHash) + varintFieldSize(fieldSeq, c.Seq) +
		bytesFieldSize(fieldPrev, c.Prev) + varintFieldSize(fieldAckCount, c.AckCount) +
		bytesFieldSize(fieldAckHash, c.AckHash) + varintFieldSize(fieldAckAbove, c.AckAbove) +
		bytesFieldSize(fieldSenderMailbox, c.SenderMailbox) +
		varintFieldSize(fieldOwnList, c.OwnList) + varintFieldSize(fieldPeerList, c.PeerList) +
		bytesFieldSize(fieldDeviceList, c.DeviceList) + stringFieldSize(fieldSyncFor, c.SyncFor) +
		bytesFieldSize(fieldProvision, c.Provision) + bytesFieldSize(fieldProvisionMAC, c.ProvisionMac) +
		bytesFieldSize(fieldTrustedList, c.TrustedList) + bytesFieldSize(fieldReplyMailbox, c.ReplyMailbox)
	for _, id := range c.Delivered {
		n += protowire.SizeTag(fieldDelivered) + protowire.SizeBytes(len(id))
	}
	for _, id := range c.Read {
		n += protowire.SizeTag(fieldRead) + protowire.SizeBytes(len(id))
	}
	for _, a := range c.Attachments {
		n += protowire.SizeTag(fieldAttachments) + protowire.SizeBytes(len(a))
	}
	for _, r := range c.Resume {
		n += protowire.SizeTag(fieldResume) + protowire.SizeBytes(len(r))
	}
	for _, id := range c.ReadSync {
		n += protowire.SizeTag(fieldReadSync) + protowire.SizeBytes(len(id))
	}
	return n
}

func stringFieldSize(num protowire.Number, v string) int {
	if v == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(v))
}

func varintFieldSize(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func bytesFieldSize(num protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(v))
}

// Append appends c's encoding to b.
func Append(b []byte, c *sealedpb.Content) []byte {
	b = appendVarintField(b, fieldVersion, uint64(c.Version))
	b = appendBytesField(b, fieldID, c.Id)
	b = appendVarintField(b, fieldKind, uint64(c.Kind))
	b = appendBytesField(b, fieldBody, c.Body)
	for _, id := range c.Delivered {
		b = protowire.AppendBytes(protowire.AppendTag(b, fieldDelivered, protowire.BytesType), id)
	}
	for _, id := range c.Read {
		b = protowire.AppendBytes(protowire.AppendTag(b, fieldRead, protowire.BytesType), id)
	}
	b = appendBytesField(b, fieldReceiptHash, c.ReceiptHash)
	b = appendVarintField(b, fieldSeq, c.Seq)
	b = appendBytesField(b, fieldPrev, c.Prev)
	b = appendVarintField(b, fieldAckCount, c.AckCount)
	b = appendBytesField(b, fieldAckHash, c.AckHash)
	b = appendVarintField(b, fieldAckAbove, c.AckAbove)
	b = appendBytesField(b, fieldSenderMailbox, c.SenderMailbox)
	for _, a := range c.Attachments {
		b = protowire.AppendBytes(protowire.AppendTag(b, fieldAttachments, protowire.BytesType), a)
	}
	for _, r := range c.Resume {
		b = protowire.AppendBytes(protowire.AppendTag(b, fieldResume, protowire.BytesType), r)
	}
	b = appendVarintField(b, fieldOwnList, c.OwnList)
	b = appendVarintField(b, fieldPeerList, c.PeerList)
	b = appendBytesField(b, fieldDeviceList, c.DeviceList)
	if c.SyncFor != "" {
		b = protowire.AppendString(protowire.AppendTag(b, fieldSyncFor, protowire.BytesType), c.SyncFor)
	}
	b = appendBytesField(b, fieldProvision, c.Provision)
	b = appendBytesField(b, fieldProvisionMAC, c.ProvisionMac)
	for _, id := range c.ReadSync {
		b = protowire.AppendBytes(protowire.AppendTag(b, fieldReadSync, protowire.BytesType), id)
	}
	b = appendBytesField(b, fieldTrustedList, c.TrustedList)
	b = appendBytesField(b, fieldReplyMailbox, c.ReplyMailbox)
	return b
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// ErrEncoding is the error of Parse for bytes that are not a Content
// encoding; callers wrap it in their own ErrMalformed.
var ErrEncoding = errors.New("content encoding")

// Parse decodes raw into c. Bytes fields alias raw.
func Parse(raw []byte, c *sealedpb.Content) error {
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return ErrEncoding
		}
		raw = raw[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(raw)
			if n < 0 {
				return ErrEncoding
			}
			raw = raw[n:]
			switch num {
			case fieldVersion:
				c.Version = uint32(v)
			case fieldKind:
				c.Kind = uint32(v)
			case fieldSeq:
				c.Seq = v
			case fieldAckCount:
				c.AckCount = v
			case fieldAckAbove:
				c.AckAbove = v
			case fieldOwnList:
				c.OwnList = v
			case fieldPeerList:
				c.PeerList = v
			default:
				return ErrEncoding
			}
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(raw)
			if n < 0 {
				return ErrEncoding
			}
			raw = raw[n:]
			v = v[:len(v):len(v)]
			if v == nil {
				v = []byte{}
			}
			switch num {
			case fieldID:
				c.Id = v
			case fieldBody:
				c.Body = v
			case fieldDelivered:
				c.Delivered = append(c.Delivered, v)
			case fieldRead:
				c.Read = append(c.Read, v)
			case fieldReceiptHash:
				c.ReceiptHash = v
			case fieldPrev:
				c.Prev = v
			case fieldAckHash:
				c.AckHash = v
			case fieldSenderMailbox:
				c.SenderMailbox = v
			case fieldAttachments:
				c.Attachments = append(c.Attachments, v)
			case fieldResume:
				c.Resume = append(c.Resume, v)
			case fieldDeviceList:
				c.DeviceList = v
			case fieldSyncFor:
				if !utf8.Valid(v) {
					return ErrEncoding // as the protobuf library refuses a proto3 string
				}
				c.SyncFor = string(v)
			case fieldProvision:
				c.Provision = v
			case fieldProvisionMAC:
				c.ProvisionMac = v
			case fieldReadSync:
				c.ReadSync = append(c.ReadSync, v)
			case fieldTrustedList:
				c.TrustedList = v
			case fieldReplyMailbox:
				c.ReplyMailbox = v
			default:
				return ErrEncoding
			}
		default:
			return ErrEncoding
		}
	}
	return nil
}

// Package wire is the codec of the routing header, the only part of an
// envelope a relay reads. It holds no keys and imports no cryptography, so
// that the server-side envelope package can use it.
//
// Layout (version 1), fixed so that parsing needs no allocation:
//
//	version   1 byte, = 1
//	mlen      1 byte, 1..MaxMailbox
//	mailbox   mlen bytes, opaque
//	tag       16 bytes, the routing tag
//	body      the rest, at least MinBody bytes, sealed
package wire

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/errs"
)

// Format constants.
const (
	// Version is the routing-header version this build reads and writes.
	Version = 1
	// MaxMailbox is the longest mailbox id (it is also keys.MaxMailboxLength).
	MaxMailbox = 64
	// TagSize is the size of a routing tag.
	TagSize = 16
	// MinBody is the smallest sealed body: an AEAD tag alone is 16 bytes, so
	// anything shorter cannot be genuine.
	MinBody = 16
	// MaxEnvelope bounds a whole envelope. Bodies are padded text and
	// receipts; attachments belong in a blob store, referenced by a message.
	MaxEnvelope = 256 << 10
)

// Header is a parsed routing header. Mailbox aliases the parsed input.
type Header struct {
	Version uint8
	Mailbox []byte
	Tag     [TagSize]byte
}

// Parse splits raw into its routing header and sealed body without copying.
// It returns errs.ErrTooLarge over MaxEnvelope, errs.ErrUnsupportedVersion
// for another version and errs.ErrMalformed for anything truncated.
func Parse(raw []byte) (Header, []byte, error) {
	if len(raw) > MaxEnvelope {
		return Header{}, nil, errs.ErrTooLarge
	}
	if len(raw) < 2 {
		return Header{}, nil, fmt.Errorf("%w: envelope shorter than its header", errs.ErrMalformed)
	}
	if raw[0] != Version {
		return Header{}, nil, fmt.Errorf("%w: envelope version %d", errs.ErrUnsupportedVersion, raw[0])
	}
	mlen := int(raw[1])
	if mlen == 0 || mlen > MaxMailbox {
		return Header{}, nil, fmt.Errorf("%w: mailbox length %d", errs.ErrMalformed, mlen)
	}
	end := 2 + mlen + TagSize
	if len(raw) < end+MinBody {
		return Header{}, nil, fmt.Errorf("%w: envelope truncated", errs.ErrMalformed)
	}
	h := Header{Version: Version, Mailbox: raw[2 : 2+mlen : 2+mlen]}
	copy(h.Tag[:], raw[2+mlen:end])
	return h, raw[end:], nil
}

// HeaderSize returns the size of a routing header for a mailbox id of the
// given length.
func HeaderSize(mailboxLen int) int { return 2 + mailboxLen + TagSize }

// AppendHeader appends a version-1 routing header to dst. It panics if the
// mailbox id is empty or longer than MaxMailbox: callers validate it first.
func AppendHeader(dst, mailbox []byte, tag [TagSize]byte) []byte {
	if len(mailbox) == 0 || len(mailbox) > MaxMailbox {
		panic("sealpost/internal/wire: mailbox id length out of range")
	}
	dst = append(dst, Version, byte(len(mailbox)))
	dst = append(dst, mailbox...)
	return append(dst, tag[:]...)
}

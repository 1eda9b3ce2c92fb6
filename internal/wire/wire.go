// Package wire is the codec of the routing header, the only part of an
// envelope a relay reads. It holds no keys and imports no cryptography, so
// that the server-side envelope package can use it.
//
// Layout (version 2), fixed so that parsing needs no allocation:
//
//	version   1 byte, = 2
//	mlen      1 byte, 1..MaxMailbox
//	mailbox   mlen bytes, opaque
//	tag       16 bytes, the routing tag
//	blen      3 bytes, big-endian: the body's length, MinBody..MaxEnvelope
//	body      blen bytes, sealed
//
// The body length makes an envelope self-delimiting (version 1 had none):
// a relay refuses a truncated or extended envelope at the door, before
// storing it, and envelopes can travel back to back in one stream (Next).
package wire

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/errs"
)

// Format constants.
const (
	// Version is the routing-header version this build reads and writes;
	// version 1 (no body length) is refused.
	Version = 2
	// MaxMailbox is the longest mailbox id (it is also keys.MaxMailboxLength).
	MaxMailbox = 64
	// TagSize is the size of a routing tag.
	TagSize = 16
	// LengthSize is the size of the body length.
	LengthSize = 3
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

// Parse splits raw, one whole envelope, into its routing header and
// sealed body without copying. It returns errs.ErrTooLarge over
// MaxEnvelope, errs.ErrUnsupportedVersion for another version and
// errs.ErrMalformed for a bad header, a body length out of bounds, or an
// envelope shorter or longer than its header says (truncated or
// extended).
func Parse(raw []byte) (Header, []byte, error) {
	if len(raw) > MaxEnvelope {
		return Header{}, nil, errs.ErrTooLarge
	}
	h, body, rest, err := next(raw)
	if err != nil {
		return Header{}, nil, err
	}
	if len(rest) != 0 {
		return Header{}, nil, fmt.Errorf("%w: %d bytes after the envelope", errs.ErrMalformed, len(rest))
	}
	return h, body, nil
}

// Next reads the envelope at the start of stream, envelopes sent back to
// back: its header and body, and what follows it. Errors as Parse, except
// that bytes after the envelope are rest, not an error.
func Next(stream []byte) (h Header, body, rest []byte, err error) {
	return next(stream)
}

func next(raw []byte) (Header, []byte, []byte, error) {
	if len(raw) < 2 {
		return Header{}, nil, nil, fmt.Errorf("%w: envelope shorter than its header", errs.ErrMalformed)
	}
	if raw[0] != Version {
		return Header{}, nil, nil, fmt.Errorf("%w: envelope version %d", errs.ErrUnsupportedVersion, raw[0])
	}
	mlen := int(raw[1])
	if mlen == 0 || mlen > MaxMailbox {
		return Header{}, nil, nil, fmt.Errorf("%w: mailbox length %d", errs.ErrMalformed, mlen)
	}
	end := 2 + mlen + TagSize + LengthSize
	if len(raw) < end {
		return Header{}, nil, nil, fmt.Errorf("%w: envelope truncated", errs.ErrMalformed)
	}
	blen := int(raw[end-3])<<16 | int(raw[end-2])<<8 | int(raw[end-1])
	switch {
	case end+blen > MaxEnvelope:
		return Header{}, nil, nil, errs.ErrTooLarge
	case blen < MinBody:
		return Header{}, nil, nil, fmt.Errorf("%w: body length %d", errs.ErrMalformed, blen)
	case len(raw) < end+blen:
		return Header{}, nil, nil, fmt.Errorf("%w: envelope truncated", errs.ErrMalformed)
	}
	h := Header{Version: Version, Mailbox: raw[2 : 2+mlen : 2+mlen]}
	copy(h.Tag[:], raw[2+mlen:end-LengthSize])
	return h, raw[end : end+blen : end+blen], raw[end+blen:], nil
}

// HeaderSize returns the size of a routing header for a mailbox id of the
// given length.
func HeaderSize(mailboxLen int) int { return 2 + mailboxLen + TagSize + LengthSize }

// AppendHeader appends a routing header for a body of bodyLen bytes to
// dst. It panics if the mailbox id is empty or longer than MaxMailbox, or
// the body length is out of bounds: callers validate both first.
func AppendHeader(dst, mailbox []byte, tag [TagSize]byte, bodyLen int) []byte {
	if len(mailbox) == 0 || len(mailbox) > MaxMailbox {
		panic("sealpost/internal/wire: mailbox id length out of range")
	}
	if bodyLen < 0 || bodyLen > MaxEnvelope {
		panic("sealpost/internal/wire: body length out of range")
	}
	dst = append(dst, Version, byte(len(mailbox)))
	dst = append(dst, mailbox...)
	dst = append(dst, tag[:]...)
	return append(dst, byte(bodyLen>>16), byte(bodyLen>>8), byte(bodyLen))
}

// AppendEnvelope appends a whole envelope, the header for body and body,
// to dst (AppendHeader's panics apply).
func AppendEnvelope(dst, mailbox []byte, tag [TagSize]byte, body []byte) []byte {
	return append(AppendHeader(dst, mailbox, tag, len(body)), body...)
}

// Package envelope reads the routing header of a sealpost envelope: the one
// part a relay may see. It holds no keys and links no cryptography (a test
// enforces this), so a relay can import it and nothing else from sealpost.
//
// # What the relay learns
//
// From an envelope a relay learns the recipient's mailbox id, a 16-byte
// routing tag that looks random and changes every message, the envelope's
// padded size, and when it saw it. It never learns the sender, whether the
// envelope is a message or a receipt, message numbers or ratchet keys, or
// which envelopes belong to the same conversation.
//
// # Format
//
// The routing header is a fixed layout rather than protobuf, so that Parse
// allocates nothing (TestParseAllocations checks 0; a protobuf round trip
// of a message of the same shape allocates 6 times): version (1 byte),
// mailbox length (1 byte), mailbox id, tag (16 bytes), the body's length
// (3 bytes, big-endian), then the sealed body. The length makes an
// envelope self-delimiting: Parse refuses one that is truncated or has
// bytes appended, so a relay turns a damaged upload away at the door, and
// Next reads envelopes sent back to back. Version 2 is the only version;
// version 1 (no body length) and any other are ErrUnsupportedVersion. A
// later version may change everything after the version byte. The layout,
// and how clients fill it in, is section 8 of the specification,
// docs/SPEC.md in the repository.
package envelope

import (
	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/wire"
)

// Format limits and sizes.
const (
	// Version is the routing-header version this build reads.
	Version = wire.Version
	// MaxSize bounds a whole envelope (256 KiB). Relays should refuse
	// anything larger before reading it whole.
	MaxSize = wire.MaxEnvelope
	// MaxMailboxLength bounds a mailbox id (64 bytes).
	MaxMailboxLength = wire.MaxMailbox
	// TagSize is the size of a routing tag.
	TagSize = wire.TagSize
)

// Errors returned by Parse; the same values as the root package's.
var (
	// ErrMalformed reports a truncated or inconsistent header.
	ErrMalformed = errs.ErrMalformed
	// ErrUnsupportedVersion reports an envelope of another version.
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion
	// ErrTooLarge reports an envelope over MaxSize.
	ErrTooLarge = errs.ErrTooLarge
)

// Header is an envelope's routing header: everything a relay may read.
type Header struct {
	Version uint8
	// Mailbox is the recipient's mailbox id. It aliases the parsed input:
	// copy it to keep it beyond the input's lifetime.
	Mailbox []byte
	// Tag is the routing tag, which lets the recipient find the session
	// without trying keys. To a relay it is random.
	Tag [TagSize]byte
}

// Parse reads the routing header of raw, one whole envelope, without any
// key and without allocating. It returns ErrTooLarge over MaxSize,
// ErrUnsupportedVersion for another version and ErrMalformed for a
// truncated or inconsistent header, a body too short to be sealed, or an
// envelope shorter or longer than its header says.
func Parse(raw []byte) (Header, error) {
	h, _, err := wire.Parse(raw)
	if err != nil {
		return Header{}, err
	}
	return Header{Version: h.Version, Mailbox: h.Mailbox, Tag: h.Tag}, nil
}

// Next reads the envelope at the start of stream, envelopes sent back to
// back: its routing header, its sealed body, and what follows it (both
// alias stream). The errors are Parse's, except that bytes after the
// envelope are rest.
func Next(stream []byte) (h Header, body, rest []byte, err error) {
	wh, body, rest, err := wire.Next(stream)
	if err != nil {
		return Header{}, nil, nil, err
	}
	return Header{Version: wh.Version, Mailbox: wh.Mailbox, Tag: wh.Tag}, body, rest, nil
}

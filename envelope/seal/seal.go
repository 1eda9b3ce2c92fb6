// Package seal builds and opens the sealed bodies of sealpost envelopes on
// the client side (docs/SPEC.md section 8). The relay-side view of the same
// bytes is package envelope, which links none of this.
//
// # First contact
//
// A conversation's first envelopes carry the session start (the sender's
// address, identity and prekey choices, and the first ratchet message),
// padded and sealed with HPKE (RFC 9180) using the X-Wing KEM
// (MLKEM768-X25519), HKDF-SHA256 and ChaCha20-Poly1305 to the recipient's
// signed mailbox key. The routing tag is random. The HPKE info is a label
// and the recipient's mailbox id; the associated data is the routing header
// as sent, so a relay cannot move the envelope to another mailbox or change
// its tag without the open failing. Sealed sender is therefore post-quantum
// from the first envelope.
//
// # Session envelopes
//
// Inside a session the body is the ratchet message as is: the ratchet
// encrypts the header and the body, and its routing tag goes in the clear
// header. There is no public-key operation per message.
//
// # Protocol decisions
//
//   - No body type byte: a recipient finds a session envelope by its tag and
//     tries the first-contact open otherwise, so nothing but the size (which
//     the relay sees anyway) tells first contact from a session envelope.
//   - ChaCha20-Poly1305 as the HPKE AEAD, like the ratchet, so one AEAD
//     covers every byte sealpost encrypts.
package seal

import (
	"crypto/hpke"
	"crypto/rand"
	"fmt"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/kdf"
	"github.com/sealpost/sealpost/internal/pad"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
)

// Errors, the same values as the root package's.
var (
	ErrMalformed          = errs.ErrMalformed
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion
	ErrTooLarge           = errs.ErrTooLarge
	ErrDecrypt            = errs.ErrDecrypt
)

// hpkeEncSize is the size of an X-Wing encapsulation (ML-KEM-768 ciphertext
// and X25519 share); hpkeTagSize is the AEAD tag.
const (
	hpkeEncSize = 1088 + 32
	hpkeTagSize = 16
	// FirstContactOverhead is what sealing adds to the padded session start.
	FirstContactOverhead = hpkeEncSize + hpkeTagSize
)

// FirstContact seals a session start (keys.SessionStart.MarshalBinary) to
// the mailbox key in the recipient's bundle (from keys.ParseBundle, or
// checked with Bundle.Verify) and returns the whole envelope. It returns
// ErrTooLarge for a start over keys.MaxSessionStartSize, which no recipient
// would open, and ErrMalformed for a bundle without a mailbox key.
func FirstContact(to *keys.Bundle, start []byte) ([]byte, error) {
	if len(start) > keys.MaxSessionStartSize {
		return nil, fmt.Errorf("%w: session start over %d bytes", ErrTooLarge, keys.MaxSessionStartSize)
	}
	if to == nil || to.MailboxKey.HPKE() == nil || len(to.Mailbox) == 0 || len(to.Mailbox) > wire.MaxMailbox {
		return nil, fmt.Errorf("%w: bundle without a valid mailbox and mailbox key", ErrMalformed)
	}
	var tag [wire.TagSize]byte
	rand.Read(tag[:])
	plain := pad.Append(nil, start)
	bodyLen := FirstContactOverhead + len(plain)
	if wire.HeaderSize(len(to.Mailbox))+bodyLen > envelope.MaxSize {
		return nil, fmt.Errorf("%w: first-contact envelope over %d bytes", ErrTooLarge, envelope.MaxSize)
	}
	// The header, with the body's length, is the seal's associated data.
	raw := wire.AppendHeader(nil, to.Mailbox, tag, bodyLen)
	enc, sender, err := hpke.NewSender(to.MailboxKey.HPKE(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info(to.Mailbox))
	if err != nil {
		return nil, fmt.Errorf("seal: hpke sender: %w", err)
	}
	body, err := sender.Seal(raw, plain)
	if err != nil {
		return nil, fmt.Errorf("seal: hpke seal: %w", err)
	}
	raw = append(raw, enc...)
	return append(raw, body...), nil
}

// OpenFirstContact opens a first-contact envelope addressed to mailbox with
// the mailbox key and decodes the session start inside. It returns
// ErrDecrypt when the envelope was not sealed to this key and mailbox (or
// was altered), ErrMalformed for an envelope for another mailbox or a bad
// inner encoding, and the errors of keys.ParseSessionStart.
func OpenFirstContact(k *keys.MailboxKey, mailbox, raw []byte) (*keys.SessionStart, error) {
	h, body, err := wire.Parse(raw)
	if err != nil {
		return nil, err
	}
	if !ct.Equal(h.Mailbox, mailbox) {
		return nil, fmt.Errorf("%w: envelope is for another mailbox", ErrMalformed)
	}
	if len(body) < FirstContactOverhead {
		return nil, fmt.Errorf("%w: first-contact body too short", ErrMalformed)
	}
	header := raw[:len(raw)-len(body)]
	r, err := hpke.NewRecipient(body[:hpkeEncSize], k.HPKE(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), info(mailbox))
	if err != nil {
		return nil, fmt.Errorf("%w: first-contact encapsulation", ErrDecrypt)
	}
	plain, err := r.Open(header, body[hpkeEncSize:])
	if err != nil {
		return nil, fmt.Errorf("%w: first-contact envelope", ErrDecrypt)
	}
	start, err := pad.Unpad(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: first-contact padding", ErrMalformed)
	}
	return keys.ParseSessionStart(start)
}

// Session frames a ratchet message and its routing tag as an envelope for
// mailbox, appending to dst. The mailbox id must be 1 to 64 bytes and the
// message at most envelope.MaxSize (it panics otherwise: callers validate
// the mailbox once, when they learn it, and bound what they encrypt), and
// at least 16 bytes, as every ratchet message is.
func Session(dst, mailbox []byte, tag [wire.TagSize]byte, ratchetMessage []byte) []byte {
	dst = wire.AppendHeader(dst, mailbox, tag, len(ratchetMessage))
	return append(dst, ratchetMessage...)
}

// Split returns an envelope's routing header and its sealed body (aliasing
// raw), with the errors of envelope.Parse.
func Split(raw []byte) (envelope.Header, []byte, error) {
	h, body, err := wire.Parse(raw)
	if err != nil {
		return envelope.Header{}, nil, err
	}
	return envelope.Header{Version: h.Version, Mailbox: h.Mailbox, Tag: h.Tag}, body, nil
}

func info(mailbox []byte) []byte {
	return append([]byte(kdf.LabelFirstContact), mailbox...)
}

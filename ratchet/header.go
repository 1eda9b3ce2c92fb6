package ratchet

import (
	"encoding/binary"

	"golang.org/x/crypto/chacha20poly1305"
)

// The message layout of version 3, fixed so that the per-message path needs
// no parser and every message of a given body length has the same size,
// whatever the state of the KEM ratchet:
//
//	message = version (1) || nonce (12) || encrypted header (98) ||
//	          body ciphertext (len+16)
//	header  = sender ratchet public key (32) || PN (4, BE) || N (4, BE) ||
//	          KEM field (42)
//	KEM field = mixed (4, BE) || kind (1) || epoch (4, BE) || index (1) ||
//	            chunk (32)
//
// One synthetic nonce seals both parts: the first 12 bytes of
// HMAC-SHA-256(message key, label || header plaintext || body plaintext),
// sent in clear. The header is sealed with ChaCha20-Poly1305 under the
// chain's header AEAD key (see headerKeys) with that nonce, AD the session
// AD || version || tag; the body under the message key with the same
// nonce, AD the session AD || version || tag || encrypted header. The
// header AEAD key and the message key are independent keys, so one nonce
// under both is safe. The receiver reads the nonce before it opens the
// header.
//
// Why the nonce covers the header (decision 6 in doc.go): a message key
// seals one message, except after a rollback, when a session restored from
// an old backup re-derives spent message keys and header positions. The
// header plaintext changes with what the session received since (its KEM
// field), so a nonce that depended on the chain position only (version 2
// took the routing tag's first 12 bytes) sealed two different headers
// under one (header key, nonce) pair when a restored session received and
// then sent again: one keystream, and the Poly1305 key of that nonce
// exposed. Now the same (key, nonce) pair means the same header and body
// plaintext, up to an HMAC collision, so the same bytes: a rollback leaks
// only that two messages are equal.
//
// The KEM field (kemratchet.go) is: mixed, the newest epoch of the
// sender's own KEM lane that the sending chain's root step mixed; kind,
// 0 filler, 1 a chunk of the sender's encapsulation key, 2 a chunk of the
// ciphertext answering the receiver's encapsulation key; epoch and index
// (the erasure point) of the chunk; and the 32-byte chunk. A filler has
// epoch, index and chunk zero. Version 1 had no KEM field (a 40-byte
// header), version 2 took the header nonce from the routing tag; both are
// refused with ErrUnsupportedVersion.
const (
	// Version is the message format version this build writes and reads.
	// Version 1 (no KEM ratchet) and version 2 (header nonce taken from
	// the routing tag) are refused: no silent downgrade.
	Version = 3

	// TagSize is the size of a routing tag.
	TagSize = 16

	// Overhead is how many bytes a message adds to its plaintext (not
	// counting the routing tag, which travels in the envelope's routing
	// header).
	Overhead = bodyOffset + bodyOverhead

	pubSize       = 32
	headerSize    = pubSize + 4 + 4 + kemFieldSize
	encHeaderSize = headerSize + chacha20poly1305.Overhead
	nonceOffset   = 1
	headerOffset  = nonceOffset + nonceSize
	bodyOffset    = headerOffset + encHeaderSize
	nonceSize     = chacha20poly1305.NonceSize
	bodyOverhead  = chacha20poly1305.Overhead
)

// header is a decrypted message header.
type header struct {
	dh  [pubSize]byte
	pn  uint32
	n   uint32
	kem kemField
}

// putHeader writes the plaintext header into b, which is headerSize long.
func putHeader(b []byte, dh *[pubSize]byte, pn, n uint32, f *kemField) {
	copy(b, dh[:])
	binary.BigEndian.PutUint32(b[pubSize:], pn)
	binary.BigEndian.PutUint32(b[pubSize+4:], n)
	f.put(b[pubSize+8:])
}

// parseHeader reads a plaintext header of exactly headerSize bytes. The
// KEM field's values are checked by the receive path (checkField).
func parseHeader(b []byte) (h header) {
	copy(h.dh[:], b)
	h.pn = binary.BigEndian.Uint32(b[pubSize:])
	h.n = binary.BigEndian.Uint32(b[pubSize+4:])
	h.kem.parse(b[pubSize+8:])
	return h
}

// splitMessage checks the version and the minimum length and returns the
// nonce, the encrypted header and the body ciphertext (step 1 of the
// receive path).
func splitMessage(msg []byte) (nonce, encHeader, body []byte, err error) {
	if len(msg) == 0 {
		return nil, nil, nil, errorf(ErrMalformed, "empty message")
	}
	if msg[0] != Version {
		return nil, nil, nil, errorf(ErrUnsupportedVersion, "message version %d", msg[0])
	}
	if len(msg) < Overhead {
		return nil, nil, nil, errorf(ErrMalformed, "message of %d bytes is shorter than %d", len(msg), Overhead)
	}
	return msg[nonceOffset:headerOffset], msg[headerOffset:bodyOffset], msg[bodyOffset:], nil
}

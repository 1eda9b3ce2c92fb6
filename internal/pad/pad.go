// Package pad pads plaintexts before they are sealed, so that the sizes a
// relay sees fall into few buckets: a read receipt and a short message are
// the same size on the wire.
//
// The padded length is Padmé (Nikitin et al., "Reducing Metadata Leakage
// from Encrypted Files and Communication with PURBs", PETS 2019) with a
// floor of MinSize bytes: at most about 12% overhead for long plaintexts,
// and O(log log L) bits of length leaked. The padding itself is one 0x80
// byte then zero bytes (ISO/IEC 7816-4), so any byte string pads and
// unpads unambiguously. Padding happens before sealing and is authenticated
// with the plaintext; Unpad runs only on authenticated bytes.
package pad

import (
	"errors"
	"math/bits"
)

// MinSize is the smallest padded size: every receipt and every message up to
// MinSize-1 bytes becomes exactly this long. 384 puts a message with a body
// of up to 256 bytes (plus its id, transcript fields and framing, about 100
// bytes) in the same bucket as a delivery or read receipt (TESTING.md, checklist item 39).
const MinSize = 384

// ErrBadPadding reports a padded plaintext without a valid padding marker.
var ErrBadPadding = errors.New("bad padding")

// Size returns the padded size of an n-byte plaintext: Padmé of n+1 (room
// for the marker byte), at least MinSize.
func Size(n int) int {
	l := n + 1
	if l <= MinSize {
		return MinSize
	}
	e := bits.Len(uint(l)) - 1 // floor(log2 l)
	s := bits.Len(uint(e))     // floor(log2 e) + 1
	mask := 1<<(e-s) - 1
	return (l + mask) &^ mask
}

// Append appends msg padded to Size(len(msg)) to dst.
func Append(dst, msg []byte) []byte {
	return appendPadding(append(dst, msg...), len(msg))
}

// Pad pads msg in place: it appends the padding to msg, within msg's
// capacity when there is room (a caller that encodes into a buffer of
// Size(n) bytes pads without copying), and returns the padded message.
func Pad(msg []byte) []byte { return appendPadding(msg, len(msg)) }

// appendPadding appends the padding of an n-byte message to dst.
func appendPadding(dst []byte, n int) []byte {
	return append(append(dst, 0x80), make([]byte, Size(n)-n-1)...)
}

// Unpad returns the plaintext inside padded, aliasing it. It returns
// ErrBadPadding if there is no marker or the length is not a padded size.
func Unpad(padded []byte) ([]byte, error) {
	i := len(padded) - 1
	for i >= 0 && padded[i] == 0 {
		i--
	}
	if i < 0 || padded[i] != 0x80 || Size(i) != len(padded) {
		return nil, ErrBadPadding
	}
	return padded[:i:i], nil
}

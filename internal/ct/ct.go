// Package ct holds the constant-time helpers sealpost uses to compare and
// test secret values.
package ct

import "crypto/subtle"

// Equal reports whether a and b hold the same bytes, in time that depends
// only on their lengths.
func Equal(a, b []byte) bool {
	return subtle.ConstantTimeCompare(a, b) == 1
}

// IsZero reports whether every byte of b is zero, in time that depends only
// on len(b).
func IsZero(b []byte) bool {
	var acc byte
	for _, v := range b {
		acc |= v
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}

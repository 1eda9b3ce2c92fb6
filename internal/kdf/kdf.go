// Package kdf holds every key-derivation label of the sealpost protocol (in
// labels.go) and thin wrappers over HKDF-SHA-256 and HMAC-SHA-256 that take
// those labels.
//
// The wrappers panic only on a length no caller in this module can ask for
// (more than 255 hash blocks); that is a programming error, not bad input.
package kdf

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
)

// Key derives n bytes from secret with HKDF-SHA-256 (RFC 5869): extract with
// salt, expand with info = label || context.
func Key(secret, salt []byte, label string, context []byte, n int) []byte {
	info := make([]byte, 0, len(label)+len(context))
	info = append(append(info, label...), context...)
	out, err := hkdf.Key(sha256.New, secret, salt, string(info), n)
	if err != nil {
		panic("sealpost/internal/kdf: " + err.Error())
	}
	return out
}

// MAC returns HMAC-SHA-256 under key of label followed by each part.
func MAC(key []byte, label string, parts ...[]byte) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	for _, p := range parts {
		m.Write(p)
	}
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// Hash returns SHA-256 of label followed by each part.
func Hash(label string, parts ...[]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(label))
	for _, p := range parts {
		h.Write(p)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

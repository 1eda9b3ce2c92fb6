package keys

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Every public key on the wire starts with one type byte, so that a key of
// one kind can never be read as another (docs/SPEC.md section 5.2).
const (
	typeX25519    byte = 0x01
	typeEd25519   byte = 0x02
	typeMLKEM768  byte = 0x03
	typeMLKEM1024 byte = 0x04
	typeXWing     byte = 0x05
)

// Limits on the parts of an Address and a mailbox id.
const (
	// MaxUserLength bounds Address.User in bytes: long enough for any
	// account id or hash a service uses, short enough to bound bundles.
	MaxUserLength = 256
	// MaxMailboxLength bounds a mailbox id, which the relay routes on and
	// which appears in every routing header.
	MaxMailboxLength = 64
)

// Address names one device of one user. The user string is the app's
// account identifier; Device tells a user's devices apart.
type Address struct {
	User   string
	Device uint32
}

// String returns "user.device".
func (a Address) String() string {
	return fmt.Sprintf("%s.%d", a.User, a.Device)
}

// validate reports ErrMalformed for an empty, overlong or non-UTF-8 user.
func (a Address) validate() error {
	if a.User == "" || len(a.User) > MaxUserLength || !utf8.ValidString(a.User) {
		return fmt.Errorf("%w: address user", ErrMalformed)
	}
	return nil
}

// appendAddress appends the unambiguous encoding of a: a 2-byte length, the
// user bytes, then the device as 4 bytes.
func appendAddress(b []byte, a Address) []byte {
	b = appendBytes16(b, []byte(a.User))
	return binary.BigEndian.AppendUint32(b, a.Device)
}

// appendBytes16 appends p with a 2-byte big-endian length prefix. Every
// caller passes at most a few kilobytes.
func appendBytes16(b, p []byte) []byte {
	if len(p) > math.MaxUint16 {
		panic("sealpost/keys: field too long to encode")
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...)
}

// typed returns key prefixed by its type byte.
func typed(t byte, key []byte) []byte {
	out := make([]byte, 0, 1+len(key))
	return append(append(out, t), key...)
}

// untyped checks that b is a key of type t and size n and returns the key
// bytes without the type byte, aliasing b.
func untyped(b []byte, t byte, n int, field string) ([]byte, error) {
	if len(b) != 1+n || b[0] != t {
		return nil, fmt.Errorf("%w: %s: want key type %#x of %d bytes", ErrMalformed, field, t, n)
	}
	return b[1:], nil
}

package attach

import (
	"crypto/rand"
	"fmt"

	"github.com/sealpost/sealpost/internal/ct"
)

// KeySize is the size of a file key.
const KeySize = 32

// Key is the secret key of one file: every blob gets a fresh one
// (GenerateKey), carried to the recipients inside the Pointer. It must be
// kept secret. It prints as "attach.Key{…}" with every fmt verb.
type Key struct{ b [KeySize]byte }

// GenerateKey returns a new random file key.
func GenerateKey() *Key {
	k := new(Key)
	rand.Read(k.b[:])
	return k
}

// NewKey returns the key whose bytes are b (as Bytes returned them). It
// returns ErrMalformed for a length other than KeySize and for the all-zero
// key, which GenerateKey never makes and which is almost surely a bug.
func NewKey(b []byte) (*Key, error) {
	if len(b) != KeySize {
		return nil, fmt.Errorf("%w: attach: file key of %d bytes, want %d", ErrMalformed, len(b), KeySize)
	}
	if ct.IsZero(b) {
		return nil, fmt.Errorf("%w: attach: all-zero file key", ErrMalformed)
	}
	k := new(Key)
	copy(k.b[:], b)
	return k, nil
}

// Bytes returns a copy of the key's bytes.
func (k *Key) Bytes() []byte { return append([]byte(nil), k.b[:]...) }

// Equal reports whether k and o are the same key, in constant time.
func (k *Key) Equal(o *Key) bool { return o != nil && ct.Equal(k.b[:], o.b[:]) }

// String prints no key material.
func (Key) String() string { return "attach.Key{…}" }

// GoString prints no key material.
func (k Key) GoString() string { return k.String() }

// Format prints no key material, whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

package keys

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/kdf"
)

// Sizes of X25519 prekeys, in bytes.
const (
	// X25519SeedSize is the size of an X25519 private key.
	X25519SeedSize = 32
	// X25519PublicKeySize is the size of an X25519 public key without its
	// type byte.
	X25519PublicKeySize = 32
)

// SignedPrekey is a medium-term X25519 prekey signed by the identity
// together with its expiry. The app rotates it (the Device's RotatePrekeys);
// a session start uses it for two of its exchanges, and a bundle carrying it
// is refused with ErrExpired once it expires. It must be kept secret.
type SignedPrekey struct {
	id     uint32
	key    *ecdh.PrivateKey
	public PublicSignedPrekey
}

// GenerateSignedPrekey returns a new signed prekey with the given id and
// expiry (whole seconds; at least one second after 1970), signed by
// identity. It returns ErrMalformed for an expiry out of range.
func GenerateSignedPrekey(id uint32, expires time.Time, identity *IdentityPrivateKey) (*SignedPrekey, error) {
	var seed [X25519SeedSize]byte
	rand.Read(seed[:])
	defer clear(seed[:])
	return NewSignedPrekey(id, seed[:], expires, identity)
}

// NewSignedPrekey rebuilds a signed prekey from its id, its seed (from
// [SignedPrekey.Bytes]), its expiry and the identity that signs it. Ed25519
// signatures are deterministic, so the result equals the key that was
// saved. It returns ErrMalformed for a bad seed or an expiry out of range.
func NewSignedPrekey(id uint32, seed []byte, expires time.Time, identity *IdentityPrivateKey) (*SignedPrekey, error) {
	key, err := newX25519(seed, "signed prekey")
	if err != nil {
		return nil, err
	}
	exp, err := expiryOf(expires, "signed prekey")
	if err != nil {
		return nil, err
	}
	pub := key.PublicKey()
	sig := identity.signParts(kdf.LabelSigSignedPrekey, u32(id), u64(exp), typed(typeX25519, pub.Bytes()))
	k := &SignedPrekey{id: id, key: key, public: PublicSignedPrekey{ID: id, Expires: unixTime(exp), key: pub}}
	copy(k.public.signature[:], sig)
	return k, nil
}

// ID returns the prekey's id.
func (k *SignedPrekey) ID() uint32 { return k.id }

// Bytes returns a copy of the private key. It must be kept secret.
func (k *SignedPrekey) Bytes() []byte { return k.key.Bytes() }

// Public returns the signed public prekey to publish in a bundle.
func (k *SignedPrekey) Public() PublicSignedPrekey { return k.public }

// String prints the id only.
func (k SignedPrekey) String() string { return fmt.Sprintf("keys.SignedPrekey{id %d}", k.id) }

// GoString prints the id only.
func (k SignedPrekey) GoString() string { return k.String() }

// Format prints the id only, whatever the verb.
func (k SignedPrekey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// PublicSignedPrekey is a signed X25519 prekey as published. The signature
// covers the id, the expiry and the key.
type PublicSignedPrekey struct {
	ID        uint32
	Expires   time.Time // whole seconds; a bundle is refused from then on
	key       *ecdh.PublicKey
	signature [ed25519.SignatureSize]byte
}

// Bytes returns the typed public key (type byte, then 32 bytes).
func (p PublicSignedPrekey) Bytes() []byte { return typed(typeX25519, p.key.Bytes()) }

// Signature returns a copy of the identity's signature over the key.
func (p PublicSignedPrekey) Signature() []byte { return append([]byte(nil), p.signature[:]...) }

// verify checks the signature against identity.
func (p PublicSignedPrekey) verify(identity PublicIdentity) error {
	return identity.verify(p.signature[:], kdf.LabelSigSignedPrekey, u32(p.ID), u64(wireExpiry(p.Expires)), p.Bytes())
}

// OneTimePrekey is an unsigned X25519 prekey used by at most one session
// start and deleted once that start succeeds. It must be kept secret.
type OneTimePrekey struct {
	id  uint32
	key *ecdh.PrivateKey
}

// GenerateOneTimePrekey returns a new one-time prekey with the given id.
func GenerateOneTimePrekey(id uint32) *OneTimePrekey {
	var seed [X25519SeedSize]byte
	rand.Read(seed[:])
	defer clear(seed[:])
	k, err := NewOneTimePrekey(id, seed[:])
	if err != nil {
		panic("sealpost/keys: " + err.Error()) // unreachable
	}
	return k
}

// NewOneTimePrekey rebuilds a one-time prekey from its id and its seed
// (from [OneTimePrekey.Bytes]).
func NewOneTimePrekey(id uint32, seed []byte) (*OneTimePrekey, error) {
	key, err := newX25519(seed, "one-time prekey")
	if err != nil {
		return nil, err
	}
	return &OneTimePrekey{id: id, key: key}, nil
}

// ID returns the prekey's id.
func (k *OneTimePrekey) ID() uint32 { return k.id }

// Bytes returns a copy of the private key. It must be kept secret.
func (k *OneTimePrekey) Bytes() []byte { return k.key.Bytes() }

// Public returns the public prekey to publish in a bundle.
func (k *OneTimePrekey) Public() PublicOneTimePrekey {
	return PublicOneTimePrekey{ID: k.id, key: k.key.PublicKey()}
}

// String prints the id only.
func (k OneTimePrekey) String() string { return fmt.Sprintf("keys.OneTimePrekey{id %d}", k.id) }

// GoString prints the id only.
func (k OneTimePrekey) GoString() string { return k.String() }

// Format prints the id only, whatever the verb.
func (k OneTimePrekey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// PublicOneTimePrekey is a one-time X25519 prekey as published. It is not
// signed: a forged one makes the session start fail, never succeed with a
// key the responder does not hold.
type PublicOneTimePrekey struct {
	ID  uint32
	key *ecdh.PublicKey
}

// Bytes returns the typed public key (type byte, then 32 bytes).
func (p PublicOneTimePrekey) Bytes() []byte { return typed(typeX25519, p.key.Bytes()) }

// newX25519 validates a 32-byte private key.
func newX25519(seed []byte, field string) (*ecdh.PrivateKey, error) {
	if len(seed) != X25519SeedSize {
		return nil, fmt.Errorf("%w: %s must be %d bytes", ErrMalformed, field, X25519SeedSize)
	}
	key, err := ecdh.X25519().NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, field)
	}
	return key, nil
}

// parseX25519 validates a typed X25519 public key.
func parseX25519(b []byte, field string) (*ecdh.PublicKey, error) {
	raw, err := untyped(b, typeX25519, X25519PublicKeySize, field)
	if err != nil {
		return nil, err
	}
	if !canonicalX25519(raw) {
		return nil, fmt.Errorf("%w: %s: non-canonical X25519 encoding", ErrMalformed, field)
	}
	key, err := ecdh.X25519().NewPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, field)
	}
	return key, nil
}

// canonicalX25519 reports whether raw is the canonical encoding of a field
// element: the top bit clear and the value below 2^255-19. RFC 7748 tells
// receivers to mask the top bit; we reject instead, so that one key has
// exactly one encoding and a flipped bit is never silently ignored.
func canonicalX25519(raw []byte) bool {
	if raw[31]&0x80 != 0 {
		return false
	}
	if raw[31] != 0x7f || raw[0] < 0xed {
		return true
	}
	for _, b := range raw[1:31] {
		if b != 0xff {
			return true
		}
	}
	return false
}

// u32 encodes v big-endian.
func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// u64 encodes v big-endian.
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// maxExpiry bounds an expiry in Unix seconds (year 9999), so that every
// value a bundle carries is a time.Time that round-trips.
const maxExpiry = 253402300799

// expiryOf returns t in whole Unix seconds, or ErrMalformed when it is not
// in 1 .. maxExpiry (the zero time included: every signed key expires).
func expiryOf(t time.Time, field string) (uint64, error) {
	s := t.Unix()
	if s < 1 || s > maxExpiry {
		return 0, fmt.Errorf("%w: %s expiry out of range", ErrMalformed, field)
	}
	return uint64(s), nil
}

// wireExpiry returns a key's expiry as the Unix seconds the wire and the
// signature carry. Every key's expiry passed expiryOf or expiryTime, so it
// is in 1 .. maxExpiry; any other time gives 0, which no parser accepts.
func wireExpiry(t time.Time) uint64 {
	s := t.Unix()
	if s < 1 || s > maxExpiry {
		return 0
	}
	return uint64(s)
}

// unixTime returns the time of exp, an expiry that expiryOf returned (at
// most maxExpiry, so the conversion to int64 is exact).
func unixTime(exp uint64) time.Time {
	return time.Unix(int64(min(exp, maxExpiry)), 0)
}

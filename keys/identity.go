package keys

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/kdf"
)

// Sizes of identity keys, in bytes.
const (
	// IdentitySeedSize is the size of an identity private key in seed form.
	IdentitySeedSize = 32
	// PublicIdentitySize is the size of an encoded public identity: the
	// typed Ed25519 key, the typed X25519 key and the Ed25519 signature over
	// the latter.
	PublicIdentitySize = 1 + 32 + 1 + 32 + ed25519.SignatureSize
	// FingerprintSize is the size of a public identity's fingerprint.
	FingerprintSize = 32
)

// IdentityPrivateKey is a device's long-term identity: an Ed25519 signing key
// and an X25519 key-agreement key, both derived from one 32-byte seed. It
// must be kept secret; its String and Format methods print only the public
// fingerprint.
type IdentityPrivateKey struct {
	seed   [IdentitySeedSize]byte
	sign   ed25519.PrivateKey
	agree  *ecdh.PrivateKey
	public PublicIdentity
}

// GenerateIdentity returns a new random identity.
func GenerateIdentity() *IdentityPrivateKey {
	var seed [IdentitySeedSize]byte
	rand.Read(seed[:])
	k, err := NewIdentityFromSeed(seed[:])
	if err != nil {
		panic("sealpost/keys: " + err.Error()) // unreachable: any 32 bytes are a valid seed
	}
	return k
}

// NewIdentityFromSeed rebuilds an identity from the seed returned by
// [IdentityPrivateKey.Bytes]. The seed must be IdentitySeedSize bytes.
func NewIdentityFromSeed(seed []byte) (*IdentityPrivateKey, error) {
	if len(seed) != IdentitySeedSize {
		return nil, fmt.Errorf("%w: identity seed must be %d bytes", ErrMalformed, IdentitySeedSize)
	}
	k := &IdentityPrivateKey{sign: ed25519.NewKeyFromSeed(seed)}
	copy(k.seed[:], seed)
	x := kdf.Key(seed, nil, kdf.LabelIdentityAgreement, nil, 32)
	agree, err := ecdh.X25519().NewPrivateKey(x)
	clear(x)
	if err != nil {
		return nil, fmt.Errorf("%w: identity agreement key", ErrMalformed)
	}
	k.agree = agree
	pub := agree.PublicKey()
	k.public = PublicIdentity{agree: pub}
	copy(k.public.signing[:], k.sign.Public().(ed25519.PublicKey))
	copy(k.public.agreement[:], pub.Bytes())
	sig := k.signParts(kdf.LabelSigIdentity, typed(typeX25519, pub.Bytes()))
	copy(k.public.signature[:], sig)
	return k, nil
}

// Bytes returns a copy of the identity's seed. It must be kept secret.
func (k *IdentityPrivateKey) Bytes() []byte {
	return append([]byte(nil), k.seed[:]...)
}

// Public returns the public identity that others verify and pin.
func (k *IdentityPrivateKey) Public() PublicIdentity { return k.public }

// signParts signs the length-prefixed label followed by parts.
func (k *IdentityPrivateKey) signParts(label string, parts ...[]byte) []byte {
	return ed25519.Sign(k.sign, signedMessage(label, parts...))
}

// signedMessage builds the exact bytes a signature covers: the label with a
// length prefix, then each part with a length prefix. Every part is a fixed
// or length-checked field value, so the encoding is unambiguous.
func signedMessage(label string, parts ...[]byte) []byte {
	n := 2 + len(label)
	for _, p := range parts {
		n += 2 + len(p)
	}
	msg := appendBytes16(make([]byte, 0, n), []byte(label))
	for _, p := range parts {
		msg = appendBytes16(msg, p)
	}
	return msg
}

// String prints the public fingerprint only.
func (k IdentityPrivateKey) String() string {
	return "keys.IdentityPrivateKey{" + k.public.shortFingerprint() + "}"
}

// GoString prints the public fingerprint only.
func (k IdentityPrivateKey) GoString() string { return k.String() }

// Format prints the public fingerprint only, whatever the verb.
func (k IdentityPrivateKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// PublicIdentity is the public half of an identity: an Ed25519 key, an
// X25519 key and the Ed25519 signature over the X25519 key. Values built by
// [ParsePublicIdentity] have a verified signature.
type PublicIdentity struct {
	signing   [ed25519.PublicKeySize]byte
	agreement [32]byte
	signature [ed25519.SignatureSize]byte
	agree     *ecdh.PublicKey
}

// ParsePublicIdentity decodes an identity from [PublicIdentity.Bytes] and
// verifies its signature. It returns ErrMalformed for a bad encoding and
// ErrBadSignature when the X25519 key is not signed by the Ed25519 key.
func ParsePublicIdentity(b []byte) (PublicIdentity, error) {
	if len(b) != PublicIdentitySize {
		return PublicIdentity{}, fmt.Errorf("%w: identity must be %d bytes", ErrMalformed, PublicIdentitySize)
	}
	signing, err := untyped(b[:33], typeEd25519, 32, "identity signing key")
	if err != nil {
		return PublicIdentity{}, err
	}
	agreement, err := untyped(b[33:66], typeX25519, 32, "identity agreement key")
	if err != nil {
		return PublicIdentity{}, err
	}
	if !canonicalX25519(agreement) {
		return PublicIdentity{}, fmt.Errorf("%w: identity agreement key: non-canonical X25519 encoding", ErrMalformed)
	}
	agree, err := ecdh.X25519().NewPublicKey(agreement)
	if err != nil {
		return PublicIdentity{}, fmt.Errorf("%w: identity agreement key", ErrMalformed)
	}
	var p PublicIdentity
	copy(p.signing[:], signing)
	copy(p.agreement[:], agreement)
	copy(p.signature[:], b[66:])
	p.agree = agree
	if err := p.verify(p.signature[:], kdf.LabelSigIdentity, b[33:66]); err != nil {
		return PublicIdentity{}, err
	}
	return p, nil
}

// Bytes returns a fresh copy of the encoded identity (PublicIdentitySize bytes).
func (p PublicIdentity) Bytes() []byte {
	out := make([]byte, 0, PublicIdentitySize)
	out = append(append(out, typeEd25519), p.signing[:]...)
	out = append(append(out, typeX25519), p.agreement[:]...)
	return append(out, p.signature[:]...)
}

// keyBytes returns the two typed public keys without the signature: what
// the identity is, as bound into fingerprints and session transcripts.
func (p PublicIdentity) keyBytes() []byte {
	out := make([]byte, 0, 66)
	out = append(append(out, typeEd25519), p.signing[:]...)
	return append(append(out, typeX25519), p.agreement[:]...)
}

// IsZero reports whether p is the zero value (no identity).
func (p PublicIdentity) IsZero() bool { return p.agree == nil }

// Fingerprint returns a hash of the two public keys, which safety numbers
// and pinning compare.
func (p PublicIdentity) Fingerprint() [FingerprintSize]byte {
	return kdf.Hash(kdf.LabelFingerprint, p.keyBytes())
}

// Equal reports whether p and q are the same identity, in constant time.
func (p PublicIdentity) Equal(q PublicIdentity) bool {
	return ct.Equal(p.keyBytes(), q.keyBytes())
}

// String prints the start of the fingerprint.
func (p PublicIdentity) String() string {
	return "keys.PublicIdentity{" + p.shortFingerprint() + "}"
}

// FingerprintText returns the identity's fingerprint for people to read:
// its first 16 bytes as eight groups of four hex digits ("3f2a 91c0 ...").
// A UI can show it beside a device or in a key-change notice; to check
// that no one sits between two users, compare safety numbers
// (SafetyNumber), which cover both sides.
func (p PublicIdentity) FingerprintText() string {
	fp := p.Fingerprint()
	h := hex.EncodeToString(fp[:16])
	var b strings.Builder
	for i := 0; i < len(h); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+4])
	}
	return b.String()
}

func (p PublicIdentity) shortFingerprint() string {
	fp := p.Fingerprint()
	return "fingerprint " + hex.EncodeToString(fp[:8])
}

// verify checks an Ed25519 signature by p over the label and parts.
func (p PublicIdentity) verify(sig []byte, label string, parts ...[]byte) error {
	if len(sig) != ed25519.SignatureSize ||
		!ed25519.Verify(p.signing[:], signedMessage(label, parts...), sig) {
		return fmt.Errorf("%w: %s", ErrBadSignature, label)
	}
	return nil
}

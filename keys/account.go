package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/kdf"
)

// Account keys (docs/SPEC.md section 22). A person is an account with up
// to MaxDevices devices; the account key, held by the user's devices and
// never by the relay, signs the list of those devices, so that no device
// receives a byte unless the user's own key put it on the list. Peers pin
// the account key, not device keys.
//
// Decision: Ed25519 alone, for now. A hybrid with ML-DSA-65 (circl) was
// measured (BenchmarkAccountSignatures, 2-core machine under load): a
// 3,373-byte signature and a 1,984-byte public key for both together
// instead of 64 and 32, signing 68 µs instead of 27, verifying 89 µs
// instead of 55. A device list is verified once per version, so the time
// does not matter; the size does, in every list the relay serves and in
// every key a peer pins. And what a signature protects is authenticity
// now: a quantum computer built later cannot forge a list that peers
// already accepted, unlike recorded traffic, which it could decrypt; so
// the sessions are post-quantum from the first message and the account
// signature can move to a hybrid when an attacker with a quantum computer
// is near. The typed key encoding (the type byte) leaves room for a hybrid
// key type without changing the list format.

// AccountKeySize is the size of an account key's seed, the private form
// Bytes returns.
const AccountKeySize = ed25519.SeedSize

// PublicAccountKeySize is the size of an encoded account public key: a
// type byte and the Ed25519 key.
const PublicAccountKeySize = 1 + ed25519.PublicKeySize

// AccountKey is an account's signing key. It must be kept secret; only
// devices the user allows hold it.
type AccountKey struct {
	seed   [AccountKeySize]byte
	priv   ed25519.PrivateKey
	public PublicAccountKey
}

// GenerateAccountKey returns a new random account key.
func GenerateAccountKey() *AccountKey {
	var seed [AccountKeySize]byte
	rand.Read(seed[:])
	k, err := NewAccountKey(seed[:])
	clear(seed[:])
	if err != nil {
		panic("sealpost/keys: " + err.Error())
	}
	return k
}

// NewAccountKey rebuilds an account key from its seed (Bytes). It returns
// ErrMalformed for a seed that is not AccountKeySize bytes.
func NewAccountKey(seed []byte) (*AccountKey, error) {
	if len(seed) != AccountKeySize {
		return nil, fmt.Errorf("%w: account key seed must be %d bytes", ErrMalformed, AccountKeySize)
	}
	k := &AccountKey{priv: ed25519.NewKeyFromSeed(seed)}
	copy(k.seed[:], seed)
	copy(k.public.key[:], k.priv.Public().(ed25519.PublicKey))
	return k, nil
}

// Bytes returns a copy of the seed. It must be kept secret.
func (k *AccountKey) Bytes() []byte { return append([]byte(nil), k.seed[:]...) }

// Public returns the account's public key, which peers pin.
func (k *AccountKey) Public() PublicAccountKey { return k.public }

// sign signs the length-prefixed label and parts.
func (k *AccountKey) sign(label string, parts ...[]byte) []byte {
	return ed25519.Sign(k.priv, signedMessage(label, parts...))
}

// String prints the public fingerprint only.
func (k AccountKey) String() string {
	return "keys.AccountKey{" + k.public.shortFingerprint() + "}"
}

// GoString prints the public fingerprint only.
func (k AccountKey) GoString() string { return k.String() }

// Format prints the public fingerprint only, whatever the verb.
func (k AccountKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// PublicAccountKey is an account's public key. The zero value is no key.
type PublicAccountKey struct {
	key [ed25519.PublicKeySize]byte
}

// ParsePublicAccountKey decodes an account public key from its Bytes. It
// returns ErrMalformed for another length or type byte.
func ParsePublicAccountKey(b []byte) (PublicAccountKey, error) {
	raw, err := untyped(b, typeEd25519, ed25519.PublicKeySize, "account key")
	if err != nil {
		return PublicAccountKey{}, err
	}
	if !canonicalEd25519(raw) || smallOrderEd25519(raw) {
		return PublicAccountKey{}, fmt.Errorf("%w: account key is not a canonical point of large order", ErrMalformed)
	}
	var p PublicAccountKey
	copy(p.key[:], raw)
	return p, nil
}

// canonicalEd25519 reports whether the y coordinate of an encoded point is
// below 2^255-19. Go's Ed25519 accepts the few non-canonical encodings,
// which would give one key two encodings.
func canonicalEd25519(b []byte) bool {
	if b[31]&0x7f != 0x7f || b[0] < 0xed {
		return true
	}
	for _, c := range b[1:31] {
		if c != 0xff {
			return true
		}
	}
	return false
}

// smallOrderY are the y coordinates (little-endian, sign bit clear) of the
// points of order 1, 2, 4 and 8 on edwards25519, canonical and not. Under
// a public key of small order, (R, S) = (identity, 0) verifies for every
// message (cofactorless verification), so such a key is no key.
var smallOrderY = [...][32]byte{
	{},     // 0: order 4
	{0x01}, // 1: order 1
	{0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
		0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05}, // order 8
	{0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
		0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a}, // order 8
	{0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, // p-1: order 2
}

// smallOrderEd25519 reports whether an encoded point has small order.
func smallOrderEd25519(b []byte) bool {
	for _, y := range smallOrderY {
		same := true
		for i := range 31 {
			same = same && b[i] == y[i]
		}
		if same && b[31]&0x7f == y[31] {
			return true
		}
	}
	return false
}

// Bytes returns the typed encoding (PublicAccountKeySize bytes).
func (p PublicAccountKey) Bytes() []byte {
	return append([]byte{typeEd25519}, p.key[:]...)
}

// IsZero reports whether p is the zero value.
func (p PublicAccountKey) IsZero() bool { return p.key == [ed25519.PublicKeySize]byte{} }

// Equal reports whether p and q are the same key, in constant time.
func (p PublicAccountKey) Equal(q PublicAccountKey) bool { return ct.Equal(p.key[:], q.key[:]) }

// Fingerprint returns a hash of the key, for display and comparison.
func (p PublicAccountKey) Fingerprint() [FingerprintSize]byte {
	return kdf.Hash(kdf.LabelAccountFingerprint, p.Bytes())
}

// String prints the start of the fingerprint.
func (p PublicAccountKey) String() string {
	return "keys.PublicAccountKey{" + p.shortFingerprint() + "}"
}

func (p PublicAccountKey) shortFingerprint() string {
	fp := p.Fingerprint()
	return "fingerprint " + hex.EncodeToString(fp[:8])
}

// verify checks an Ed25519 signature by p over the label and parts.
func (p PublicAccountKey) verify(sig []byte, label string, parts ...[]byte) error {
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(p.key[:], signedMessage(label, parts...), sig) {
		return fmt.Errorf("%w: %s", ErrBadSignature, label)
	}
	return nil
}

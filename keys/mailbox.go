package keys

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/kdf"
)

// Sizes of X-Wing mailbox keys, in bytes.
const (
	// MailboxKeySeedSize is the size of an X-Wing private key in seed form.
	MailboxKeySeedSize = 32
	// MailboxPublicKeySize is the size of an X-Wing public key without its
	// type byte (ML-KEM-768 encapsulation key, then X25519 key).
	MailboxPublicKeySize = 1184 + 32
)

// MailboxKey is the X-Wing (HPKE MLKEM768-X25519) key that first-contact
// envelopes are sealed to, so the relay never sees who starts a
// conversation. Its signature binds it to the owner's address and mailbox
// id and to its expiry, after which a bundle carrying it is refused with
// ErrExpired. It must be kept secret.
//
// X-Wing here is the standard library's crypto/hpke, so that sealing is
// exactly RFC 9180 with the draft-ietf-hpke-pq KEM.
type MailboxKey struct {
	id     uint32
	seed   [MailboxKeySeedSize]byte
	key    hpke.PrivateKey
	public PublicMailboxKey
}

// GenerateMailboxKey returns a new mailbox key with the given id and expiry
// (whole seconds) for the owner's address and mailbox, signed by identity.
func GenerateMailboxKey(id uint32, owner Address, mailbox []byte, expires time.Time, identity *IdentityPrivateKey) (*MailboxKey, error) {
	var seed [MailboxKeySeedSize]byte
	rand.Read(seed[:])
	defer clear(seed[:])
	return NewMailboxKey(id, owner, mailbox, seed[:], expires, identity)
}

// NewMailboxKey rebuilds a mailbox key from its id, owner, mailbox, seed
// (from [MailboxKey.Bytes]), expiry and signing identity. It returns
// ErrMalformed for a bad seed, address, mailbox id or expiry.
func NewMailboxKey(id uint32, owner Address, mailbox, seed []byte, expires time.Time, identity *IdentityPrivateKey) (*MailboxKey, error) {
	if err := owner.validate(); err != nil {
		return nil, err
	}
	if err := validateMailbox(mailbox); err != nil {
		return nil, err
	}
	exp, err := expiryOf(expires, "mailbox key")
	if err != nil {
		return nil, err
	}
	if len(seed) != MailboxKeySeedSize {
		return nil, fmt.Errorf("%w: mailbox key seed must be %d bytes", ErrMalformed, MailboxKeySeedSize)
	}
	key, err := hpke.MLKEM768X25519().NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: mailbox key seed", ErrMalformed)
	}
	k := &MailboxKey{id: id, key: key}
	copy(k.seed[:], seed)
	k.public = PublicMailboxKey{ID: id, Expires: unixTime(exp), key: key.PublicKey(), raw: key.PublicKey().Bytes()}
	sig := identity.signParts(kdf.LabelSigMailboxKey, mailboxSigned(id, exp, owner, mailbox, k.public.Bytes())...)
	copy(k.public.signature[:], sig)
	return k, nil
}

// ID returns the key's id.
func (k *MailboxKey) ID() uint32 { return k.id }

// Bytes returns a copy of the seed. It must be kept secret.
func (k *MailboxKey) Bytes() []byte { return append([]byte(nil), k.seed[:]...) }

// Public returns the signed public key to publish in a bundle.
func (k *MailboxKey) Public() PublicMailboxKey { return k.public }

// HPKE returns the key as an HPKE private key, for opening first-contact
// envelopes.
func (k *MailboxKey) HPKE() hpke.PrivateKey { return k.key }

// String prints the id only.
func (k MailboxKey) String() string { return fmt.Sprintf("keys.MailboxKey{id %d}", k.id) }

// GoString prints the id only.
func (k MailboxKey) GoString() string { return k.String() }

// Format prints the id only, whatever the verb.
func (k MailboxKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// PublicMailboxKey is a signed X-Wing mailbox key as published. The
// signature covers the id, the expiry, the owner's address and mailbox id,
// and the key.
type PublicMailboxKey struct {
	ID        uint32
	Expires   time.Time // whole seconds; a bundle is refused from then on
	key       hpke.PublicKey
	raw       []byte
	signature [ed25519.SignatureSize]byte
}

// Bytes returns the typed public key (type byte, then the key).
func (p PublicMailboxKey) Bytes() []byte { return typed(typeXWing, p.raw) }

// Signature returns a copy of the identity's signature.
func (p PublicMailboxKey) Signature() []byte { return append([]byte(nil), p.signature[:]...) }

// HPKE returns the key as an HPKE public key, for sealing first-contact
// envelopes.
func (p PublicMailboxKey) HPKE() hpke.PublicKey { return p.key }

// verify checks the signature against identity, owner and mailbox.
func (p PublicMailboxKey) verify(identity PublicIdentity, owner Address, mailbox []byte) error {
	return identity.verify(p.signature[:], kdf.LabelSigMailboxKey, mailboxSigned(p.ID, wireExpiry(p.Expires), owner, mailbox, p.Bytes())...)
}

// parseMailboxKey decodes a typed X-Wing public key.
func parseMailboxKey(id uint32, b, sig []byte, expires uint64) (PublicMailboxKey, error) {
	raw, err := untyped(b, typeXWing, MailboxPublicKeySize, "mailbox key")
	if err != nil {
		return PublicMailboxKey{}, err
	}
	exp, err := expiryTime(expires, "mailbox key")
	if err != nil {
		return PublicMailboxKey{}, err
	}
	if len(sig) != ed25519.SignatureSize {
		return PublicMailboxKey{}, fmt.Errorf("%w: mailbox key signature length", ErrMalformed)
	}
	key, err := hpke.MLKEM768X25519().NewPublicKey(raw)
	if err != nil {
		return PublicMailboxKey{}, fmt.Errorf("%w: mailbox key encoding", ErrMalformed)
	}
	p := PublicMailboxKey{ID: id, Expires: exp, key: key, raw: append([]byte(nil), raw...)}
	copy(p.signature[:], sig)
	return p, nil
}

// mailboxSigned lists the parts the mailbox-key signature covers.
func mailboxSigned(id uint32, expires uint64, owner Address, mailbox, key []byte) [][]byte {
	return [][]byte{u32(id), u64(expires), appendAddress(nil, owner), mailbox, key}
}

// validateMailbox checks a mailbox id's length.
func validateMailbox(mailbox []byte) error {
	if len(mailbox) == 0 || len(mailbox) > MaxMailboxLength {
		return fmt.Errorf("%w: mailbox id must be 1 to %d bytes", ErrMalformed, MaxMailboxLength)
	}
	return nil
}

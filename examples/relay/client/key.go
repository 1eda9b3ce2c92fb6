package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
)

// Key is an Ed25519 key the client signs relay requests with: a mailbox's
// owner key (RegisterMailbox, Subscribe) or a device's bundle upload key
// (PutBundle, AddBundle). Use a fresh key for each mailbox and another for
// the uploads, unrelated to the sealpost identity, so the relay cannot
// link a device's mailboxes, or a mailbox to a user, by the key. Keep its
// Bytes with the app's state: losing it loses the mailbox.
type Key struct {
	priv ed25519.PrivateKey
}

// KeySize is the size of Bytes: the Ed25519 seed.
const KeySize = ed25519.SeedSize

// NewKey returns a new random key.
func NewKey() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv}, nil
}

// ParseKey returns the key whose Bytes are seed (KeySize bytes).
func ParseKey(seed []byte) (*Key, error) {
	if len(seed) != KeySize {
		return nil, errors.New("relay: a key is a 32-byte Ed25519 seed")
	}
	return &Key{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Bytes returns the key's seed, to store and give back to ParseKey.
func (k *Key) Bytes() []byte { return k.priv.Seed() }

// Public returns the public key the relay stores.
func (k *Key) Public() ed25519.PublicKey {
	pub, _ := k.priv.Public().(ed25519.PublicKey)
	return pub
}

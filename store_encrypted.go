package sealpost

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealpost/sealpost/internal/kdf"
)

// EncryptedStore wraps another Store so that what it holds reveals neither
// whom the device talks to nor any key: every value is sealed with
// XChaCha20-Poly1305 under a key the app keeps elsewhere (the platform
// keychain), and every key name is replaced by a keyed hash, so a dump of
// the inner store shows opaque names of one length and values of the
// plaintext's length plus 41 bytes.
//
// Each value's associated data is its hashed name, so a value copied under
// another name fails to open. What it does not hide: how many records there
// are, their sizes and when they change. It does not detect a whole value
// rolled back to an older sealed copy under the same name; a store that can
// be rolled back must be trusted for freshness, as with a backup restore.
//
// Apply stays atomic: the wrapper turns one Batch into one Batch of the
// inner store. A value that fails to open (a flipped byte, a truncation, a
// value moved under another name, the wrong key) is ErrMalformed.
type EncryptedStore struct {
	inner   Store
	nameKey [32]byte
	aead    cipher.AEAD

	mu    sync.Mutex
	names map[string]hashedName // plaintext name to hashed name, bounded
	spare *Batch                // an inner batch whose Apply returned, for reuse
	// keyChecked is set once the key-check record is known to open under
	// this store's key (or was written by it).
	keyChecked atomic.Bool
}

const (
	// encryptedValueVersion is the first byte of every sealed value.
	encryptedValueVersion = 1
	// EncryptedStoreKeySize is the size of the key NewEncryptedStore takes.
	EncryptedStoreKeySize = 32
	// encryptedNamePrefix starts every hashed name, so that the records of
	// an EncryptedStore are recognisable in a store shared with other data.
	encryptedNamePrefix = "e1/"
	// maxCachedNames bounds the cache of hashed names; a device touches a
	// few records per message, so the cache is cleared rarely.
	maxCachedNames = 4096
	// encryptedCheckName holds a sealed constant, so that a wrong key is
	// told apart from an empty store: without it, every record would be
	// absent under a wrong key and the app would silently get a new
	// identity, as after a reinstall.
	encryptedCheckName  = encryptedNamePrefix + "key-check"
	encryptedCheckValue = "sealpost encrypted store v1"
)

// hashedName is a record's name in the inner store, also kept as bytes
// for the associated data.
type hashedName struct {
	s string
	b []byte
}

// NewEncryptedStore returns a Store that keeps its records in inner,
// sealed under key (EncryptedStoreKeySize random bytes the app stores in
// the platform keychain, never beside inner). The same key must be given
// every time the device is opened; under a wrong key every read of a
// store it wrote is ErrMalformed (a sealed key-check record tells a wrong
// key from an empty store), so Open fails instead of creating a new
// identity. A key of the wrong size is ErrMalformed.
func NewEncryptedStore(inner Store, key []byte) (*EncryptedStore, error) {
	if inner == nil || len(key) != EncryptedStoreKeySize {
		return nil, fmt.Errorf("%w: an encrypted store needs an inner store and a %d-byte key", ErrMalformed, EncryptedStoreKeySize)
	}
	s := &EncryptedStore{inner: inner, names: map[string]hashedName{}}
	nameKey := kdf.Key(key, nil, kdf.LabelStoreNames, nil, 32)
	valueKey := kdf.Key(key, nil, kdf.LabelStoreValues, nil, chacha20poly1305.KeySize)
	copy(s.nameKey[:], nameKey)
	aead, err := chacha20poly1305.NewX(valueKey)
	clear(nameKey)
	clear(valueKey)
	if err != nil {
		return nil, err
	}
	s.aead = aead
	return s, nil
}

// name returns the hashed store name of key: the first 24 bytes of
// HMAC-SHA-256 under the name key, base64url, after a prefix.
func (s *EncryptedStore) name(key string) hashedName {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.names[key]; ok {
		return n
	}
	m := hmac.New(sha256.New, s.nameKey[:])
	m.Write([]byte(key))
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	b := base64.RawURLEncoding.AppendEncode([]byte(encryptedNamePrefix), sum[:24])
	n := hashedName{s: string(b), b: b}
	if len(s.names) >= maxCachedNames {
		clear(s.names)
	}
	s.names[key] = n
	return n
}

// Get returns the value at key, opened, or the inner store's error
// (ErrNotFound when absent).
func (s *EncryptedStore) Get(ctx context.Context, key string) ([]byte, error) {
	name := s.name(key)
	sealed, err := s.inner.Get(ctx, name.s)
	if errors.Is(err, ErrNotFound) {
		if err := s.checkKey(ctx); err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, err
	}
	return s.open(name, sealed)
}

// checkKey returns nil if the inner store holds no key-check record or one
// that opens under this store's key, and ErrMalformed if it was sealed
// under another key.
func (s *EncryptedStore) checkKey(ctx context.Context) error {
	if s.keyChecked.Load() {
		return nil
	}
	sealed, err := s.inner.Get(ctx, encryptedCheckName)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	v, err := s.open(hashedName{encryptedCheckName, []byte(encryptedCheckName)}, sealed)
	if err != nil || string(v) != encryptedCheckValue {
		return fmt.Errorf("%w: the store was sealed under another key", ErrMalformed)
	}
	s.keyChecked.Store(true)
	return nil
}

// open checks and opens one sealed value stored under name.
func (s *EncryptedStore) open(name hashedName, sealed []byte) ([]byte, error) {
	const head = 1 + chacha20poly1305.NonceSizeX
	if len(sealed) < head+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: encrypted store record %s is truncated", ErrMalformed, name.s)
	}
	if sealed[0] != encryptedValueVersion {
		return nil, fmt.Errorf("%w: encrypted store record %s has version %d", ErrUnsupportedVersion, name.s, sealed[0])
	}
	out, err := s.aead.Open(nil, sealed[1:head], sealed[head:], name.b)
	if err != nil {
		return nil, fmt.Errorf("%w: encrypted store record %s fails authentication", ErrMalformed, name.s)
	}
	return out, nil
}

// Apply seals every value of b and applies the result to the inner store
// as one batch: all of it or none.
func (s *EncryptedStore) Apply(ctx context.Context, b *Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	out := s.spare
	s.spare = nil
	s.mu.Unlock()
	if out == nil {
		out = new(Batch)
	}
	checked := s.keyChecked.Load()
	if !checked {
		if err := s.checkKey(ctx); err != nil {
			return err
		}
		out.Put(encryptedCheckName, s.seal(hashedName{encryptedCheckName, []byte(encryptedCheckName)}, []byte(encryptedCheckValue)))
	}
	for _, op := range b.ops {
		name := s.name(op.key)
		if op.deleted {
			out.Delete(name.s)
			continue
		}
		out.Put(name.s, s.seal(name, op.value))
	}
	err := s.inner.Apply(ctx, out)
	// The inner store keeps the values, not the batch (Store's contract).
	clear(out.ops)
	out.ops = out.ops[:0]
	s.mu.Lock()
	s.spare = out
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if !checked {
		s.keyChecked.Store(true)
	}
	return nil
}

// seal returns version || random 24-byte nonce || ciphertext of value, with
// the hashed name as associated data. A random nonce is safe with
// XChaCha20's 192 bits, and needs no counter that a restored store could
// roll back.
func (s *EncryptedStore) seal(name hashedName, value []byte) []byte {
	const head = 1 + chacha20poly1305.NonceSizeX
	out := make([]byte, head, head+len(value)+chacha20poly1305.Overhead)
	out[0] = encryptedValueVersion
	rand.Read(out[1:head])
	return s.aead.Seal(out, out[1:head], value, name.b)
}

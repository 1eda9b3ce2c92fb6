package keys

import (
	"fmt"
	"time"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/bundlepb"
)

// BundleVersion is the bundle format this build writes and reads. Any other
// version is ErrUnsupportedVersion. Version 2 added the expiries of the
// signed prekey and the mailbox key (version 1 bundles never expired, and
// are refused). A later version may add key types or fields; it will get a
// new number rather than change this one.
const BundleVersion = 2

// Bundle limits.
const (
	// MaxOneTimePrekeys bounds the one-time prekeys of each kind in one
	// bundle: enough for a device to upload a day's worth in one request,
	// small enough that a hostile bundle cannot make a parser allocate much.
	MaxOneTimePrekeys = 100
	// MaxBundleSize bounds an encoded bundle: MaxOneTimePrekeys of each
	// kind with room to spare.
	MaxBundleSize = 256 << 10
)

// Bundle is what a device publishes so that others can start a session with
// it (docs/SPEC.md section 6): its address and mailbox, its identity, a signed
// prekey, a signed last-resort ML-KEM-1024 prekey, optional one-time
// prekeys of both kinds, and its signed X-Wing mailbox key.
//
// A bundle returned by [ParseBundle] has had every signature verified and
// is not expired. A bundle built in code should be checked with
// [Bundle.Verify].
type Bundle struct {
	Address          Address
	Mailbox          []byte
	Identity         PublicIdentity
	SignedPrekey     PublicSignedPrekey
	PQPrekey         PublicPQPrekey // the last-resort PQ prekey
	OneTimePrekeys   []PublicOneTimePrekey
	OneTimePQPrekeys []PublicPQPrekey
	MailboxKey       PublicMailboxKey
}

// A VerifyOption changes how [ParseBundle], [Bundle.Verify] and
// [Initiate] check a bundle.
type VerifyOption func(*verifyConfig)

type verifyConfig struct{ now func() time.Time }

// WithClock makes the expiry check use now instead of time.Now: a Device
// passes its own clock (sealpost.WithClock), tests a fixed one.
func WithClock(now func() time.Time) VerifyOption {
	return func(c *verifyConfig) {
		if now != nil {
			c.now = now
		}
	}
}

func verifyConfigOf(opts []VerifyOption) verifyConfig {
	c := verifyConfig{now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// expires returns when the bundle stops being accepted: the earlier of the
// signed prekey's and the mailbox key's expiries.
func (b *Bundle) expires() time.Time {
	if b.MailboxKey.Expires.Before(b.SignedPrekey.Expires) {
		return b.MailboxKey.Expires
	}
	return b.SignedPrekey.Expires
}

// Verify checks the bundle's structure, every signature in it and its
// expiry. It returns ErrMalformed for a structural fault, ErrBadSignature
// for a signature that does not verify, and ErrExpired once the signed
// prekey or the mailbox key has expired (at or after its expiry, by the
// clock of [WithClock], time.Now by default).
func (b *Bundle) Verify(opts ...VerifyOption) error {
	if err := b.checkStructure(); err != nil {
		return err
	}
	if err := b.verifySignatures(); err != nil {
		return err
	}
	if now := verifyConfigOf(opts).now(); !now.Before(b.expires()) {
		return fmt.Errorf("%w: bundle expired at %s", ErrExpired, b.expires().UTC().Format(time.RFC3339))
	}
	return nil
}

// verifySignatures checks every signature in the bundle.
func (b *Bundle) verifySignatures() error {
	if err := b.SignedPrekey.verify(b.Identity); err != nil {
		return err
	}
	if err := b.PQPrekey.verify(b.Identity); err != nil {
		return err
	}
	for _, pq := range b.OneTimePQPrekeys {
		if err := pq.verify(b.Identity); err != nil {
			return err
		}
	}
	return b.MailboxKey.verify(b.Identity, b.Address, b.Mailbox)
}

// checkStructure checks everything but signatures.
func (b *Bundle) checkStructure() error {
	if err := b.Address.validate(); err != nil {
		return err
	}
	if err := validateMailbox(b.Mailbox); err != nil {
		return err
	}
	switch {
	case b.Identity.IsZero(), b.SignedPrekey.key == nil, b.PQPrekey.key == nil, b.MailboxKey.key == nil:
		return fmt.Errorf("%w: bundle is missing a key", ErrMalformed)
	case !validExpiry(b.SignedPrekey.Expires), !validExpiry(b.MailboxKey.Expires):
		return fmt.Errorf("%w: bundle expiry out of range", ErrMalformed)
	case !b.PQPrekey.LastResort:
		return fmt.Errorf("%w: bundle pq prekey must be the last-resort one", ErrMalformed)
	case len(b.OneTimePrekeys) > MaxOneTimePrekeys, len(b.OneTimePQPrekeys) > MaxOneTimePrekeys:
		return fmt.Errorf("%w: bundle has more than %d one-time prekeys", ErrMalformed, MaxOneTimePrekeys)
	}
	for _, k := range b.OneTimePrekeys {
		if k.key == nil {
			return fmt.Errorf("%w: bundle one-time prekey is empty", ErrMalformed)
		}
	}
	for _, k := range b.OneTimePQPrekeys {
		if k.key == nil || k.LastResort {
			return fmt.Errorf("%w: bundle one-time pq prekey", ErrMalformed)
		}
	}
	return nil
}

// Split returns one bundle per one-time X25519 prekey, each with that
// prekey and the one-time PQ prekey at the same index (or the last-resort
// PQ prekey when there is none), followed by one bundle with no one-time
// keys at all: the last resort. The relay hands each blob out once, and the
// last one to everybody after that.
func (b *Bundle) Split() []*Bundle {
	out := make([]*Bundle, 0, len(b.OneTimePrekeys)+1)
	for i, otp := range b.OneTimePrekeys {
		one := b.base()
		one.OneTimePrekeys = []PublicOneTimePrekey{otp}
		if i < len(b.OneTimePQPrekeys) {
			one.OneTimePQPrekeys = []PublicPQPrekey{b.OneTimePQPrekeys[i]}
		}
		out = append(out, one)
	}
	return append(out, b.base())
}

// base copies the bundle without one-time prekeys.
func (b *Bundle) base() *Bundle {
	return &Bundle{
		Address:      b.Address,
		Mailbox:      append([]byte(nil), b.Mailbox...),
		Identity:     b.Identity,
		SignedPrekey: b.SignedPrekey,
		PQPrekey:     b.PQPrekey,
		MailboxKey:   b.MailboxKey,
	}
}

// MarshalBinary encodes the bundle (version BundleVersion). It returns
// ErrMalformed if the bundle's structure is invalid; it does not check
// signatures.
func (b *Bundle) MarshalBinary() ([]byte, error) {
	if err := b.checkStructure(); err != nil {
		return nil, err
	}
	m := &bundlepb.Bundle{
		Version:      BundleVersion,
		User:         b.Address.User,
		Device:       b.Address.Device,
		Mailbox:      b.Mailbox,
		Identity:     b.Identity.Bytes(),
		SignedPrekey: signedKeyPB(b.SignedPrekey.ID, b.SignedPrekey.Bytes(), b.SignedPrekey.signature[:]),
		PqPrekey:     signedKeyPB(b.PQPrekey.ID, b.PQPrekey.Bytes(), b.PQPrekey.signature[:]),
		MailboxKey:   signedKeyPB(b.MailboxKey.ID, b.MailboxKey.Bytes(), b.MailboxKey.signature[:]),
	}
	m.SignedPrekey.Expires = wireExpiry(b.SignedPrekey.Expires)
	m.MailboxKey.Expires = wireExpiry(b.MailboxKey.Expires)
	for _, k := range b.OneTimePrekeys {
		m.OneTimePrekeys = append(m.OneTimePrekeys, &bundlepb.OneTimeKey{Id: k.ID, Key: k.Bytes()})
	}
	for _, k := range b.OneTimePQPrekeys {
		m.OneTimePqPrekeys = append(m.OneTimePqPrekeys, signedKeyPB(k.ID, k.Bytes(), k.signature[:]))
	}
	return pbstrict.Marshal(m)
}

func signedKeyPB(id uint32, key, sig []byte) *bundlepb.SignedKey {
	return &bundlepb.SignedKey{Id: id, Key: key, Signature: sig}
}

// ParseBundle decodes a bundle from [Bundle.MarshalBinary], verifies every
// signature in it and checks its expiry ([Bundle.Verify]; opts set the
// clock). It returns ErrUnsupportedVersion for another format version
// (version 1 included), ErrMalformed for anything that does not decode or
// has the wrong key type or size, ErrBadSignature for a signature that does
// not verify, and ErrExpired for a bundle past its expiry: fetch a fresh
// one.
func ParseBundle(data []byte, opts ...VerifyOption) (*Bundle, error) {
	b, err := decodeBundle(data)
	if err != nil {
		return nil, err
	}
	if err := b.Verify(opts...); err != nil {
		return nil, err
	}
	return b, nil
}

// decodeBundle decodes and checks everything but signatures.
func decodeBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: bundle larger than %d bytes", ErrMalformed, MaxBundleSize)
	}
	var m bundlepb.Bundle
	if err := pbstrict.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: bundle encoding", ErrMalformed)
	}
	if m.Version != BundleVersion {
		return nil, fmt.Errorf("%w: bundle version %d", ErrUnsupportedVersion, m.Version)
	}
	if len(m.OneTimePrekeys) > MaxOneTimePrekeys || len(m.OneTimePqPrekeys) > MaxOneTimePrekeys {
		return nil, fmt.Errorf("%w: bundle has more than %d one-time prekeys", ErrMalformed, MaxOneTimePrekeys)
	}
	b := &Bundle{Address: Address{User: m.User, Device: m.Device}, Mailbox: m.Mailbox}
	var err error
	if b.Identity, err = ParsePublicIdentity(m.Identity); err != nil {
		return nil, err
	}
	if err := decodeBundleKeys(b, &m); err != nil {
		return nil, err
	}
	return b, b.checkStructure()
}

// decodeBundleKeys decodes the prekeys and mailbox key of m into b.
func decodeBundleKeys(b *Bundle, m *bundlepb.Bundle) error {
	spk, pq, mk := m.SignedPrekey, m.PqPrekey, m.MailboxKey
	if spk == nil || pq == nil || mk == nil {
		return fmt.Errorf("%w: bundle is missing a key", ErrMalformed)
	}
	var err error
	if pq.Expires != 0 || anyExpiry(m.OneTimePqPrekeys) {
		return fmt.Errorf("%w: pq prekeys carry no expiry", ErrMalformed)
	}
	if b.SignedPrekey, err = parseSignedPrekey(spk.Id, spk.Key, spk.Signature, spk.Expires); err != nil {
		return err
	}
	if b.PQPrekey, err = parsePQPrekey(pq.Id, true, pq.Key, pq.Signature); err != nil {
		return err
	}
	if b.MailboxKey, err = parseMailboxKey(mk.Id, mk.Key, mk.Signature, mk.Expires); err != nil {
		return err
	}
	for _, k := range m.OneTimePrekeys {
		key, err := parseX25519(k.Key, "one-time prekey")
		if err != nil {
			return err
		}
		b.OneTimePrekeys = append(b.OneTimePrekeys, PublicOneTimePrekey{ID: k.Id, key: key})
	}
	for _, k := range m.OneTimePqPrekeys {
		p, err := parsePQPrekey(k.Id, false, k.Key, k.Signature)
		if err != nil {
			return err
		}
		b.OneTimePQPrekeys = append(b.OneTimePQPrekeys, p)
	}
	return nil
}

// anyExpiry reports whether any of the keys carries an expiry.
func anyExpiry(ks []*bundlepb.SignedKey) bool {
	for _, k := range ks {
		if k.Expires != 0 {
			return true
		}
	}
	return false
}

// expiryTime returns an expiry in Unix seconds as a time, or ErrMalformed
// when it is 0 (absent) or past maxExpiry.
func expiryTime(sec uint64, field string) (time.Time, error) {
	if sec < 1 || sec > maxExpiry {
		return time.Time{}, fmt.Errorf("%w: %s expiry out of range", ErrMalformed, field)
	}
	return unixTime(sec), nil
}

// validExpiry reports whether t is an expiry a bundle can carry.
func validExpiry(t time.Time) bool {
	_, err := expiryOf(t, "")
	return err == nil && t.Nanosecond() == 0
}

// parseSignedPrekey decodes a typed X25519 signed prekey.
func parseSignedPrekey(id uint32, key, sig []byte, expires uint64) (PublicSignedPrekey, error) {
	pub, err := parseX25519(key, "signed prekey")
	if err != nil {
		return PublicSignedPrekey{}, err
	}
	if len(sig) != len(PublicSignedPrekey{}.signature) {
		return PublicSignedPrekey{}, fmt.Errorf("%w: signed prekey signature length", ErrMalformed)
	}
	exp, err := expiryTime(expires, "signed prekey")
	if err != nil {
		return PublicSignedPrekey{}, err
	}
	p := PublicSignedPrekey{ID: id, Expires: exp, key: pub}
	copy(p.signature[:], sig)
	return p, nil
}

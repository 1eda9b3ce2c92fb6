package keys

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/bundlepb"
)

// BundleVersion is the bundle format this build writes and reads. Any other
// version is ErrUnsupportedVersion. A later version may add key types or
// fields; it will get a new number rather than change this one.
const BundleVersion = 1

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
// it (DESIGN section 3.1): its address and mailbox, its identity, a signed
// prekey, a signed last-resort ML-KEM-1024 prekey, optional one-time
// prekeys of both kinds, and its signed X-Wing mailbox key.
//
// A bundle returned by [ParseBundle] has had every signature verified. A
// bundle built in code should be checked with [Bundle.Verify].
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

// Verify checks the bundle's structure and every signature in it. It returns
// ErrMalformed for a structural fault and ErrBadSignature for a signature
// that does not verify.
func (b *Bundle) Verify() error {
	if err := b.checkStructure(); err != nil {
		return err
	}
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

// ParseBundle decodes a bundle from [Bundle.MarshalBinary] and verifies every
// signature in it. It returns ErrUnsupportedVersion for another format
// version, ErrMalformed for anything that does not decode or has the wrong
// key type or size, and ErrBadSignature for a signature that does not verify.
func ParseBundle(data []byte) (*Bundle, error) {
	b, err := decodeBundle(data)
	if err != nil {
		return nil, err
	}
	if err := b.Verify(); err != nil {
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
	if b.SignedPrekey, err = parseSignedPrekey(spk.Id, spk.Key, spk.Signature); err != nil {
		return err
	}
	if b.PQPrekey, err = parsePQPrekey(pq.Id, true, pq.Key, pq.Signature); err != nil {
		return err
	}
	if b.MailboxKey, err = parseMailboxKey(mk.Id, mk.Key, mk.Signature); err != nil {
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

// parseSignedPrekey decodes a typed X25519 signed prekey.
func parseSignedPrekey(id uint32, key, sig []byte) (PublicSignedPrekey, error) {
	pub, err := parseX25519(key, "signed prekey")
	if err != nil {
		return PublicSignedPrekey{}, err
	}
	if len(sig) != len(PublicSignedPrekey{}.signature) {
		return PublicSignedPrekey{}, fmt.Errorf("%w: signed prekey signature length", ErrMalformed)
	}
	p := PublicSignedPrekey{ID: id, key: pub}
	copy(p.signature[:], sig)
	return p, nil
}

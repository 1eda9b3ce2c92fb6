package keys

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"fmt"

	"github.com/sealpost/sealpost/internal/kdf"
)

// SessionSecretSize is the size of the secret a session start yields.
const SessionSecretSize = 32

// SessionKeys is what a completed session start yields to seed the ratchet:
// the shared secret, the associated data that binds both identities and
// addresses, and the first ratchet key (the responder's signed prekey). The
// secret must be kept secret; String and Format print nothing of it.
type SessionKeys struct {
	secret      [SessionSecretSize]byte
	ad          []byte
	peer        PublicIdentity
	peerRatchet *ecdh.PublicKey  // initiator side: the responder's signed prekey
	ownRatchet  *ecdh.PrivateKey // responder side: its signed prekey
}

// Secret returns a copy of the session secret. It must be kept secret:
// clear the copy once the ratchet is seeded with it, and call Erase.
func (s *SessionKeys) Secret() []byte { return append([]byte(nil), s.secret[:]...) }

// Erase overwrites the session secret with zeros; Secret returns zeros
// after it. Call it once the ratchet is seeded. Go gives no guarantee that
// no other copy of the secret remains in memory (the runtime may have moved
// it; see the package doc), so this narrows the window, no more.
func (s *SessionKeys) Erase() { clear(s.secret[:]) }

// AssociatedData returns a copy of the session's associated data: a label,
// the initiator's and responder's identity keys, then both addresses.
func (s *SessionKeys) AssociatedData() []byte { return append([]byte(nil), s.ad...) }

// Peer returns the other party's identity.
func (s *SessionKeys) Peer() PublicIdentity { return s.peer }

// PeerRatchetKey returns, on the initiator's side, the responder's signed
// prekey, which is the responder's first ratchet key. It is nil on the
// responder's side.
func (s *SessionKeys) PeerRatchetKey() *ecdh.PublicKey { return s.peerRatchet }

// RatchetKey returns, on the responder's side, its signed prekey as its
// first ratchet key pair. It must be kept secret. It is nil on the
// initiator's side.
func (s *SessionKeys) RatchetKey() *ecdh.PrivateKey { return s.ownRatchet }

// String prints the peer's fingerprint only.
func (s SessionKeys) String() string {
	return "keys.SessionKeys{peer " + s.peer.shortFingerprint() + "}"
}

// GoString prints the peer's fingerprint only.
func (s SessionKeys) GoString() string { return s.String() }

// Format prints the peer's fingerprint only, whatever the verb.
func (s SessionKeys) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// Initiate runs the initiator's side of the hybrid session start (docs/SPEC.md
// section 7) against a bundle. It verifies the bundle, performs the X25519
// exchanges and the ML-KEM-1024 encapsulation, and returns the session start
// to send (set its Payload to the first ratchet message) and the keys that
// seed the ratchet. It uses the bundle's first one-time prekeys, if any.
//
// It returns ErrBadSignature or ErrMalformed for a bad bundle, ErrExpired
// for an expired one (opts set the clock, as for [ParseBundle]), and
// ErrLowOrderPoint for a non-contributory key.
func Initiate(self *IdentityPrivateKey, selfAddr Address, b *Bundle, opts ...VerifyOption) (*SessionStart, *SessionKeys, error) {
	var seed [32 + 32]byte
	rand.Read(seed[:])
	defer clear(seed[:])
	return initiate(self, selfAddr, b, seed[:32], seed[32:], opts...)
}

// initiate is Initiate with the ephemeral key and the encapsulation
// randomness supplied, so that test vectors are reproducible.
func initiate(self *IdentityPrivateKey, selfAddr Address, b *Bundle, ephSeed, kemSeed []byte, opts ...VerifyOption) (*SessionStart, *SessionKeys, error) {
	// 1. Verify the bundle and our own address.
	if err := b.Verify(opts...); err != nil {
		return nil, nil, err
	}
	if err := selfAddr.validate(); err != nil {
		return nil, nil, err
	}
	if b.Identity.Equal(self.Public()) {
		return nil, nil, fmt.Errorf("%w: bundle carries our own identity", ErrMalformed)
	}
	eph, err := newX25519(ephSeed, "ephemeral key")
	if err != nil {
		return nil, nil, err
	}
	// 2. Pick the prekeys: the first one-time keys if there are any.
	pq := b.PQPrekey
	if len(b.OneTimePQPrekeys) > 0 {
		pq = b.OneTimePQPrekeys[0]
	}
	m := &SessionStart{
		Initiator: selfAddr, Identity: self.Public(), baseKey: eph.PublicKey(),
		SignedPrekeyID: b.SignedPrekey.ID, PQPrekeyID: pq.ID, PQOneTime: !pq.LastResort,
	}
	var opk *ecdh.PublicKey
	if len(b.OneTimePrekeys) > 0 {
		opk = b.OneTimePrekeys[0].key
		m.HasOneTimePrekey, m.OneTimePrekeyID = true, b.OneTimePrekeys[0].ID
	}
	// 3. DH(IKa, SPKb), DH(EKa, IKb), DH(EKa, SPKb), DH(EKa, OPKb).
	dh, err := exchanges(
		dhPair{self.agree, b.SignedPrekey.key},
		dhPair{eph, b.Identity.agree},
		dhPair{eph, b.SignedPrekey.key},
		dhPair{eph, opk},
	)
	if err != nil {
		return nil, nil, err
	}
	// 4. (ct, ss) = Encaps(PQPKb).
	var ss []byte
	m.kemCiphertext, ss = pq.encapsulate(kemSeed)
	// 5. Derive, bound to every public key and the ciphertext.
	t := transcript{
		initiator: self.Public(), responder: b.Identity,
		initiatorAddr: selfAddr, responderAddr: b.Address,
		spk: b.SignedPrekey.Bytes(), spkID: b.SignedPrekey.ID,
		pq: pq.Bytes(), pqID: pq.ID, pqOneTime: !pq.LastResort,
		base: m.BaseKey(), ct: m.kemCiphertext,
	}
	if opk != nil {
		t.opk, t.opkID = b.OneTimePrekeys[0].Bytes(), b.OneTimePrekeys[0].ID
	}
	keys, confirm := derive(append(dh, ss...), &t)
	clear(ss)
	m.confirmation = confirm
	keys.peer, keys.peerRatchet = b.Identity, b.SignedPrekey.key
	return m, keys, nil
}

// Respond runs the responder's side of the hybrid session start. The caller
// looks up, by the ids in m, its signed prekey, its PQ prekey and its
// one-time prekey (nil when m names none) and passes them in. Respond checks
// they are the ones named, repeats the initiator's exchanges, decapsulates,
// and checks the key confirmation before it returns anything.
//
// The caller must delete the one-time prekeys only after Respond succeeds
// (and, in the Device, after the first ratchet message decrypts). Respond
// changes nothing. It returns ErrUnknownPrekey when a supplied key is not the
// one named, ErrDecrypt when the confirmation fails (a wrong key, a wrong
// address, a tampered message), ErrLowOrderPoint for a non-contributory key.
func Respond(self *IdentityPrivateKey, selfAddr Address, m *SessionStart, spk *SignedPrekey, pq *PQPrekey, otp *OneTimePrekey) (*SessionKeys, error) {
	// 1. The supplied prekeys must be exactly the ones the message names.
	if err := checkNamed(m, spk, pq, otp); err != nil {
		return nil, err
	}
	if m.Identity.Equal(self.Public()) {
		return nil, fmt.Errorf("%w: session start carries our own identity", ErrMalformed)
	}
	// 2. The same exchanges from the other side.
	var otpKey *ecdh.PrivateKey
	if otp != nil {
		otpKey = otp.key
	}
	dh, err := exchanges(
		dhPair{spk.key, m.Identity.agree},
		dhPair{self.agree, m.baseKey},
		dhPair{spk.key, m.baseKey},
		dhPair{otpKey, m.baseKey},
	)
	if err != nil {
		return nil, err
	}
	ss := pq.decapsulate(m.kemCiphertext)
	// 3. Derive and confirm.
	t := transcript{
		initiator: m.Identity, responder: self.Public(),
		initiatorAddr: m.Initiator, responderAddr: selfAddr,
		spk: spk.public.Bytes(), spkID: spk.id,
		pq: pq.public.Bytes(), pqID: pq.id, pqOneTime: !pq.lastResort,
		base: m.BaseKey(), ct: m.kemCiphertext,
	}
	if otp != nil {
		t.opk, t.opkID = otp.Public().Bytes(), otp.id
	}
	keys, confirm := derive(append(dh, ss...), &t)
	clear(ss)
	if !hmac.Equal(confirm[:], m.confirmation[:]) {
		clear(keys.secret[:])
		return nil, fmt.Errorf("%w: session start confirmation", ErrDecrypt)
	}
	keys.peer, keys.ownRatchet = m.Identity, spk.key
	return keys, nil
}

// checkNamed reports ErrUnknownPrekey unless the supplied prekeys are the
// ones m names.
func checkNamed(m *SessionStart, spk *SignedPrekey, pq *PQPrekey, otp *OneTimePrekey) error {
	switch {
	case spk == nil || spk.id != m.SignedPrekeyID:
		return fmt.Errorf("%w: signed prekey %d", ErrUnknownPrekey, m.SignedPrekeyID)
	case pq == nil || pq.id != m.PQPrekeyID || pq.lastResort == m.PQOneTime:
		return fmt.Errorf("%w: pq prekey %d", ErrUnknownPrekey, m.PQPrekeyID)
	case m.HasOneTimePrekey != (otp != nil):
		return fmt.Errorf("%w: one-time prekey", ErrUnknownPrekey)
	case otp != nil && otp.id != m.OneTimePrekeyID:
		return fmt.Errorf("%w: one-time prekey %d", ErrUnknownPrekey, m.OneTimePrekeyID)
	}
	return nil
}

// dhPair is one X25519 exchange; a nil public key means "skip".
type dhPair struct {
	priv *ecdh.PrivateKey
	pub  *ecdh.PublicKey
}

// exchanges returns the 32-byte 0xFF prefix followed by each exchange's
// output. crypto/ecdh rejects an all-zero output, which a low-order peer key
// produces; that is ErrLowOrderPoint.
func exchanges(pairs ...dhPair) ([]byte, error) {
	out := make([]byte, 32, 32*(len(pairs)+2))
	for i := range out {
		out[i] = 0xFF
	}
	for _, p := range pairs {
		if p.pub == nil || p.priv == nil {
			continue
		}
		s, err := p.priv.ECDH(p.pub)
		if err != nil {
			clear(out)
			return nil, ErrLowOrderPoint
		}
		out = append(out, s...)
		clear(s)
	}
	return out, nil
}

// derive turns the key material into the session keys and the confirmation
// MAC: HKDF-SHA-256 with a zero salt and info = label || transcript hash,
// 64 bytes split into the session secret and the confirmation key.
func derive(ikm []byte, t *transcript) (*SessionKeys, [32]byte) {
	h := t.hash()
	okm := kdf.Key(ikm, make([]byte, 32), kdf.LabelSessionSecret, h[:], 64)
	clear(ikm)
	keys := &SessionKeys{ad: t.associatedData()}
	copy(keys.secret[:], okm[:32])
	confirm := kdf.MAC(okm[32:], kdf.LabelSessionConfirm, h[:])
	clear(okm)
	return keys, confirm
}

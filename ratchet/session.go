package ratchet

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"

	"github.com/sealpost/sealpost/internal/kdf"
)

// SecretSize is the size of the session secret the constructors take.
const SecretSize = 32

// Session is one party's side of a Double Ratchet session with header
// encryption. It holds secret keys: it must be kept secret and saved only
// through MarshalBinary to storage the app protects. String, GoString and
// Format print no key material.
//
// A Session is not safe for concurrent use. The zero Session is only good
// for UnmarshalBinary.
type Session struct {
	cfg config
	ad  []byte

	rk      [keySize]byte    // RK
	dhs     *ecdh.PrivateKey // DHs
	dhsPub  [pubSize]byte    // DHs public key, cached for every header
	dhsPriv [keySize]byte    // DHs private key, cached for every save
	dhr     [pubSize]byte    // DHr
	hasDHr  bool
	pn      uint32 // PN

	send *sendChain // CKs, HKs, Ns; nil until a responder has received
	recv *recvChain // CKr, HKr, Nr; nil until the first message arrives
	nhks [keySize]byte
	next *window // the next receiving chain: NHKr and its tags from 0

	skipped  skippedStore
	consumed ring[consumed]
	expired  ring[[TagSize]byte]

	// The KEM ratchet (kemratchet.go): the lane this party owns, the
	// peer's, and the count of messages sent, which picks between them.
	initiator bool
	own       ownLane
	peer      peerLane
	sent      uint64

	// Scratch space, so that sealing and opening do not allocate.
	scratch *scratch
	tagGen  uint64  // counts the changes of the expected tags (TagGeneration)
	step    tagStep // how the last Decrypt changed them, when simply

	hooks
	trials int // test hook: header trial decryptions
}

// hooks are test hooks, never saved and never settable from outside the
// package: keygen replaces random ratchet keys, kemSeed random ML-KEM
// seeds and encSecret random encapsulation secrets (from which the
// encapsulation randomness is derived), and classical sends filler in
// every KEM field, so that no KEM round ever completes (benchmarks and the
// converse security test compare with it). There is no exported way to
// turn the KEM ratchet off.
type hooks struct {
	keygen    func() (*ecdh.PrivateKey, error)
	kemSeed   func() [kemSeedSize]byte
	encSecret func() [keySize]byte
	classical bool
	// blind skips every received KEM chunk: the security tests' model of
	// an attacker that holds a party's classical secrets but none of its
	// KEM secrets (it follows the public lane state from outside).
	blind bool
}

// sendChain is the sending chain.
type sendChain struct {
	ck [keySize]byte
	n  uint32
	hk *headerKeys
}

// recvChain is the receiving chain; its window holds HKr and the tags
// expected from Nr on.
type recvChain struct {
	ck  [keySize]byte
	n   uint32
	win *window
}

type scratch struct {
	ad   []byte // session AD || version || tag || encrypted header
	hdr  [headerSize]byte
	cold []byte    // the cold part of a split save, to compare with the saved one
	mac  hash.Hash // SHA-256, for the body nonce's HMAC
	pad  [sha256.BlockSize]byte
	sum  [sha256.Size]byte
}

// NewInitiator starts the session of the party that sent the session start
// (Alice), as RatchetInitAliceHE in Signal's specification, section 4.4:
// secret is the 32-byte session secret, ad the session's associated data and
// peerRatchetKey the responder's first ratchet public key (its signed
// prekey). The initiator can send at once. secret must be kept secret; the
// session keeps copies of secret-derived keys only.
//
// It returns ErrMalformed for a secret of the wrong size or a key that is
// not X25519, and ErrLowOrderPoint for a low-order peer key.
func NewInitiator(secret, ad []byte, peerRatchetKey *ecdh.PublicKey, opts ...Option) (*Session, error) {
	return newInitiator(secret, ad, peerRatchetKey, hooks{}, opts...)
}

func newInitiator(secret, ad []byte, peer *ecdh.PublicKey, h hooks, opts ...Option) (*Session, error) {
	if peer == nil || peer.Curve() != ecdh.X25519() {
		return nil, errorf(ErrMalformed, "peer ratchet key is not X25519")
	}
	s, hka, nhkb, err := newSession(secret, ad, true, h, opts)
	if err != nil {
		return nil, err
	}
	copy(s.dhr[:], peer.Bytes())
	s.hasDHr = true
	dhs, err := s.generate()
	if err != nil {
		return nil, err
	}
	s.setDHs(dhs)
	dh, err := exchange(s.dhs, &s.dhr)
	if err != nil {
		return nil, err
	}
	var ck, nhks [keySize]byte
	kdfRoot(&s.rk, &ck, &nhks, &s.rk, dh, s.ownID(), 0, nil)
	s.send = &sendChain{ck: ck, hk: newHeaderKeys(&hka)}
	s.nhks = nhks
	s.next = newWindow(newHeaderKeys(&nhkb), 0, s.cfg.tagWindow)
	clear(hka[:])
	clear(nhkb[:])
	return s, nil
}

// NewResponder starts the session of the party that received the session
// start (Bob), as RatchetInitBobHE in Signal's specification, section 4.4:
// secret and ad as for NewInitiator, and ownRatchetKey the private key of
// the signed prekey the initiator used. The responder cannot send until it
// has decrypted the initiator's first message. The session keeps
// ownRatchetKey until its first DH step replaces it.
//
// It returns ErrMalformed for a secret of the wrong size or a key that is
// not X25519.
func NewResponder(secret, ad []byte, ownRatchetKey *ecdh.PrivateKey, opts ...Option) (*Session, error) {
	return newResponder(secret, ad, ownRatchetKey, hooks{}, opts...)
}

func newResponder(secret, ad []byte, ownRatchetKey *ecdh.PrivateKey, h hooks, opts ...Option) (*Session, error) {
	if ownRatchetKey == nil || ownRatchetKey.Curve() != ecdh.X25519() {
		return nil, errorf(ErrMalformed, "own ratchet key is not X25519")
	}
	s, hka, nhkb, err := newSession(secret, ad, false, h, opts)
	if err != nil {
		return nil, err
	}
	s.setDHs(ownRatchetKey)
	s.nhks = nhkb
	s.next = newWindow(newHeaderKeys(&hka), 0, s.cfg.tagWindow)
	clear(hka[:])
	clear(nhkb[:])
	return s, nil
}

// newSession derives the first root key, HKa and NHKb from the secret with
// HKDF-SHA-256 under LabelRatchetInit (both parties do the same), and
// starts the KEM lanes: the party's own lane generates the key pair of its
// epoch 1, the peer's lane waits for the peer's.
func newSession(secret, ad []byte, initiator bool, h hooks, opts []Option) (s *Session, hka, nhkb [keySize]byte, err error) {
	if len(secret) != SecretSize {
		return nil, hka, nhkb, errorf(ErrMalformed, "session secret of %d bytes", len(secret))
	}
	s = &Session{cfg: defaultConfig(), ad: append([]byte(nil), ad...), initiator: initiator, hooks: h}
	for _, o := range opts {
		o(&s.cfg)
	}
	seed := s.newSeed()
	s.own = newOwnLane(0, &seed)
	clear(seed[:])
	encSecret := s.newEncapsSecret()
	s.peer = newPeerLane(0, &encSecret)
	clear(encSecret[:])
	s.initRecords()
	okm := kdf.Key(secret, nil, kdf.LabelRatchetInit, nil, 3*keySize)
	copy(s.rk[:], okm)
	copy(hka[:], okm[keySize:])
	copy(nhkb[:], okm[2*keySize:])
	clear(okm)
	return s, hka, nhkb, nil
}

// initRecords sets up the bounded records and the scratch space.
func (s *Session) initRecords() {
	s.consumed = ring[consumed]{max: ReplayRecord}
	s.expired = ring[[TagSize]byte]{max: ExpiredRecord}
	s.scratch = &scratch{ad: make([]byte, 0, len(s.ad)+1+TagSize+encHeaderSize), mac: sha256.New()}
}

// setDHs makes k the session's ratchet key pair, with its cached bytes.
func (s *Session) setDHs(k *ecdh.PrivateKey) {
	s.dhs = k
	s.dhsPub = [pubSize]byte(k.PublicKey().Bytes())
	s.dhsPriv = [keySize]byte(k.Bytes())
}

// generate makes a new ratchet key pair (GENERATE_DH).
func (s *Session) generate() (*ecdh.PrivateKey, error) {
	if s.keygen != nil {
		return s.keygen()
	}
	return ecdh.X25519().GenerateKey(rand.Reader)
}

// exchange is DH: X25519 between our private key and the peer's public
// key. crypto/ecdh rejects an all-zero result (a low-order point).
func exchange(priv *ecdh.PrivateKey, pub *[pubSize]byte) ([]byte, error) {
	p, err := ecdh.X25519().NewPublicKey(pub[:])
	if err != nil {
		return nil, errorf(ErrMalformed, "ratchet public key")
	}
	dh, err := priv.ECDH(p)
	if err != nil {
		return nil, errorf(ErrLowOrderPoint, "ratchet key exchange")
	}
	return dh, nil
}

// kdfRoot is KDF_RK_HE (section 4.2) extended with the KEM ratchet:
// HKDF-SHA-256 with the root key as salt, the DH output (followed by the
// KEM secret when one is mixed) as input, and as info a label, the lane of
// the chain's sender and its declared epoch (followed by the epoch's
// transcript when mixed), giving the next root key, a chain key and the
// next header key. It clears dh. rkOut may alias rk.
func kdfRoot(rkOut, ck, nhk, rk *[keySize]byte, dh []byte, lane uint8, epoch uint32, mix *kemMix) {
	salt := *rk // a copy: HKDF keeps its salt, which must not pin the caller's
	var ctxBuf [5 + keySize]byte
	ctx := binary.BigEndian.AppendUint32(append(ctxBuf[:0], lane), epoch)
	label, ikm := kdf.LabelRatchetDHRoot, dh
	if mix != nil && mix.ok {
		label = kdf.LabelRatchetKEMRoot
		ctx = append(ctx, mix.th[:]...)
		ikm = append(append(make([]byte, 0, len(dh)+len(mix.ss)), dh...), mix.ss[:]...)
	}
	okm := kdf.Key(ikm, salt[:], label, ctx, 3*keySize)
	clear(salt[:])
	copy(rkOut[:], okm)
	copy(ck[:], okm[keySize:])
	copy(nhk[:], okm[2*keySize:])
	clear(okm)
	clear(ikm)
	clear(dh)
}

// String describes the session without key material: whether it can send
// and how many skipped keys it holds.
func (s Session) String() string {
	if s.dhs == nil {
		return "ratchet.Session{}"
	}
	return fmt.Sprintf("ratchet.Session{sending: %t, skipped keys: %d}", s.send != nil, s.skipped.count)
}

// GoString is String.
func (s Session) GoString() string { return s.String() }

// Format prints String whatever the verb, so no verb prints key material.
func (s Session) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

package benchmarks

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// Floor holds the primitives that one sealpost ratchet seal+open of a
// Body-byte message performs, written out plainly with the same calls the
// ratchet makes (its BenchmarkPrimitives, rebuilt here from public
// packages so that the ratio to the floor prints in the same run):
//
//   - chain step: two HMAC-SHA-256 under the chain key (message key, next
//     chain key), each as two sha256.Sum256 calls; one on each side;
//   - routing tag: HMAC-SHA-256 of the 4-byte message number with a reused
//     keyed state; one on each side;
//   - header: ChaCha20-Poly1305 seal and open of the 82-byte header under
//     the chain's cached header cipher, AD the session AD || version || tag;
//   - body nonce: the sender's synthetic nonce, HMAC-SHA-256 under the
//     message key of a label and the plaintext, with a reused SHA-256
//     state (the ratchet's bodyNonce);
//   - body: ChaCha20-Poly1305 seal and open of the body, a new cipher for
//     each (one key per message), AD the header AD || encrypted header.
//
// The floor is that of a classical header-encrypted Double Ratchet with
// the version-2 header (its 42-byte KEM field included in the sizes). The
// KEM ratchet's own work is not in it: an erasure-coded chunk made and
// absorbed per message (a data chunk is a copy, a parity chunk ~0.75 µs)
// and one ML-KEM-768 key generation, encapsulation and decapsulation per
// lane epoch, about every 92 messages of a conversation.
//
// A DH step (each message of BenchmarkPingPong) adds an X25519 key
// generation, two X25519 exchanges with the peer's key parsed, two root
// KDFs (HKDF-SHA-256 to 96 bytes) and two chains' header keys (two HMACs,
// a ChaCha20-Poly1305 and an HMAC state each).
type Floor struct {
	ck, mk, hk [32]byte
	tagm       hash.Hash
	tagIn      [4]byte
	tagOut     [sha256.Size]byte
	hdrAEAD    cipher.AEAD
	hdr, body  []byte
	hdrAD, ad  []byte
	nonce      [chacha20poly1305.NonceSize]byte
	bodyNonce  [chacha20poly1305.NonceSize]byte
	mac        hash.Hash
	pad        [sha256.BlockSize]byte
	sum        [sha256.Size]byte
	buf, out   []byte
	priv       *ecdh.PrivateKey
	peer       []byte
	rk         [32]byte
}

// Sizes of the sealpost ratchet message (ratchet/header.go).
const (
	headerSize    = 32 + 4 + 4 + 42 // ratchet key, PN, N, KEM field
	encHeaderSize = headerSize + chacha20poly1305.Overhead
)

// NewFloor sets the primitives up for a session whose associated data is
// adLen bytes long.
func NewFloor(adLen int) *Floor {
	f := &Floor{
		hdr: make([]byte, headerSize), body: make([]byte, Body),
		ad:  make([]byte, adLen+1+16+encHeaderSize),
		buf: make([]byte, 0, 256), out: make([]byte, 0, 256),
		mac: sha256.New(),
	}
	f.hdrAD = f.ad[:adLen+1+16]
	rand.Read(f.hk[:])
	f.newHeaderKeys(&f.hk)
	f.priv, _ = ecdh.X25519().GenerateKey(rand.Reader)
	peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
	f.peer = peer.PublicKey().Bytes()
	return f
}

// hmacKey is HMAC-SHA-256 under a 32-byte key that changes every call, as
// the ratchet computes it (two sha256.Sum256 over a stack buffer).
func hmacKey(out, key *[32]byte, msg string) {
	var buf [sha256.BlockSize + 64]byte
	for i := range sha256.BlockSize {
		buf[i] = 0x36
	}
	for i, b := range key {
		buf[i] ^= b
	}
	n := copy(buf[sha256.BlockSize:], msg)
	inner := sha256.Sum256(buf[:sha256.BlockSize+n])
	for i := range sha256.BlockSize {
		buf[i] ^= 0x36 ^ 0x5c
	}
	copy(buf[sha256.BlockSize:], inner[:])
	*out = sha256.Sum256(buf[:sha256.BlockSize+sha256.Size])
	clear(buf[:])
	clear(inner[:])
}

// The ratchet's labels (internal/kdf/labels.go); their lengths matter.
const (
	labelMessageKey = "sealpost v1 ratchet message key"
	labelChainKey   = "sealpost v1 ratchet chain key"
	labelHeaderAEAD = "sealpost v1 ratchet header aead key"
	labelTagKey     = "sealpost v1 ratchet tag key"
	labelRoot       = "sealpost v1 ratchet root"
	labelBodyNonce  = "sealpost v1 ratchet body nonce"
)

var bodyNonceLabel = []byte(labelBodyNonce)

// ChainStep is KDF_CK: the message key and the next chain key.
func (f *Floor) ChainStep() {
	hmacKey(&f.mk, &f.ck, labelMessageKey)
	hmacKey(&f.ck, &f.ck, labelChainKey)
}

// Tag computes one routing tag.
func (f *Floor) Tag() {
	binary.BigEndian.PutUint32(f.tagIn[:], uint32(f.ck[0]))
	f.tagm.Reset()
	f.tagm.Write(f.tagIn[:])
	f.tagm.Sum(f.tagOut[:0])
}

// HeaderSealOpen seals and opens the header under the cached cipher.
func (f *Floor) HeaderSealOpen() {
	c := f.hdrAEAD.Seal(f.buf[:0], f.nonce[:], f.hdr, f.hdrAD)
	if _, err := f.hdrAEAD.Open(f.out[:0], f.nonce[:], c, f.hdrAD); err != nil {
		panic(err)
	}
}

// BodyNonce derives the sender's synthetic body nonce.
func (f *Floor) BodyNonce() {
	for i := range f.pad {
		f.pad[i] = 0x36
	}
	for i, b := range f.mk {
		f.pad[i] ^= b
	}
	f.mac.Reset()
	f.mac.Write(f.pad[:])
	f.mac.Write(bodyNonceLabel)
	f.mac.Write(f.body)
	inner := f.mac.Sum(f.sum[:0])
	for i := range f.pad {
		f.pad[i] ^= 0x36 ^ 0x5c
	}
	f.mac.Reset()
	f.mac.Write(f.pad[:])
	f.mac.Write(inner)
	copy(f.bodyNonce[:], f.mac.Sum(f.sum[:0]))
	clear(f.pad[:])
	clear(f.sum[:])
}

// BodySealOpen seals and opens the body, each under a new cipher.
func (f *Floor) BodySealOpen() {
	a, _ := chacha20poly1305.New(f.mk[:])
	c := a.Seal(f.buf[:0], f.bodyNonce[:], f.body, f.ad)
	a, _ = chacha20poly1305.New(f.mk[:])
	if _, err := a.Open(f.out[:0], f.bodyNonce[:], c, f.ad); err != nil {
		panic(err)
	}
}

// SealOpen is the sum: what one seal+open performs.
func (f *Floor) SealOpen() {
	f.ChainStep()
	f.ChainStep()
	f.Tag()
	f.Tag()
	f.HeaderSealOpen()
	f.BodyNonce()
	f.BodySealOpen()
}

// newHeaderKeys derives a chain's header cipher and tag state from its
// header key.
func (f *Floor) newHeaderKeys(hk *[32]byte) {
	var k [32]byte
	hmacKey(&k, hk, labelHeaderAEAD)
	f.hdrAEAD, _ = chacha20poly1305.New(k[:])
	hmacKey(&k, hk, labelTagKey)
	f.tagm = hmac.New(sha256.New, k[:])
}

// exchange is X25519 with the peer's key parsed first, as the ratchet does.
func (f *Floor) exchange(priv *ecdh.PrivateKey) {
	pub, err := ecdh.X25519().NewPublicKey(f.peer)
	if err != nil {
		panic(err)
	}
	dh, err := priv.ECDH(pub)
	if err != nil {
		panic(err)
	}
	okm, err := hkdf.Key(sha256.New, dh, f.rk[:], labelRoot, 96)
	if err != nil {
		panic(err)
	}
	copy(f.rk[:], okm)
}

// DHStep is the receiving and sending halves of a DH ratchet step: an
// exchange and root KDF with the current key, a key generation, an
// exchange and root KDF with the new one, and two chains' header keys.
func (f *Floor) DHStep() {
	f.exchange(f.priv)
	f.newHeaderKeys(&f.hk)
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k.PublicKey()
	f.exchange(k)
	f.newHeaderKeys(&f.hk)
}

package ratchet

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealpost/sealpost/internal/kdf"
)

// keySize is the size of every root, chain, header and message key.
const keySize = 32

// hmacKey computes HMAC-SHA-256 (RFC 2104) of msg under the 32-byte key
// into out. It is written out on two sha256.Sum256 calls because the chain
// key changes every step, so there is no keyed state to reuse, and
// crypto/hmac would allocate six times per call. A test checks it against
// crypto/hmac. out may alias key.
func hmacKey(out, key *[keySize]byte, msg string) {
	var buf [sha256.BlockSize + 64]byte
	for i := range sha256.BlockSize {
		buf[i] = 0x36
	}
	for i, b := range key {
		buf[i] ^= b
	}
	if len(msg) > 64 {
		panic("sealpost/ratchet: HMAC label too long")
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

// stepChain is KDF_CK (Signal's Double Ratchet, section 5.2 recommends
// HMAC with two constants): it writes the message key into mk and advances
// ck in place.
func stepChain(ck, mk *[keySize]byte) {
	hmacKey(mk, ck, kdf.LabelRatchetMessageKey)
	hmacKey(ck, ck, kdf.LabelRatchetChainKey)
}

// headerKeys is one chain's header key HK with the two keys derived from
// it: the ChaCha20-Poly1305 key of its headers and the HMAC key of its
// routing tags. HK itself is never used as a cipher key, so each key has
// exactly one use. The derived objects are caches; only hk is saved.
type headerKeys struct {
	hk   [keySize]byte
	aead cipher.AEAD
	tagm hash.Hash
	in   [4]byte
	out  [sha256.Size]byte
}

func newHeaderKeys(hk *[keySize]byte) *headerKeys {
	h := &headerKeys{hk: *hk}
	var k [keySize]byte
	hmacKey(&k, hk, kdf.LabelRatchetHeaderAEAD)
	aead, err := chacha20poly1305.New(k[:])
	if err != nil {
		panic("sealpost/ratchet: " + err.Error())
	}
	h.aead = aead
	hmacKey(&k, hk, kdf.LabelRatchetTagKey)
	h.tagm = hmac.New(sha256.New, k[:])
	clear(k[:])
	return h
}

// tag returns the routing tag of message n of this chain: the first 16 bytes
// of HMAC-SHA-256(tagKey, n as 4 big-endian bytes) (docs/SPEC.md section
// 10.3).
func (h *headerKeys) tag(n uint32) (t [TagSize]byte) {
	binary.BigEndian.PutUint32(h.in[:], n)
	h.tagm.Reset()
	h.tagm.Write(h.in[:])
	h.tagm.Sum(h.out[:0])
	copy(t[:], h.out[:])
	return t
}

// messageNonceLabel is the label of messageNonce as bytes, made once.
var messageNonceLabel = []byte(kdf.LabelRatchetMessageNonce)

// messageNonce writes the synthetic nonce of a message under mk into dst
// (nonceSize bytes): HMAC-SHA-256(mk, label || header || plaintext),
// truncated, where header is the plaintext header. It uses the scratch
// SHA-256 state and buffers, so it allocates nothing. See header.go for
// why the nonce covers both.
func messageNonce(sc *scratch, mk *[keySize]byte, header, plaintext, dst []byte) {
	for i := range sc.pad {
		sc.pad[i] = 0x36
	}
	for i, b := range mk {
		sc.pad[i] ^= b
	}
	sc.mac.Reset()
	sc.mac.Write(sc.pad[:])
	sc.mac.Write(messageNonceLabel)
	sc.mac.Write(header)
	sc.mac.Write(plaintext)
	inner := sc.mac.Sum(sc.sum[:0])
	for i := range sc.pad {
		sc.pad[i] ^= 0x36 ^ 0x5c
	}
	sc.mac.Reset()
	sc.mac.Write(sc.pad[:])
	sc.mac.Write(inner)
	copy(dst, sc.mac.Sum(sc.sum[:0]))
	clear(sc.pad[:])
	clear(sc.sum[:])
}

// bodyAEAD returns the ChaCha20-Poly1305 instance of one message key.
func bodyAEAD(mk *[keySize]byte) cipher.AEAD {
	a, err := chacha20poly1305.New(mk[:])
	if err != nil {
		panic("sealpost/ratchet: " + err.Error())
	}
	return a
}

// zeroNonce is an all-zero nonce, for benchmarks of the bare AEAD.
var zeroNonce [chacha20poly1305.NonceSize]byte

package ratchet

import "math"

// Encrypt seals plaintext as the next message of the sending chain
// (RatchetEncryptHE, Signal's specification section 4.5). It returns the
// message's routing tag, which the caller puts in the envelope's routing
// header, and the message: version || encrypted header || body.
//
// The sending chain advances before Encrypt returns, so a message key is
// never used twice even if the caller then fails to send; the caller must
// save the session after Encrypt and before sending. plaintext is not
// retained.
//
// Every header carries one KEM field of fixed size (a chunk of this
// party's ML-KEM key, a chunk of its answer to the peer's, or filler), so
// all messages of a given plaintext length have the same size. Encrypt
// draws no randomness: the same saved state seals the same bytes.
//
// It returns ErrNoSession on the zero Session or a responder that has not
// received yet, and ErrTooLarge when the chain has used every message
// number.
func (s *Session) Encrypt(plaintext []byte) (tag [TagSize]byte, msg []byte, err error) {
	c := s.send
	if c == nil {
		return tag, nil, errorf(ErrNoSession, "no sending chain yet")
	}
	if c.n == math.MaxUint32 {
		return tag, nil, errorf(ErrTooLarge, "sending chain exhausted")
	}
	var f kemField
	if err := s.kemOut(&f); err != nil {
		return tag, nil, err
	}
	if testHookKEMField != nil {
		testHookKEMField(s, &f)
	}
	// Step the chain: a fresh message key, and the chain moves on.
	var mk [keySize]byte
	stepChain(&c.ck, &mk)
	n := c.n
	c.n++
	s.kemSent(&f)
	tag, msg = s.seal(c.hk, n, &mk, &f, plaintext)
	clear(mk[:])
	return tag, msg, nil
}

// seal builds message n of the chain of hk under message key mk: the
// synthetic nonce of header and body, the header sealed under the header
// key, then the body under mk with the encrypted header added to the AD,
// both with that nonce.
func (s *Session) seal(hk *headerKeys, n uint32, mk *[keySize]byte, f *kemField, plaintext []byte) (tag [TagSize]byte, msg []byte) {
	tag = hk.tag(n)
	if testHookSeal != nil {
		testHookSeal(hk.hk, tag, *mk)
	}
	msg = make([]byte, bodyOffset+len(plaintext)+bodyOverhead)
	msg[0] = Version
	sc := s.scratch
	putHeader(sc.hdr[:], &s.dhsPub, s.pn, n, f)
	nonce := msg[nonceOffset:headerOffset]
	messageNonce(sc, mk, sc.hdr[:], plaintext, nonce)
	if testHookNonce != nil {
		testHookNonce(true, hk.hk, [nonceSize]byte(nonce), sc.hdr[:])
		testHookNonce(false, *mk, [nonceSize]byte(nonce), plaintext)
	}
	ad := s.headerAD(&tag)
	hk.aead.Seal(msg[headerOffset:headerOffset], nonce, sc.hdr[:], ad)
	ad = append(ad, msg[headerOffset:bodyOffset]...)
	bodyAEAD(mk).Seal(msg[bodyOffset:bodyOffset], nonce, plaintext, ad)
	clear(sc.hdr[:])
	return tag, msg
}

// headerAD returns the header's associated data, session AD || version ||
// tag, in the scratch buffer (which has room for the encrypted header too).
func (s *Session) headerAD(tag *[TagSize]byte) []byte {
	ad := append(s.scratch.ad[:0], s.ad...)
	ad = append(ad, Version)
	return append(ad, tag[:]...)
}

// testHookKEMField, when set by a test, may rewrite the KEM field Encrypt
// chose, so that a test can send a validly sealed header with a corrupted
// or inconsistent chunk stream.
var testHookKEMField func(s *Session, f *kemField)

// testHookSeal, when set by a test, sees the header key, tag and message key
// of every message sealed.
var testHookSeal func(hk [keySize]byte, tag [TagSize]byte, mk [keySize]byte)

// testHookNonce, when set by a test, sees every (key, nonce, plaintext)
// that Encrypt seals: the header's (header key HK, which names the header
// AEAD key) and the body's (message key).
var testHookNonce func(header bool, key [keySize]byte, nonce [nonceSize]byte, plaintext []byte)

package ratchet

import (
	"fmt"
	"math"
)

// Failures of the receive path that happen often enough (a flood of
// unknown tags) to be worth not allocating.
var (
	errHeader    = fmt.Errorf("ratchet: header: %w", ErrDecrypt)
	errNoKey     = fmt.Errorf("ratchet: header opens under no key: %w", ErrDecrypt)
	errTagHeader = fmt.Errorf("ratchet: routing tag does not match the header: %w", ErrDecrypt)
	errBody      = fmt.Errorf("ratchet: body: %w", ErrDecrypt)
	errReplay    = fmt.Errorf("ratchet: replay: %w", ErrDuplicate)
	errForged    = fmt.Errorf("ratchet: another body under a consumed tag: %w", ErrDecrypt)
	errExpired   = fmt.Errorf("ratchet: skipped key was evicted: %w", ErrExpiredKey)
)

// where says which key a routing tag names.
type where uint8

const (
	atUnknown   where = iota // not an expected tag: trial decryption
	atSkipped                // a skipped key
	atCurrent                // the receiving chain (HKr)
	atNext                   // the next receiving chain (NHKr): a DH step
	atDuplicate              // the replay record, same body
	atForged                 // the replay record, another body
	atExpired                // the record of evicted keys
)

// location is where a message's key is: for atSkipped the chain and key
// index in the store, for atCurrent and atNext the message number.
type location struct {
	at     where
	n      uint32
	ci, ki int
}

// Decrypt opens a message that arrived with routing tag tag
// (RatchetDecryptHE, Signal's specification section 4.6, with the routing
// tags of docs/SPEC.md section 10.3 in front). It returns the plaintext, and
// only after both header and body authenticated and the session moved
// forward.
//
// On any error the session is unchanged: its MarshalBinary output is
// byte-for-byte what it was. Errors: ErrMalformed (too short),
// ErrUnsupportedVersion, ErrDecrypt (header or body fails, or opens under
// no key), ErrDuplicate (already decrypted), ErrExpiredKey (its skipped key
// was evicted), ErrTooManySkipped (too far ahead), ErrLowOrderPoint, and
// ErrMalformed for an authenticated KEM field that breaks the KEM ratchet's
// rules or completes a bad key or answer (doc.go, The KEM ratchet).
//
// The receive path, in the specification's order:
//
//  1. Split the message: version, nonce, encrypted header, body.
//  2. Find the tag: the current chain's window, the next chain's window,
//     the skipped keys, then the replay and eviction records. No key is
//     used yet.
//  3. Open the header, with the message's nonce, under the one header
//     key the tag names; an unknown
//     tag tries HKr, then NHKr (TrySkippedMessageKeysHE and DecryptHeader):
//     never more than two trial decryptions.
//  4. Check that the header agrees with the tag: the tag is that chain's
//     tag of the header's N.
//  5. Plan in locals: bounds first (ErrTooManySkipped before any loop),
//     then skip the old chain to PN, DH step, skip the new chain to N
//     (SkipMessageKeysHE, DHRatchetHE).
//  6. Open the body under the message key.
//  7. Finish the DH step (new ratchet key pair, sending chain, and the own
//     KEM lane's ready secret mixed and declared), plan the KEM chunk
//     (encapsulating to a completed key, or decapsulating and confirming a
//     completed answer: ErrMalformed if either is bad), and commit:
//     skipped keys stored, the oldest evicted past the cap, the KEM lanes,
//     the tag recorded against replay, the used keys cleared.
func (s *Session) Decrypt(tag [TagSize]byte, msg []byte) ([]byte, error) {
	if s.dhs == nil {
		return nil, errorf(ErrNoSession, "zero session")
	}
	// 1.
	nonce, encHeader, body, err := splitMessage(msg)
	if err != nil {
		return nil, err
	}
	// 2.
	loc := s.locate(&tag, body)
	switch loc.at {
	case atDuplicate:
		return nil, errReplay
	case atForged:
		return nil, errForged
	case atExpired:
		return nil, errExpired
	}
	// 3. and 4.
	h, loc, err := s.openHeader(loc, &tag, nonce, encHeader)
	if err != nil {
		return nil, err
	}
	// 5.
	var p plan
	defer p.clear()
	if err := s.plan(&p, loc, &h); err != nil {
		return nil, err
	}
	// 6.
	plaintext, err := s.openBody(&p.mk, &tag, nonce, encHeader, body)
	if err != nil {
		return nil, err
	}
	// 7.
	if err := s.finish(&p, &h); err != nil {
		clear(plaintext)
		return nil, err
	}
	s.commit(&p, &tag, body)
	return plaintext, nil
}

// locate is step 2: which key the tag names, without any decryption.
func (s *Session) locate(t *[TagSize]byte, body []byte) location {
	if s.recv != nil {
		if n, ok := s.recv.win.find(t); ok {
			return location{at: atCurrent, n: n}
		}
	}
	if n, ok := s.next.find(t); ok {
		return location{at: atNext, n: n}
	}
	if ci, ki, ok := s.skipped.find(t); ok {
		return location{at: atSkipped, ci: ci, ki: ki}
	}
	if at, ok := s.replayed(t, body); ok {
		return location{at: at}
	}
	if s.expired.contains(*t) {
		return location{at: atExpired}
	}
	return location{at: atUnknown}
}

// openHeader is steps 3 and 4.
func (s *Session) openHeader(loc location, t *[TagSize]byte, nonce, encHeader []byte) (header, location, error) {
	switch loc.at {
	case atSkipped:
		c := s.skipped.chains[loc.ci]
		h, ok := s.tryHeader(c.hk, t, nonce, encHeader)
		if !ok || h.n != c.keys[loc.ki].n {
			return h, loc, errHeader
		}
		return h, loc, nil
	case atCurrent, atNext:
		w := s.windowOf(loc.at)
		h, ok := s.tryHeader(w.hk, t, nonce, encHeader)
		if !ok || h.n != loc.n {
			return h, loc, errHeader
		}
		return h, loc, nil
	}
	return s.trialHeader(t, nonce, encHeader)
}

// trialHeader is step 3 for a tag not expected: HKr, then NHKr. A header
// that opens is accepted only if its N gives the tag received.
func (s *Session) trialHeader(t *[TagSize]byte, nonce, encHeader []byte) (header, location, error) {
	for _, at := range [2]where{atCurrent, atNext} {
		w := s.windowOf(at)
		if w == nil {
			continue
		}
		h, ok := s.tryHeader(w.hk, t, nonce, encHeader)
		if !ok {
			continue
		}
		if w.tagOf(h.n) != *t {
			return h, location{}, errTagHeader
		}
		if at == atCurrent && h.n < s.recv.n {
			// Not a skipped key (its tag would be known): consumed
			// before the replay record began.
			return h, location{}, errReplay
		}
		return h, location{at: at, n: h.n}, nil
	}
	return header{}, location{}, errNoKey
}

func (s *Session) windowOf(at where) *window {
	if at == atNext {
		return s.next
	}
	if s.recv == nil {
		return nil
	}
	return s.recv.win
}

// tryHeader opens the encrypted header under hk with the message's nonce;
// the AD binds the session AD, version and tag.
func (s *Session) tryHeader(hk *headerKeys, t *[TagSize]byte, nonce, encHeader []byte) (header, bool) {
	s.trials++
	sc := s.scratch
	if _, err := hk.aead.Open(sc.hdr[:0], nonce, encHeader, s.headerAD(t)); err != nil {
		return header{}, false
	}
	h := parseHeader(sc.hdr[:])
	clear(sc.hdr[:])
	return h, true
}

// openBody is step 6: the body under the message key with the message's
// nonce, AD the session AD, version, tag and encrypted header. The
// plaintext buffer is cleared on failure (by chacha20poly1305) and never
// returned.
func (s *Session) openBody(mk *[keySize]byte, t *[TagSize]byte, nonce, encHeader, body []byte) ([]byte, error) {
	ad := append(s.headerAD(t), encHeader...)
	out := make([]byte, len(body)-bodyOverhead)
	if _, err := bodyAEAD(mk).Open(out[:0], nonce, body, ad); err != nil {
		return nil, errBody
	}
	return out, nil
}

// gap returns how many keys lie between from and to (0 if to <= from).
func gap(from, to uint32) uint64 {
	if to <= from {
		return 0
	}
	return uint64(to) - uint64(from)
}

// checkBounds is the start of step 5: the keys a message would skip in the
// old chain (to PN) and in its own chain (to N), against MaxSkip per chain
// and the total cap, before any work. N = 2^32-1 is never sent.
func (s *Session) checkBounds(old, own uint64, n uint32) error {
	max := uint64(s.cfg.maxSkip)
	if n == math.MaxUint32 || old > max || own > max {
		return errorf(ErrTooManySkipped, "message skips %d and %d keys, more than %d", old, own, max)
	}
	if old+own > uint64(s.cfg.maxSkipped) {
		return errorf(ErrTooManySkipped, "message skips %d keys, more than the session holds", old+own)
	}
	return nil
}

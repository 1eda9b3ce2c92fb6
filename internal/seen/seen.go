// Package seen is the set of session starts a Device has accepted, kept
// so that a replayed start is ErrDuplicate even after its session (or its
// peer) is gone (TESTING.md item 8; libsignal keeps the same record for
// the same reason).
//
// A start can only be accepted while the signed prekey it names is kept,
// so starts are remembered per signed prekey, as the first 16 bytes of
// SHA-256(base key), and forgotten with the prekey when RotatePrekeys
// drops it; a start replayed after that names an unknown prekey and is
// ErrUnknownPrekey.
//
// They are saved in blocks of BlockSize entries, "seen/<signed prekey
// id>/<block>", appended to: accepting a start rewrites only the last
// block (at most 261 bytes), however many starts came before. The set of
// one prekey is read once, on the first start that names it, and kept in
// memory: 16 bytes and a map entry per start over the prekey's lifetime
// (PrekeyLifetime plus the grace), the one cost of an unsolicited first
// contact that is not bounded by a count.
package seen

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
)

// BlockSize is the number of entries in a full block: small, so that a
// first contact writes little; large enough that loading a busy prekey's
// set reads few records.
const BlockSize = 16

// Starts is the accepted starts of one signed prekey.
type Starts struct {
	set    map[[16]byte]struct{}
	blocks int    // blocks saved
	last   []byte // the entries of the last block, 16 bytes each
}

// Add is one accepted start, staged by Put and adopted after commit.
type Add struct {
	h     [16]byte
	block int    // the block it went into
	last  []byte // that block's entries, with it
}

// BlockKey returns the store key of block number block of a signed
// prekey's accepted starts.
func BlockKey(signedPrekeyID uint32, block int) string {
	return record.KeySeenPrefix + strconv.FormatUint(uint64(signedPrekeyID), 10) + "/" + strconv.Itoa(block)
}

// Load reads the accepted starts of a signed prekey through get, which
// returns a record's value (checksum checked) or an error matching
// ErrNotFound when it is absent. Every block but the last must be full.
func Load(signedPrekeyID uint32, get func(key string) ([]byte, error)) (*Starts, error) {
	s := &Starts{set: map[[16]byte]struct{}{}}
	for {
		raw, err := get(BlockKey(signedPrekeyID, s.blocks))
		if errors.Is(err, errs.ErrNotFound) {
			return s, nil
		}
		if err != nil {
			return nil, err
		}
		if len(s.last) != 16*BlockSize && s.blocks > 0 {
			return nil, fmt.Errorf("%w: accepted starts block %d is not full", errs.ErrMalformed, s.blocks-1)
		}
		entries, err := DecodeBlock(raw)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(entries); i += 16 {
			s.set[[16]byte(entries[i:])] = struct{}{}
		}
		s.blocks, s.last = s.blocks+1, entries
	}
}

// DecodeBlock decodes a block of accepted starts: version (record.Layout),
// then 1 to BlockSize entries of 16 bytes. Nothing follows. It returns
// ErrUnsupportedVersion for another version and ErrMalformed for anything
// else.
func DecodeBlock(raw []byte) ([]byte, error) {
	if err := record.CheckVersion(raw, "accepted starts block"); err != nil {
		return nil, err
	}
	e := raw[1:]
	if len(e) == 0 || len(e)%16 != 0 || len(e) > 16*BlockSize {
		return nil, fmt.Errorf("%w: accepted starts block", errs.ErrMalformed)
	}
	return e, nil
}

// Has reports whether the start with hash h was accepted.
func (s *Starts) Has(h [16]byte) bool {
	_, ok := s.set[h]
	return ok
}

// Len returns the number of accepted starts.
func (s *Starts) Len() int { return len(s.set) }

// Blocks returns the number of blocks saved.
func (s *Starts) Blocks() int { return s.blocks }

// Put stages the block that records h through put (key, value with room
// for the checksum), and returns the addition for Adopt once the commit
// succeeds. s itself is not changed.
func (s *Starts) Put(signedPrekeyID uint32, h [16]byte, put func(key string, value []byte)) Add {
	a := Add{h: h, block: s.blocks - 1}
	prev := s.last
	if s.blocks == 0 || len(prev) == 16*BlockSize {
		a.block, prev = s.blocks, nil
	}
	v := make([]byte, 0, 1+len(prev)+16+record.ChecksumSize)
	v = append(append(append(v, record.Layout), prev...), h[:]...)
	put(BlockKey(signedPrekeyID, a.block), v)
	a.last = v[1:len(v):len(v)]
	return a
}

// Block returns the block an addition went into.
func (a Add) Block() int { return a.block }

// Adopt records a committed addition.
func (s *Starts) Adopt(a Add) {
	s.set[a.h] = struct{}{}
	s.blocks, s.last = a.block+1, a.last
}

// DeleteAll stages the deletion of every block through del.
func (s *Starts) DeleteAll(signedPrekeyID uint32, del func(key string)) {
	for i := range s.blocks {
		del(BlockKey(signedPrekeyID, i))
	}
}

package sealpost

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/sealpost/sealpost/internal/record"
)

// Accepted session starts are remembered so that a replayed start is
// ErrDuplicate even after its session is gone (ADVERSARIAL 8). A start can
// only be accepted while the signed prekey it names is kept, so they are
// remembered per signed prekey, as the first 16 bytes of SHA-256(base key),
// and forgotten with the prekey when RotatePrekeys drops it; a start
// replayed after that names an unknown prekey and is ErrUnknownPrekey.
//
// They are saved in blocks of seenBlockSize entries, "seen/<signed prekey
// id>/<block>", appended to: accepting a start rewrites only the last block
// (at most 261 bytes), however many starts came before, where the whole
// set used to be rewritten (issue 14, defect 3). The set of one prekey is
// read once, on the first start that names it, and kept in memory: 16 bytes
// and a map entry per start over the prekey's lifetime (PrekeyLifetime plus
// the grace), the one cost of an unsolicited first contact that is not
// bounded by a count. libsignal keeps the same record for the same reason.

// seenBlockSize is the number of entries in a full block: small, so that a
// first contact writes little; large enough that loading a busy prekey's
// set reads few records.
const seenBlockSize = 16

// seenStarts is the accepted starts of one signed prekey.
type seenStarts struct {
	set    map[[16]byte]struct{}
	blocks int    // blocks saved
	last   []byte // the entries of the last block, 16 bytes each
}

// seenAdd is one accepted start, staged by put and adopted after commit.
type seenAdd struct {
	h     [16]byte
	block int    // the block it went into
	last  []byte // that block's entries, with it
}

func seenBlockKey(signedPrekeyID uint32, block int) string {
	return record.KeySeenPrefix + strconv.FormatUint(uint64(signedPrekeyID), 10) + "/" + strconv.Itoa(block)
}

// seenFor returns the accepted starts of a signed prekey, reading them
// from the store the first time.
func (d *Device) seenFor(ctx context.Context, signedPrekeyID uint32) (*seenStarts, error) {
	if s := d.seen[signedPrekeyID]; s != nil {
		return s, nil
	}
	s := &seenStarts{set: map[[16]byte]struct{}{}}
	for {
		raw, err := getRecord(ctx, d.store, seenBlockKey(signedPrekeyID, s.blocks))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(s.last) != 16*seenBlockSize && s.blocks > 0 {
			return nil, fmt.Errorf("%w: accepted starts block %d is not full", ErrMalformed, s.blocks-1)
		}
		entries, err := decodeSeenBlock(raw)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(entries); i += 16 {
			s.set[[16]byte(entries[i:])] = struct{}{}
		}
		s.blocks, s.last = s.blocks+1, entries
	}
	d.seen[signedPrekeyID] = s
	return s, nil
}

// decodeSeenBlock decodes a block of accepted starts: version
// (record.Layout), then 1 to seenBlockSize entries of 16 bytes. Nothing
// follows. It returns ErrUnsupportedVersion for another version and
// ErrMalformed for anything else.
func decodeSeenBlock(raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("%w: empty accepted starts block", ErrMalformed)
	}
	if raw[0] != record.Layout {
		return nil, fmt.Errorf("%w: accepted starts block version %d", ErrUnsupportedVersion, raw[0])
	}
	e := raw[1:]
	if len(e) == 0 || len(e)%16 != 0 || len(e) > 16*seenBlockSize {
		return nil, fmt.Errorf("%w: accepted starts block", ErrMalformed)
	}
	return e, nil
}

// has reports whether the start with hash h was accepted.
func (s *seenStarts) has(h [16]byte) bool {
	_, ok := s.set[h]
	return ok
}

// put adds to b the block that records h, and returns the addition for
// adopt once the commit succeeds. s itself is not changed.
func (s *seenStarts) put(b *Batch, signedPrekeyID uint32, h [16]byte) seenAdd {
	a := seenAdd{h: h, block: s.blocks - 1}
	prev := s.last
	if s.blocks == 0 || len(prev) == 16*seenBlockSize {
		a.block, prev = s.blocks, nil
	}
	v := make([]byte, 0, 1+len(prev)+16+record.ChecksumSize)
	v = append(append(append(v, record.Layout), prev...), h[:]...)
	putRecord(b, seenBlockKey(signedPrekeyID, a.block), v)
	a.last = v[1:len(v):len(v)]
	return a
}

// adopt records a committed addition.
func (s *seenStarts) adopt(a seenAdd) {
	s.set[a.h] = struct{}{}
	s.blocks, s.last = a.block+1, a.last
}

// deleteAll adds the deletion of every block to b.
func (s *seenStarts) deleteAll(b *Batch, signedPrekeyID uint32) {
	for i := range s.blocks {
		b.Delete(seenBlockKey(signedPrekeyID, i))
	}
}

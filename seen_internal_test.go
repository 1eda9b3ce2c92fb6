package sealpost

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/sealpost/sealpost/internal/record"
)

// TestSeenBlocks: accepted starts are appended in blocks of seenBlockSize;
// put changes nothing until adopt, writes only the last block, and a
// device reading the blocks again finds every accepted start.
func TestSeenBlocks(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	d := &Device{store: store, seen: map[uint32]*seenStarts{}}
	s, err := d.seenFor(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var want [][16]byte
	for i := range 3*seenBlockSize + 5 {
		var h [16]byte
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		b := new(Batch)
		a := s.put(b, 7, h)
		if s.has(h) {
			t.Fatal("put changed the set before adopt")
		}
		if b.Len() != 1 || a.block != i/seenBlockSize {
			t.Fatalf("start %d: %d records, block %d", i, b.Len(), a.block)
		}
		if err := store.Apply(ctx, b); err != nil {
			t.Fatal(err)
		}
		s.adopt(a)
		want = append(want, h)
	}
	again := &Device{store: store, seen: map[uint32]*seenStarts{}}
	r, err := again.seenFor(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if r.blocks != 4 || len(r.set) != len(want) {
		t.Fatalf("read back %d blocks, %d starts", r.blocks, len(r.set))
	}
	for _, h := range want {
		if !r.has(h) {
			t.Fatal("a start is missing after reading the blocks again")
		}
	}
	b := new(Batch)
	r.deleteAll(b, 7)
	if b.Len() != 4 {
		t.Fatalf("deleteAll touches %d records", b.Len())
	}
}

// TestSeenBlockDecodeErrors: each bad block is refused with its sentinel.
func TestSeenBlockDecodeErrors(t *testing.T) {
	full := append([]byte{record.Layout}, make([]byte, 16*seenBlockSize)...)
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"empty":          {nil, ErrMalformed},
		"no entries":     {[]byte{record.Layout}, ErrMalformed},
		"partial entry":  {append([]byte{record.Layout}, make([]byte, 17)...), ErrMalformed},
		"too many":       {append(full, make([]byte, 16)...), ErrMalformed},
		"other version":  {append([]byte{record.Layout + 1}, make([]byte, 16)...), ErrUnsupportedVersion},
		"layout 3 value": {make([]byte, 32), ErrUnsupportedVersion},
	} {
		if _, err := decodeSeenBlock(c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if e, err := decodeSeenBlock(full); err != nil || len(e) != 16*seenBlockSize {
		t.Fatalf("a full block: %v", err)
	}
}

// FuzzSeenBlock: decodeSeenBlock never panics, returns nothing on error,
// and what it accepts re-encodes to the same bytes.
func FuzzSeenBlock(f *testing.F) {
	f.Add([]byte{record.Layout})
	f.Add(append([]byte{record.Layout}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := decodeSeenBlock(raw)
		if err != nil {
			if e != nil {
				t.Fatal("entries with an error")
			}
			return
		}
		if string(append([]byte{record.Layout}, e...)) != string(raw) {
			t.Fatal("accepted block does not re-encode to itself")
		}
	})
}

package seen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
)

// mapStore is a store of framed records in a map, as a Device keeps them.
type mapStore map[string][]byte

func (m mapStore) get(key string) ([]byte, error) {
	raw, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errs.ErrNotFound, key)
	}
	return record.Unframe(key, raw)
}

// TestSeenBlocks: accepted starts are appended in blocks of BlockSize;
// Put changes nothing until Adopt and stages only the last block, and
// loading the blocks again finds every accepted start; DeleteAll deletes
// every block.
func TestSeenBlocks(t *testing.T) {
	store := mapStore{}
	s, err := Load(7, store.get)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var want [][16]byte
	for i := range 3*BlockSize + 5 {
		var h [16]byte
		for j := range h {
			h[j] = byte(rng.Uint32())
		}
		staged := map[string][]byte{}
		a := s.Put(7, h, func(k string, v []byte) { staged[k] = record.Frame(v, record.Sum(k, v)) })
		if s.Has(h) {
			t.Fatal("Put changed the set before Adopt")
		}
		if len(staged) != 1 || a.Block() != i/BlockSize {
			t.Fatalf("start %d: %d records, block %d", i, len(staged), a.Block())
		}
		for k, v := range staged {
			store[k] = v
		}
		s.Adopt(a)
		want = append(want, h)
	}
	r, err := Load(7, store.get)
	if err != nil {
		t.Fatal(err)
	}
	if r.Blocks() != 4 || r.Len() != len(want) {
		t.Fatalf("read back %d blocks, %d starts", r.Blocks(), r.Len())
	}
	for _, h := range want {
		if !r.Has(h) {
			t.Fatal("a start is missing after reading the blocks again")
		}
	}
	var deleted []string
	r.DeleteAll(7, func(k string) { deleted = append(deleted, k) })
	if len(deleted) != 4 {
		t.Fatalf("DeleteAll touches %d records", len(deleted))
	}
	// A block that is not full followed by another is refused.
	delete(store, BlockKey(7, 3))
	short := []byte{record.Layout, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	store[BlockKey(7, 1)] = record.Frame(short, record.Sum(BlockKey(7, 1), short))
	if _, err := Load(7, store.get); !errors.Is(err, errs.ErrMalformed) {
		t.Fatalf("a short block before another: %v", err)
	}
}

// TestSeenBlockDecodeErrors: each bad block is refused with its sentinel.
func TestSeenBlockDecodeErrors(t *testing.T) {
	full := append([]byte{record.Layout}, make([]byte, 16*BlockSize)...)
	for name, c := range map[string]struct {
		raw  []byte
		want error
	}{
		"empty":          {nil, errs.ErrMalformed},
		"no entries":     {[]byte{record.Layout}, errs.ErrMalformed},
		"partial entry":  {append([]byte{record.Layout}, make([]byte, 17)...), errs.ErrMalformed},
		"too many":       {append(full, make([]byte, 16)...), errs.ErrMalformed},
		"other version":  {append([]byte{record.Layout + 1}, make([]byte, 16)...), errs.ErrUnsupportedVersion},
		"layout 3 value": {make([]byte, 32), errs.ErrUnsupportedVersion},
	} {
		if _, err := DecodeBlock(c.raw); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if e, err := DecodeBlock(full); err != nil || len(e) != 16*BlockSize {
		t.Fatalf("a full block: %v", err)
	}
}

// FuzzSeenBlock: DecodeBlock never panics, returns nothing on error,
// and what it accepts re-encodes to the same bytes.
func FuzzSeenBlock(f *testing.F) {
	f.Add([]byte{record.Layout})
	f.Add(append([]byte{record.Layout}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := DecodeBlock(raw)
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

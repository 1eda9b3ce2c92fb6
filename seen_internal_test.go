package sealpost

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSeenSet: with keeps the set sorted and without duplicates, reports
// what it already held, and never changes the set it is called on.
func TestSeenSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var set seenSet
	var want [][16]byte
	for range 500 {
		var h [16]byte
		if len(want) > 0 && rng.IntN(4) == 0 {
			h = want[rng.IntN(len(want))]
		} else {
			for i := range h {
				h[i] = byte(rng.IntN(4)) // small alphabet: shared prefixes
			}
		}
		before := bytes.Clone(set)
		next, held := set.with(h)
		if held != slices.Contains(want, h) {
			t.Fatalf("with reported held=%v", held)
		}
		if !bytes.Equal(before, set) {
			t.Fatal("with changed the set it was called on")
		}
		if !held {
			want = append(want, h)
		}
		set = next
		slices.SortFunc(want, func(a, b [16]byte) int { return bytes.Compare(a[:], b[:]) })
		if len(set) != 16*len(want) {
			t.Fatalf("set holds %d bytes for %d entries", len(set), len(want))
		}
		for i, w := range want {
			if !bytes.Equal(set[16*i:16*i+16], w[:]) {
				t.Fatal("set is not the sorted entries")
			}
		}
	}
}

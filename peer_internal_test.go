package sealpost

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestDiffTags checks diffTags against a set difference on random edits of
// a tag list: slides, insertions, removals and shuffles.
func TestDiffTags(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tag := func() (x [16]byte) {
		for i := range x {
			x[i] = byte(rng.IntN(256))
		}
		return x
	}
	for round := range 2000 {
		old := make([][16]byte, rng.IntN(200))
		for i := range old {
			old[i] = tag()
		}
		next := slices.Clone(old)
		switch round % 4 {
		case 0: // a window slides
			k := min(len(next), rng.IntN(5))
			next = append(next[k:], tag(), tag())
		case 1: // tags appear and vanish in the middle
			if len(next) > 2 {
				next = slices.Delete(next, 1, 2)
				next = slices.Insert(next, len(next)/2, tag())
			}
		case 2: // a new order
			rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
		case 3: // everything new
			for i := range next {
				next[i] = tag()
			}
		}
		gone, fresh := diffTags(old, next, nil, nil)
		// Apply delete-then-add to a set holding old; it must equal next.
		set := map[[16]byte]bool{}
		for _, x := range old {
			set[x] = true
		}
		for _, x := range gone {
			delete(set, x)
		}
		for _, x := range fresh {
			set[x] = true
		}
		if len(set) != len(next) {
			t.Fatalf("round %d: %d tags after the diff, want %d", round, len(set), len(next))
		}
		for _, x := range next {
			if !set[x] {
				t.Fatalf("round %d: tag missing after the diff", round)
			}
		}
	}
}

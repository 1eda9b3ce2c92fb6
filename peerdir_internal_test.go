package sealpost

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/record"
)

// TestPlanDir: for random directories and random removals and additions,
// planDir's operations applied to the directory leave every kept and
// added peer in exactly one slot, the slots contiguous from 0, and touch
// only the slots that change (an addition reuses a freed slot).
func TestPlanDir(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for iter := range 2000 {
		d := &Device{}
		n := r.IntN(12)
		for i := range n {
			d.dir = append(d.dir, &peer{name: fmt.Sprint("p", i), slot: i})
		}
		var remove, add []*peer
		for _, p := range d.dir {
			if r.IntN(3) == 0 {
				remove = append(remove, p)
			}
		}
		for i := range r.IntN(3) {
			add = append(add, &peer{name: fmt.Sprint("new", i), slot: -1})
		}
		ops, m := d.planDir(remove, add)
		if m != n-len(remove)+len(add) {
			t.Fatalf("iteration %d: %d slots, want %d", iter, m, n-len(remove)+len(add))
		}
		if limit := len(add) + 2*max(0, len(remove)-len(add)); len(ops) > limit {
			t.Fatalf("iteration %d: %d operations for %d removals and %d additions", iter, len(ops), len(remove), len(add))
		}
		d.adoptTxn(&txn{dir: ops, dirN: m}) // no evictions: only the directory
		seen := map[*peer]bool{}
		for i, p := range d.dir {
			if p == nil || p.slot != i || seen[p] || slices.Contains(remove, p) {
				t.Fatalf("iteration %d: slot %d holds %v", iter, i, p)
			}
			seen[p] = true
		}
		for _, p := range add {
			if !seen[p] {
				t.Fatalf("iteration %d: an added peer has no slot", iter)
			}
		}
		if len(seen) != m {
			t.Fatalf("iteration %d: %d peers in %d slots", iter, len(seen), m)
		}
	}
}

// TestDirSlotDecodeErrors: every bad directory record is a typed error;
// a good one round-trips.
func TestDirSlotDecodeErrors(t *testing.T) {
	good := encodeDirSlot("alice.1#00ff")
	if name, err := decodeDirSlot(good); err != nil || name != "alice.1#00ff" {
		t.Fatalf("round trip: %q, %v", name, err)
	}
	checkLayoutCases(t, map[string]layoutCase{
		"empty":         {nil, ErrMalformed},
		"no name":       {[]byte{record.Layout}, ErrMalformed},
		"not UTF-8":     {[]byte{record.Layout, 0xff}, ErrMalformed},
		"too long":      {append([]byte{record.Layout}, bytes.Repeat([]byte{'a'}, maxPeerName+1)...), ErrMalformed},
		"other version": {with(good, 0, record.Layout+1), ErrUnsupportedVersion},
	}, func(raw []byte) error { _, err := decodeDirSlot(raw); return err })
}

// FuzzDirSlot: decodeDirSlot never panics, fails with a typed error, and
// a record it accepts re-encodes to the same bytes.
func FuzzDirSlot(f *testing.F) {
	f.Add(encodeDirSlot("alice.1"))
	f.Add(encodeDirSlot("bob.4294967295#0123456789abcdef0123456789abcdef"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		name, err := decodeDirSlot(raw)
		if !typedRecordError(t, err) {
			if name != "" {
				t.Fatal("a name with an error")
			}
			return
		}
		if !bytes.Equal(encodeDirSlot(name), raw) {
			t.Fatal("accepted record re-encodes differently")
		}
	})
}

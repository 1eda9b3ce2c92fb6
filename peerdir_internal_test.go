package sealpost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
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

// randomBlocklist returns a blocklist of up to n addresses and n identities.
func randomBlocklist(r *rand.Rand, n int) blocklist {
	l := blocklist{addrs: map[Address]bool{}, ids: map[[keys.FingerprintSize]byte]bool{}}
	for range r.IntN(n + 1) {
		l.addrs[Address{User: fmt.Sprint("u", r.IntN(50)), Device: r.Uint32()}] = true
	}
	for range r.IntN(n + 1) {
		l.ids[[32]byte(randomBytes(r, 32))] = true
	}
	return l
}

// TestBlocklistRoundTrip: a blocklist encodes to one canonical record
// that decodes to the same list.
func TestBlocklistRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		l := randomBlocklist(r, 6)
		raw := l.encode()
		got, err := decodeBlocklist(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.encode(), raw) || len(got.addrs) != len(l.addrs) || len(got.ids) != len(l.ids) {
			t.Fatal("the blocklist does not round-trip")
		}
	}
}

// TestBlocklistDecodeErrors: every bad block record is a typed error.
func TestBlocklistDecodeErrors(t *testing.T) {
	a := Address{User: "bob", Device: 1}
	one := (&blocklist{addrs: map[Address]bool{a: true}}).encode()
	id := (&blocklist{ids: map[[32]byte]bool{{1}: true}}).encode()
	two := (&blocklist{addrs: map[Address]bool{a: true, {User: "carol", Device: 1}: true}}).encode()
	swapped := append(append([]byte{record.Layout}, be32(2)...), append(two[5+11:], two[5:5+11]...)...)
	checkLayoutCases(t, map[string]layoutCase{
		"empty":            {nil, ErrMalformed},
		"other version":    {with(one, 0, record.Layout+1), ErrUnsupportedVersion},
		"truncated":        {one[:len(one)-1], ErrMalformed},
		"trailing byte":    {append(bytes.Clone(one), 0), ErrMalformed},
		"count too high":   {with(one, 4, 2), ErrMalformed},
		"unknown kind":     {with(one, 5, 3), ErrMalformed},
		"empty user":       {append(append([]byte{record.Layout}, be32(1)...), blockAddress, 0, 0, 0, 1, 0, 0), ErrMalformed},
		"identity short":   {id[:len(id)-1], ErrMalformed},
		"out of order":     {swapped, ErrMalformed},
		"twice":            {append(append([]byte{record.Layout}, be32(2)...), append(one[5:], one[5:]...)...), ErrMalformed},
		"count past input": {with(one, 1, 0xff), ErrMalformed},
	}, func(raw []byte) error { _, err := decodeBlocklist(raw); return err })
}

// FuzzBlocklist: decodeBlocklist never panics, fails with a typed error,
// and a record it accepts re-encodes to the same bytes.
func FuzzBlocklist(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 4 {
		l := randomBlocklist(r, 3)
		f.Add(l.encode())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := decodeBlocklist(raw)
		if !typedRecordError(t, err) {
			if l.addrs != nil || l.ids != nil {
				t.Fatal("a blocklist with an error")
			}
			return
		}
		if !bytes.Equal(l.encode(), raw) {
			t.Fatal("accepted record re-encodes differently")
		}
	})
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

// TestBlockLimit: Block refuses the sender past MaxBlocked with
// ErrTooLarge and writes nothing; the record of MaxBlocked senders loads
// back, one past it does not; after an Unblock there is room again.
func TestBlockLimit(t *testing.T) {
	ctx := context.Background()
	store := NewMemoryStore()
	full := blocklist{addrs: map[Address]bool{}, ids: map[[keys.FingerprintSize]byte]bool{}}
	for i := range MaxBlocked {
		full.addrs[Address{User: "u", Device: uint32(i + 1)}] = true
	}
	d := &Device{store: store, blocked: full}
	if _, err := decodeBlocklist(full.encode()); err != nil {
		t.Fatalf("a record of MaxBlocked senders: %v", err)
	}
	before := store.Snapshot()
	extra := Sender{Address: Address{User: "v", Device: 1}}
	if err := d.Block(ctx, extra); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Block past MaxBlocked: %v, want ErrTooLarge", err)
	}
	if !maps.EqualFunc(store.Snapshot(), before, bytes.Equal) || len(d.blocked.addrs) != MaxBlocked {
		t.Fatal("a refused Block changed the store or the list")
	}
	over := full.clone()
	over.addrs[extra.Address] = true
	if _, err := decodeBlocklist(over.encode()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a record past MaxBlocked: %v, want ErrMalformed", err)
	}
	if err := d.Unblock(ctx, Sender{Address: Address{User: "u", Device: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := d.Block(ctx, extra); err != nil {
		t.Fatalf("Block after an Unblock: %v", err)
	}
}

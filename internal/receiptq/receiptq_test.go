package receiptq

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/internal/testkit"
)

func randomID(r *rand.Rand) (id [16]byte) {
	for i := range id {
		id[i] = byte(r.Uint32())
	}
	return id
}

// queueWith returns a queue after n pushes with at most max held, and its
// blocks by slot as changedBlocks writes them.
func queueWith(r *rand.Rand, n, max int) (*Queue, map[int][]byte) {
	q := new(Queue)
	blocks := map[int][]byte{}
	for range n {
		saved := q.To
		q.Push(randomID(r), max)
		q.ChangedBlocks(saved, func(slot int, b []byte) { blocks[slot] = b })
	}
	return q, blocks
}

// TestReceiptBlocksRoundTrip: a queue saved block by block as it grows
// loads back with the same ids; every block has room for the checksum.
func TestReceiptBlocksRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range 50 {
		q, blocks := queueWith(r, r.IntN(600), 1+r.IntN(Capacity))
		for _, b := range blocks {
			if cap(b)-len(b) != record.ChecksumSize {
				t.Fatalf("block with %d spare bytes", cap(b)-len(b))
			}
		}
		var got Queue
		err := got.Load(q.From, q.To, func(slot int) ([]byte, error) { return blocks[slot], nil })
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if got.Len() != q.Len() || !reflect.DeepEqual(got.Take(q.Len()), q.Take(q.Len())) {
			t.Fatalf("%d: loaded queue differs", i)
		}
	}
}

// TestReceiptBlockDecodeErrors: every bad receipt block is a typed error.
func TestReceiptBlockDecodeErrors(t *testing.T) {
	q, blocks := queueWith(rand.New(rand.NewPCG(13, 14)), 40, Capacity) // blocks 0, 1, 2; 2 holds 8
	raw := blocks[2]
	cases := map[string]testkit.LayoutCase{
		"empty":              {Raw: []byte{}, Want: errs.ErrMalformed},
		"first in block 1":   {Raw: testkit.With(raw, 1, testkit.BE64(31)...), Want: errs.ErrMalformed},
		"first past from":    {Raw: testkit.With(raw, 1, testkit.BE64(33)...), Want: errs.ErrMalformed},
		"too long":           {Raw: append(bytes.Clone(raw), make([]byte, 16*9)...), Want: errs.ErrMalformed},
		"a partial id":       {Raw: append(bytes.Clone(raw), 1), Want: errs.ErrMalformed},
		"one id short":       {Raw: raw[:len(raw)-16], Want: errs.ErrMalformed},
		"version 0":          {Raw: testkit.With(raw, 0, 0), Want: errs.ErrUnsupportedVersion},
		"version 3":          {Raw: testkit.With(raw, 0, record.Layout+1), Want: errs.ErrUnsupportedVersion},
		"first byte only":    {Raw: raw[:1], Want: errs.ErrMalformed},
		"first truncated":    {Raw: raw[:5], Want: errs.ErrMalformed},
		"header without ids": {Raw: raw[:BlockFixed], Want: errs.ErrMalformed},
	}
	testkit.CheckLayoutCases(t, cases, func(b []byte) error {
		return new(Queue).Load(q.From, q.To, func(slot int) ([]byte, error) {
			if slot == 2 {
				return b, nil
			}
			return blocks[slot], nil
		})
	})
	if err := new(Queue).Load(q.From, q.To, func(slot int) ([]byte, error) { return blocks[slot], nil }); err != nil {
		t.Fatal(err)
	}
}

// FuzzReceiptBlocks: Queue.load of arbitrary bounds and blocks never
// panics, fails with a typed error and leaves the queue unchanged, or
// loads a queue whose blocks load again to the same ids.
func FuzzReceiptBlocks(f *testing.F) {
	q, blocks := queueWith(rand.New(rand.NewPCG(21, 22)), 40, Capacity)
	f.Add(q.From, q.To, blocks[0], blocks[1], blocks[2])
	f.Add(uint64(0), uint64(1), []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, from, to uint64, b0, b1, b2 []byte) {
		in := [][]byte{b0, b1, b2}
		var got Queue
		got.Push([16]byte{1}, Capacity)
		err := got.Load(from, to, func(slot int) ([]byte, error) { return in[slot%3], nil })
		if !testkit.TypedRecordError(t, err) {
			if got.From != 0 || got.To != 1 {
				t.Fatal("a failed load changed the queue")
			}
			return
		}
		saved := map[int][]byte{}
		got.ChangedBlocks(0, func(slot int, b []byte) { saved[slot] = b })
		var again Queue
		if err := again.Load(got.From, got.To, func(slot int) ([]byte, error) { return saved[slot], nil }); err != nil {
			t.Fatalf("a loaded queue's blocks do not load: %v", err)
		}
		if !reflect.DeepEqual(again.Take(again.Len()), got.Take(got.Len())) {
			t.Fatal("a loaded queue's blocks load other ids")
		}
	})
}

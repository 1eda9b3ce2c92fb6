package blocklist

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/internal/testkit"
	"github.com/sealpost/sealpost/keys"
)

func randomFingerprint(r *rand.Rand) (f [32]byte) {
	for i := range f {
		f[i] = byte(r.Uint32())
	}
	return f
}

// randomBlocklist returns a blocklist of up to n addresses and n identities.
func randomBlocklist(r *rand.Rand, n int) List {
	l := List{addrs: map[keys.Address]bool{}, ids: map[[keys.FingerprintSize]byte]bool{}}
	for range r.IntN(n + 1) {
		l.addrs[keys.Address{User: fmt.Sprint("u", r.IntN(50)), Device: r.Uint32()}] = true
	}
	for range r.IntN(n + 1) {
		l.ids[[32]byte(randomFingerprint(r))] = true
	}
	return l
}

// TestBlocklistRoundTrip: a blocklist encodes to one canonical record
// that decodes to the same list.
func TestBlocklistRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		l := randomBlocklist(r, 6)
		raw := l.Encode()
		got, err := Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Encode(), raw) || len(got.addrs) != len(l.addrs) || len(got.ids) != len(l.ids) {
			t.Fatal("the blocklist does not round-trip")
		}
	}
}

// TestBlocklistDecodeErrors: every bad block record is a typed error.
func TestBlocklistDecodeErrors(t *testing.T) {
	a := keys.Address{User: "bob", Device: 1}
	one := (&List{addrs: map[keys.Address]bool{a: true}}).Encode()
	id := (&List{ids: map[[32]byte]bool{{1}: true}}).Encode()
	two := (&List{addrs: map[keys.Address]bool{a: true, {User: "carol", Device: 1}: true}}).Encode()
	swapped := append(append([]byte{record.Layout}, testkit.BE32(2)...), append(two[5+11:], two[5:5+11]...)...)
	testkit.CheckLayoutCases(t, map[string]testkit.LayoutCase{
		"empty":            {Raw: nil, Want: errs.ErrMalformed},
		"other version":    {Raw: testkit.With(one, 0, record.Layout+1), Want: errs.ErrUnsupportedVersion},
		"truncated":        {Raw: one[:len(one)-1], Want: errs.ErrMalformed},
		"trailing byte":    {Raw: append(bytes.Clone(one), 0), Want: errs.ErrMalformed},
		"count too high":   {Raw: testkit.With(one, 4, 2), Want: errs.ErrMalformed},
		"unknown kind":     {Raw: testkit.With(one, 5, 3), Want: errs.ErrMalformed},
		"empty user":       {Raw: append(append([]byte{record.Layout}, testkit.BE32(1)...), blockAddress, 0, 0, 0, 1, 0, 0), Want: errs.ErrMalformed},
		"identity short":   {Raw: id[:len(id)-1], Want: errs.ErrMalformed},
		"out of order":     {Raw: swapped, Want: errs.ErrMalformed},
		"twice":            {Raw: append(append([]byte{record.Layout}, testkit.BE32(2)...), append(one[5:], one[5:]...)...), Want: errs.ErrMalformed},
		"count past input": {Raw: testkit.With(one, 1, 0xff), Want: errs.ErrMalformed},
	}, func(raw []byte) error { _, err := Decode(raw); return err })
}

// FuzzBlocklist: decodeBlocklist never panics, fails with a typed error,
// and a record it accepts re-encodes to the same bytes.
func FuzzBlocklist(f *testing.F) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 4 {
		l := randomBlocklist(r, 3)
		f.Add(l.Encode())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		l, err := Decode(raw)
		if !testkit.TypedRecordError(t, err) {
			if l.addrs != nil || l.ids != nil {
				t.Fatal("a blocklist with an error")
			}
			return
		}
		if !bytes.Equal(l.Encode(), raw) {
			t.Fatal("accepted record re-encodes differently")
		}
	})
}

// TestLimit: the record of Max senders decodes, one past it does not.
func TestLimit(t *testing.T) {
	full := List{}
	for i := range Max {
		full = full.With(keys.Address{User: "u", Device: uint32(i + 1)}, nil, true)
	}
	if _, err := Decode(full.Encode()); err != nil {
		t.Fatalf("a record of Max senders: %v", err)
	}
	over := full.With(keys.Address{User: "v", Device: 1}, nil, true)
	if _, err := Decode(over.Encode()); !errors.Is(err, errs.ErrMalformed) {
		t.Fatalf("a record past Max: %v, want ErrMalformed", err)
	}
}

// TestWith: With blocks and unblocks addresses and identities, leaving
// the list it was called on unchanged.
func TestWith(t *testing.T) {
	a, fp := keys.Address{User: "bob", Device: 1}, [32]byte{7}
	var empty List
	l := empty.With(a, &fp, true)
	if !l.Blocks(a, &[32]byte{}) || !l.Blocks(keys.Address{User: "x", Device: 2}, &fp) || l.Len() != 2 || empty.Len() != 0 {
		t.Fatal("With did not block both, or changed its receiver")
	}
	if l.Blocks(keys.Address{User: "x", Device: 2}, &[32]byte{}) {
		t.Fatal("an unrelated sender is blocked")
	}
	if u := l.With(a, nil, false); u.Blocks(a, &[32]byte{}) || !u.Blocks(a, &fp) || l.Len() != 2 {
		t.Fatal("unblocking the address")
	}
}

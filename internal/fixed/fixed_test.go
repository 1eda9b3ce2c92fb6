package fixed

import (
	"bytes"
	"testing"
)

// Reads past the end fail the reader and return zero values, and every
// later read stays failed; Count refuses counts over the bound or past
// what remains (without overflow for the largest counts).
func TestReader(t *testing.T) {
	r := NewReader([]byte{1, 0, 2, 0, 0, 0, 3, 9})
	if r.U8() != 1 || r.U16() != 2 || r.U32() != 3 || !r.Ok() || r.Done() || r.Len() != 1 {
		t.Fatal("whole reads")
	}
	if r.U64() != 0 || r.Ok() || r.U8() != 0 || r.Bytes(0) != nil {
		t.Fatal("a read past the end must fail the reader for good")
	}
	r = NewReader(make([]byte, 32))
	if r.Count(4, 3, 1) != 0 || r.Ok() {
		t.Fatal("count over its bound")
	}
	r = NewReader(make([]byte, 32))
	if r.Count(1<<63, 1<<62, 1<<10) != 0 || r.Ok() {
		t.Fatal("huge count")
	}
	r = NewReader(make([]byte, 32))
	if r.Count(2, 10, 16) != 2 || r.Count(3, 10, 16) != 0 || r.Ok() {
		t.Fatal("count past the input")
	}
	r = NewReader([]byte{0, 1, 2})
	if r.Bool() || !r.Bool() || r.Bool() || r.Ok() {
		t.Fatal("Bool accepts only 0 and 1")
	}
	in := bytes.Repeat([]byte{7}, 48)
	r = NewReader(in)
	if a, b := r.A16(), r.A32(); a[0] != 7 || b[31] != 7 || !r.Done() {
		t.Fatal("arrays")
	}
	r = NewReader([]byte{1})
	if r.Bytes(-1) != nil || r.Ok() {
		t.Fatal("negative length")
	}
}

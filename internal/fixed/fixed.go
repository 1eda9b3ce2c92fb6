// Package fixed reads the fixed binary layouts of saved records: a
// version byte first, then big-endian integers, fixed-size arrays and
// length-prefixed runs. Writers append with encoding/binary into buffers
// sized exactly by the caller; this package is the reading side, which
// must never panic and must notice every truncation.
//
// A Reader records the first short read and returns zero values after it,
// so a decoder reads every field in order and checks Done once, instead of
// an error after each field. Bytes returns sub-slices of the input, never
// copies.
package fixed

import "encoding/binary"

// Reader reads a layout from the front of its input.
type Reader struct {
	b   []byte
	bad bool
}

// NewReader returns a Reader over b.
func NewReader(b []byte) Reader { return Reader{b: b} }

// take returns the next n bytes, or nil (and marks the reader failed)
// when fewer remain.
func (r *Reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// U8 reads one byte.
func (r *Reader) U8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// Bool reads one byte that must be 0 or 1; anything else fails the
// reader, so that every accepted input has one encoding.
func (r *Reader) Bool() bool {
	switch r.U8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.bad = true
	return false
}

// Bytes returns the next n bytes, aliasing the input (nil after a failure).
func (r *Reader) Bytes(n int) []byte { return r.take(n) }

// A16 reads 16 bytes.
func (r *Reader) A16() (a [16]byte) {
	if b := r.take(16); b != nil {
		a = [16]byte(b)
	}
	return a
}

// A32 reads 32 bytes.
func (r *Reader) A32() (a [32]byte) {
	if b := r.take(32); b != nil {
		a = [32]byte(b)
	}
	return a
}

// Count checks a count n of items at least size bytes each that the
// caller read: it must be at most max and fit in what remains, so a
// forged count can neither exceed a bound nor make the caller allocate
// more than the input could hold. On failure the reader fails and Count
// returns 0.
func (r *Reader) Count(n uint64, max, size int) int {
	if r.bad || n > uint64(max) || n*uint64(size) > uint64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

// Fail marks the reader failed, for a field the caller found invalid.
func (r *Reader) Fail() { r.bad = true }

// Len returns the number of bytes not yet read.
func (r *Reader) Len() int { return len(r.b) }

// Ok reports whether every read so far was whole.
func (r *Reader) Ok() bool { return !r.bad }

// Done reports whether every read was whole and the input is used up
// exactly: no trailing bytes.
func (r *Reader) Done() bool { return !r.bad && len(r.b) == 0 }

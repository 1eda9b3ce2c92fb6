package attach

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// craft builds a blob with the package's own sealing but a padded
// plaintext and a trailer length of the test's choosing: what only a
// sender holding the key can make.
func craft(t *testing.T, key *Key, padded []byte, length uint64) []byte {
	t.Helper()
	h, s := newHeader(key)
	blob := bytes.Clone(h)
	l := layoutOf(int64(len(padded)))
	for i := range l.chunks {
		end := min(int64(len(padded)), (i+1)*ChunkSize)
		blob = s.seal(blob, padded[i*ChunkSize:end], i, false)
	}
	var tr [trailerSize]byte
	binary.BigEndian.PutUint64(tr[:], length)
	return s.seal(blob, tr[:], l.chunks, true)
}

func testKey(t *testing.T) *Key {
	k, err := NewKey(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// readAll reads blob with both readers and returns their errors.
func readBoth(key *Key, blob []byte) (seqErr, atErr error) {
	r, err := NewReader(bytes.NewReader(blob), key)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	seqErr = err
	ra, err := NewReaderAt(bytes.NewReader(blob), int64(len(blob)), key)
	if err == nil {
		_, err = io.Copy(io.Discard, ra)
	}
	return seqErr, err
}

// TestCraftedBlobs: blobs a sender with the key could make that break the
// format's rules are refused: non-zero padding, a length that does not pad
// to the data, a length over MaxLength, a trailer at another number, a
// trailer of another size.
func TestCraftedBlobs(t *testing.T) {
	key := testKey(t)
	const n = ChunkSize + 100
	p := int(PaddedLength(n))
	good := make([]byte, p)
	copy(good, bytes.Repeat([]byte{1}, n))
	if a, b := readBoth(key, craft(t, key, good, n)); a != nil || b != nil {
		t.Fatalf("the crafted genuine blob is refused: %v, %v", a, b)
	}
	nonzero := bytes.Clone(good)
	nonzero[p-1] = 1
	short := good[:p-1]
	for name, c := range map[string]struct {
		padded []byte
		length uint64
	}{
		"non-zero padding":         {nonzero, n},
		"length in another bucket": {good, uint64(p) + 1},
		"length over MaxLength":    {good, MaxLength + 1},
		"length of 2^64-1":         {good, ^uint64(0)},
		"padded one byte short":    {short, n},
	} {
		a, b := readBoth(key, craft(t, key, c.padded, c.length))
		if !errors.Is(a, ErrMalformed) || !errors.Is(b, ErrMalformed) {
			t.Errorf("%s: Reader %v, ReaderAt %v; want ErrMalformed", name, a, b)
		}
	}

	// A length in the same bucket but shorter than the content: the
	// sequential reader sees content past it.
	a, b := readBoth(key, craft(t, key, good, n-1))
	if !errors.Is(a, ErrMalformed) || !errors.Is(b, ErrMalformed) {
		t.Errorf("length shorter than the content: Reader %v, ReaderAt %v", a, b)
	}

	// A trailer sealed with the number of a data chunk, and a data chunk
	// sealed as final: both fail authentication.
	h, s := newHeader(key)
	blob := s.seal(bytes.Clone(h), good[:ChunkSize], 0, false)
	blob = s.seal(blob, good[ChunkSize:], 1, false)
	var tr [trailerSize]byte
	binary.BigEndian.PutUint64(tr[:], n)
	for name, b := range map[string][]byte{
		"trailer numbered 1": s.seal(bytes.Clone(blob), tr[:], 1, true),
		"trailer numbered 3": s.seal(bytes.Clone(blob), tr[:], 3, true),
		"trailer not final":  s.seal(bytes.Clone(blob), tr[:], 2, false),
		"no trailer, last chunk final": s.seal(s.seal(bytes.Clone(h), good[:ChunkSize], 0, false),
			good[ChunkSize:], 1, true),
	} {
		a, c := readBoth(key, b)
		if a == nil || c == nil || !(errors.Is(a, ErrDecrypt) || errors.Is(a, ErrTruncated) || errors.Is(a, ErrMalformed)) {
			t.Errorf("%s: Reader %v, ReaderAt %v", name, a, c)
		}
	}
	if a, c := readBoth(key, s.seal(bytes.Clone(blob), tr[:], 2, true)); a != nil || c != nil {
		t.Errorf("the hand-sealed genuine blob is refused: %v, %v", a, c)
	}
}

// TestLayout checks that layoutOfSize inverts blobSize: for padded lengths
// around chunk boundaries, and for every size up to two chunks, where a
// size no blob has is a typed error.
func TestLayout(t *testing.T) {
	valid := map[int64]bool{}
	for p := int64(1); p <= 3*ChunkSize+40; p++ {
		if p > 40 && p%ChunkSize > 40 && p%ChunkSize < ChunkSize-40 {
			continue
		}
		size := blobSize(p)
		valid[size] = true
		l, err := layoutOfSize(size)
		if err != nil || l != layoutOf(p) || l.size() != size {
			t.Fatalf("padded %d: layoutOfSize(%d) = %+v, %v; want %+v", p, size, l, err, layoutOf(p))
		}
	}
	for size := int64(0); size < blobSize(2*ChunkSize+40); size++ {
		l, err := layoutOfSize(size)
		switch {
		case err == nil && (l.padded < 1 || blobSize(l.padded) != size || l != layoutOf(l.padded)):
			t.Fatalf("size %d: layout %+v is not the layout of a blob of that size", size, l)
		case err != nil && valid[size]:
			t.Fatalf("size %d: %v", size, err)
		case err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTruncated):
			t.Fatalf("size %d: untyped %v", size, err)
		}
	}
}

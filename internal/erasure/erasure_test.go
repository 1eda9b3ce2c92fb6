package erasure

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

// message returns n deterministic bytes.
func message(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestConstructors(t *testing.T) {
	for _, tc := range []struct {
		msgLen, size, k int
		err             error
	}{
		{1184, 32, 37, nil}, // ML-KEM-768 encapsulation key
		{1088, 32, 34, nil}, // ML-KEM-768 ciphertext
		{1, 1, 1, nil},
		{32, 32, 1, nil},
		{33, 32, 2, nil},
		{128, 1, 128, nil},
		{129, 1, 0, ErrTooLarge},
		{128 * MaxChunkSize, MaxChunkSize, 128, nil},
		{0, 32, 0, ErrMalformed},
		{-1, 32, 0, ErrMalformed},
		{10, 0, 0, ErrMalformed},
		{10, -3, 0, ErrMalformed},
		{10, MaxChunkSize + 1, 0, ErrMalformed},
	} {
		d, err := NewDecoder(tc.msgLen, tc.size)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("NewDecoder(%d, %d): %v, want %v", tc.msgLen, tc.size, err, tc.err)
			continue
		}
		if tc.msgLen < 0 {
			continue
		}
		e, err2 := NewEncoder(make([]byte, tc.msgLen), tc.size)
		if !errors.Is(err2, tc.err) || (err2 == nil) != (tc.err == nil) {
			t.Errorf("NewEncoder(%d, %d): %v, want %v", tc.msgLen, tc.size, err2, tc.err)
		}
		if err == nil && (d.k != tc.k || e.DataChunks() != tc.k) {
			t.Errorf("(%d, %d): k = %d / %d, want %d", tc.msgLen, tc.size, d.k, e.DataChunks(), tc.k)
		}
	}
}

func TestSystematicAndPeriodic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msg := message(rng, 1184-5)
	e, err := NewEncoder(msg, 32)
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	for i := range uint32(e.DataChunks()) {
		data = e.Chunk(i, data) // appends
	}
	want := append(append([]byte(nil), msg...), make([]byte, 5)...)
	if !bytes.Equal(data, want) {
		t.Fatal("data chunks are not the zero-padded message")
	}
	prefix := []byte("keep")
	for _, i := range []uint32{0, 36, 37, 100, 255} {
		a := e.Chunk(i, nil)
		b := e.Chunk(i+Period, nil)
		c := e.Chunk(i+7*Period, append([]byte(nil), prefix...))
		if !bytes.Equal(a, b) || !bytes.Equal(c[:4], prefix) || !bytes.Equal(c[4:], a) {
			t.Fatalf("chunk %d differs across periods or clobbers dst", i)
		}
	}
	// The encoder copied msg.
	msg[0] ^= 1
	if e.Chunk(0, nil)[0] == msg[0] {
		t.Fatal("encoder aliases its input")
	}
}

func TestAddRejects(t *testing.T) {
	d, _ := NewDecoder(40, 32) // k = 2, last chunk has 8 bytes then padding
	for _, tc := range []struct {
		name  string
		index uint32
		chunk []byte
	}{
		{"short", 0, make([]byte, 31)},
		{"long", 0, make([]byte, 33)},
		{"empty", 5, nil},
		{"padding", 1, append(make([]byte, 31), 1)},
		{"padding next period", 1 + Period, append(make([]byte, 8), 1)},
	} {
		done, err := d.Add(tc.index, tc.chunk)
		if done || !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: done %v, err %v; want ErrMalformed", tc.name, done, err)
		}
		if d.Received() != 0 {
			t.Fatalf("%s: a rejected chunk was kept", tc.name)
		}
	}
	// Nonzero bytes inside the message part of the last chunk are fine.
	if _, err := d.Add(1, append(bytes.Repeat([]byte{9}, 8), make([]byte, 24)...)); err != nil {
		t.Fatal(err)
	}
}

func TestDuplicatesChangeNothing(t *testing.T) {
	e, _ := NewEncoder([]byte("a message of three chunks"), 10)
	d, _ := NewDecoder(25, 10)
	for _, i := range []uint32{200, 200 + Period, 200 + 9*Period} {
		if done, err := d.Add(i, e.Chunk(i, nil)); done || err != nil {
			t.Fatal(done, err)
		}
	}
	// A different chunk for a point already held is ignored too: the
	// first one stays.
	if done, err := d.Add(200, make([]byte, 10)); done || err != nil || d.Received() != 1 {
		t.Fatal(done, err, d.Received())
	}
	if _, err := d.Message(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Message before done: %v", err)
	}
	d.Add(1, e.Chunk(1, nil))
	if done, _ := d.Add(77, e.Chunk(77, nil)); !done {
		t.Fatal("three distinct chunks are not done")
	}
	// After done, further chunks change nothing (even garbage), and
	// Message is stable.
	if done, err := d.Add(0, make([]byte, 10)); !done || err != nil {
		t.Fatal(done, err)
	}
	m1, err := d.Message()
	m2, _ := d.Message()
	if err != nil || string(m1) != "a message of three chunks" || !bytes.Equal(m1, m2) {
		t.Fatalf("Message = %q, %v", m1, err)
	}
	m1[0] = 'X'
	if m3, _ := d.Message(); m3[0] != 'a' {
		t.Fatal("Message returns its internal buffer")
	}
}

func TestInconsistentChunksDetected(t *testing.T) {
	e, _ := NewEncoder(make([]byte, 40), 32)
	d, _ := NewDecoder(40, 32)
	d.Add(0, e.Chunk(0, nil))
	bad := e.Chunk(5, nil)
	bad[31] ^= 1 // lands in the padding of the solved chunk 1
	d.Add(5, bad)
	if _, err := d.Message(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("inconsistent chunks: %v", err)
	}
}

// TestAnyKReconstruct is the property: for random message sizes and chunk
// sizes, any k distinct chunks (data or parity, from any period, in any
// order, mixed with duplicates) give back exactly the message.
func TestAnyKReconstruct(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	runs := 400 // about 0.5 s under -race; raise locally for a longer search
	if testing.Short() {
		runs = 100
	}
	for range runs {
		msgLen := 1 + rng.IntN(2000)
		size := 32
		if rng.IntN(2) == 0 {
			size = max(1+rng.IntN(64), (msgLen+MaxDataChunks-1)/MaxDataChunks)
		}
		msg := message(rng, msgLen)
		e, err := NewEncoder(msg, size)
		if err != nil {
			t.Fatal(err)
		}
		k := e.DataChunks()
		d, _ := NewDecoder(msgLen, size)
		points := rng.Perm(Period)[:k]
		for n, p := range points {
			idx := uint32(p) + Period*rng.Uint32N(1<<20)
			done, err := d.Add(idx, e.Chunk(idx, nil))
			if err != nil || done != (n == k-1) {
				t.Fatalf("len %d size %d: chunk %d of %d: done %v err %v", msgLen, size, n+1, k, done, err)
			}
			if rng.IntN(3) == 0 { // a duplicate of something already sent
				q := uint32(points[rng.IntN(n+1)])
				if done2, _ := d.Add(q, e.Chunk(q, nil)); done2 != done {
					t.Fatal("a duplicate changed done")
				}
			}
		}
		got, err := d.Message()
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("len %d size %d points %v: wrong message (%v)", msgLen, size, points, err)
		}
	}
}

// TestFewerThanKNeverDone: k-1 distinct chunks, however often repeated and
// from whatever periods, never claim done.
func TestFewerThanKNeverDone(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 150 {
		msgLen := 1 + rng.IntN(2000)
		size := max(32, (msgLen+MaxDataChunks-1)/MaxDataChunks)
		e, _ := NewEncoder(message(rng, msgLen), size)
		k := e.DataChunks()
		d, _ := NewDecoder(msgLen, size)
		points := rng.Perm(Period)[:k-1]
		chunks := make(map[int][]byte, k)
		for _, p := range points {
			chunks[p] = e.Chunk(uint32(p), nil)
		}
		for range 3 * k {
			if len(points) == 0 {
				break
			}
			p := points[rng.IntN(len(points))]
			idx := uint32(p) + Period*rng.Uint32N(100)
			if done, err := d.Add(idx, chunks[p]); done || err != nil {
				t.Fatalf("k=%d: done %v err %v with at most k-1 points", k, done, err)
			}
		}
		if _, err := d.Message(); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("k=%d: Message with k-1 chunks: %v", k, err)
		}
	}
}

// TestAllPairs checks the MDS property exhaustively for k = 2: every pair
// of the 256 points decodes.
func TestAllPairs(t *testing.T) {
	msg := []byte("0123456789abcdefXYZ")
	e, _ := NewEncoder(msg, 10)
	chunks := make([][]byte, Period)
	for p := range chunks {
		chunks[p] = e.Chunk(uint32(p), nil)
	}
	for a := range Period {
		for b := a + 1; b < Period; b++ {
			d, _ := NewDecoder(len(msg), 10)
			d.Add(uint32(b), chunks[b])
			d.Add(uint32(a), chunks[a])
			if got, err := d.Message(); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("points %d, %d: %q, %v", a, b, got, err)
			}
		}
	}
}

// TestAccumulated pins the code itself (the wire format the ratchet will
// depend on): SHA-256 over two full periods of chunks of an ML-KEM-768-sized
// key and ciphertext of deterministic bytes.
func TestAccumulated(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	h := sha256.New()
	for _, n := range []int{1184, 1088} {
		e, _ := NewEncoder(message(rng, n), 32)
		for i := range uint32(2 * Period) {
			h.Write(e.Chunk(i, nil))
		}
	}
	const want = "1512dbae1ab7dd89e5858dccd7b84342dda1a7e9e43566107328a69a936f7624"
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		t.Errorf("accumulated chunks %s, want %s", got, want)
	}
}

// TestMatchesReferenceEncoder recomputes parity chunks from the definition
// (byte j of parity p = sum over i of data_i[j] / (p xor i)) with the
// shift-and-add multiplication and a brute-force inverse.
func TestMatchesReferenceEncoder(t *testing.T) {
	slowInv := func(a byte) byte {
		for b := 1; b < 256; b++ {
			if slowMul(a, byte(b)) == 1 {
				return byte(b)
			}
		}
		panic("no inverse")
	}
	rng := rand.New(rand.NewPCG(9, 10))
	msg := message(rng, 1184)
	e, _ := NewEncoder(msg, 32)
	for _, p := range []int{37, 38, 100, 200, 255} {
		want := make([]byte, 32)
		for i := range 37 {
			c := slowInv(byte(p) ^ byte(i))
			for j := range 32 {
				want[j] ^= slowMul(c, msg[i*32+j])
			}
		}
		if got := e.Chunk(uint32(p), nil); !bytes.Equal(got, want) {
			t.Fatalf("parity %d differs from the reference", p)
		}
	}
}

func TestCloneAndAllRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	msg := message(rng, 1088)
	e, _ := NewEncoder(msg, 32)
	d, _ := NewDecoder(1088, 32)
	for _, i := range []uint32{3, 40, 1000, 7, 250} {
		d.Add(i, e.Chunk(i, nil))
	}
	c := d.Clone()
	c.Add(99, e.Chunk(99, nil))
	if d.Received() != 5 || c.Received() != 6 {
		t.Fatal("Add on a clone changed the original")
	}
	r, _ := NewDecoder(1088, 32)
	for i, ch := range d.All() {
		if i >= Period {
			t.Fatalf("All yielded index %d", i)
		}
		r.Add(i, ch)
	}
	for i := uint32(100); !r.Done(); i++ {
		r.Add(i, e.Chunk(i, nil))
	}
	if got, err := r.Message(); err != nil || !bytes.Equal(got, msg) {
		t.Fatal("rebuilt decoder gives a wrong message", err)
	}
	for range d.All() {
		break // stopping early is allowed
	}
}

// TestCheckPredictsAdd: Check reports exactly what Add then does (stored or
// not, and the same error), and never changes the decoder.
func TestCheckPredictsAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	msg := message(rng, 70) // k = 3 at 32 bytes, 26 bytes of padding
	e, _ := NewEncoder(msg, 32)
	d, _ := NewDecoder(len(msg), 32)
	if d.DataChunks() != 3 {
		t.Fatalf("DataChunks = %d", d.DataChunks())
	}
	inputs := []struct {
		index uint32
		chunk []byte
	}{
		{5, e.Chunk(5, nil)}, {5 + Period, e.Chunk(5, nil)}, {2, append(make([]byte, 31), 1)},
		{0, make([]byte, 31)}, {9, e.Chunk(9, nil)}, {200, e.Chunk(200, nil)}, {1, e.Chunk(1, nil)},
	}
	for i, in := range inputs {
		before := d.Clone()
		fresh, cerr := d.Check(in.index, in.chunk)
		if d.Received() != before.Received() {
			t.Fatalf("input %d: Check changed the decoder", i)
		}
		_, aerr := d.Add(in.index, in.chunk)
		if (cerr == nil) != (aerr == nil) || (cerr != nil && !errors.Is(aerr, ErrMalformed)) {
			t.Fatalf("input %d: Check error %v, Add error %v", i, cerr, aerr)
		}
		if stored := d.Received() == before.Received()+1; stored != fresh {
			t.Fatalf("input %d: Check said fresh=%v, Add stored=%v", i, fresh, stored)
		}
	}
	if !d.Done() {
		t.Fatal("three distinct good chunks did not complete")
	}
	if got, err := d.Message(); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Message: %v", err)
	}
}

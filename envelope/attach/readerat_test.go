package attach_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
)

// countingReaderAt counts the bytes read from the blob.
type countingReaderAt struct {
	r  io.ReaderAt
	mu sync.Mutex
	n  int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	c.n += int64(len(p))
	c.mu.Unlock()
	return c.r.ReadAt(p, off)
}

// TestRandomAccess: ReadAt at random offsets and lengths returns exactly
// the bytes of a full sequential read, with io.EOF exactly when the range
// passes the end, and reads only the chunks that hold the range.
func TestRandomAccess(t *testing.T) {
	key := keyOf(t, "random access")
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, attach.ChunkSize, 3*attach.ChunkSize + 777, 9*attach.ChunkSize - 5} {
		file := fileOf("random access", n)
		blob := encrypt(t, key, file)
		full, err := decrypt(key, blob)
		if err != nil || !bytes.Equal(full, file) {
			t.Fatalf("full read: %v", err)
		}
		src := &countingReaderAt{r: bytes.NewReader(blob)}
		r, err := attach.NewReaderAt(src, int64(len(blob)), key)
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != int64(n) {
			t.Fatalf("Size %d, want %d", r.Size(), n)
		}
		for range 300 {
			off := rng.IntN(n + 10)
			k := rng.IntN(3*attach.ChunkSize + 1)
			if rng.IntN(4) == 0 {
				k = rng.IntN(20)
			}
			src.n = 0
			got := make([]byte, k)
			m, err := r.ReadAt(got, int64(off))
			want := full[min(off, n):min(off+k, n)]
			if !bytes.Equal(got[:m], want) {
				t.Fatalf("n %d: ReadAt(%d, %d) = %d bytes that differ from the full read", n, k, off, m)
			}
			if (off+k > n) != (err == io.EOF) || (err != nil && err != io.EOF) {
				t.Fatalf("n %d: ReadAt(%d, %d): %v", n, k, off, err)
			}
			if len(want) > 0 {
				chunks := int64((off+len(want)-1)/attach.ChunkSize - off/attach.ChunkSize + 1)
				if src.n > chunks*attach.ChunkCTSize {
					t.Fatalf("ReadAt of %d bytes read %d blob bytes, more than its %d chunks", len(want), src.n, chunks)
				}
			}
		}
	}
}

// TestSeekRead: Seek and Read move through the file as io.ReadSeeker, and
// io.Copy through them gives the file.
func TestSeekRead(t *testing.T) {
	key := keyOf(t, "seek")
	file := fileOf("seek", 2*attach.ChunkSize+3)
	blob := encrypt(t, key, file)
	r, err := attach.NewReaderAt(bytes.NewReader(blob), int64(len(blob)), key)
	if err != nil {
		t.Fatal(err)
	}
	var rs io.ReadSeeker = r
	var out bytes.Buffer
	if _, err := io.Copy(&out, rs); err != nil || !bytes.Equal(out.Bytes(), file) {
		t.Fatalf("copy: %v", err)
	}
	for _, c := range []struct {
		off    int64
		whence int
		want   int64
	}{{10, io.SeekStart, 10}, {5, io.SeekCurrent, 15}, {-3, io.SeekEnd, int64(len(file)) - 3}, {100, io.SeekEnd, int64(len(file)) + 100}} {
		pos, err := r.Seek(c.off, c.whence)
		if err != nil || pos != c.want {
			t.Fatalf("Seek(%d, %d) = %d, %v", c.off, c.whence, pos, err)
		}
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read past the end: %d, %v", n, err)
	}
	r.Seek(-3, io.SeekEnd)
	b, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(b, file[len(file)-3:]) {
		t.Fatalf("read the last 3 bytes: %x, %v", b, err)
	}
	for _, bad := range []struct {
		off    int64
		whence int
	}{{-1, io.SeekStart}, {0, 7}} {
		if _, err := r.Seek(bad.off, bad.whence); !errors.Is(err, attach.ErrMalformed) {
			t.Errorf("Seek(%d, %d): %v", bad.off, bad.whence, err)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); !errors.Is(err, attach.ErrMalformed) {
		t.Errorf("ReadAt at -1: %v", err)
	}
}

// TestReadAtConcurrent runs ReadAt from many goroutines (under -race in
// CI) over one ReaderAt.
func TestReadAtConcurrent(t *testing.T) {
	key := keyOf(t, "concurrent")
	file := fileOf("concurrent", 6*attach.ChunkSize)
	blob := encrypt(t, key, file)
	r, err := attach.NewReaderAt(bytes.NewReader(blob), int64(len(blob)), key)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			for range 50 {
				off, k := rng.IntN(len(file)), rng.IntN(2*attach.ChunkSize)
				got := make([]byte, k)
				m, _ := r.ReadAt(got, int64(off))
				if !bytes.Equal(got[:m], file[off:min(off+k, len(file))]) {
					t.Errorf("concurrent ReadAt(%d, %d) differs", k, off)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestReaderAtChunkTampered: a flipped byte in a chunk is found when that
// chunk is read, and ranges in other chunks still read correctly.
func TestReaderAtChunkTampered(t *testing.T) {
	key := keyOf(t, "ra tamper")
	file := fileOf("ra tamper", 3*attach.ChunkSize)
	blob := encrypt(t, key, file)
	blob[chunkAt(1)+100] ^= 1
	r, err := attach.NewReaderAt(bytes.NewReader(blob), int64(len(blob)), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadAt(make([]byte, 10), attach.ChunkSize+5); !errors.Is(err, attach.ErrDecrypt) {
		t.Fatalf("tampered chunk: %v", err)
	}
	got := make([]byte, 10)
	if _, err := r.ReadAt(got, 2*attach.ChunkSize); err != nil || !bytes.Equal(got, file[2*attach.ChunkSize:][:10]) {
		t.Fatalf("untouched chunk: %v", err)
	}
	n, err := r.ReadAt(make([]byte, attach.ChunkSize+10), attach.ChunkSize-10)
	if !errors.Is(err, attach.ErrDecrypt) || n != 10 {
		t.Fatalf("range into the tampered chunk: %d, %v (want the 10 bytes before it and ErrDecrypt)", n, err)
	}
}

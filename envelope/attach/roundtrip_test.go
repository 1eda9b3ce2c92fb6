package attach_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope/attach"
)

var big = flag.Bool("attach.big", false, "run the 1 GiB round trip and memory test")

// roundTripSizes are the lengths every round trip covers: empty, one
// byte, around a chunk, around the padding floor, several chunks and
// several MB.
var roundTripSizes = []int{0, 1, 100, attach.MinPadded - 1, attach.MinPadded, attach.MinPadded + 1,
	attach.ChunkSize - 1, attach.ChunkSize, attach.ChunkSize + 1, 2 * attach.ChunkSize,
	3*attach.ChunkSize + 12345, 5<<20 + 17}

func TestRoundTrip(t *testing.T) {
	key := keyOf(t, "round trip")
	for _, n := range roundTripSizes {
		file := fileOf("round trip", n)
		blob := encrypt(t, key, file)
		size, err := attach.EncryptedSize(int64(n))
		if err != nil || int64(len(blob)) != size {
			t.Fatalf("%d bytes: blob of %d, EncryptedSize %d, %v", n, len(blob), size, err)
		}
		got, err := decrypt(key, blob)
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("%d bytes: Reader: %d bytes, %v", n, len(got), err)
		}
		if got, err = copyOut(key, blob); err != nil || !bytes.Equal(got, file) {
			t.Fatalf("%d bytes: Reader.WriteTo: %d bytes, %v", n, len(got), err)
		}
		got, err = openAll(key, blob)
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("%d bytes: ReaderAt: %d bytes, %v", n, len(got), err)
		}
	}
}

// TestRoundTripTrailingZeros: files that end in zeros, or are all zeros,
// keep every zero (the padding is zeros too, and the sequential reader
// only learns where the file ends from the trailer).
func TestRoundTripTrailingZeros(t *testing.T) {
	key := keyOf(t, "zeros")
	for _, n := range []int{1, attach.MinPadded, attach.ChunkSize, attach.ChunkSize + 1, 3 * attach.ChunkSize} {
		for _, file := range [][]byte{make([]byte, n), append(fileOf("z", n/2), make([]byte, n-n/2)...)} {
			blob := encrypt(t, key, file)
			got, err := decrypt(key, blob)
			if err != nil || !bytes.Equal(got, file) {
				t.Fatalf("%d bytes: Reader: %d bytes, %v", n, len(got), err)
			}
			if got, err = copyOut(key, blob); err != nil || !bytes.Equal(got, file) {
				t.Fatalf("%d bytes: Reader.WriteTo: %d bytes, %v", n, len(got), err)
			}
			if got, err = openAll(key, blob); err != nil || !bytes.Equal(got, file) {
				t.Fatalf("%d bytes: ReaderAt: %d bytes, %v", n, len(got), err)
			}
		}
	}
}

// TestWriteToWriterErrors: WriteTo stops at a Writer's error, and at a
// short Write with io.ErrShortWrite, counting only what was written; the
// Reader does not hand out the file as complete after that.
func TestWriteToWriterErrors(t *testing.T) {
	key := keyOf(t, "write to")
	file := append(fileOf("write to", 3*attach.ChunkSize), make([]byte, 1000)...)
	blob := encrypt(t, key, file)
	boom := errors.New("boom")
	for _, c := range []struct {
		name string
		w    io.Writer
		want error
	}{
		{"short", &cappedWriter{limit: attach.ChunkSize + 10, short: true}, io.ErrShortWrite},
		{"error", &cappedWriter{limit: 2*attach.ChunkSize + 5, err: boom}, boom},
	} {
		r, err := attach.NewReader(bytes.NewReader(blob), key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := r.WriteTo(c.w)
		if !errors.Is(err, c.want) || n != int64(c.w.(*cappedWriter).n) {
			t.Errorf("%s: WriteTo = %d, %v; want %d, %v", c.name, n, err, c.w.(*cappedWriter).n, c.want)
		}
	}
}

// cappedWriter takes limit bytes, then writes short (short) or fails with
// err.
type cappedWriter struct {
	limit, n int
	short    bool
	err      error
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	k := min(len(p), c.limit-c.n)
	c.n += k
	if k == len(p) {
		return k, nil
	}
	if c.short {
		return k, nil
	}
	return k, c.err
}

// TestWriteSplits writes one file in pieces of many sizes: the blob is the
// same whatever the writes.
func TestWriteSplits(t *testing.T) {
	key := keyOf(t, "splits")
	file := fileOf("splits", 3*attach.ChunkSize+999)
	restore := attach.SetNonceForTest(make([]byte, 16))
	defer restore()
	want := encrypt(t, key, file)
	for _, step := range []int{1, 1000, attach.ChunkSize - 1, attach.ChunkSize, attach.ChunkSize + 1, len(file)} {
		var buf bytes.Buffer
		w, err := attach.NewWriter(&buf, key)
		if err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(file); off += step {
			if _, err := w.Write(file[off:min(off+step, len(file))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Fatalf("writes of %d bytes give another blob", step)
		}
	}
}

func TestWriterMisuse(t *testing.T) {
	if _, err := attach.NewWriter(io.Discard, nil); !errors.Is(err, attach.ErrMalformed) {
		t.Errorf("nil key: %v", err)
	}
	w, err := attach.NewWriter(io.Discard, keyOf(t, "misuse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("late")); err == nil {
		t.Error("write after Close accepted")
	}
	if err := w.Close(); err == nil {
		t.Error("second Close accepted")
	}
	fail := errors.New("disk full")
	w, err = attach.NewWriter(&failAfter{n: attach.HeaderSize + 10, err: fail}, keyOf(t, "misuse"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, attach.ChunkSize)); !errors.Is(err, fail) {
		t.Errorf("destination error: %v", err)
	}
	if err := w.Close(); !errors.Is(err, fail) {
		t.Errorf("Close after a destination error: %v", err)
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

// TestBig encrypts and decrypts 1 GiB in constant memory (-attach.big):
// the heap in use never grows by more than 4 MiB while encrypting or
// decrypting, measured with runtime.MemStats every 16 MiB.
func TestBig(t *testing.T) {
	if !*big {
		t.Skip("run with -attach.big")
	}
	const n = 1 << 30
	key := attach.GenerateKey()
	src := &patternReader{n: n}
	var sink hashSink
	w, err := attach.NewWriter(&sink, key)
	if err != nil {
		t.Fatal(err)
	}
	mem := newMemWatch()
	start := time.Now()
	buf := make([]byte, 1<<20)
	for {
		k, err := src.Read(buf)
		if _, werr := w.Write(buf[:k]); werr != nil {
			t.Fatal(werr)
		}
		if src.off%(16<<20) == 0 {
			mem.sample()
		}
		if err == io.EOF {
			break
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	encTook := time.Since(start)
	size, _ := attach.EncryptedSize(n)
	if sink.n != size {
		t.Fatalf("blob of %d bytes, want %d", sink.n, size)
	}
	t.Logf("encrypt 1 GiB: %v (%.0f MB/s), heap growth %.2f MiB (peak in use %.2f MiB, start %.2f MiB)",
		encTook, n/encTook.Seconds()/1e6, mem.growthMiB(), mem.peakMiB(), mem.baseMiB())
	if mem.growthMiB() >= 4 {
		t.Errorf("heap grew by %.2f MiB while encrypting 1 GiB", mem.growthMiB())
	}

	// Decrypt the same stream, regenerated on the fly, and compare.
	restoreNonce := attach.SetNonceForTest(fileOf("big nonce", 16))
	defer restoreNonce()
	pr, pw := io.Pipe()
	go func() {
		w, _ := attach.NewWriter(pw, key)
		src := &patternReader{n: n}
		_, err := io.Copy(w, src)
		if err == nil {
			err = w.Close()
		}
		pw.CloseWithError(err)
	}()
	mem = newMemWatch()
	start = time.Now()
	r, err := attach.NewReader(pr, key)
	if err != nil {
		t.Fatal(err)
	}
	check := &patternChecker{}
	for {
		k, err := r.Read(buf)
		if !check.write(buf[:k]) {
			t.Fatalf("decrypted bytes differ near offset %d", check.off)
		}
		if check.off%(16<<20) < int64(k) {
			mem.sample()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if check.off != n {
		t.Fatalf("decrypted %d bytes", check.off)
	}
	t.Logf("encrypt+decrypt 1 GiB through a pipe: %v, heap growth %.2f MiB", time.Since(start), mem.growthMiB())
	if mem.growthMiB() >= 4 {
		t.Errorf("heap grew by %.2f MiB while decrypting 1 GiB", mem.growthMiB())
	}
}

// patternReader yields n bytes of a cheap, position-dependent pattern.
type patternReader struct{ off, n int64 }

func patternByte(off int64) byte { return byte(off*7 + off>>13) }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(b)), p.n-p.off))
	for i := range k {
		b[i] = patternByte(p.off + int64(i))
	}
	p.off += int64(k)
	if p.off == p.n {
		return k, io.EOF
	}
	return k, nil
}

type patternChecker struct{ off int64 }

func (c *patternChecker) write(b []byte) bool {
	for i, v := range b {
		if v != patternByte(c.off+int64(i)) {
			return false
		}
	}
	c.off += int64(len(b))
	return true
}

// hashSink counts the bytes written to it.
type hashSink struct{ n int64 }

func (h *hashSink) Write(p []byte) (int, error) { h.n += int64(len(p)); return len(p), nil }

// memWatch records the peak of HeapInuse over samples, from a base taken
// after a GC.
type memWatch struct{ base, peak uint64 }

func newMemWatch() *memWatch {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &memWatch{base: m.HeapInuse, peak: m.HeapInuse}
}

func (w *memWatch) sample() {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	w.peak = max(w.peak, m.HeapInuse)
}

func (w *memWatch) growthMiB() float64 { return float64(w.peak-w.base) / (1 << 20) }
func (w *memWatch) peakMiB() float64   { return float64(w.peak) / (1 << 20) }
func (w *memWatch) baseMiB() float64   { return float64(w.base) / (1 << 20) }

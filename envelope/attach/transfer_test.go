package attach_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope/attach"
)

var fastRetry = attach.WithRetries(attach.DefaultRetries, time.Millisecond)

// progressLog records progress reports and checks they stay within total.
type progressLog struct {
	t      *testing.T
	calls  int
	last   int64
	totals map[int64]bool
}

func (p *progressLog) report(done, total int64) {
	p.calls++
	if done < 0 || done > total {
		p.t.Errorf("progress %d of %d", done, total)
	}
	p.last = done
	if p.totals == nil {
		p.totals = map[int64]bool{}
	}
	p.totals[total] = true
}

func TestUploadDownload(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, attach.ChunkSize - 1, attach.ChunkSize, attach.ChunkSize + 1, 3<<20 + 5} {
		s := newMemStore()
		file := fileOf("transfer", n)
		up := &progressLog{t: t}
		p, err := attach.Upload(ctx, s, bytes.NewReader(file), attach.WithProgress(up.report),
			attach.WithMediaType("application/octet-stream"), attach.WithName("file.bin"))
		if err != nil {
			t.Fatalf("%d bytes: Upload: %v", n, err)
		}
		size, _ := attach.EncryptedSize(int64(n))
		blob := s.stored(p.ID)
		if int64(len(blob)) != size || sha256.Sum256(blob) != p.Digest || p.Length != int64(n) ||
			p.MediaType != "application/octet-stream" || p.Name != "file.bin" {
			t.Fatalf("%d bytes: pointer %v for a blob of %d bytes", n, p, len(blob))
		}
		if up.last != size || !up.totals[size] || len(up.totals) != 1 {
			t.Fatalf("%d bytes: upload progress ended at %d of %v", n, up.last, up.totals)
		}
		got, err := decrypt(p.Key, blob)
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("%d bytes: the stored blob does not decrypt: %v", n, err)
		}
		var out bytes.Buffer
		down := &progressLog{t: t}
		if err := attach.Download(ctx, s, p, &out, attach.WithProgress(down.report)); err != nil {
			t.Fatalf("%d bytes: Download: %v", n, err)
		}
		if !bytes.Equal(out.Bytes(), file) || down.last != size {
			t.Fatalf("%d bytes: downloaded %d bytes, progress at %d", n, out.Len(), down.last)
		}
	}
}

// TestUploadResume: Puts fail after a few bytes (in the header, inside a
// chunk, in the trailer) and the store keeps only whole parts of 100,000
// bytes; Upload resumes at the store's offset each time, the blob is
// right and its digest is the pointer's, and no byte the store kept is
// sent again.
func TestUploadResume(t *testing.T) {
	ctx := context.Background()
	const n = 1<<20 + 12345
	file := fileOf("upload resume", n)
	size, _ := attach.EncryptedSize(n)
	for _, fails := range [][]int64{{10}, {70_000}, {250_000, 10, 100_000}, {size - 5}, {0, 0, 0}} {
		s := newMemStore()
		s.partSize = 100_000
		s.putFail = fails
		prog := &progressLog{t: t}
		p, err := attach.Upload(ctx, s, bytes.NewReader(file), fastRetry, attach.WithProgress(prog.report))
		if err != nil {
			t.Fatalf("fails %v: %v", fails, err)
		}
		blob := s.stored(p.ID)
		if sha256.Sum256(blob) != p.Digest || int64(len(blob)) != size {
			t.Fatalf("fails %v: stored blob does not match the pointer", fails)
		}
		if got, err := decrypt(p.Key, blob); err != nil || !bytes.Equal(got, file) {
			t.Fatalf("fails %v: %v", fails, err)
		}
		var lost int64 // bytes the store read and dropped (parts cut short)
		for _, f := range fails {
			lost += f
		}
		if s.received > size+lost {
			t.Fatalf("fails %v: the store read %d bytes for a %d-byte blob", fails, s.received, size)
		}
		if prog.last != size {
			t.Fatalf("fails %v: progress ended at %d", fails, prog.last)
		}
	}
}

// TestUploadGivesUp: a store that always fails is tried 1 + retries times;
// a reader that cannot seek cannot resume; errors of the input and a
// length that does not match are not retried.
func TestUploadGivesUp(t *testing.T) {
	ctx := context.Background()
	file := fileOf("gives up", 200_000)
	s := newMemStore()
	s.putFail = []int64{1000, 1000, 1000, 1000}
	if _, err := attach.Upload(ctx, s, bytes.NewReader(file), attach.WithRetries(2, time.Millisecond)); !errors.Is(err, errInjected) {
		t.Fatalf("always failing store: %v", err)
	}
	if len(s.putFail) != 1 {
		t.Fatalf("%d Puts for 2 retries", 4-len(s.putFail))
	}

	// A store that kept all it read resumes even an unseekable input; one
	// that dropped part of it (parts of 300 bytes) cannot.
	s = newMemStore()
	s.putFail = []int64{1000}
	if _, err := attach.Upload(ctx, s, struct{ io.Reader }{bytes.NewReader(file)}, attach.WithLength(int64(len(file))), fastRetry); err != nil {
		t.Fatalf("resuming an unseekable input where the store stopped: %v", err)
	}
	s = newMemStore()
	s.partSize, s.putFail = 300, []int64{1000}
	onlyReader := struct{ io.Reader }{bytes.NewReader(file)}
	_, err := attach.Upload(ctx, s, onlyReader, attach.WithLength(int64(len(file))), fastRetry)
	if err == nil || !strings.Contains(err.Error(), "io.Seeker") {
		t.Fatalf("resuming an unseekable input: %v", err)
	}
	if _, err := attach.Upload(ctx, newMemStore(), struct{ io.Reader }{bytes.NewReader(file)}); !errors.Is(err, attach.ErrMalformed) {
		t.Fatalf("unknown length: %v", err)
	}
	for _, length := range []int64{int64(len(file)) - 1, int64(len(file)) + 1} {
		s := newMemStore()
		_, err := attach.Upload(ctx, s, struct{ io.Reader }{bytes.NewReader(file)}, attach.WithLength(length), fastRetry)
		if !errors.Is(err, attach.ErrMalformed) || s.received > attach.ChunkSize*5 {
			t.Fatalf("length %d for %d bytes: %v", length, len(file), err)
		}
	}
	readErr := errors.New("disk gone")
	if _, err := attach.Upload(ctx, newMemStore(), &failingReader{n: 100_000, err: readErr},
		attach.WithLength(int64(len(file))), fastRetry); !errors.Is(err, readErr) {
		t.Fatalf("input error: %v", err)
	}
	for name, opt := range map[string]attach.Option{"name": attach.WithName("a/b"), "media type": attach.WithMediaType("a\nb"),
		"length": attach.WithLength(attach.MaxLength + 1)} {
		if _, err := attach.Upload(ctx, newMemStore(), bytes.NewReader(file), opt); err == nil {
			t.Errorf("bad %s accepted", name)
		}
	}
}

type failingReader struct {
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

// TestDownloadResume: Gets end early at many points; Download resumes
// from the first chunk not yet verified each time, writes every byte
// once, and fetches at most one partial chunk again per cut.
func TestDownloadResume(t *testing.T) {
	ctx := context.Background()
	const n = 700_000
	file := fileOf("download resume", n)
	s := newMemStore()
	p, err := attach.Upload(ctx, s, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	size, _ := attach.EncryptedSize(n)
	for _, cuts := range [][]int64{{0}, {10}, {attach.HeaderSize + 5}, {100_000, 1, 200_000}, {size - 3}, {size - 30}} {
		s.getCut, s.served = cuts, 0
		var out bytes.Buffer
		if err := attach.Download(ctx, s, p, &out, fastRetry); err != nil {
			t.Fatalf("cuts %v: %v", cuts, err)
		}
		if !bytes.Equal(out.Bytes(), file) {
			t.Fatalf("cuts %v: wrong file", cuts)
		}
		if s.served > size+int64(len(cuts))*attach.ChunkCTSize {
			t.Fatalf("cuts %v: %d bytes fetched for a %d-byte blob", cuts, s.served, size)
		}
	}
	s.getCut = []int64{5, 5, 5}
	if err := attach.Download(ctx, s, p, io.Discard, attach.WithRetries(2, time.Millisecond)); err == nil {
		t.Fatal("a store that always cuts was accepted")
	}
	s.getCut = nil
}

// TestWrongBlob: a store that serves another blob under the id is
// detected (ErrWrongBlob) — a blob for another key at once, before any
// byte is written; one sealed under the same key and header (only the
// sender could make it) by its length or, at the end, by its digest.
// Tampered chunks are ErrDecrypt; neither is retried.
func TestWrongBlob(t *testing.T) {
	ctx := context.Background()
	const n = 300_000
	key := keyOf(t, "wrong blob")
	restore := attach.SetNonceForTest(fileOf("wrong blob nonce", 16))
	defer restore()
	blob := encrypt(t, key, fileOf("wrong blob", n))
	p := &attach.Pointer{ID: "the-id", Key: key, Length: n, Digest: sha256.Sum256(blob)}
	sameKeyOther := encrypt(t, key, fileOf("another file", n))
	sameKeyShorter := encrypt(t, key, fileOf("wrong blob", n-1))
	tampered := bytes.Clone(blob)
	tampered[chunkAt(2)+7] ^= 1
	for name, c := range map[string]struct {
		served  []byte
		want    error
		written bool
	}{
		"another key":            {encrypt(t, keyOf(t, "other"), fileOf("wrong blob", n)), attach.ErrWrongBlob, false},
		"same key, other file":   {sameKeyOther, attach.ErrWrongBlob, true},
		"same key, other length": {sameKeyShorter, attach.ErrWrongBlob, true},
		"tampered chunk":         {tampered, attach.ErrDecrypt, true},
	} {
		s := newMemStore()
		s.serve = map[string][]byte{"the-id": c.served}
		var out bytes.Buffer
		err := attach.Download(ctx, s, p, &out, fastRetry)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		if s.gets != 1 {
			t.Errorf("%s: %d Gets: a wrong blob was retried", name, s.gets)
		}
		if !c.written && out.Len() > 0 {
			t.Errorf("%s: %d bytes written", name, out.Len())
		}
	}
	s := newMemStore()
	s.serve = map[string][]byte{"the-id": blob}
	var out bytes.Buffer
	if err := attach.Download(ctx, s, p, &out); err != nil || !bytes.Equal(out.Bytes(), fileOf("wrong blob", n)) {
		t.Fatalf("the genuine blob: %v", err)
	}
	bad := *p
	bad.ID = ""
	if err := attach.Download(ctx, s, &bad, io.Discard); !errors.Is(err, attach.ErrMalformed) {
		t.Fatalf("a bad pointer: %v", err)
	}
}

// TestDownloadWriteError: an error of the destination ends the download
// at once.
func TestDownloadWriteError(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	p, err := attach.Upload(ctx, s, bytes.NewReader(fileOf("write error", 300_000)))
	if err != nil {
		t.Fatal(err)
	}
	fail := errors.New("disk full")
	if err := attach.Download(ctx, s, p, &failAfter{n: 100_000, err: fail}, fastRetry); !errors.Is(err, fail) || s.gets != 1 {
		t.Fatalf("write error: %v after %d Gets", err, s.gets)
	}
}

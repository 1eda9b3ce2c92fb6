package attach_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope/attach"
)

// refusingStore fails every call of the kinds set with err, and counts
// the calls.
type refusingStore struct {
	*memStore
	err                   error
	put, offset, get      bool
	puts, offsets, getsCt atomic.Int64
}

func (r *refusingStore) Put(ctx context.Context, up string, off int64, rd io.Reader) error {
	r.puts.Add(1)
	if r.put {
		io.CopyN(io.Discard, rd, 1000)
		return r.err
	}
	return r.memStore.Put(ctx, up, off, rd)
}

func (r *refusingStore) Offset(ctx context.Context, up string) (int64, error) {
	r.offsets.Add(1)
	if r.offset {
		return 0, r.err
	}
	return r.memStore.Offset(ctx, up)
}

func (r *refusingStore) Get(ctx context.Context, id string, off, n int64) (io.ReadCloser, error) {
	r.getsCt.Add(1)
	if r.get {
		return nil, r.err
	}
	return r.memStore.Get(ctx, id, off, n)
}

// markedError is a store client's error marked permanent without
// importing attach: a method Permanent.
type markedError struct{ perm bool }

func (m markedError) Error() string   { return fmt.Sprintf("store: refused (permanent %v)", m.perm) }
func (m markedError) Permanent() bool { return m.perm }

// TestPermanentErrors: an error that wraps ErrPermanent, or that has a
// Permanent method saying true, ends Upload and Download at the first
// call, with no wait; one whose Permanent says false is retried.
func TestPermanentErrors(t *testing.T) {
	ctx := context.Background()
	file := fileOf("permanent", 200_000)
	slow := attach.WithRetries(5, time.Second) // a retry would show in the time taken
	for _, c := range []struct {
		name string
		err  error
	}{
		{"ErrPermanent", fmt.Errorf("%w: 404 no such blob", attach.ErrPermanent)},
		{"Permanent method", fmt.Errorf("relay: %w", markedError{true})},
	} {
		start := time.Now()
		s := &refusingStore{memStore: newMemStore(), err: c.err, put: true}
		if _, err := attach.Upload(ctx, s, bytes.NewReader(file), slow); !errors.Is(err, c.err) || s.puts.Load() != 1 || s.offsets.Load() != 0 {
			t.Errorf("%s: Put: %v after %d Puts, %d Offsets", c.name, err, s.puts.Load(), s.offsets.Load())
		}
		s = &refusingStore{memStore: newMemStore(), err: c.err, offset: true}
		s.putFail = []int64{1000}
		if _, err := attach.Upload(ctx, s, bytes.NewReader(file), attach.WithRetries(5, time.Millisecond)); !errors.Is(err, c.err) || s.offsets.Load() != 1 {
			t.Errorf("%s: Offset: %v after %d Offsets", c.name, err, s.offsets.Load())
		}
		ok := newMemStore()
		p, err := attach.Upload(ctx, ok, bytes.NewReader(file))
		if err != nil {
			t.Fatal(err)
		}
		s = &refusingStore{memStore: ok, err: c.err, get: true}
		if err := attach.Download(ctx, s, p, io.Discard, slow); !errors.Is(err, c.err) || s.getsCt.Load() != 1 {
			t.Errorf("%s: Get: %v after %d Gets", c.name, err, s.getsCt.Load())
		}
		if err := attach.ResumeDownload(ctx, s, p, bytes.NewReader(nil), io.Discard, slow); !errors.Is(err, c.err) || s.getsCt.Load() != 2 {
			t.Errorf("%s: ResumeDownload Get: %v after %d Gets", c.name, err, s.getsCt.Load())
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("%s: %v: a permanent error was retried", c.name, d)
		}
	}
	s := &refusingStore{memStore: newMemStore(), err: markedError{false}, get: true}
	p, err := attach.Upload(ctx, s, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if err := attach.Download(ctx, s, p, io.Discard, attach.WithRetries(2, time.Millisecond)); err == nil || s.getsCt.Load() != 3 {
		t.Errorf("Permanent() false: %v after %d Gets, want 3", err, s.getsCt.Load())
	}
}

// lateStore's Put leaves two goroutines reading its reader after it
// returned (as net/http's transport may), once the next Put has begun (so
// while the next Put reads the same upload) or the test ends. Every such
// read must be refused with ErrReadAfterPut, and none may race with
// Upload's own reading (run with -race).
type lateStore struct {
	*memStore
	mu      sync.Mutex
	refused []error
	next    chan struct{} // closed when the next Put begins
	wg      sync.WaitGroup
}

func (l *lateStore) Put(ctx context.Context, up string, off int64, r io.Reader) error {
	l.mu.Lock()
	if l.next != nil {
		close(l.next)
	}
	next := make(chan struct{})
	l.next = next
	l.mu.Unlock()
	err := l.memStore.Put(ctx, up, off, r)
	l.wg.Add(2)
	for range 2 {
		go func() {
			defer l.wg.Done()
			<-next
			buf := make([]byte, 100)
			for range 50 {
				_, err := r.Read(buf)
				l.mu.Lock()
				l.refused = append(l.refused, err)
				l.mu.Unlock()
			}
		}()
	}
	return err
}

func (l *lateStore) end() {
	l.mu.Lock()
	close(l.next)
	l.mu.Unlock()
	l.wg.Wait()
}

func TestReadAfterPut(t *testing.T) {
	ctx := context.Background()
	file := fileOf("late", 300_000)
	s := &lateStore{memStore: newMemStore()}
	s.partSize, s.putFail = 1000, []int64{5000, 150_000}
	p, err := attach.Upload(ctx, s, bytes.NewReader(file), attach.WithRetries(5, 10*time.Millisecond))
	s.end()
	if err != nil {
		t.Fatal(err)
	}
	if blob := s.stored(p.ID); sha256.Sum256(blob) != p.Digest {
		t.Fatal("the late reads changed the blob or its digest")
	}
	if len(s.refused) != 300 {
		t.Fatalf("%d late reads refused, want 300", len(s.refused))
	}
	for _, err := range s.refused {
		if !errors.Is(err, attach.ErrReadAfterPut) {
			t.Fatalf("a late read: %v", err)
		}
	}
	var out bytes.Buffer
	if err := attach.Download(ctx, s, p, &out); err != nil || !bytes.Equal(out.Bytes(), file) {
		t.Fatalf("download: %v", err)
	}
}

// TestConcurrentReadRefused: a Read of Put's reader while another is in
// progress (here: while Upload reads the file for it) is refused with
// ErrReadAfterPut, and the upload goes on.
func TestConcurrentReadRefused(t *testing.T) {
	ctx := context.Background()
	file := fileOf("concurrent", 300_000)
	s := &concurrentStore{memStore: newMemStore()}
	var second error
	reads := 0
	src := &hookReader{r: bytes.NewReader(file), hook: func() {
		if reads++; reads == 2 {
			done := make(chan struct{})
			go func() { _, second = s.body.Read(make([]byte, 10)); close(done) }()
			<-done
		}
	}}
	p, err := attach.Upload(ctx, s, src, attach.WithLength(int64(len(file))))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(second, attach.ErrReadAfterPut) {
		t.Fatalf("a Read during a Read: %v", second)
	}
	if sha256.Sum256(s.stored(p.ID)) != p.Digest {
		t.Fatal("the refused read changed the digest")
	}
}

// concurrentStore keeps the reader of the Put in progress.
type concurrentStore struct {
	*memStore
	body io.Reader
}

func (c *concurrentStore) Put(ctx context.Context, up string, off int64, r io.Reader) error {
	c.body = r
	return c.memStore.Put(ctx, up, off, r)
}

// hookReader calls hook at each Read, before reading r.
type hookReader struct {
	r    io.Reader
	hook func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	h.hook()
	return h.r.Read(p)
}

// TestResumeUploadAfterRestart: an upload is cut and its process "ends"
// (Upload gives up, WithRetries(0)); a new ResumeUpload call with only
// the saved state and the file, read from its start through a reader
// that cannot seek, finishes it: the store's first bytes are not sent
// again, the blob is the one an uncut upload makes (the stored prefix and
// the rest open as one blob under one header), and its digest is the
// pointer's. Also when the store holds nothing yet, or everything (only
// the answer was lost).
func TestResumeUploadAfterRestart(t *testing.T) {
	ctx := context.Background()
	const n = 1<<20 + 4321
	file := fileOf("restart upload", n)
	size, _ := attach.EncryptedSize(n)
	for _, cut := range []int64{0, 1, attach.HeaderSize + 10, 300_000, size - 1, size} {
		s := newMemStore()
		s.partSize = 1000
		s.putFail = []int64{cut}
		var saved []byte
		p, err := attach.Upload(ctx, s, bytes.NewReader(file), attach.WithRetries(0, 0), attach.WithName("big.bin"),
			attach.WithMediaType("application/octet-stream"), attach.WithUploadState(func(st []byte) { saved = bytes.Clone(st) }))
		if saved == nil {
			t.Fatalf("cut %d: no upload state", cut)
		}
		if cut == size && err != nil { // the store got all, and failed after
			err = nil
		}
		if cut < size && err == nil {
			t.Fatalf("cut %d: the first upload did not fail", cut)
		}
		id := ""
		if p != nil {
			id = p.ID
		}
		kept, _ := s.Offset(ctx, "up.blob-1")
		before := bytes.Clone(s.stored("blob-1"))
		s.received = 0
		// The restart: nothing but saved and the file.
		prog := &progressLog{t: t}
		q, err := attach.ResumeUpload(ctx, s, saved, struct{ io.Reader }{bytes.NewReader(file)}, attach.WithProgress(prog.report))
		if err != nil {
			t.Fatalf("cut %d: ResumeUpload: %v", cut, err)
		}
		blob := s.stored(q.ID)
		if q.ID != "blob-1" || (id != "" && id != q.ID) || q.Length != n || q.Name != "big.bin" || q.MediaType != "application/octet-stream" {
			t.Fatalf("cut %d: pointer %v", cut, q)
		}
		if !bytes.Equal(blob[:len(before)], before) || s.received != size-kept || prog.last != size {
			t.Fatalf("cut %d: kept %d, sent %d more of %d, progress %d", cut, kept, s.received, size, prog.last)
		}
		if sha256.Sum256(blob) != q.Digest {
			t.Fatalf("cut %d: digest", cut)
		}
		got, err := decrypt(q.Key, blob)
		if err != nil || !bytes.Equal(got, file) {
			t.Fatalf("cut %d: the resumed blob does not open: %v", cut, err)
		}
		var out bytes.Buffer
		if err := attach.Download(ctx, s, q, &out); err != nil || !bytes.Equal(out.Bytes(), file) {
			t.Fatalf("cut %d: Download: %v", cut, err)
		}
	}
}

// TestResumeUploadRefuses: a damaged or foreign state, and a file of
// another length, are refused.
func TestResumeUploadRefuses(t *testing.T) {
	ctx := context.Background()
	file := fileOf("refuses", 100_000)
	s := newMemStore()
	s.putFail = []int64{50_000}
	var saved []byte
	attach.Upload(ctx, s, bytes.NewReader(file), attach.WithRetries(0, 0), attach.WithUploadState(func(st []byte) { saved = st }))
	for name, st := range map[string][]byte{
		"empty":     nil,
		"version 2": append([]byte{2}, saved[1:]...),
		"truncated": saved[:len(saved)-1],
		"trailing":  append(bytes.Clone(saved), 0),
	} {
		if _, err := attach.ResumeUpload(ctx, s, st, bytes.NewReader(file)); err == nil {
			t.Errorf("%s state accepted", name)
		}
	}
	for _, short := range []int{len(file) - 1, 10_000} {
		if _, err := attach.ResumeUpload(ctx, s, saved, bytes.NewReader(file[:short])); !errors.Is(err, attach.ErrMalformed) {
			t.Errorf("a file of %d bytes: %v", short, err)
		}
	}
}

// TestResumeDownloadAfterRestart: a download is cut and its process
// "ends" (Download gives up); ResumeDownload with only the Pointer and the
// partial file, cut anywhere (inside a chunk, at a chunk's end, empty,
// all of the file), writes exactly the rest, fetches no whole chunk the
// partial file holds, and checks the digest. A partial file that is not
// the file's start, or longer than it, fails.
func TestResumeDownloadAfterRestart(t *testing.T) {
	ctx := context.Background()
	const n = 5*attach.ChunkSize + 777
	file := fileOf("restart download", n)
	s := newMemStore()
	p, err := attach.Upload(ctx, s, bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	size, _ := attach.EncryptedSize(n)
	s.getCut = []int64{200_000}
	var first bytes.Buffer
	if err := attach.Download(ctx, s, p, &first, attach.WithRetries(0, 0)); err == nil {
		t.Fatal("the cut download succeeded")
	}
	if first.Len() == 0 || first.Len()%attach.ChunkSize != 0 {
		t.Fatalf("the cut download wrote %d bytes", first.Len())
	}
	for _, have := range []int{0, 1, first.Len(), first.Len() + 1, 3*attach.ChunkSize - 1, 5 * attach.ChunkSize, n - 1, n} {
		s.served = 0
		var rest bytes.Buffer
		prog := &progressLog{t: t}
		if err := attach.ResumeDownload(ctx, s, p, bytes.NewReader(file[:have]), &rest, attach.WithProgress(prog.report)); err != nil {
			t.Fatalf("have %d: %v", have, err)
		}
		if !bytes.Equal(rest.Bytes(), file[have:]) || prog.last != size {
			t.Fatalf("have %d: wrote %d bytes, progress %d", have, rest.Len(), prog.last)
		}
		whole := int64(have / attach.ChunkSize * attach.ChunkCTSize)
		if have == n {
			whole = size - attach.HeaderSize - attach.TrailerCTSize
		}
		if want := size - whole; s.served != want {
			t.Fatalf("have %d: fetched %d bytes, want %d", have, s.served, want)
		}
	}
	// Cut again while resuming: the resumption resumes too.
	s.getCut = []int64{attach.HeaderSize, 70_000, 10}
	var rest bytes.Buffer
	if err := attach.ResumeDownload(ctx, s, p, bytes.NewReader(file[:100_000]), &rest, fastRetry); err != nil || !bytes.Equal(rest.Bytes(), file[100_000:]) {
		t.Fatalf("cut while resuming: %v", err)
	}
	s.getCut = nil
	wrongTail := bytes.Clone(file[:100_000])
	wrongTail[99_999] ^= 1
	wrongWhole := bytes.Clone(file[:100_000])
	wrongWhole[5] ^= 1
	for name, c := range map[string]struct {
		have []byte
		want error
	}{
		"last byte changed":  {wrongTail, attach.ErrMalformed},
		"a whole chunk":      {wrongWhole, attach.ErrWrongBlob},
		"longer":             {append(bytes.Clone(file), 0), attach.ErrMalformed},
		"longer, in a chunk": {append(bytes.Clone(file[:n-1]), file[n-1]^1, 7), attach.ErrMalformed},
	} {
		if err := attach.ResumeDownload(ctx, s, p, bytes.NewReader(c.have), io.Discard, fastRetry); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

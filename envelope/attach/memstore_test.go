package attach_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// memStore is an in-memory attach.BlobStore for tests and examples. It can
// fail: a Put after putFail bytes (keeping only whole parts of partSize
// bytes, as the relay does), a Get after getCut bytes, and it can serve
// other bytes under an id.
type memStore struct {
	mu       sync.Mutex
	blobs    map[string]*memBlob
	next     int
	partSize int64

	putFail  []int64 // byte counts after which successive Puts fail
	getCut   []int64 // byte counts after which successive Gets end early
	served   int64   // bytes handed out by Get
	received int64   // bytes read by Put
	gets     int
	serve    map[string][]byte // bytes to serve instead of the blob
}

type memBlob struct {
	size int64
	data []byte
}

var errInjected = errors.New("memstore: injected failure")

func newMemStore() *memStore { return &memStore{blobs: map[string]*memBlob{}, partSize: 1} }

func (m *memStore) Create(_ context.Context, size int64) (string, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	id := fmt.Sprintf("blob-%d", m.next)
	m.blobs[id] = &memBlob{size: size}
	return id, "up." + id, nil
}

func (m *memStore) blob(up string) (*memBlob, error) {
	b, ok := m.blobs[up[len("up."):]]
	if !ok {
		return nil, errors.New("memstore: no such upload")
	}
	return b, nil
}

func (m *memStore) Put(_ context.Context, up string, off int64, r io.Reader) error {
	m.mu.Lock()
	b, err := m.blob(up)
	fail := int64(-1)
	if len(m.putFail) > 0 {
		fail, m.putFail = m.putFail[0], m.putFail[1:]
	}
	m.mu.Unlock()
	if err != nil {
		return err
	}
	if off != int64(len(b.data)) {
		return fmt.Errorf("memstore: offset %d, the store is at %d", off, len(b.data))
	}
	var buf bytes.Buffer
	src := r
	if fail >= 0 {
		src = io.LimitReader(r, fail)
	}
	n, err := io.Copy(&buf, src)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.received += n
	keep := buf.Bytes()
	if int64(len(b.data)+len(keep)) > b.size {
		return errors.New("memstore: blob over its size")
	}
	if fail >= 0 || err != nil {
		whole := (int64(len(b.data)+len(keep)) / m.partSize) * m.partSize
		keep = keep[:max(0, whole-int64(len(b.data)))]
		b.data = append(b.data, keep...)
		return errors.Join(errInjected, err)
	}
	b.data = append(b.data, keep...)
	return nil
}

func (m *memStore) Offset(_ context.Context, up string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.blob(up)
	if err != nil {
		return 0, err
	}
	return int64(len(b.data)), nil
}

func (m *memStore) Get(_ context.Context, id string, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	data := m.serve[id]
	if data == nil {
		b, ok := m.blobs[id]
		if !ok || int64(len(b.data)) != b.size {
			return nil, errors.New("memstore: no such complete blob")
		}
		data = b.data
	}
	if off < 0 || n < 0 || off+n > int64(len(data)) {
		return nil, errors.New("memstore: range out of the blob")
	}
	part := data[off : off+n]
	var cut error
	if len(m.getCut) > 0 {
		if c := m.getCut[0]; c < n {
			part, cut = part[:c], io.ErrUnexpectedEOF
		}
		m.getCut = m.getCut[1:]
	}
	m.served += int64(len(part))
	return io.NopCloser(io.MultiReader(bytes.NewReader(part), errReader{cut})), nil
}

// stored returns the bytes of a blob.
func (m *memStore) stored(id string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blobs[id].data
}

// errReader returns err, or io.EOF when err is nil.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) {
	if e.err == nil {
		return 0, io.EOF
	}
	return 0, e.err
}

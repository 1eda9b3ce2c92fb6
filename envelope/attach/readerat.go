package attach

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// ReaderAt gives random access to the file in a blob: ReadAt, Read and
// Seek decrypt only the chunks that hold the bytes asked for. Opening it
// authenticates the header, the last data chunk and the final chunk (so a
// blob cut short or extended fails at once); every chunk read is
// authenticated before any of its bytes is returned, and a failure is an
// error, never bytes. Chunks that hold only padding and are not the last
// (files over about 1.3 MB have some) are never read, so damage to them
// goes unseen: it cannot change the file. Reader and Download check every
// chunk.
//
// ReadAt is safe for concurrent use; Read and Seek share a position and
// are not.
type ReaderAt struct {
	src    io.ReaderAt
	s      *stream
	l      layout
	length int64
	pos    int64
}

// chunkPool holds chunk buffers for ReadAt, which may run concurrently.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkCTSize); return &b }}

// NewReaderAt opens the blob of size bytes in src with key. It returns
// ErrDecrypt when the blob is not for this key or its final chunk does not
// authenticate, ErrTruncated or ErrMalformed when size fits no blob of a
// length that pads to it, and ErrUnsupportedVersion for another format.
func NewReaderAt(src io.ReaderAt, size int64, key *Key) (*ReaderAt, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: attach: nil key", ErrMalformed)
	}
	l, err := layoutOfSize(size)
	if err != nil {
		return nil, err
	}
	var h [HeaderSize]byte
	if err := readFullAt(src, h[:], 0); err != nil {
		return nil, err
	}
	s, err := openHeader(key, h[:])
	if err != nil {
		return nil, err
	}
	var t [trailerCTSize]byte
	if err := readFullAt(src, t[:], size-trailerCTSize); err != nil {
		return nil, err
	}
	n, err := s.openTrailer(t[:], l.chunks)
	if err != nil {
		return nil, cutAt(src, s, size)
	}
	// The last data chunk too: it is where the padding is for all but
	// large files, and a trailer moved to another place fails here.
	r := &ReaderAt{src: src, s: s, l: l, length: l.padded}
	last, err := r.chunk(make([]byte, chunkCTSize), l.chunks-1)
	if err != nil {
		return nil, err
	}
	if err := checkPadded(n, l.padded); err != nil {
		return nil, err
	}
	if contentEnd(last[max(0, n-(l.chunks-1)*ChunkSize):]) != 0 {
		return nil, fmt.Errorf("%w: attach: non-zero padding", ErrMalformed)
	}
	r.length = n
	return r, nil
}

// cutAt returns the error of a blob of size bytes whose trailer does not
// open: ErrTruncated if it ends right after a data chunk, else ErrDecrypt.
func cutAt(src io.ReaderAt, s *stream, size int64) error {
	i := (size - HeaderSize - 1) / chunkCTSize
	tail := make([]byte, size-HeaderSize-i*chunkCTSize)
	if err := readFullAt(src, tail, HeaderSize+i*chunkCTSize); err != nil {
		return err
	}
	return s.cutError(tail, i)
}

// readFullAt reads len(p) bytes at off; a source that ends first is
// ErrTruncated.
func readFullAt(src io.ReaderAt, p []byte, off int64) error {
	n, err := src.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: attach: source ends at %d", ErrTruncated, off+int64(n))
	}
	return err
}

// Size returns the file's length.
func (r *ReaderAt) Size() int64 { return r.length }

// ReadAt reads len(p) file bytes at off, decrypting the chunks that hold
// them. As io.ReaderAt, it returns io.EOF with fewer bytes at the end of
// the file.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: attach: negative offset", ErrMalformed)
	}
	if off > r.length {
		return 0, io.EOF
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	n := 0
	for n < len(p) && off < r.length {
		i := off / ChunkSize
		pt, err := r.chunk(*bp, i)
		if err != nil {
			return n, err
		}
		k := copy(p[n:], pt[off-i*ChunkSize:])
		n, off = n+k, off+int64(k)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// chunk reads and decrypts data chunk i into buf and returns its content
// bytes (its padding cut off, after checking it is zeros).
func (r *ReaderAt) chunk(buf []byte, i int64) ([]byte, error) {
	ctext := buf[:r.l.chunkCT(i)]
	if err := readFullAt(r.src, ctext, r.l.offset(i)); err != nil {
		return nil, err
	}
	pt, err := r.s.open(ctext[:0], ctext, i, false)
	if err != nil {
		return nil, err
	}
	if end := r.length - i*ChunkSize; end < int64(len(pt)) {
		if contentEnd(pt[end:]) != 0 {
			return nil, fmt.Errorf("%w: attach: non-zero padding", ErrMalformed)
		}
		pt = pt[:end]
	}
	return pt, nil
}

// Read reads file bytes at the current position and moves it.
func (r *ReaderAt) Read(p []byte) (int, error) {
	if r.pos >= r.length {
		return 0, io.EOF
	}
	n, err := r.ReadAt(p[:min(int64(len(p)), r.length-r.pos)], r.pos)
	r.pos += int64(n)
	return n, err
}

// Seek sets the position of Read, as io.Seeker. Seeking past the end is
// allowed; reading there returns io.EOF.
func (r *ReaderAt) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.pos
	case io.SeekEnd:
		offset += r.length
	default:
		return 0, fmt.Errorf("%w: attach: seek whence %d", ErrMalformed, whence)
	}
	if offset < 0 {
		return 0, fmt.Errorf("%w: attach: seek to a negative position", ErrMalformed)
	}
	r.pos = offset
	return offset, nil
}

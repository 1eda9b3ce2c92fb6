package attach

import (
	"errors"
	"fmt"
	"io"
)

// Writer encrypts a file into a blob as it is written (see the package
// doc, "Format"). Close must be called: it pads the file and writes the
// final chunk, without which no reader accepts the blob. It holds one
// chunk in memory, whatever the file's size.
type Writer struct {
	dst    io.Writer
	s      *stream
	buf    []byte // ChunkSize plaintext bytes and a tag's room
	n      int    // plaintext bytes in buf
	chunk  int64  // number of the next data chunk
	length int64  // plaintext bytes written
	err    error  // sticky
}

// NewWriter writes a new blob header for key to dst and returns a Writer
// that encrypts into it. A header nonce makes the blob's chunk key unique
// even if a key is ever reused, but each file should have its own
// GenerateKey.
func NewWriter(dst io.Writer, key *Key) (*Writer, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: attach: nil key", ErrMalformed)
	}
	h, s := newHeader(key)
	if _, err := dst.Write(h); err != nil {
		return nil, err
	}
	return &Writer{dst: dst, s: s, buf: make([]byte, 0, chunkCTSize)}, nil
}

// errClosed is returned by a Writer used after Close.
var errClosed = errors.New("attach: write after Close")

// Write encrypts p. It returns ErrTooLarge once the file would pass
// MaxLength, and the errors of the destination; the Writer is unusable
// after any error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.length+int64(len(p)) > MaxLength {
		w.err = fmt.Errorf("%w: attach: file over %d bytes", ErrTooLarge, int64(MaxLength))
		return 0, w.err
	}
	written := 0
	for len(p) > 0 && w.err == nil {
		if w.n == 0 && len(p) >= ChunkSize { // a whole chunk: seal it from p
			w.flush(p[:ChunkSize])
			p, written = p[ChunkSize:], written+ChunkSize
			continue
		}
		k := copy(w.buf[w.n:ChunkSize], p)
		w.n += k
		p, written = p[k:], written+k
		if w.n == ChunkSize {
			w.flush(w.buf[:ChunkSize])
		}
	}
	w.length += int64(written)
	return written, w.err
}

// flush seals pt as the next data chunk and writes it.
func (w *Writer) flush(pt []byte) {
	ctext := w.s.seal(w.buf[:0], pt, w.chunk, false)
	w.chunk++
	w.n = 0
	if _, err := w.dst.Write(ctext); err != nil {
		w.err = err
	}
}

// Close pads the file to PaddedLength, writes the last data chunk and the
// final chunk. It does not close the destination. The blob is complete
// only when Close returns nil.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	for pad := PaddedLength(w.length) - w.length; pad > 0 && w.err == nil; {
		k := int(min(pad, int64(ChunkSize-w.n)))
		w.buf = w.buf[:ChunkSize]
		clear(w.buf[w.n : w.n+k])
		w.n += k
		pad -= int64(k)
		if w.n == ChunkSize {
			w.flush(w.buf[:ChunkSize])
		}
	}
	if w.n > 0 && w.err == nil {
		w.flush(w.buf[:w.n])
	}
	if w.err != nil {
		return w.err
	}
	_, err := w.dst.Write(w.s.sealTrailer(w.buf[:0], w.chunk, w.length))
	w.err = errClosed
	return err
}

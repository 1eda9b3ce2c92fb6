package attach

import (
	"errors"
	"fmt"
	"io"
)

// Reader decrypts a blob as it is read. It authenticates each chunk before
// it hands out any of its bytes, but a stream can only be known complete
// at its end: the bytes read are the file only once Read has returned
// io.EOF. Any other error (ErrTruncated, ErrDecrypt, ErrMalformed, or the
// source's) means the output so far must be thrown away, never used as
// the file. It holds one chunk in memory, whatever the file's size.
type Reader struct {
	src   io.Reader
	s     *stream
	buf   []byte // ciphertext read ahead: a data chunk, a trailer and a byte
	n     int    // bytes in buf
	taken int    // bytes at the start of buf already decrypted and handed on
	eof   bool
	chunk int64 // number of the next data chunk

	// Output, handed out in this order: pre zeros, out, post zeros.
	pre, post int64
	out       []byte
	held      int64 // trailing zeros read: content or padding, not yet known
	content   int64 // bytes known to be content (handed out or queued)
	padded    int64 // data plaintext bytes decrypted
	done      bool
	err       error  // sticky
	zeros     []byte // WriteTo's zeros, made when first needed
}

// NewReader reads the blob header from src, checks it against key and
// returns a Reader of the file. It returns ErrDecrypt when the blob is not
// for this key, ErrUnsupportedVersion for another format version and
// ErrTruncated for a source shorter than a header.
func NewReader(src io.Reader, key *Key) (*Reader, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: attach: nil key", ErrMalformed)
	}
	h := make([]byte, HeaderSize)
	if _, err := io.ReadFull(src, h); err != nil {
		return nil, shortRead(err, "header")
	}
	s, err := openHeader(key, h)
	if err != nil {
		return nil, err
	}
	return &Reader{src: src, s: s, buf: make([]byte, chunkCTSize+trailerCTSize+1)}, nil
}

// shortRead maps the end of a source to ErrTruncated and keeps other
// errors (a network failure is not an attack).
func shortRead(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: attach: stream ends inside the %s", ErrTruncated, what)
	}
	return err
}

// Read reads decrypted file bytes. It returns io.EOF only after the final
// chunk authenticated and the length and padding it gives checked out.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		switch {
		case len(p) == 0:
			return 0, nil
		case r.pre > 0:
			n := int(min(r.pre, int64(len(p))))
			clear(p[:n])
			r.pre -= int64(n)
			return n, nil
		case len(r.out) > 0:
			n := copy(p, r.out)
			r.out = r.out[n:]
			return n, nil
		case r.post > 0:
			n := int(min(r.post, int64(len(p))))
			clear(p[:n])
			r.post -= int64(n)
			return n, nil
		case r.err != nil:
			return 0, r.err
		case r.done:
			return 0, io.EOF
		case len(p) >= ChunkSize && r.held == 0:
			// Nothing queued or held: a whole data chunk can be opened
			// straight into p, without the copy out of buf.
			n, err := r.nextInto(p)
			if r.err = err; n > 0 {
				return n, nil
			}
			continue // an error, the end, or a chunk of zeros now held
		}
		r.err = r.next()
	}
}

// WriteTo writes the rest of the file to w; io.Copy uses it. Each chunk
// is opened in the Reader's own buffer and written from there in one
// Write, with no copy into a caller's buffer. Like Read, it returns nil
// only after the final chunk authenticated and the length and padding
// checked out: bytes written before any other error are not the file.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		for r.pre > 0 || len(r.out) > 0 || r.post > 0 {
			var b []byte
			switch {
			case r.pre > 0:
				b = r.zeroes(r.pre)
			case len(r.out) > 0:
				b = r.out
			default:
				b = r.zeroes(r.post)
			}
			n, err := w.Write(b)
			if n < 0 || n > len(b) {
				n, err = 0, errInvalidWrite
			}
			total += int64(n)
			switch {
			case r.pre > 0:
				r.pre -= int64(n)
			case len(r.out) > 0:
				r.out = r.out[n:]
			default:
				r.post -= int64(n)
			}
			if err == nil && n < len(b) {
				err = io.ErrShortWrite
			}
			if err != nil {
				return total, err
			}
		}
		switch {
		case r.err != nil:
			return total, r.err
		case r.done:
			return total, nil
		}
		r.err = r.next()
	}
}

// zeroes returns min(n, ChunkSize) zero bytes of the Reader's own, cleared
// again each time (a Writer must not change what it is given, but the
// zeros of one Reader's output depend on no other's).
func (r *Reader) zeroes(n int64) []byte {
	if r.zeros == nil {
		r.zeros = make([]byte, ChunkSize)
	}
	z := r.zeros[:min(n, ChunkSize)]
	clear(z)
	return z
}

// errInvalidWrite is what io.Copy reports for a Write that returned an
// impossible count.
var errInvalidWrite = errors.New("attach: invalid write result")

// nextInto is next for a caller's buffer of at least ChunkSize bytes,
// when no zeros are held: a whole data chunk is opened into p and its
// content (up to its last non-zero byte) returned at once. The end of the
// stream goes the usual way.
func (r *Reader) nextInto(p []byte) (int, error) {
	if err := r.fill(); err != nil {
		return 0, err
	}
	if r.eof {
		return 0, r.finish(r.buf[:r.n])
	}
	pt, err := r.s.open(p[:0], r.buf[:chunkCTSize], r.chunk, false)
	if err != nil {
		return 0, err
	}
	r.chunk++
	r.taken = chunkCTSize
	r.padded += int64(len(pt))
	end := contentEnd(pt)
	r.content += int64(end)
	r.held = int64(len(pt) - end)
	return end, nil
}

// fill moves the unread ciphertext to the front of buf and reads until
// buf is full or the source ends.
func (r *Reader) fill() error {
	r.n = copy(r.buf, r.buf[r.taken:r.n])
	r.taken = 0
	for r.n < len(r.buf) && !r.eof {
		k, err := r.src.Read(r.buf[r.n:])
		r.n += k
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			return err
		}
	}
	return nil
}

// next decrypts the next data chunk, or the last one and the trailer.
func (r *Reader) next() error {
	if err := r.fill(); err != nil {
		return err
	}
	if !r.eof { // more follows: the first chunk is a whole data chunk
		pt, err := r.s.open(r.buf[:0], r.buf[:chunkCTSize], r.chunk, false)
		if err != nil {
			return err
		}
		r.chunk++
		r.taken = chunkCTSize
		r.take(pt)
		return nil
	}
	return r.finish(r.buf[:r.n])
}

// take queues a decrypted data chunk: its bytes up to the last non-zero
// one are content, and so are the zeros held before them; its trailing
// zeros are held until a later byte or the trailer tells.
func (r *Reader) take(pt []byte) {
	r.padded += int64(len(pt))
	end := contentEnd(pt)
	if end == 0 {
		r.held += int64(len(pt))
		return
	}
	r.pre, r.out = r.held, pt[:end]
	r.content += r.held + int64(end)
	r.held = int64(len(pt) - end)
}

// finish opens the end of the stream: the last data chunk (if the one
// before it was not the last) and the trailer, and checks that the length
// the trailer gives pads to the data read and that the padding is zeros.
func (r *Reader) finish(tail []byte) error {
	data := len(tail) - trailerCTSize
	if data < 0 || (data > 0 && data < minDataCTSize) {
		return r.s.cutError(tail, r.chunk)
	}
	chunks := r.chunk
	if data > 0 {
		chunks++
	}
	n, err := r.s.openTrailer(tail[data:], chunks)
	if err != nil {
		return r.s.cutError(tail, r.chunk)
	}
	if data > 0 {
		pt, err := r.s.open(tail[:0], tail[:data], r.chunk, false)
		if err != nil {
			return err
		}
		r.take(pt)
	}
	if err := checkPadded(n, r.padded); err != nil {
		return err
	}
	if r.content > n {
		return fmt.Errorf("%w: attach: non-zero padding", ErrMalformed)
	}
	r.post = n - r.content
	r.held, r.content, r.done = 0, n, true
	return nil
}

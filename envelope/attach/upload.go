package attach

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
)

// Upload encrypts the file r yields under a fresh key, puts the blob in
// the store and returns the Pointer to send. It reads r once, in constant
// memory. The file's length comes from WithLength, or from r (its Seek,
// Len or Stat method); r must yield exactly that many bytes.
//
// A failed Put is resumed (WithRetries) at the offset the store reports:
// bytes the store holds are not sent again. This needs r to be an
// io.Seeker, since the digest of the stored prefix is computed again by
// reading and encrypting it locally; with any other r an interrupted
// upload fails. Errors of r, and a length that does not match, are never
// retried.
func Upload(ctx context.Context, s BlobStore, r io.Reader, opts ...Option) (*Pointer, error) {
	o := newOptions(opts)
	p := &Pointer{ID: "-", Key: GenerateKey(), MediaType: o.mediaType, Name: o.name}
	if err := p.check(); err != nil {
		return nil, err
	}
	var err error
	if p.Length, err = inputLength(r, o.length); err != nil {
		return nil, err
	}
	e, err := newEncReader(r, p.Key, p.Length, &o)
	if err != nil {
		return nil, err
	}
	var up string
	if p.ID, up, err = s.Create(ctx, e.l.size()); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("attach: the store's blob id: %w", err)
	}
	if err := e.send(ctx, s, up); err != nil {
		return nil, err
	}
	e.hash.Sum(p.Digest[:0])
	return p, nil
}

// inputLength returns the bytes left in r: given, or what r's Seek, Len or
// Stat method tells.
func inputLength(r io.Reader, given int64) (int64, error) {
	n, err := given, error(nil)
	if n < 0 {
		n, err = askLength(r)
	}
	if err != nil {
		return 0, err
	}
	return n, checkLength(n)
}

func askLength(r io.Reader) (int64, error) {
	switch v := r.(type) {
	case io.Seeker:
		cur, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, err
		}
		end, err := v.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, err
		}
		_, err = v.Seek(cur, io.SeekStart)
		return end - cur, err
	case interface{ Len() int }:
		return int64(v.Len()), nil
	case interface{ Stat() (fs.FileInfo, error) }:
		fi, err := v.Stat()
		if err != nil {
			return 0, err
		}
		return fi.Size(), nil
	}
	return 0, fmt.Errorf("%w: attach: the input's length is unknown (use WithLength)", ErrMalformed)
}

// encReader yields the blob of a file as it reads the file: header, data
// chunks, trailer. Its hash covers exactly the bytes it yielded.
type encReader struct {
	src     io.Reader
	base    int64 // src's position at the start, to rewind to
	key     *Key
	s       *stream
	header  []byte
	l       layout
	length  int64
	hash    hash.Hash
	buf     []byte
	pending []byte
	seg     int64 // next segment: -1 header, data chunks from 0, l.chunks the trailer
	emitted int64
	quiet   bool  // no progress reports (while rewinding)
	err     error // an error of src: never retried
	o       *options
}

func newEncReader(src io.Reader, key *Key, length int64, o *options) (*encReader, error) {
	e := &encReader{src: src, key: key, length: length, l: layoutOf(PaddedLength(length)),
		hash: sha256.New(), buf: make([]byte, chunkCTSize), seg: -1, base: -1, o: o}
	if sk, ok := src.(io.Seeker); ok {
		pos, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		e.base = pos
	}
	e.header, e.s = newHeader(key)
	return e, nil
}

func (e *encReader) Read(p []byte) (int, error) {
	for len(e.pending) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		if e.seg > e.l.chunks {
			return 0, io.EOF
		}
		e.produce()
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	e.hash.Write(p[:n])
	e.emitted += int64(n)
	if len(e.pending) == 0 && !e.quiet {
		e.o.report(e.emitted, e.l.size())
	}
	return n, nil
}

// produce makes the next segment's ciphertext pending.
func (e *encReader) produce() {
	i := e.seg
	e.seg++
	switch {
	case i < 0:
		e.pending = e.header
	case i == e.l.chunks:
		e.pending = e.s.sealTrailer(e.buf[:0], i, e.length)
	default:
		pt := e.buf[:e.l.chunkCT(i)-tagSize]
		if e.err = e.readContent(pt, i*ChunkSize); e.err == nil {
			e.pending = e.s.seal(pt[:0], pt, i, false)
		}
	}
}

// readContent fills pt with the file's bytes from off, and zeros past its
// end; it checks that the file ends where its length says.
func (e *encReader) readContent(pt []byte, off int64) error {
	k := int(max(0, min(int64(len(pt)), e.length-off)))
	clear(pt[k:])
	if k == 0 {
		return nil
	}
	if _, err := io.ReadFull(e.src, pt[:k]); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: attach: the input is shorter than its length %d", ErrMalformed, e.length)
	} else if err != nil {
		return fmt.Errorf("attach: reading the input: %w", err)
	}
	if off+int64(k) == e.length {
		var one [1]byte
		if n, _ := io.ReadFull(e.src, one[:]); n > 0 {
			return fmt.Errorf("%w: attach: the input is longer than its length %d", ErrMalformed, e.length)
		}
	}
	return nil
}

// rewind starts the blob again and yields (and hashes) its first off
// bytes without reporting them, so that the next Read yields byte off.
func (e *encReader) rewind(off int64) error {
	if e.base < 0 {
		return errors.New("attach: cannot resume the upload: the input is not an io.Seeker")
	}
	if _, err := e.src.(io.Seeker).Seek(e.base, io.SeekStart); err != nil {
		return fmt.Errorf("attach: rewinding the input: %w", err)
	}
	e.seg, e.pending, e.emitted = -1, nil, 0
	e.hash.Reset()
	e.quiet = true
	defer func() { e.quiet = false }()
	_, err := io.CopyN(io.Discard, e, off)
	return err
}

// send puts the blob, resuming after failures at the store's offset.
func (e *encReader) send(ctx context.Context, s BlobStore, up string) error {
	size := e.l.size()
	off := int64(0)
	for attempt := 0; ; attempt++ {
		err := s.Put(ctx, up, off, e)
		if err == nil && e.emitted == size {
			return nil
		}
		if err == nil {
			err = errors.New("attach: the store's Put returned before the blob's end")
		}
		if e.err != nil {
			return e.err
		}
		if ctx.Err() != nil || attempt >= e.o.retries {
			return fmt.Errorf("attach: upload: %w", err)
		}
		if off, err = e.resume(ctx, s, up, attempt); err != nil {
			return err
		}
		if off == size {
			return nil // the store had it all; only the answer was lost
		}
	}
}

// resume waits, asks the store where it is and moves the blob there.
func (e *encReader) resume(ctx context.Context, s BlobStore, up string, attempt int) (int64, error) {
	for ; ; attempt++ {
		if err := e.o.wait(ctx, attempt); err != nil {
			return 0, err
		}
		off, err := s.Offset(ctx, up)
		switch {
		case err != nil && attempt < e.o.retries && ctx.Err() == nil:
			continue
		case err != nil:
			return 0, fmt.Errorf("attach: upload offset: %w", err)
		case off > e.emitted || off < 0:
			return 0, fmt.Errorf("%w: attach: the store reports offset %d of %d bytes sent", ErrMalformed, off, e.emitted)
		case off < e.emitted:
			return off, e.rewind(off)
		}
		return off, nil
	}
}

package attach

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Download gets the blob p names from the store, decrypts it and writes
// the file to w, in constant memory. Every chunk is authenticated before
// any of its bytes is written, and a Get that fails or ends early is
// resumed (WithRetries) from the first chunk not yet verified, so nothing
// is written twice. At the end the blob's SHA-256 must be p.Digest.
//
// What was written to w is the file only if Download returns nil: after
// any error it must be thrown away. A blob that is not p's (a header for
// another key, another length, another digest) is ErrWrongBlob; a chunk
// that fails authentication is ErrDecrypt. Neither is retried, nor is an
// error of w.
func Download(ctx context.Context, s BlobStore, p *Pointer, w io.Writer, opts ...Option) error {
	if err := p.check(); err != nil {
		return err
	}
	o := newOptions(opts)
	d := &downloader{p: p, w: w, o: &o, l: layoutOf(PaddedLength(p.Length)), hash: sha256.New(),
		buf: make([]byte, chunkCTSize)}
	for attempt := 0; ; attempt++ {
		err := d.fetch(ctx, s)
		if err == nil {
			return d.verify()
		}
		var f fatal
		if errors.As(err, &f) {
			return f.err
		}
		if ctx.Err() != nil || attempt >= o.retries {
			return fmt.Errorf("attach: download: %w", err)
		}
		if err := o.wait(ctx, attempt); err != nil {
			return err
		}
	}
}

// fatal marks an error that no retry can mend.
type fatal struct{ err error }

func (f fatal) Error() string { return f.err.Error() }

// downloader is a download's progress: the blob bytes verified so far.
type downloader struct {
	p     *Pointer
	w     io.Writer
	o     *options
	l     layout
	s     *stream // once the header is read
	hash  hash.Hash
	buf   []byte
	off   int64 // blob bytes verified and hashed
	chunk int64 // next data chunk
}

// fetch gets the rest of the blob and goes through it. Errors not marked
// fatal are the store's: the next fetch resumes at d.off.
func (d *downloader) fetch(ctx context.Context, s BlobStore) error {
	size := d.l.size()
	rc, err := s.Get(ctx, d.p.ID, d.off, size-d.off)
	if err != nil {
		return err
	}
	defer rc.Close()
	if d.s == nil {
		if err := d.header(rc); err != nil {
			return err
		}
	}
	for ; d.chunk < d.l.chunks; d.chunk++ {
		if err := d.data(rc); err != nil {
			return err
		}
	}
	t := d.buf[:trailerCTSize]
	if _, err := io.ReadFull(rc, t); err != nil {
		return err
	}
	d.hash.Write(t)
	n, err := d.s.openTrailer(t, d.l.chunks)
	if err == nil && n != d.p.Length {
		err = fmt.Errorf("%w: attach: blob of a %d-byte file, the pointer says %d", ErrWrongBlob, n, d.p.Length)
	}
	if err != nil {
		return fatal{err}
	}
	d.advance(trailerCTSize)
	return nil
}

func (d *downloader) header(rc io.Reader) error {
	h := d.buf[:HeaderSize]
	if _, err := io.ReadFull(rc, h); err != nil {
		return err
	}
	s, err := openHeader(d.p.Key, h)
	if err != nil {
		return fatal{fmt.Errorf("%w: %w", ErrWrongBlob, err)}
	}
	d.s = s
	d.hash.Write(h)
	d.advance(HeaderSize)
	return nil
}

// data reads, hashes, opens and writes data chunk d.chunk.
func (d *downloader) data(rc io.Reader) error {
	ctext := d.buf[:d.l.chunkCT(d.chunk)]
	if _, err := io.ReadFull(rc, ctext); err != nil {
		return err
	}
	d.hash.Write(ctext)
	pt, err := d.s.open(ctext[:0], ctext, d.chunk, false)
	if err != nil {
		return fatal{err}
	}
	end := max(0, min(int64(len(pt)), d.p.Length-d.chunk*ChunkSize))
	if contentEnd(pt[end:]) != 0 {
		return fatal{fmt.Errorf("%w: attach: non-zero padding", ErrMalformed)}
	}
	if _, err := d.w.Write(pt[:end]); err != nil {
		return fatal{err}
	}
	d.advance(len(ctext))
	return nil
}

func (d *downloader) advance(n int) {
	d.off += int64(n)
	d.o.report(d.off, d.l.size())
}

func (d *downloader) verify() error {
	var sum [sha256.Size]byte
	if d.hash.Sum(sum[:0]); sum != d.p.Digest {
		return fmt.Errorf("%w: attach: blob digest %x…, the pointer says %x…", ErrWrongBlob, sum[:4], d.p.Digest[:4])
	}
	return nil
}

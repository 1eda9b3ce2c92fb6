package attach

import (
	"bytes"
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
// error of w, nor a store's error marked permanent (see BlobStore). To
// resume after the process ended, keep what was written and call
// ResumeDownload.
func Download(ctx context.Context, s BlobStore, p *Pointer, w io.Writer, opts ...Option) error {
	return download(ctx, s, p, nil, w, opts)
}

// ResumeDownload goes on with a download that an earlier Download or
// ResumeDownload began, in this process or in one that has ended, into a
// partial file: have yields the bytes already written (the partial file,
// from its start, to its end), and w gets the rest of the file, from the
// byte after them. All the app keeps is the Pointer and the partial file.
// The chunks have holds whole are not fetched again: they are encrypted
// again locally (the blob's header, fetched first, gives the stream), so
// the blob's digest covers them; the chunk have ends inside is fetched and
// must begin with have's last bytes. have longer than the file, or whose
// bytes are not the start of it, is ErrMalformed (at once, or at the first
// fetched chunk it reaches into); one whose whole chunks were changed
// fails at the end with ErrWrongBlob, as the digest does not match.
// Otherwise it is Download, with the same guarantee: the partial file and
// what was written to w are the file only if ResumeDownload returns nil.
func ResumeDownload(ctx context.Context, s BlobStore, p *Pointer, have io.Reader, w io.Writer, opts ...Option) error {
	return download(ctx, s, p, have, w, opts)
}

func download(ctx context.Context, s BlobStore, p *Pointer, have io.Reader, w io.Writer, opts []Option) error {
	if err := p.check(); err != nil {
		return err
	}
	o := newOptions(opts)
	d := &downloader{p: p, w: w, o: &o, l: layoutOf(PaddedLength(p.Length)), hash: sha256.New(),
		buf: make([]byte, chunkCTSize)}
	step := d.fetch
	if have != nil {
		step = func(ctx context.Context, s BlobStore) error {
			if d.s == nil {
				if err := d.fetchHeader(ctx, s); err != nil {
					return err
				}
			}
			if have != nil {
				if err := d.local(have); err != nil {
					return fatal{err}
				}
				have = nil
			}
			return d.fetch(ctx, s)
		}
	}
	for attempt := 0; ; attempt++ {
		err := step(ctx, s)
		if err == nil {
			return d.verify()
		}
		var f fatal
		if errors.As(err, &f) {
			return f.err
		}
		if permanent(err) || ctx.Err() != nil || attempt >= o.retries {
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
	off   int64  // blob bytes verified and hashed
	chunk int64  // next data chunk
	skip  []byte // ResumeDownload: the partial file's bytes of chunk d.chunk
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

// fetchHeader gets and checks the blob's header alone.
func (d *downloader) fetchHeader(ctx context.Context, s BlobStore) error {
	rc, err := s.Get(ctx, d.p.ID, 0, HeaderSize)
	if err != nil {
		return err
	}
	defer rc.Close()
	return d.header(rc)
}

// local goes through the chunks that have holds whole, after the header:
// it encrypts each again and hashes it as if fetched, and keeps the bytes
// of the chunk have ends inside for data to check and skip.
func (d *downloader) local(have io.Reader) error {
	for ; d.chunk < d.l.chunks; d.chunk++ {
		pt := d.buf[:d.l.chunkCT(d.chunk)-tagSize]
		content := max(0, min(int64(len(pt)), d.p.Length-d.chunk*ChunkSize))
		k, err := io.ReadFull(have, pt[:content])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			d.skip = bytes.Clone(pt[:k])
			break
		}
		if err != nil {
			return fmt.Errorf("attach: reading the partial file: %w", err)
		}
		clear(pt[content:])
		ctext := d.s.seal(pt[:0], pt, d.chunk, false)
		d.hash.Write(ctext)
		d.off += int64(len(ctext))
	}
	if d.chunk == d.l.chunks {
		var one [1]byte
		if n, _ := io.ReadFull(have, one[:]); n > 0 {
			return fmt.Errorf("%w: attach: the partial file is longer than the file's %d bytes", ErrMalformed, d.p.Length)
		}
	}
	d.o.report(d.off, d.l.size())
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
	out := pt[:end]
	if len(d.skip) > 0 { // the chunk the partial file ends inside
		if !bytes.Equal(out[:len(d.skip)], d.skip) {
			return fatal{fmt.Errorf("%w: attach: the partial file is not the start of the file (chunk %d)", ErrMalformed, d.chunk)}
		}
		out, d.skip = out[len(d.skip):], nil
	}
	if _, err := d.w.Write(out); err != nil {
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

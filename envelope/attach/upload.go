package attach

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"sync"
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
// retried, nor is a store's error marked permanent (see BlobStore). To
// resume after the process ended, save the state WithUploadState gives
// and call ResumeUpload.
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
	e, err := newEncReader(r, p.Key, nil, p.Length, &o)
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
	if o.state != nil {
		st, err := (&uploadState{nonce: e.nonce(), upload: up, p: p}).marshal()
		if err != nil {
			return nil, err
		}
		o.state(st)
	}
	if err := e.send(ctx, s, up, 0); err != nil {
		return nil, err
	}
	e.hash.Sum(p.Digest[:0])
	return p, nil
}

// ResumeUpload goes on with an upload that an earlier Upload (WithUploadState)
// began, in this process or in one that has ended: state is what
// WithUploadState gave, r yields the same file from its start. It asks the
// store how much it holds, encrypts that much of the file again without
// sending it (the file key and the header nonce are in state, so the bytes
// are the same as the first time, and the digest covers them), sends the
// rest and returns the Pointer, as Upload does. r need not be an io.Seeker
// for that; to resume a Put that fails during ResumeUpload it must be,
// as for Upload. A file other than the first one makes a blob that does
// not open (its digest is the pointer's, but its chunks fail). Options of
// the file (WithLength, WithMediaType, WithName) are ignored: state has
// them.
func ResumeUpload(ctx context.Context, s BlobStore, state []byte, r io.Reader, opts ...Option) (*Pointer, error) {
	o := newOptions(opts)
	st, err := parseUploadState(state)
	if err != nil {
		return nil, err
	}
	e, err := newEncReader(r, st.p.Key, st.nonce[:], st.p.Length, &o)
	if err != nil {
		return nil, err
	}
	off, err := e.offset(ctx, s, st.upload, 0)
	if err != nil {
		return nil, err
	}
	e.quiet = true
	_, err = io.CopyN(io.Discard, e, off)
	e.quiet = false
	if err != nil {
		return nil, err
	}
	e.o.report(off, e.l.size())
	if off < e.l.size() {
		if err := e.send(ctx, s, st.upload, off); err != nil {
			return nil, err
		}
	}
	p := st.p
	e.hash.Sum(p.Digest[:0])
	return p, nil
}

// uploadState is what ResumeUpload needs (docs/SPEC.md section 21.9).
type uploadState struct {
	nonce  [headerNonceSize]byte
	upload string
	p      *Pointer // no digest yet
}

const uploadStateVersion = 1

func (st *uploadState) marshal() ([]byte, error) {
	if len(st.upload) == 0 || len(st.upload) > 0xffff {
		return nil, fmt.Errorf("%w: attach: the store's upload handle of %d bytes", ErrMalformed, len(st.upload))
	}
	ptr, err := st.p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	b := append([]byte{uploadStateVersion}, st.nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(st.upload)))
	b = append(b, st.upload...)
	return append(b, ptr...), nil
}

func parseUploadState(b []byte) (*uploadState, error) {
	bad := fmt.Errorf("%w: attach: upload state of %d bytes", ErrMalformed, len(b))
	if len(b) < 1+headerNonceSize+2 {
		return nil, bad
	}
	if b[0] != uploadStateVersion {
		return nil, fmt.Errorf("%w: attach: upload state version %d", ErrUnsupportedVersion, b[0])
	}
	st := &uploadState{}
	copy(st.nonce[:], b[1:])
	b = b[1+headerNonceSize:]
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 || len(b) < 2+n {
		return nil, bad
	}
	st.upload = string(b[2 : 2+n])
	p, err := ParsePointer(b[2+n:])
	if err != nil {
		return nil, fmt.Errorf("attach: upload state: %w", err)
	}
	p.Digest = [sha256.Size]byte{}
	st.p = p
	return st, nil
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

// newEncReader returns the blob of src under key and a header nonce (nil:
// a random one).
func newEncReader(src io.Reader, key *Key, nonce []byte, length int64, o *options) (*encReader, error) {
	e := &encReader{src: src, key: key, length: length, l: layoutOf(PaddedLength(length)),
		hash: sha256.New(), buf: make([]byte, chunkCTSize), seg: -1, base: -1, o: o}
	if sk, ok := src.(io.Seeker); ok {
		pos, err := sk.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		e.base = pos
	}
	if nonce == nil {
		e.header, e.s = newHeader(key)
	} else {
		e.header, e.s = headerOf(key, nonce)
	}
	return e, nil
}

// nonce returns the header nonce.
func (e *encReader) nonce() (n [headerNonceSize]byte) {
	copy(n[:], e.header[1:])
	return n
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

// putBody is the reader one Put gets: it refuses a Read once Put has
// returned, and a Read while another is in progress (ErrReadAfterPut),
// so a store that breaks the BlobStore contract cannot race with the
// rewind that resumes the upload.
type putBody struct {
	mu   sync.Mutex
	e    *encReader
	over bool
}

func (b *putBody) Read(p []byte) (int, error) {
	if !b.mu.TryLock() {
		return 0, ErrReadAfterPut
	}
	defer b.mu.Unlock()
	if b.over {
		return 0, ErrReadAfterPut
	}
	return b.e.Read(p)
}

// end waits for a Read in progress and refuses every later one.
func (b *putBody) end() {
	b.mu.Lock()
	b.over = true
	b.mu.Unlock()
}

// put is one Put of the rest of the blob from off.
func (e *encReader) put(ctx context.Context, s BlobStore, up string, off int64) error {
	body := &putBody{e: e}
	defer body.end()
	return s.Put(ctx, up, off, body)
}

// send puts the blob from off (where e is), resuming after failures at
// the store's offset.
func (e *encReader) send(ctx context.Context, s BlobStore, up string, off int64) error {
	size := e.l.size()
	for attempt := 0; ; attempt++ {
		err := e.put(ctx, s, up, off)
		if err == nil && e.emitted == size {
			return nil
		}
		if err == nil {
			err = errors.New("attach: the store's Put returned before the blob's end")
		}
		if e.err != nil {
			return e.err
		}
		if permanent(err) || ctx.Err() != nil || attempt >= e.o.retries {
			return fmt.Errorf("attach: upload: %w", err)
		}
		if err := e.o.wait(ctx, attempt); err != nil {
			return err
		}
		if off, err = e.offset(ctx, s, up, attempt+1); err != nil {
			return err
		}
		if off > e.emitted {
			return fmt.Errorf("%w: attach: the store reports offset %d of %d bytes sent", ErrMalformed, off, e.emitted)
		}
		if off < e.emitted {
			if err := e.rewind(off); err != nil {
				return err
			}
		}
		if off == size {
			return nil // the store had it all; only the answer was lost
		}
	}
}

// offset asks the store where the upload is, retrying (with waits from
// attempt on) an error that is not permanent.
func (e *encReader) offset(ctx context.Context, s BlobStore, up string, attempt int) (int64, error) {
	for ; ; attempt++ {
		off, err := s.Offset(ctx, up)
		switch {
		case err != nil && !permanent(err) && attempt < e.o.retries && ctx.Err() == nil:
			if err := e.o.wait(ctx, attempt); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, fmt.Errorf("attach: upload offset: %w", err)
		case off < 0 || off > e.l.size():
			return 0, fmt.Errorf("%w: attach: the store reports offset %d of a %d-byte blob", ErrMalformed, off, e.l.size())
		}
		return off, nil
	}
}

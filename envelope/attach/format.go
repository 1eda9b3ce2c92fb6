package attach

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/kdf"
)

// Format constants of blob version 1 (see the package doc, "Format", and
// docs/SPEC.md section 21.2).
const (
	// Version is the blob and pointer format this package writes and the
	// only one it reads.
	Version = 1
	// ChunkSize is the plaintext size of every data chunk but the last.
	ChunkSize = 64 << 10
	// HeaderSize is the size of a blob header: version, nonce, key
	// commitment.
	HeaderSize = 1 + headerNonceSize + commitmentSize
	// MaxLength bounds a file: 1 TiB. Chunk numbers then fit in 25 bits of
	// the 88-bit counter, and every size below fits an int64 many times
	// over; it is far above what a relay accepts.
	MaxLength = 1 << 40
	// MinPadded is the padded length of every file up to that size (see
	// the package doc, "Padding").
	MinPadded = 4 << 10

	headerNonceSize = 16
	commitmentSize  = 32
	tagSize         = chacha20poly1305.Overhead
	chunkCTSize     = ChunkSize + tagSize
	trailerSize     = 8 // the file's length, big-endian
	trailerCTSize   = trailerSize + tagSize
	minDataCTSize   = 1 + tagSize // the last data chunk holds at least a byte
)

// PaddedLength returns the padded plaintext length of a file of n bytes
// (0 <= n <= MaxLength): MinPadded for small files, else the smallest
// bucket at least n, where the buckets start at MinPadded and each is the
// one before plus a twentieth of it (integer division, so every machine
// computes the same sizes): at most 5% of padding.
func PaddedLength(n int64) int64 {
	b := int64(MinPadded)
	for b < n {
		b += b / 20
	}
	return b
}

// EncryptedSize returns the size of the blob of a file of n bytes, padding
// and every header and tag included. It returns ErrTooLarge above MaxLength
// and ErrMalformed for a negative n.
func EncryptedSize(n int64) (int64, error) {
	if err := checkLength(n); err != nil {
		return 0, err
	}
	return blobSize(PaddedLength(n)), nil
}

func checkLength(n int64) error {
	switch {
	case n < 0:
		return fmt.Errorf("%w: attach: negative length", ErrMalformed)
	case n > MaxLength:
		return fmt.Errorf("%w: attach: %d bytes, over %d", ErrTooLarge, n, int64(MaxLength))
	}
	return nil
}

// blobSize is the blob size of a padded plaintext of p bytes.
func blobSize(p int64) int64 {
	chunks := (p + ChunkSize - 1) / ChunkSize
	return HeaderSize + p + chunks*tagSize + trailerCTSize
}

// layout is where a blob's chunks are.
type layout struct {
	padded int64 // padded plaintext bytes in the data chunks
	chunks int64 // number of data chunks; the trailer is chunk number chunks
	lastCT int   // ciphertext size of the last data chunk
}

// layoutOf returns the layout of a padded plaintext of p > 0 bytes.
func layoutOf(p int64) layout {
	chunks := (p + ChunkSize - 1) / ChunkSize
	return layout{padded: p, chunks: chunks, lastCT: int(p-(chunks-1)*ChunkSize) + tagSize}
}

// layoutOfSize returns the layout of a blob of size bytes, or ErrMalformed
// (ErrTruncated when it is too short for any blob) if no padded length
// gives that size.
func layoutOfSize(size int64) (layout, error) {
	data := size - HeaderSize - trailerCTSize
	if data < minDataCTSize {
		return layout{}, fmt.Errorf("%w: attach: blob of %d bytes", ErrTruncated, size)
	}
	chunks := (data + chunkCTSize - 1) / chunkCTSize
	last := data - (chunks-1)*chunkCTSize
	if last < minDataCTSize {
		return layout{}, fmt.Errorf("%w: attach: no blob is %d bytes", ErrMalformed, size)
	}
	return layout{padded: data - chunks*tagSize, chunks: chunks, lastCT: int(last)}, nil
}

// chunkCT returns the ciphertext size of data chunk i.
func (l layout) chunkCT(i int64) int {
	if i == l.chunks-1 {
		return l.lastCT
	}
	return chunkCTSize
}

// offset returns where data chunk i starts in the blob.
func (l layout) offset(i int64) int64 { return HeaderSize + i*chunkCTSize }

// size returns the blob size.
func (l layout) size() int64 { return blobSize(l.padded) }

// randomNonce fills a header nonce; tests replace it to make vectors.
var randomNonce = func(b []byte) { rand.Read(b) }

// stream holds the chunk cipher of one blob. It is safe for concurrent use.
type stream struct{ aead cipher.AEAD }

// newHeader returns a fresh header for key, and the blob's stream.
func newHeader(key *Key) ([]byte, *stream) {
	var n [headerNonceSize]byte
	randomNonce(n[:])
	return headerOf(key, n[:])
}

// headerOf returns the header for key and a header nonce, and the blob's
// stream: a resumed upload makes the same header again.
func headerOf(key *Key, nonce []byte) ([]byte, *stream) {
	h := make([]byte, HeaderSize)
	h[0] = Version
	copy(h[1:1+headerNonceSize], nonce)
	commit, s := derive(key, h[:1+headerNonceSize])
	copy(h[1+headerNonceSize:], commit)
	return h, s
}

// openHeader checks a blob header against key and returns the blob's
// stream: ErrUnsupportedVersion for another version, ErrDecrypt when the
// key commitment is not key's.
func openHeader(key *Key, h []byte) (*stream, error) {
	if len(h) != HeaderSize {
		return nil, fmt.Errorf("%w: attach: header of %d bytes", ErrTruncated, len(h))
	}
	if h[0] != Version {
		return nil, fmt.Errorf("%w: attach: blob version %d", ErrUnsupportedVersion, h[0])
	}
	commit, s := derive(key, h[:1+headerNonceSize])
	if !ct.Equal(commit, h[1+headerNonceSize:]) {
		return nil, fmt.Errorf("%w: attach: blob header is not for this key", ErrDecrypt)
	}
	return s, nil
}

// derive returns the key commitment and the stream of a file key and the
// header's version and nonce (the HKDF salt).
func derive(key *Key, salt []byte) ([]byte, *stream) {
	payload := kdf.Key(key.b[:], salt, kdf.LabelAttachPayload, nil, chacha20poly1305.KeySize)
	defer clear(payload)
	aead, err := chacha20poly1305.New(payload)
	if err != nil {
		panic("sealpost/envelope/attach: " + err.Error()) // a 32-byte key never fails
	}
	return kdf.Key(key.b[:], salt, kdf.LabelAttachCommitment, nil, commitmentSize), &stream{aead: aead}
}

// nonce returns the nonce of chunk i: an 88-bit big-endian counter and a
// last byte 1 for the final chunk (the trailer), 0 otherwise.
func nonce(i int64, final bool) []byte {
	n := make([]byte, chacha20poly1305.NonceSize)
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	if final {
		n[11] = 1
	}
	return n
}

// seal appends chunk i's ciphertext of pt to dst.
func (s *stream) seal(dst, pt []byte, i int64, final bool) []byte {
	return s.aead.Seal(dst, nonce(i, final), pt, nil)
}

// open appends chunk i's plaintext to dst, or returns ErrDecrypt.
func (s *stream) open(dst, ctext []byte, i int64, final bool) ([]byte, error) {
	pt, err := s.aead.Open(dst, nonce(i, final), ctext, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: attach: chunk %d", ErrDecrypt, i)
	}
	return pt, nil
}

// sealTrailer appends the trailer (the final chunk, number chunks) of a
// file of n bytes to dst.
func (s *stream) sealTrailer(dst []byte, chunks, n int64) []byte {
	var t [trailerSize]byte
	binary.BigEndian.PutUint64(t[:], uint64(n))
	return s.seal(dst, t[:], chunks, true)
}

// openTrailer opens the trailer, the final chunk numbered chunks, and
// returns the file's length.
func (s *stream) openTrailer(ctext []byte, chunks int64) (int64, error) {
	var t [trailerSize]byte
	if len(ctext) != trailerCTSize {
		return 0, fmt.Errorf("%w: attach: trailer of %d bytes", ErrTruncated, len(ctext))
	}
	if _, err := s.open(t[:0], ctext, chunks, true); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint64(t[:])
	if n > MaxLength {
		return MaxLength + 1, nil // authentic but out of bounds: checkPadded refuses it
	}
	return int64(n), nil
}

// checkPadded checks that a file of n bytes pads to padded bytes.
func checkPadded(n, padded int64) error {
	if n < 0 || n > MaxLength || PaddedLength(n) != padded {
		return fmt.Errorf("%w: attach: length %d does not pad to %d bytes", ErrMalformed, n, padded)
	}
	return nil
}

// cutError tells a blob cut right after a data chunk (ErrTruncated: its
// last bytes, tail, authenticate as data chunk i) from a damaged one
// (ErrDecrypt).
func (s *stream) cutError(tail []byte, i int64) error {
	if len(tail) >= minDataCTSize && len(tail) <= chunkCTSize {
		if _, err := s.open(nil, tail, i, false); err == nil {
			return fmt.Errorf("%w: attach: no final chunk after chunk %d", ErrTruncated, i)
		}
	}
	if len(tail) < trailerCTSize {
		return fmt.Errorf("%w: attach: stream ends %d bytes into its final chunk", ErrTruncated, len(tail))
	}
	return fmt.Errorf("%w: attach: final chunk", ErrDecrypt)
}

// zeroChunk is a chunk of zeros, for padding and for checking it.
var zeroChunk [ChunkSize]byte

// contentEnd returns len(pt) less its trailing zero bytes.
func contentEnd(pt []byte) int {
	if string(pt) == string(zeroChunk[:len(pt)]) {
		return 0
	}
	i := len(pt)
	for pt[i-1] == 0 {
		i--
	}
	return i
}

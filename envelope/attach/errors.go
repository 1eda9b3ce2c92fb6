package attach

import (
	"errors"

	"github.com/sealpost/sealpost/internal/errs"
)

// Errors, the same values as the root package's, so errors.Is matches them
// under either name.
var (
	// ErrMalformed reports input that does not decode: a pointer or header
	// of the wrong length or with a bad field, a blob whose size fits no
	// layout, a length that disagrees with its padding, or non-zero padding.
	ErrMalformed = errs.ErrMalformed
	// ErrUnsupportedVersion reports a pointer or blob header of a version
	// this build does not read.
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion
	// ErrTooLarge reports a file over MaxLength.
	ErrTooLarge = errs.ErrTooLarge
	// ErrDecrypt reports a chunk, trailer or header that failed
	// authentication: a wrong key, a flipped bit, a chunk moved, swapped in
	// from another blob or appended.
	ErrDecrypt = errs.ErrDecrypt
	// ErrTruncated reports a stream that ended before its final chunk.
	ErrTruncated = errs.ErrTruncated
	// ErrWrongBlob reports a store that served another blob than the
	// pointer names (header for another key, other length or digest).
	ErrWrongBlob = errs.ErrWrongBlob
)

// Errors of this package only.
var (
	// ErrPermanent marks a store's error that no retry can mend (a blob
	// the store does not know, a size it refuses): Upload, ResumeUpload,
	// Download and ResumeDownload return an error of BlobStore that wraps
	// it (fmt.Errorf("%w: ...", attach.ErrPermanent)) at once, without
	// retrying. A store's client that does not import this package marks
	// such an error with a method Permanent() bool that returns true,
	// anywhere in its chain (errors.As); see BlobStore.
	ErrPermanent = errors.New("attach: permanent store error")
	// ErrReadAfterPut is what the reader Upload hands to BlobStore.Put
	// returns to a Read made after Put returned, or while another Read of
	// it is in progress: both break the BlobStore contract, and the read
	// is refused without touching the upload.
	ErrReadAfterPut = errors.New("attach: the upload's reader was read after Put returned, or by two goroutines at once")
)

// permanent reports whether a store's error is marked permanent
// (ErrPermanent, or a Permanent method that says so).
func permanent(err error) bool {
	if errors.Is(err, ErrPermanent) {
		return true
	}
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

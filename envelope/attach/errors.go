package attach

import "github.com/sealpost/sealpost/internal/errs"

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

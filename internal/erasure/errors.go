package erasure

import (
	"errors"
	"fmt"

	"github.com/sealpost/sealpost/internal/errs"
)

// ErrMalformed and ErrTooLarge are the module's sentinels (internal/errs).
var (
	ErrMalformed = errs.ErrMalformed
	ErrTooLarge  = errs.ErrTooLarge
)

// ErrIncomplete reports a call to Decoder.Message before Add reported done.
// It is a caller's mistake, not a property of the input: the ratchet asks
// for the message only after done, so this never reaches the public API.
var ErrIncomplete = errors.New("sealpost: incomplete erasure-coded message")

// errorf wraps a sentinel with context, prefixed by the package name.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("erasure: "+format+": %w", append(args, sentinel)...)
}

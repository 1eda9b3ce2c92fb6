package ratchet

import (
	"fmt"

	"github.com/sealpost/sealpost/internal/errs"
)

// The sentinel errors of this package. They are the same values as the
// root package's and every other sealpost package's, so errors.Is matches
// across packages. Errors returned here wrap them with context; the context
// never contains key material.
var (
	// ErrDecrypt reports a header or body that failed authentication, or
	// a message that opens under no key this session holds. Every
	// authentication failure maps here, header or body alike.
	ErrDecrypt = errs.ErrDecrypt

	// ErrMalformed reports a message or saved state that does not decode:
	// wrong length, truncated, a field out of range.
	ErrMalformed = errs.ErrMalformed

	// ErrUnsupportedVersion reports a message or saved state whose version
	// byte or field this build does not speak.
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion

	// ErrDuplicate reports a message this session already decrypted. Apps
	// may drop it silently.
	ErrDuplicate = errs.ErrDuplicate

	// ErrTooManySkipped reports a message so far ahead of its chain that
	// accepting it would skip more than MaxSkip keys, or more keys than the
	// session may hold at once. The session is unchanged.
	ErrTooManySkipped = errs.ErrTooManySkipped

	// ErrExpiredKey reports a message whose skipped key was evicted to stay
	// within MaxSkippedKeys. It was never read and never can be; it is not
	// a duplicate.
	ErrExpiredKey = errs.ErrExpiredKey

	// ErrLowOrderPoint reports a peer ratchet key whose X25519 exchange is
	// all zeros (a low-order point).
	ErrLowOrderPoint = errs.ErrLowOrderPoint

	// ErrNoSession reports a session that cannot send or receive: the zero
	// Session, or a responder that has not received its first message.
	ErrNoSession = errs.ErrNoSession

	// ErrTooLarge reports a sending chain that has used every message
	// number (2^32-1 messages without a reply).
	ErrTooLarge = errs.ErrTooLarge
)

// errorf wraps a sentinel with a "ratchet: " context message.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("ratchet: "+format+": %w", append(args, sentinel)...)
}

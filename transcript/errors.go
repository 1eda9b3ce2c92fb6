package transcript

import "github.com/sealpost/sealpost/internal/errs"

// The errors this package returns. They are the same values the root
// package re-exports, so errors.Is works across packages. A call that
// returns an error has changed nothing.
var (
	// ErrMalformed reports transcript fields that cannot be true of any
	// conforming peer (seq 0, an acknowledgement hash without a count, an
	// AckAbove that leaves no gap), Sent fields other than those Next
	// returned, an empty receipt, or saved state that does not decode.
	ErrMalformed = errs.ErrMalformed
	// ErrUnsupportedVersion reports saved state of another format version.
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion
	// ErrDuplicate reports a peer content whose seq was already received.
	ErrDuplicate = errs.ErrDuplicate
	// ErrTooManySkipped reports a peer content that would open a gap of
	// more than MaxMissing seqs.
	ErrTooManySkipped = errs.ErrTooManySkipped
	// ErrExpiredKey reports a peer content whose seq lies in a gap the
	// transcript gave up waiting for (see Lost).
	ErrExpiredKey = errs.ErrExpiredKey
	// ErrNotFound reports a receipt naming a peer message that is not in
	// the received log: never received, or older than the newest MaxLog.
	ErrNotFound = errs.ErrNotFound
)

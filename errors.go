package sealpost

import (
	"errors"
	"strconv"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/keys"
)

// Address names one device of one user (keys.Address).
type Address = keys.Address

// The sentinel errors of every sealpost package, re-exported: an error made
// anywhere in the module matches these with errors.Is.
var (
	ErrMalformed          = errs.ErrMalformed          // input does not decode
	ErrTooLarge           = errs.ErrTooLarge           // input over a size limit
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion // another format version
	ErrBadSignature       = errs.ErrBadSignature       // a signature does not verify
	ErrUnknownPrekey      = errs.ErrUnknownPrekey      // a prekey we do not hold
	ErrDecrypt            = errs.ErrDecrypt            // authentication failed
	ErrLowOrderPoint      = errs.ErrLowOrderPoint      // non-contributory key exchange
	ErrDuplicate          = errs.ErrDuplicate          // already received and handled
	ErrTooManySkipped     = errs.ErrTooManySkipped     // too far ahead of its chain
	ErrExpiredKey         = errs.ErrExpiredKey         // its skipped key was evicted
	ErrNoSession          = errs.ErrNoSession          // no usable session with the peer
	ErrNotFound           = errs.ErrNotFound           // a Store key is absent
	ErrIdentityChanged    = errs.ErrIdentityChanged    // the peer's identity changed
	ErrExpired            = errs.ErrExpired            // a bundle past its expiry
	ErrBlocked            = errs.ErrBlocked            // the sender is blocked
	ErrOutboxFull         = errs.ErrOutboxFull         // too many envelopes not reported Sent
	ErrTruncated          = errs.ErrTruncated          // an attachment stream ended early
	ErrWrongBlob          = errs.ErrWrongBlob          // a blob store served another blob
	ErrWrongAccount       = errs.ErrWrongAccount       // a device list of another account key
	ErrRollback           = errs.ErrRollback           // a device list older than the pinned one
	ErrBrokenChain        = errs.ErrBrokenChain        // a device list that does not chain
	ErrFork               = errs.ErrFork               // two device lists of one version
	ErrUnlistedDevice     = errs.ErrUnlistedDevice     // a device the account's list does not name
	ErrNoAccount          = errs.ErrNoAccount          // no account (device list) to act on
)

// Failure is what an app should do with an envelope Receive refused:
// ClassifyReceive sorts Receive's errors into these, so that an app need
// not list the sentinels itself.
type Failure uint8

const (
	// Retry: keep the envelope and receive it again later. The store or
	// the context failed (an error that is not one of sealpost's), so
	// nothing was decided about the envelope.
	Retry Failure = iota + 1
	// Hold: keep the envelope until the user decides. In strict identity
	// mode it comes from an identity other than the one pinned for its
	// sender (ErrIdentityChanged); after Trust it is received again. Or
	// it comes from a device the pinned device list of its account does
	// not name (ErrUnlistedDevice); after UpdateDeviceList with a list
	// that names it, it is received again.
	Hold
	// Duplicate: it was received and handled before (ErrDuplicate). Take
	// it off the relay.
	Duplicate
	// Unreadable: it may have been a genuine envelope for this device, but
	// it can never be read: no session of ours expects it (a session this
	// device no longer holds, or not for us at all), its key was evicted
	// or it is too far ahead (ErrExpiredKey, ErrTooManySkipped), or its
	// session start names a prekey already rotated out
	// (ErrUnknownPrekey). Take it off the relay; if it was a message, the
	// transcript of its session reports the gap.
	Unreadable
	// Rejected: it is not a valid envelope for this device: malformed,
	// forged or corrupted (it names a session of ours but does not
	// authenticate), of an unsupported version, over a size limit, badly
	// signed, or from a blocked sender. Take it off the relay; there is
	// nothing to report to the user.
	Rejected
)

// String returns the failure's name.
func (f Failure) String() string {
	switch f {
	case Retry:
		return "retry"
	case Hold:
		return "hold"
	case Duplicate:
		return "duplicate"
	case Unreadable:
		return "unreadable"
	case Rejected:
		return "rejected"
	}
	return "Failure(" + strconv.Itoa(int(f)) + ")"
}

// ClassifyReceive says what to do with an envelope that Receive refused
// with err (nil err: 0, nothing to do).
func ClassifyReceive(err error) Failure {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrIdentityChanged), errors.Is(err, ErrUnlistedDevice):
		return Hold
	case errors.Is(err, ErrDuplicate):
		return Duplicate
	case errors.Is(err, ErrNoSession), errors.Is(err, ErrExpiredKey), errors.Is(err, ErrTooManySkipped),
		errors.Is(err, ErrUnknownPrekey):
		return Unreadable
	case errors.Is(err, ErrDecrypt), errors.Is(err, ErrMalformed), errors.Is(err, ErrUnsupportedVersion),
		errors.Is(err, ErrTooLarge), errors.Is(err, ErrBadSignature), errors.Is(err, ErrLowOrderPoint),
		errors.Is(err, ErrBlocked), errors.Is(err, ErrExpired):
		return Rejected
	}
	return Retry
}

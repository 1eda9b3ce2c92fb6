package sealpost

import (
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
)

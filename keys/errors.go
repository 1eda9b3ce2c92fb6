package keys

import "github.com/sealpost/sealpost/internal/errs"

// The errors this package returns. They are the same values the root
// package re-exports, so errors.Is works across packages.
var (
	// ErrMalformed reports a key, bundle or message that does not decode:
	// wrong length, wrong key type, unknown fields or trailing data.
	ErrMalformed = errs.ErrMalformed
	// ErrUnsupportedVersion reports a bundle or session start of another
	// format version.
	ErrUnsupportedVersion = errs.ErrUnsupportedVersion
	// ErrBadSignature reports a signature by the identity key that does not
	// verify.
	ErrBadSignature = errs.ErrBadSignature
	// ErrUnknownPrekey reports a session start that names a prekey other
	// than the one the responder supplied.
	ErrUnknownPrekey = errs.ErrUnknownPrekey
	// ErrDecrypt reports a session start whose key confirmation fails: the
	// two sides did not derive the same secret.
	ErrDecrypt = errs.ErrDecrypt
	// ErrLowOrderPoint reports an X25519 exchange with an all-zero result.
	ErrLowOrderPoint = errs.ErrLowOrderPoint
	// ErrExpired reports a bundle whose signed prekey or mailbox key is past
	// its expiry.
	ErrExpired = errs.ErrExpired
	// ErrTooLarge reports a device list with more than MaxDevices devices
	// or an encoding over its bound.
	ErrTooLarge = errs.ErrTooLarge
	// ErrWrongAccount, ErrRollback, ErrBrokenChain and ErrFork report a
	// device list that does not follow the pinned one (DeviceList.Follows).
	ErrWrongAccount = errs.ErrWrongAccount
	ErrRollback     = errs.ErrRollback
	ErrBrokenChain  = errs.ErrBrokenChain
	ErrFork         = errs.ErrFork
)

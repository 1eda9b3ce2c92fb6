// Package errs holds the one copy of every sentinel error in sealpost.
//
// Public packages re-export these values (keys.ErrMalformed is
// errs.ErrMalformed), so errors.Is matches an error made in any package
// against the name a caller imported from any other. Messages never contain
// secret material.
package errs

import "errors"

var (
	// ErrMalformed reports input that does not decode: wrong length, bad
	// encoding, a key of the wrong type, trailing bytes.
	ErrMalformed = errors.New("sealpost: malformed input")

	// ErrTooLarge reports input over a documented size limit.
	ErrTooLarge = errors.New("sealpost: input too large")

	// ErrUnsupportedVersion reports a format version this build does not speak.
	ErrUnsupportedVersion = errors.New("sealpost: unsupported version")

	// ErrBadSignature reports a signature that does not verify.
	ErrBadSignature = errors.New("sealpost: bad signature")

	// ErrUnknownPrekey reports a session start naming a prekey the responder
	// does not hold (never published, or already consumed).
	ErrUnknownPrekey = errors.New("sealpost: unknown prekey")

	// ErrDecrypt reports a message that failed authentication. Every AEAD,
	// MAC or key-confirmation failure maps here, so failures look alike.
	ErrDecrypt = errors.New("sealpost: message failed authentication")

	// ErrLowOrderPoint reports an X25519 exchange that produced the all-zero
	// output, i.e. a low-order or otherwise non-contributory peer key.
	ErrLowOrderPoint = errors.New("sealpost: non-contributory key exchange")

	// ErrDuplicate reports a message that was already received and handled.
	ErrDuplicate = errors.New("sealpost: duplicate message")

	// ErrTooManySkipped reports a message so far ahead of its chain that
	// accepting it would store more skipped keys than allowed.
	ErrTooManySkipped = errors.New("sealpost: too many skipped messages")

	// ErrExpiredKey reports a message whose skipped key was evicted to keep
	// within the bounds; it was never read and can no longer be.
	ErrExpiredKey = errors.New("sealpost: message key expired")

	// ErrNoSession reports that there is no usable session with a peer.
	ErrNoSession = errors.New("sealpost: no session")

	// ErrNotFound reports a key absent from a Store.
	ErrNotFound = errors.New("sealpost: not found")

	// ErrIdentityChanged reports a peer identity that differs from the trusted one.
	ErrIdentityChanged = errors.New("sealpost: peer identity changed")

	// ErrTruncated reports an encrypted stream that ended before its final
	// chunk: what was read so far authenticated, but the rest is missing.
	ErrTruncated = errors.New("sealpost: encrypted stream truncated")

	// ErrWrongBlob reports a blob store that served bytes other than the
	// blob a pointer names: another blob's header, a length or a digest
	// that differs from the pointer's.
	ErrWrongBlob = errors.New("sealpost: store served another blob")

	// ErrExpired reports signed public material past the expiry it was
	// signed with: a bundle whose signed prekey or mailbox key has expired.
	// It is not ErrExpiredKey (a message whose skipped key was evicted):
	// the cure is a fresh bundle, not giving up on a message.
	ErrExpired = errors.New("sealpost: expired")

	// ErrBlocked reports an envelope from a sender the app blocked (an
	// address or an identity); it was not decrypted and changed nothing.
	ErrBlocked = errors.New("sealpost: sender blocked")

	// ErrOutboxFull reports that a Device holds outbox.Max envelopes the
	// app has not reported sent (Device.Sent); it makes no more until it
	// does, so that nothing waiting is ever dropped. Nothing changed.
	ErrOutboxFull = errors.New("sealpost: outbox full")

	// ErrWrongAccount reports a device list signed by an account key other
	// than the one pinned for the account: the account's identity changed
	// (or someone substituted a key), which the app must treat as an
	// identity change.
	ErrWrongAccount = errors.New("sealpost: device list of another account key")

	// ErrRollback reports a device list older than the one pinned: a relay
	// serving a stale list to bring back a removed device.
	ErrRollback = errors.New("sealpost: device list older than the pinned one")

	// ErrBrokenChain reports a device list that claims to follow the pinned
	// one but does not name its hash.
	ErrBrokenChain = errors.New("sealpost: device list does not chain to the pinned one")

	// ErrFork reports two validly signed device lists with the same version
	// and different contents: evidence of a lying relay or a stolen account
	// key (keys.ForkError carries both).
	ErrFork = errors.New("sealpost: device lists fork")

	// ErrUnlistedDevice reports a device that the pinned device list of
	// its account does not name (or names with another identity): nothing
	// is encrypted to it and nothing from it is accepted, so the relay
	// cannot add a "ghost device".
	ErrUnlistedDevice = errors.New("sealpost: device not in the account's device list")

	// ErrNoAccount reports an operation that needs an account (a device
	// list) that this device, or the peer, does not have.
	ErrNoAccount = errors.New("sealpost: no account")
)

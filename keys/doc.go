// Package keys holds a device's long- and medium-term keys and starts
// sessions: identities (Ed25519 with an X25519 agreement key it signs),
// signed X25519 prekeys, ML-KEM-1024 prekeys, one-time X25519 prekeys, the
// X-Wing mailbox key first contacts are sealed to, bundles, safety numbers,
// and the hybrid PQXDH-class key agreement (docs/SPEC.md section 7).
//
// # Bundles and expiry
//
// A [Bundle] is what a device publishes. Every key in it but the one-time
// X25519 prekeys is signed by the identity; the signed prekey's and the
// mailbox key's signatures also cover their expiry (bundle version 2), so
// a relay cannot keep serving a stale bundle, nor one taken from a device
// that stopped rotating, for ever: [ParseBundle], [Bundle.Verify] and
// [Initiate] refuse a bundle at or after the earlier of the two expiries
// with ErrExpired (a sentinel of its own: the cure is a fresh bundle;
// ErrExpiredKey is a message whose skipped key was evicted). They judge by
// time.Now, or by the clock of [WithClock]; the root Device passes its own
// (sealpost.WithClock). Signatures are checked before the expiry, so an
// expired bundle with a bad signature is ErrBadSignature. The PQ prekeys
// carry no expiry of their own: the last-resort one rotates with the
// signed prekey, and a bundle is accepted or refused whole. The responder
// does not check the expiry of its own prekeys: it accepts a start naming
// any prekey it still keeps (the Device keeps them a week past their
// expiry), since a start made in time may arrive late. Version 1 bundles
// (no expiries) are ErrUnsupportedVersion; keys/testdata/bundle keeps one.
//
// # Accounts and device lists
//
// An [AccountKey] signs a [DeviceList]: the devices of one account, each
// with its identity and a name, versioned and chained by hash, with an
// expiry (docs/SPEC.md section 22). A peer encrypts only to devices a
// verified list names, so a relay cannot add a device the user did not
// sign in; [DeviceList.Follows] refuses a list of another account key, an
// older one, one that breaks the chain, and reports two lists of one
// version as a [ForkError]. What this does not protect against: a stolen
// account key signs lists as well as its owner (the fork error and the
// peers' "device added" events are what expose it), and a relay can always
// withhold a newer list, which the expiry bounds.
//
// # Secrets in memory
//
// Private keys live in unexported fields and print only public parts.
// Intermediate secrets (DH outputs, the KEM shared secret, HKDF output,
// the randomness of key generation and of a session start) are cleared
// once used, and [SessionKeys.Erase] clears the session secret once the
// ratchet is seeded. Go gives no guarantee that this erases every copy:
// the garbage collector may have moved a value and left the old copy, the
// standard library's crypto/ecdh and crypto/hpke and circl's ML-KEM keep
// key material this package cannot reach, and a Bytes copy handed to the
// caller is the caller's to clear. Clearing narrows the window in which a
// memory disclosure finds a secret; it is not erasure. runtime/secret, when
// it is available, is the way to do better.
//
// The protocol these keys take part in is specified in docs/SPEC.md at the
// repository root.
package keys

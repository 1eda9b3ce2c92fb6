// Package keys holds a sealpost device's long-term and medium-term keys,
// the bundles it publishes, the hybrid post-quantum key agreement that
// starts a session, and safety numbers.
//
// Most apps never call it directly: the root package's Device creates,
// rotates, publishes and consumes these keys. An app uses keys to parse a
// bundle blob fetched from its relay ([ParseBundle]) before
// Device.StartSession, to show or compare a safety number, and to pin an
// identity ([PublicIdentity]).
//
// # What is in it
//
//   - An identity ([IdentityPrivateKey], [PublicIdentity]): an Ed25519
//     signing key and an X25519 agreement key derived from one 32-byte
//     seed; the public identity carries both and the Ed25519 signature over
//     the X25519 key.
//   - Prekeys: a signed X25519 prekey ([SignedPrekey]), signed ML-KEM-1024
//     prekeys ([PQPrekey], a last-resort one and optional one-time ones),
//     unsigned one-time X25519 prekeys ([OneTimePrekey]), and the signed
//     X-Wing mailbox key ([MailboxKey]) that first contacts are sealed to.
//   - A [Bundle] of the public halves, its encoding (MarshalBinary,
//     [ParseBundle]) and [Bundle.Split] into one blob per one-time prekey
//     plus a last-resort blob, which a relay hands out without parsing.
//   - The session start: [Initiate] (four X25519 exchanges, or three, and an
//     ML-KEM-1024 encapsulation, all bound with every public key and the
//     ciphertext into one HKDF), the [SessionStart] message, and [Respond],
//     which checks a key-confirmation MAC before it returns anything. The
//     resulting [SessionKeys] seed the ratchet.
//   - Safety numbers: [SafetyNumber] (60 digits) and the scannable form
//     ([Scannable], [CompareScannable]).
//
// # What it protects
//
//   - Every public key on the wire carries a type byte, and every signature
//     covers a label, the key's id and its typed bytes, so a key of one kind
//     or role can never pass for another, nor a last-resort PQ prekey for a
//     one-time one. [ParseBundle] verifies every signature before returning
//     anything (ErrBadSignature) and refuses keys of the wrong type or size,
//     non-canonical X25519 encodings and ML-KEM keys that fail FIPS 203's
//     check (ErrMalformed).
//   - The session secret depends on every exchange and on the ML-KEM-1024
//     shared secret, so it stays secret if either X25519 or ML-KEM holds:
//     recorded traffic is protected against a future quantum computer. It
//     is bound to both identities, both addresses, every prekey and id, the
//     base key and the KEM ciphertext, which rules out re-encapsulation to
//     another key and unknown-key-share attacks.
//   - X25519 exchanges go through crypto/ecdh, which refuses the all-zero
//     output of a low-order key (ErrLowOrderPoint).
//   - Private keys print only their id or fingerprint under every fmt verb;
//     Bytes returns a copy of the seed, which the caller must keep secret.
//
// # What it does not protect
//
//   - Nothing here stops a relay from handing out a bundle with another
//     identity in it: a bundle proves only that its keys belong to the
//     identity inside it. Users detect a substituted identity by comparing
//     safety numbers; the Device reports a changed identity.
//   - [Respond] changes nothing: the caller (the Device) must look up the
//     prekeys a start names, refuse a replayed start, and delete one-time
//     prekeys only after the first message decrypted and its state is
//     stored. A second use of a last-resort start is caught by the Device's
//     record of accepted base keys, not here.
//   - Go cannot guarantee that secrets are erased from memory; keys are
//     cleared where the package can, nothing more.
//
// # Specification
//
// Encodings, signed messages, the key agreement step by step, bundles and
// safety numbers are specified in sections 5, 6, 7 and 16 of
// docs/SPEC.md in the repository
// (https://github.com/sealpost/sealpost/blob/main/docs/SPEC.md), with the
// golden vectors in testdata/ that pin them.
package keys

// Package ratchet implements the Double Ratchet with header encryption, the
// variant of section 4 of Signal's "The Double Ratchet Algorithm" (Trevor
// Perrin and Moxie Marlinspike, revision 1, 2016-11-20), with the routing
// tags of sealpost's DESIGN section 3.3, bounded skipped keys, replay
// detection, failure without side effects and a versioned saved state.
//
// A Session is one party's side of one conversation. NewInitiator and
// NewResponder start it from the secret, associated data and first ratchet
// key that the hybrid session start (package keys) produced; Encrypt and
// Decrypt move it forward; MarshalBinary and UnmarshalBinary save and load
// it. The package imports no other sealpost package but internal ones: it
// takes plain values.
//
// # Security properties
//
//   - Forward secrecy and post-compromise security of the Double Ratchet:
//     a message key is derived for one message, used once and cleared; a DH
//     ratchet step with a fresh X25519 key pair happens whenever the peer's
//     chain changes.
//   - Header encryption (section 4): the sender's ratchet public key and the
//     message numbers N and PN travel only inside the encrypted header. A
//     test searches the wire bytes for them.
//   - Decrypt either succeeds, and only then releases plaintext and moves
//     the session forward, or fails and leaves the session byte-for-byte as
//     it was (MarshalBinary output identical; every negative test checks).
//     The whole receive path computes in locals and commits after the body
//     authenticated (STYLE 10 and 11).
//   - Every authentication failure, header or body, is ErrDecrypt; short or
//     empty input is ErrMalformed; another version byte is
//     ErrUnsupportedVersion; nothing is parsed before it authenticates
//     except the version byte.
//   - A replay is ErrDuplicate, a message whose skipped key was evicted is
//     ErrExpiredKey (never ErrDuplicate: it was never read), a message too
//     far ahead is ErrTooManySkipped.
//
// # What the relay learns
//
// For each message, its 16-byte routing tag (pseudorandom, different for
// every message, unlinkable without the header key) and its length, which
// is the plaintext's plus Overhead (85 bytes); the caller pads the plaintext
// (Padmé in envelope/seal) so that the length says little. It learns no
// ratchet key, no message number and no chain boundary: every message of a
// given padded size looks alike, DH step or not.
//
// # Protocol decisions
//
// Each departs from or fills in the specification for a stated reason.
//
//  1. Initialization (RatchetInitAliceHE / RatchetInitBobHE, section 4.4):
//     HKDF-SHA-256 of the session secret with the label
//     "sealpost v1 ratchet init" gives the first root key, the shared header
//     key HKa and the next header key NHKb (96 bytes). The specification
//     takes SK as the root key and expects the key agreement to supply the
//     two header keys; package keys hands over one 32-byte secret, and one
//     HKDF call under the ratchet's own label derives three independent,
//     domain-separated keys from it.
//  2. KDF_RK_HE: HKDF-SHA-256 with the root key as salt, the X25519 output
//     as input and "sealpost v1 ratchet root" as info, giving root key,
//     chain key and next header key (section 5.2's recommendation).
//  3. KDF_CK: message key = HMAC-SHA-256(CK, "sealpost v1 ratchet message
//     key"), next CK = HMAC-SHA-256(CK, "sealpost v1 ratchet chain key")
//     (section 5.2 uses the constants 0x01 and 0x02; labels cost the same,
//     one block each, and keep all domain separation in internal/kdf).
//  4. Message AEAD: ChaCha20-Poly1305 with the 32-byte message key as its
//     key and a synthetic nonce: the first 12 bytes of HMAC-SHA-256(message
//     key, "sealpost v1 ratchet body nonce" || plaintext), sent in clear
//     (12 bytes). Each message key seals one message, so a zero nonce would
//     do in normal operation, but a session restored from an old backup
//     re-derives keys it already spent (ADVERSARIAL 35): with the synthetic
//     nonce a different plaintext under such a key gets a different nonce,
//     so no keystream or Poly1305 key is ever reused; the same plaintext
//     gives the same message, which leaks only equality. It costs one HMAC
//     over the plaintext on send (no allocation: a scratch SHA-256 state)
//     and nothing on receive. Section 5.2's HKDF from the message key to a
//     key and IV would add 1.3 µs and 22 allocations for no such benefit.
//     See Performance for AES-256-GCM.
//  5. Header keys are never cipher keys themselves: a chain's header key HK
//     gives, by HMAC-SHA-256 with two labels, the ChaCha20-Poly1305 key of
//     its headers and the HMAC key of its routing tags, so each key has one
//     use. Both are derived once per chain.
//  6. Header AEAD: ChaCha20-Poly1305 under the chain's header AEAD key, nonce
//     the first 12 bytes of the routing tag, AD the session AD || version
//     byte || tag. The body's AD is the session AD || version || tag ||
//     encrypted header, so the tag, the header and the body are bound
//     together. The tag is a PRF of N under a per-chain key, so two
//     messages of one chain share a nonce only if 96 bits of the PRF
//     collide: probability about q²/2^97 for q messages, at most 2^-33 at
//     the 2^32 maximum of a chain (NIST's bound for random 96-bit nonces)
//     and below 2^-57 for a million. A random nonce would give the same
//     bound and cost 12 bytes per message.
//  7. Routing tag: the first 16 bytes of HMAC-SHA-256(tag key, N as 4
//     big-endian bytes). After the header opens, the tag must equal the
//     chain's tag of the header's N, so a tag cannot be moved to another
//     message of the chain.
//  8. Finding the key: Decrypt first looks the tag up (the receiving
//     chain's window of TagWindow tags from Nr, the next chain's window from
//     0, the skipped keys, the records) and opens the header under exactly
//     the header key the tag names: one AEAD open. An unknown tag (a message
//     further ahead than the window) falls back to trial decryption under
//     HKr, then NHKr: never more than two, counted by a test hook. The
//     specification's TrySkippedMessageKeysHE tries every skipped key's
//     header key, up to MaxSkippedKeys trials per message; here the tag of
//     every skipped key is known, so a message for a skipped key is always
//     found by its tag, and trying those header keys could never succeed.
//  9. Replays: the last ReplayRecord consumed messages are remembered by tag
//     and body authenticator (the last 16 bytes: the Poly1305 tag under a
//     one-time key). Their tag with the same authenticator is ErrDuplicate
//     without any decryption; their tag with another authenticator is a
//     forgery (ErrDecrypt): the one genuine message with that tag was
//     already consumed. Bytes other than the tag and authenticator are not
//     compared; either way nothing is decrypted. Beyond the record, a
//     replay whose header opens under HKr with N < Nr (not a skipped key)
//     is ErrDuplicate; one from a chain the session no longer holds opens
//     under no key and is ErrDecrypt. In no case is a message decrypted
//     twice: its key is gone.
//  10. Eviction: past MaxSkippedKeys the oldest skipped key is evicted
//     (cleared) and its tag recorded, up to ExpiredRecord tags, so that its
//     message is ErrExpiredKey. Past that record such a message is
//     ErrDecrypt, or ErrDuplicate if it belongs to the receiving chain
//     (it cannot then be told from a consumed one).
//  11. The sending half of a DH step (new key pair, second X25519, sending
//     chain) runs only after the body authenticated, so a message with a
//     genuine header and a forged body costs no key generation. The
//     receiving half needs the header to authenticate under NHKr first, so
//     a forger without keys never reaches any X25519 operation.
//  12. Bounds are checked before any key is derived, in 64-bit arithmetic:
//     N or PN = 2^32-1 is rejected at once, without a loop (a benchmark
//     shows constant time). Encrypt refuses to use N = 2^32-1 (ErrTooLarge),
//     so a genuine header never carries it.
//  13. The message is a fixed layout, not protobuf: version (1) ||
//     encrypted header (56) || body (plaintext + 16). The per-message path
//     has no parser and no reflection; the layout lives in header.go, so
//     the post-quantum ratchet can add its fixed-size KEM chunk there and
//     bump Version.
//  14. Encrypt advances the sending chain before it returns the message,
//     so a message key is never used twice even if the caller fails to send;
//     the caller saves the session after Encrypt.
//
// # Bounds
//
// MaxSkip (1000 per chain), MaxSkippedKeys (2000 per session), TagWindow (64
// per receiving chain), ReplayRecord (64) and ExpiredRecord (1000); each
// constant's comment gives its reason. WithMaxSkip, WithMaxSkippedKeys and
// WithTagWindow change the first three for a new session; the values are
// saved with it.
//
// # Performance
//
// Measured on the CI machine kind (2-vCPU AMD EPYC Zen 5, Go 1.26.8, other
// jobs running), medians of 8 runs (benchstat):
//
//   - Steady-state seal+open of a 100-byte message in one direction
//     (BenchmarkSealOpen): 2.67 µs and 4 allocations (the two output buffers
//     and the two per-message ChaCha20-Poly1305 instances). The primitives
//     it runs (BenchmarkPrimitives/sum: two chain steps of two HMACs each,
//     two tags, a 40-byte header seal and open, the synthetic body nonce's
//     HMAC of 100 bytes (0.31 µs), a 100-byte body seal and open) take
//     2.49 µs: a ratio of 1.07 (target 2). Wire overhead: 85 bytes in the
//     message, plus the 16-byte tag in the routing header. (Medians of 6
//     runs, go test -run='^$' -bench='SealOpen|Primitives' -count=6.)
//   - A DH step every message (BenchmarkPingPong): 110 µs per message,
//     mostly three X25519 operations (a key generation and two exchanges).
//   - 100 messages delivered in reverse (BenchmarkReverse100): 1.41 µs per
//     message.
//   - A header with N = 2^32-1 (BenchmarkHugeN): refused in 0.93 µs.
//   - Receive by routing tag with 1 / 1,000 / 100,000 sessions in the
//     caller's tag table (BenchmarkLookup, tag): 1.06 / 1.47 / 1.56 µs. An
//     unknown tag tried on every session (a flood, or a message far ahead):
//     0.81 µs / 0.52 ms / 50 ms per envelope, about 0.5 µs per session,
//     without allocation. A Device must therefore bound the unknown-tag
//     envelopes it tries; every message inside the windows costs O(1).
//   - Message AEAD with a fresh key per message, seal+open (BenchmarkAEAD,
//     64 / 256 / 1024 / 4096 bytes): ChaCha20-Poly1305 0.45 / 0.53 / 1.10 /
//     3.28 µs; AES-256-GCM 0.83 / 0.84 / 1.12 / 1.96 µs, and its key
//     schedule allocates 2.5 KiB in 4 allocations per key. Message bodies
//     are mostly 256 bytes to 1 KiB after Padmé padding, where
//     ChaCha20-Poly1305 is 1.6x faster or even, and it is constant-time
//     without AES hardware; only above about 1 KiB does AES-GCM win here.
//     ChaCha20-Poly1305 stays the choice, as decided.
//
// # Backwards compatibility
//
// Messages start with Version (1) and saved states carry StateVersion (1);
// anything else is ErrUnsupportedVersion. The post-quantum ratchet will
// bump both. Golden vectors in testdata (a scripted conversation with every
// injected key recorded, its messages and saved states, an accumulated
// 10,000-step walk, and version_unsupported vectors) fail the tests on any
// accidental format change; regenerate them only with go test -update.
//
// # Erasure
//
// Message keys are cleared after their single use, skipped keys when used
// or evicted, chain keys when replaced. Go cannot guarantee erasure: the
// garbage collector and stack growth may leave copies. Ratchet steps are
// self-contained functions over fixed-size arrays so that they can later run
// under runtime/secret.
package ratchet

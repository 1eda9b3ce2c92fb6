// Package ratchet implements the Double Ratchet with header encryption, the
// variant of section 4 of Signal's "The Double Ratchet Algorithm" (Trevor
// Perrin and Moxie Marlinspike, revision 1, 2016-11-20), with a
// post-quantum KEM ratchet (ML-KEM-768, FIPS 203) mixed into its root
// chain, the routing tags of docs/SPEC.md section 10.3, bounded skipped
// keys, replay detection, failure without side effects and a versioned
// saved state.
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
//     authenticated, and acts on no header field before the header has.
//   - Every authentication failure, header or body, is ErrDecrypt; short or
//     empty input is ErrMalformed; another version byte is
//     ErrUnsupportedVersion; nothing is parsed before it authenticates
//     except the version byte (and the nonce, an AEAD input).
//   - A session restored from an old backup re-derives spent keys, but no
//     (key, nonce) pair ever seals two different plaintexts, header or
//     body (decision 6; TestRestoreHeaderNonceUnique), and a KEM failure
//     never loses a message: a bad chunk, an invalid key or an answer that
//     fails its key confirmation resets that decoder, the message that
//     carried it decrypts, and the lane goes on (decision 17).
//   - A replay is ErrDuplicate, a message whose skipped key was evicted is
//     ErrExpiredKey (never ErrDuplicate: it was never read), a message too
//     far ahead is ErrTooManySkipped.
//   - Post-quantum post-compromise security: an attacker who holds all of
//     one party's classical secrets (root, chain, header and ratchet keys)
//     and can compute every X25519 discrete log stops deriving message keys
//     once one ML-KEM-768 secret generated after the compromise is mixed
//     into the root chain: about 66 messages later on average in a
//     conversation of alternating turns of 1 to 5 messages (see The KEM
//     ratchet). TestKEMSnapshotHeals shows it on a shadow session built
//     from such a snapshot, and TestKEMSnapshotConverse that without a KEM
//     round the same snapshot derives every key. An attacker who also holds
//     the party's KEM secrets is healed once an epoch whose key pair was
//     generated after the compromise is mixed (about 260 messages).
//     Recorded traffic before the compromise stays protected by the session
//     start's ML-KEM-1024 and every KEM secret mixed since.
//
// # What the relay learns
//
// For each message, its 16-byte routing tag (pseudorandom, different for
// every message, unlinkable without the header key) and its length, which
// is the plaintext's plus Overhead (127 bytes); the caller pads the
// plaintext (Padmé in envelope/seal) so that the length says little. It
// learns no ratchet key, no message number, no chain boundary and no KEM
// state: every message of a given padded size looks alike, DH step or not,
// carrying a key chunk, an answer chunk or filler.
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
//     (followed by the ML-KEM shared secret when the step mixes one) as
//     input, giving root key, chain key and next header key (section 5.2's
//     recommendation). The info is "sealpost v1 ratchet v2 dh root", or
//     "sealpost v1 ratchet v2 kem root" when a KEM secret is mixed, then the
//     lane of the chain's sender (1 byte), the epoch it declares (4 bytes)
//     and, when mixed, the epoch's transcript hash. Its security against
//     an attacker who knows the root key and every DH output but not the
//     KEM secret rests on HKDF-Extract as a dual PRF, the combiner PQXDH
//     and our session start already use.
//  3. KDF_CK: message key = HMAC-SHA-256(CK, "sealpost v1 ratchet message
//     key"), next CK = HMAC-SHA-256(CK, "sealpost v1 ratchet chain key")
//     (section 5.2 uses the constants 0x01 and 0x02; labels cost the same,
//     one block each, and keep all domain separation in internal/kdf).
//  4. Message AEAD: ChaCha20-Poly1305 with the 32-byte message key as its
//     key and a synthetic nonce: the first 12 bytes of HMAC-SHA-256(message
//     key, "sealpost v1 ratchet v3 message nonce" || header plaintext ||
//     body plaintext), sent in clear (12 bytes) and used by the header too
//     (decision 6). Each message key seals one message, so a zero nonce
//     would do in normal operation, but a session restored from an old
//     backup re-derives keys it already spent (checklist item 35 of
//     TESTING.md): with the synthetic nonce a different message under
//     such a key gets a different nonce, so no keystream or Poly1305 key is ever reused; the
//     same header and plaintext give the same message, which leaks only
//     equality. It costs one HMAC over the header and plaintext on send (no
//     allocation: a scratch SHA-256 state) and nothing on receive. Section
//     5.2's HKDF from the message key to a key and IV would add 1.3 µs and
//     22 allocations for no such benefit. See Performance for AES-256-GCM.
//  5. Header keys are never cipher keys themselves: a chain's header key HK
//     gives, by HMAC-SHA-256 with two labels, the ChaCha20-Poly1305 key of
//     its headers and the HMAC key of its routing tags, so each key has one
//     use. Both are derived once per chain.
//  6. Header AEAD: ChaCha20-Poly1305 under the chain's header AEAD key with
//     the message's synthetic nonce (decision 4), AD the session AD ||
//     version byte || tag. The body's AD is the session AD || version ||
//     tag || encrypted header, so the tag, the header and the body are
//     bound together. Version 2 took the header nonce from the routing
//     tag, a function of the chain position only; but the header holds
//     the KEM field, which changes when a message is received, so a
//     session restored from a backup that received on the same chain and
//     sent again sealed two headers under one (header key, nonce) pair
//     (issue 14): the XOR of the two KEM fields visible to the relay, and
//     the Poly1305 key of that nonce recoverable, so headers forgeable
//     under it. Now the same (header key, nonce) pair implies the same
//     header and body plaintext (up to an HMAC collision), hence the same
//     ciphertext. The header AEAD key and the message key are independent
//     keys (one from the header key, one from the chain key, decisions 3
//     and 5), so one nonce under both is safe, and it costs no byte: the
//     nonce was already sent. Within a chain, distinct messages get
//     nonces that collide with probability about q²/2^97 for q messages,
//     at most 2^-33 at the 2^32 maximum of a chain (NIST's bound for
//     random 96-bit nonces), as the tag-derived nonce did. The receiver
//     reads the nonce before it opens the header.
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
//  13. The message is a fixed layout, not protobuf: version (1) || nonce
//     (12) || encrypted header (98) || body (plaintext + 16).
//     The per-message path has no parser and no reflection; the layout,
//     with its 42-byte KEM field, lives in header.go.
//  14. Encrypt advances the sending chain before it returns the message,
//     so a message key is never used twice even if the caller fails to send;
//     the caller saves the session after Encrypt. Encrypt draws no
//     randomness (the KEM field is chosen from the saved state), so a
//     session restored from a backup seals the same bytes again.
//  15. Two saved forms of one state. MarshalBinary writes the whole state
//     as one protobuf, for backups and tools. SaveSplit writes it in parts
//     (split.go) for a caller that saves after every message, as the
//     Device does: a fixed-layout head of every key and counter (~420
//     bytes) on every save, appended to a buffer of the caller's (the
//     Device keeps it inside its session record), the AD once, the replay record and the two
//     KEM decoders in blocks of which a message rewrites one, the skipped
//     keys and evicted tags only when they change, the KEM answer once per
//     epoch. A receive writes ~0.7 KB instead of ~3.8 KB. The head names
//     the parts that hold the state (replay count, decoder epochs and
//     chunk counts, flags), blocks carry their own numbers, and LoadSplit
//     rebuilds the protobuf message and runs the one validation
//     UnmarshalBinary runs, so both forms accept exactly the same states.
//     Changed parts are found from counters (replay record), decoder
//     identity and chunk count, and a byte comparison (cold part, answer),
//     never from flags set at each mutation that a later change could
//     forget. TestSplitSaveProperty saves after every step of random
//     conversations with failing commits and checks each reload against
//     the live state.
//  16. Encapsulation randomness is derived, not drawn at the moment of
//     encapsulating: the m of FIPS 203's ML-KEM.Encaps_internal is
//     HKDF-SHA-256 of the epoch's encapsulation secret under "sealpost v1
//     ratchet v3 kem encapsulation seed", with the peer's lane, the epoch
//     and SHA-256 of the encapsulation key as context (encapsSeed), and
//     circl's EncapsulateTo runs it (the standard library offers
//     derandomized encapsulation only to tests, crypto/mlkem/mlkemtest;
//     the ciphertext is the same FIPS 203 encoding, which crypto/mlkem
//     decapsulates). The encapsulation secret is 32 bytes from
//     crypto/rand, drawn when the peer's lane starts the epoch (in the
//     receiving half of the DH step that mixes the previous one, or at
//     session start) and saved with the lane until it has answered. Why:
//     a party restored from a backup taken before it encapsulated
//     completes the peer's key again and must answer it with the same
//     ciphertext, or the peer, which may hold chunks of the first answer,
//     rebuilds a mix of two (issue 14, defect 2). The answer is now the
//     same in every restore the Double Ratchet can follow: the epoch's
//     secret is drawn in the same Decrypt as a new ratchet key pair, and
//     the answer's chunks ride only on the chains that follow it, so a
//     peer holding any of them has seen that key pair, which a restore to
//     before it would draw again. Why it is safe: m is secret (a PRF of a
//     secret that is never sent); it is unique per (lane, epoch, key),
//     since all three are in the context and each epoch has its own
//     secret; and it is never used for another key, since the key's hash
//     is in the context (reusing m for two keys would hand the shared
//     secret of the second to whoever can decrypt the first, for instance
//     the holder of a key substituted for the genuine one). Against an
//     attacker holding the whole state, the secret reveals the answer of
//     the epoch in flight, as the answer itself would once sent; the next
//     epoch's secret is drawn after the compromise. The proto field that
//     holds the lane's shared secret once answered holds the encapsulation
//     secret before (state version 3, kemstate.go).
//  17. A KEM failure resets, it never refuses (issue 14, defect 2). Every
//     chunk is authenticated, but a peer restored from a backup may send
//     a second answer, and someone holding a stolen snapshot of the peer's
//     keys can seal a chunk of its choice into a message the Double
//     Ratchet accepts. So: a chunk whose content is bad (the last data
//     chunk's padding, two chunks for one point, a key that does not
//     rebuild or fails the FIPS 203 check, an answer whose key
//     confirmation fails) empties that decoder, the message that carried
//     it decrypts as any other, and the lane refills from the chunks that
//     follow; a failed decrypt still changes nothing. Three more rules
//     make the refill happen. The owner streams its key until its answer
//     completes and is confirmed (version 2 stopped at the first answer
//     chunk, and a restored peer one chunk short never completed it), at
//     full rate until an answer chunk arrives, then only where filler
//     would go, so that the other lane's answers are not slowed. The key
//     completes with one chunk more than it needs (38 of 37): the 38th
//     must agree with the key the other 37 rebuild, so one bad chunk, even
//     one chosen to rebuild a valid but wrong key, is caught before this
//     party answers it; otherwise the owner's confirmation would fail and
//     this party would stream the wrong answer for the rest of the epoch.
//     Control values that an honest peer never sends (an unknown kind, a
//     chunk of a future epoch, a skipped or unbacked declaration) are
//     still ErrMalformed: no restore that the Double Ratchet can follow
//     produces them, but for the second case below. KEMProgress reports the epochs each lane has mixed,
//     so that a stall is visible. What stays: a whole substituted key (38
//     consistent forged chunks, from someone with the peer's keys who also
//     keeps the genuine ones away) is answered, fails the owner's
//     confirmation and stalls that lane, visibly, without mixing a wrong
//     secret or losing a message; and a party restored to a backup that
//     held fewer than 37 chunks of a key whose answer the peer has since
//     confirmed (it sent 35 answer chunks on one chain after the backup)
//     cannot follow the peer's declaring chain (ErrMalformed): it would
//     need the key again, which the owner no longer sends. Both need a
//     new session, like a restore across a DH step. (A party that held
//     all 37 chunks of the key, only not the 38th, answers them when the
//     declaration comes: its answer is derived, so it gives the secret
//     the owner confirmed. TestRestoreBeforeConfirmingChunk.)
//
// # The KEM ratchet
//
// Beside the DH ratchet runs a KEM ratchet of ML-KEM-768 (crypto/mlkem for
// key generation and decapsulation, circl for the derived encapsulation of
// decision 16; the design, sources and simulation are in PQ_RATCHET.md).
// It has two lanes, one owned by each party (the initiator's is lane 0).
// A lane runs numbered epochs, one at a time: the owner generates a key
// pair (saved as its 64-byte seed), streams the 1184-byte encapsulation
// key; the peer, once it has the key, checks it (FIPS 203's encapsulation
// key check), encapsulates, and streams the 1088-byte ciphertext with a
// 16-byte key confirmation, HMAC-SHA-256 under the shared secret of the epoch's
// transcript (lane, epoch, key, ciphertext); the owner decapsulates and
// checks the confirmation. At its next DH step the owner mixes the secret
// into the root KDF of its new sending chain and declares the epoch in
// every header of that chain; the peer mixes the same secret in the
// matching receiving half. The peer always holds the secret before the
// owner can declare it (encapsulation comes first), so no acknowledgement
// round is needed, and a root step never waits for a chunk.
//
// Keys and ciphertexts travel in 32-byte chunks of a systematic
// Reed-Solomon code over GF(2^8) (internal/erasure), one chunk in the
// 42-byte KEM field of every header: mixed epoch (4), kind (1: filler, key
// chunk or answer chunk), epoch (4), erasure point (1), chunk (32). Every
// message carries a new point, and any 37 distinct chunks rebuild a key
// (a 38th confirms it, decision 17), any 35 an answer, so lost and
// reordered messages never stall a round: the chunks that follow replace
// the lost ones, with no retransmission and no acknowledgement to lose (a
// key is sent until its answer completes, at full rate until an answer
// chunk arrives; an answer until its epoch is declared). Filler is sent
// only when neither lane has a chunk due; when both do, the count of
// messages sent alternates between them. The field is inside the header AEAD, so a chunk
// is authenticated before it is read and changes state only on commit;
// the chunk that completes a decoder is checked on a clone first.
//
// Schedule decision: continuous streaming at one chunk per message, rather
// than a whole key and ciphertext every N messages or T seconds as PQ3
// does. Measured in TestKEMCadence and the PQ_RATCHET.md simulation, for
// alternating turns of 1 to 5 messages: one KEM secret mixed per 91-95
// messages (11 per 1,000 messages, BenchmarkConversation), each lane
// at most 260 messages apart in 4,000; an attacker with a classical-only snapshot
// is locked out after 66 messages on average (p95 142), one with every
// secret after 261 (p95 355); at 30% loss 95 and 392. It costs exactly 42
// bytes on every message (127 bytes of overhead instead of 85 for
// version 1), whatever the traffic, so the KEM state never shows on the
// wire. Sending whole key and ciphertext once per round instead would cost
// 2272 bytes per round, about 380 bytes per message at the same cadence,
// and those messages would stand out; a slower cadence would cut that but
// lengthen the window in proportion. 64-byte chunks would halve the window
// for 74 bytes per message; 32 matches Signal's SPQR and keeps well under
// the 100-byte budget.
//
// Failure policy (checklist item 29, decision 17). A flipped bit anywhere in
// the field is ErrDecrypt (header AEAD). A validly sealed field an honest
// peer never sends (unknown kind, non-zero filler, a chunk of a future
// epoch, a declaration that skips an epoch or names one whose secret this
// party does not hold, a declaration that changes inside a chain) is
// ErrMalformed, with the session unchanged. Chunks that rebuild an invalid
// key or one the confirming chunk disagrees with, or an answer whose key
// confirmation fails (a corrupted ciphertext, two answers mixed, or a key
// substituted on the way: ML-KEM decapsulation never fails, it returns a
// pseudorandom key), empty that decoder: the message decrypts, a wrong
// secret is never mixed, the round is never skipped (no classical
// fallback), and the chunks that follow fill the decoder again. Since
// version 2 kept the bad chunk and refused every message completing the
// decoder, one chunk from a restored peer or from someone holding a
// stolen snapshot could end a session; now it costs a round at most.
// There is no way to turn the KEM ratchet off: a peer that sends only
// filler stalls its own lane and the other lane's answers, visibly (no
// epoch declared), and never makes the honest party skip mixing.
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
//     Version 3 (issue 14) adds the 82-byte header to the nonce's HMAC,
//     about 60 ns (BenchmarkPrimitives/message-nonce, 0.59 -> 0.65 µs on
//     a loaded machine), and no allocation: in 8 interleaved runs of the
//     version-2 and version-3 test binaries on the shared machine,
//     BenchmarkSealOpen was 4.87 / 4.83 µs (KEM off) and 6.85 / 6.82 µs
//     (KEM on), 5 allocations and 464 B either way, the difference within
//     the noise (benchstat, p > 0.8).
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
// Messages start with Version (3) and saved states carry StateVersion (3);
// anything else is ErrUnsupportedVersion. Version 1 (the Double Ratchet
// without the KEM ratchet) is refused, not migrated: sealpost has not
// shipped, so no version-1 session needs keeping, and a migrated session
// would go on without the KEM ratchet, the silent downgrade checklist item 29
// forbids. Version 2 (header nonce from the routing tag, random
// encapsulation, a KEM failure refusing the message) is refused the same
// way: its messages have the nonce reuse of decision 6, and a version-2
// state belongs to a session whose peer speaks version 2. Version 3 keeps
// the wire size (127 bytes of overhead) and the saved layout; a key's
// decoder may now hold all k of its chunks. Golden version1_rejected and
// version2_rejected vectors (a genuine message and state of each, and a
// version-2 split save) check it. Golden vectors in testdata (a scripted conversation
// with every injected key recorded, its messages and saved states, the
// split saves of those states, an accumulated 10,000-step walk, and
// version_unsupported vectors) fail the tests on any accidental format
// change; regenerate them only with go test -update. The split save's head
// carries StateVersion and its own format byte (1).
//
// # Erasure
//
// Message keys are cleared after their single use, skipped keys when used
// or evicted, chain keys when replaced and in every temporary (a plan's
// keys once it is committed or dropped), KEM shared secrets and seeds once
// mixed or replaced, the derived encapsulation randomness, key
// confirmations and HKDF outputs right after use, the scratch header and
// HMAC pads after each message. Go cannot guarantee erasure: the garbage
// collector and stack growth may leave copies, registers and the internal
// state of library objects (crypto/ecdh and crypto/mlkem private keys, the
// SHA-256 and HMAC states, circl's encapsulation) are out of reach, and
// clearing only shortens the time a secret lives in memory we own.
// Ratchet steps are self-contained functions over fixed-size arrays so
// that they can later run under runtime/secret.
package ratchet

// Package transcript keeps the two hash chains of a sealpost conversation,
// one per direction, and reports from them what the relay did and whether
// the two sides saw the same conversation (docs/SPEC.md section 13): a content still
// missing (Gap), one of ours the relay dropped or withholds (Drop), two
// views that disagree (Fork), and what a receipt binds to. It follows the
// idea of MLS's transcript hash (RFC 9420 §8.2) applied to a two-party,
// asynchronous, lossy channel.
//
// It imports no key-holding package: it sees sequence numbers, message ids
// and the exact bytes of decrypted contents, and keeps only their hashes.
//
// # Use
//
// The sender takes [Conversation.Next], encodes the [Fields] into the
// content, seals it and records it with [Conversation.Sent]. The receiver
// decrypts, decodes the fields and passes them with the exact content bytes
// to [Conversation.Received], which returns new findings. A receipt carries
// [Conversation.ReceiptHash] of the contents it names; the other side checks
// it with [Conversation.CheckReceipt]. [Conversation.Findings] lists what
// is open now.
//
// # Security properties
//
//   - The hash of a content is SHA-256(LabelTranscriptContent || the exact
//     bytes as sent or received). It is never computed over a re-encoding
//     (protobuf is not canonical), and the label keeps it apart from every
//     other hash in sealpost.
//   - Each content carries the hash of its sender's previous content, so the
//     hash of content n commits to contents 1..n: a chain. The receiver
//     checks every link whose two ends it has; a link that does not hold is
//     a Fork.
//   - Each content also carries the sender's view of the other chain
//     (AckCount, AckHash, AckAbove). The other side compares AckHash with
//     its own hash of that content: a difference is a Fork, and so is a
//     claim to hold contents never sent or a view that goes back.
//   - A receipt names contents by id and carries a hash over each named
//     content's id, seq and content hash, so "read" means "read exactly
//     these bytes as these contents"; a receipt that does not verify marks
//     nothing.
//   - Findings are data, not errors: the content that reveals one is
//     accepted. Forks and Lost ranges are sticky; Gaps and Drops close when
//     the contents turn up.
//
// What the transcript cannot see: a man in the middle who holds both
// sessions and rewrites every content consistently in both directions
// (safety numbers detect that); the loss of our newest contents while the
// peer sends nothing later; and a Drop is reported only for the first run
// of our contents the peer lacks (see AckAbove below). Hashes are not
// secrets, and nothing here needs constant time.
//
// # Protocol decisions
//
//   - AckAbove, not the peer's highest seq. With only a count and a highest
//     seq, a sender that sent k (dropped), k+1 and k+2 before the reply
//     cannot tell which of k..k+1 is missing, and would report k+1 as
//     dropped forever. AckAbove is the lowest seq the receiver holds above
//     its prefix, so AckCount+1..AckAbove-1 is exactly the first run it
//     lacks: Drop ids are exact and there are no false alarms. Later runs
//     are reported once the first closes or is given up. Reporting every
//     run would need a variable-length field; this keeps Fields fixed-size.
//   - A Drop comes from the peer's newest report (the one carried by its
//     highest-seq content): a report is a snapshot, and an older one that
//     arrives late must not reopen what a newer one closed. Every report is
//     still checked for forks.
//   - Out-of-order contents wait as runs (segments) above the gaps: the
//     first link of a run is checked when the gap below it fills, the last
//     when the next content arrives. Memory is per run, not per content.
//   - Missing seqs are bounded (MaxMissing), not the contents that wait. A
//     window fixed at the prefix would let one permanently dropped content
//     block the conversation for good after MaxMissing more. Instead, when
//     more than MaxMissing seqs are missing, the oldest gap is given up as
//     Lost (sticky) and the prefix moves past it; the first link after a
//     given-up gap cannot be checked. MaxMissing equals the ratchet's bound
//     on stored skipped keys, which evicts the oldest first, so by then the
//     oldest missing content can no longer be decrypted either. The whole
//     gap is given up, so that the prefix always ends at a content that
//     arrived and AckHash always names a real hash; a late content from the
//     upper part of that gap, which the ratchet might still read, is
//     ErrExpiredKey. This needs more than MaxMissing contents lost at once.
//   - A single content may not open a gap over MaxMissing: no honest peer
//     gets that far ahead through a ratchet that refuses it, and it would
//     give up everything before it at once. That is ErrTooManySkipped, and
//     no step of Received loops over the seqs of a gap.
//   - A seq already received is ErrDuplicate; seq 0, an AckHash with count
//     0, or an AckAbove that leaves no gap is ErrMalformed. These are
//     errors, not findings, because the Device must refuse such a content.
//   - A receipt hash covers each named content rather than the chain head
//     at the newest one: it is checkable per content even where the chain
//     has a gap, and names exactly the bytes acknowledged. Ids are hashed
//     in the order the receipt lists them. The zero id names no content.
//   - Sent requires the fields Next returned, unchanged: our content must
//     report the state it was made from.
//
// # Atomicity
//
// Sent and Received change the Conversation in place and only on success:
// every check runs before the first change, and a call that returns an
// error leaves the state byte-for-byte unchanged (tests compare
// MarshalBinary before and after). A caller that must not expose a change
// before it is stored works on a Clone and keeps the clone once the store
// write has succeeded (compute, then commit). In-place mutation lets one
// clone take a Received and a CheckReceipt, and keeps the per-message path
// free of allocation.
//
// # Bounds
//
// Every structure is bounded by a named constant: the sent and received
// logs by MaxLog, the runs waiting above gaps by MaxMissing, the sticky
// findings by MaxSticky, saved state by MaxStateSize. Receipts and Drop ids
// reach back MaxLog contents; an AckHash for one of our contents older than
// that cannot be checked and is skipped.
//
// # Backwards compatibility
//
// Saved state (MarshalBinary, and the split save's head and log blocks)
// is a fixed binary layout of version StateVersion, documented on
// AppendBinary and ChangedBlocks: the version byte first, big-endian
// integers, explicit counts. It is encoded deterministically and decoded
// strictly: a truncation, a count past its bound or past the input,
// trailing bytes or a non-canonical byte is ErrMalformed, another version
// ErrUnsupportedVersion (the version is read first). Version 1, a
// protocol-buffer message, is no longer read. Kind values are stored and
// never renumbered. MaxLog may grow in a later build (a shorter saved log
// loads and grows); within a version it never shrinks, and MaxMissing and
// MaxSticky likewise. A golden vector in testdata/ fails the tests on any
// accidental format change; state written by a released version must keep
// loading or be refused with ErrUnsupportedVersion.
package transcript

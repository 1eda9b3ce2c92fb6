// Package sealpost gives an app's users end-to-end encrypted one-to-one
// conversations over a relay the operator runs but cannot read.
//
// # What it protects
//
// Message contents, who sent a message, and whether an envelope is a
// message, a delivery receipt or a read receipt. Sessions start with a
// hybrid post-quantum key agreement (X25519 and ML-KEM-1024, PQXDH-class),
// continue under a Double Ratchet with header encryption, and first-contact
// envelopes are sealed to the recipient with HPKE X-Wing, so the sender stays
// hidden from the relay even against a future quantum computer. There is no
// key escrow and no switch that turns this off.
//
// # What the relay still sees
//
// The recipient's mailbox id, a routing tag that looks random and changes
// every message, the padded size (Padmé, 384-byte floor: receipts and short
// messages are one size), and the time. A relay compelled to hand over
// everything it holds hands over that routing metadata only.
//
// # How the packages fit
//
//   - sealpost (this package): the Device, one device's identity, prekeys,
//     sessions, transcripts and receipt queues behind one small API, saved
//     in the app's Store.
//   - [github.com/sealpost/sealpost/keys]: identities, prekeys, bundles,
//     safety numbers and the hybrid session start.
//   - [github.com/sealpost/sealpost/ratchet]: the Double Ratchet with header
//     encryption and routing tags.
//   - [github.com/sealpost/sealpost/transcript]: per-session hash chains that
//     expose gaps, drops and forks, and bind receipts to exact bytes.
//   - [github.com/sealpost/sealpost/envelope]: the routing header, the only
//     part a relay reads; it links no cryptography.
//     [github.com/sealpost/sealpost/envelope/seal] seals the body.
//
// Every sentinel error is re-exported here, so errors.Is works with these
// names whichever package made the error.
//
// # Example
//
//	alice, _ := sealpost.Open(ctx, aliceStore, sealpost.Address{User: "alice", Device: 1})
//	bob, _ := sealpost.Open(ctx, bobStore, bobAddr)
//
//	bundle, _ := bob.Bundle(ctx, 10)   // upload bundle.Split() blobs to the relay
//	parsed, _ := keys.ParseBundle(blob) // Alice fetched one blob
//	_ = alice.StartSession(ctx, bobAddr, parsed)
//
//	out, _ := alice.Send(ctx, bobAddr, []byte("hi"))  // post out.Envelope to out.Mailbox
//	in, _ := bob.Receive(ctx, out.Envelope)           // in.Body == "hi", in.From == alice
//	_ = bob.Done(ctx, in.ID)                          // after the app stored it
//	receipts, _ := bob.Flush(ctx)                     // on a timer: delayed, batched receipts
//
// # Protocol decisions
//
//   - Each session has its own transcript; a new session starts new chains.
//     Simultaneous starts converge on the session whose base key sorts
//     first (both sides compute the same), the other is archived and still
//     receives.
//   - A session start's contents carry the sender's mailbox id, since the
//     responder has no other way to learn where to reply; it is inside the
//     seal and authenticated by the ratchet.
//   - Receipts are queued per session with a random delay, batched (at most
//     256 ids per content) and ride along on the next message; a read
//     receipt implies delivery. The receipt hash binds each id with the hash
//     of the exact content received.
//   - A failed Send keeps the spent ratchet key spent (in memory) and
//     releases no envelope; a failed Receive releases nothing and rewinds
//     the peer to what it last committed.
//   - A peer is saved as small records, so a message rewrites only what it
//     changed: the peer record (identity, mailbox, session list), per
//     session a record (transcript head, the ratchet's head, receipt-queue
//     bounds) and the other parts of the ratchet's split save
//     (ratchet.SaveSplit: the replay record and KEM decoders in blocks,
//     skipped keys only when they change), the transcript's logs in fixed
//     blocks of 8 entries and the queued delivery receipts in blocks of 16,
//     the pending session start until the peer
//     replies, and the kept results with their index. The records
//     written with every message (session record, transcript head and log
//     blocks, receipt-queue blocks, kept results and kept index) are fixed
//     binary layouts, each documented on its encoder: a version byte first,
//     big-endian integers, explicit lengths, encoded into a buffer of
//     exactly its size plus the checksum's, decoded strictly (a truncation,
//     trailing bytes or a count past its bound is ErrMalformed, another
//     version ErrUnsupportedVersion). Every record ends with a CRC-32C of
//     its key and value (records.go). In a steady one-way conversation a
//     Send writes about 0.9 KB in 2 records and a Receive plus its Done
//     about 1.6 KB in 8, where the whole peer (up to ~35 KB) used to be
//     rewritten.
//   - An envelope whose tag no session expects is tried on the 32 most
//     recently used sessions only, so a flood of garbage costs a bounded
//     amount per envelope however many sessions the device has. The price:
//     a message more than ratchet.TagWindow ahead of what its session
//     expects (heavy loss) on a session outside those 32 is ErrDecrypt
//     until the session is used again.
//   - Accepted session starts are remembered by the hash of their base key,
//     so a replayed start is ErrDuplicate even after its session is gone;
//     they are kept per signed prekey and forgotten when RotatePrekeys
//     drops that prekey (a start naming it can no longer be accepted).
package sealpost

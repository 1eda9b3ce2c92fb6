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
// The size also tells first contacts apart: the envelope that starts a
// session carries the session start (an identity, an ML-KEM-1024
// ciphertext of 1568 bytes, the X-Wing encapsulation of 1120 bytes, key
// ids) and is about 3.6 KB where a short message or a receipt is 545 B
// (TestFirstContactSizeCost prints the numbers). So the relay learns that
// someone started a conversation with a mailbox, and when, though not who:
// the sender stays sealed. Every envelope sent until the peer replies is a
// first contact, so it also sees how long a new conversation waited for
// its first reply. Hiding this costs more than it buys today: padding first
// contacts to the next power of two (4 KiB, +494 B, +14% each) only helps
// if ordinary messages land there too, and chat messages with bodies of
// 3.1-3.7 KB are rare, so the bucket would still mostly hold first
// contacts; padding every envelope to a first contact's size would cost
// 6.6x the bytes of a 100-byte message. A session-start format that splits
// the KEM material across the first messages (as SPQR does for the
// ratchet) would remove the difference; it is not done.
//
// A session envelope's routing header (mailbox, tag) is not bound into
// the ratchet's associated data: only the tag is (it selects the header
// key). Binding the mailbox would need the ratchet to take per-envelope
// associated data, which its API does not, and the mailbox may change
// (per-conversation reply mailboxes, DESIGN section 11). It gains the
// relay nothing to re-route: Receive refuses an envelope whose header names
// another mailbox, and an envelope re-labelled for another device's mailbox
// reaches a device that holds no session expecting its tag (ErrDecrypt,
// nothing changed); re-routing is only dropping or delaying, which the
// relay can do anyway and the transcript reports.
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
// # Identities at an address
//
// Until accounts and a key directory bind addresses to keys (DESIGN
// sections 7 and 9), an address in a session start is a claim: anyone
// holding a device's public bundle can start a session presenting any
// address with a new identity. So an identity change never destroys or
// redirects anything (issue 14). The first identity a device sees at an
// address is pinned (trust on first use). A session start from another
// identity at that address becomes a separate, unconfirmed peer: its
// messages are delivered with Incoming.Unconfirmed set, Incoming.Identity
// naming it and an identity-changed finding; no receipt is queued for it;
// Send, Flush and Acknowledge keep using the pinned identity's sessions,
// which keep working both ways; StartSession with a bundle carrying another
// identity is ErrIdentityChanged in both modes. Signal keeps old sessions
// for the same reason.
//
// Trust(peer, identity) switches over: the identity becomes the pinned
// one, its sessions the ones Send uses (so replies go to the mailbox it
// gave), and the previously pinned identity is archived as unconfirmed (its
// late messages still decrypt, marked Unconfirmed; nothing is sent to it).
// A legitimate reinstall therefore looks to the app like an impostor would:
// messages from the address marked Unconfirmed with a new identity. The
// app shows them as from an unverified device, lets the user compare the
// new safety number (keys.SafetyNumber with Incoming.Identity) and calls
// Trust when the user accepts; UnconfirmedIdentities lists what is
// waiting. WithStrictIdentity keeps the stricter behaviour: any identity
// other than the pinned one is ErrIdentityChanged (an IdentityChangedError
// naming both) with nothing written, until Trust.
//
// # Unsolicited first contacts
//
// Anyone with the public last-resort bundle can start sessions, and sealed
// sender keeps the relay from telling who, so it cannot rate-limit them.
// What one costs the recipient is bounded:
//
//   - A peer that contacted us and that we have neither answered (Send,
//     StartSession) nor trusted (Trust) is pending, as is every
//     unconfirmed identity. At most WithMaxPendingPeers (default 100) are
//     kept; a first contact beyond that evicts the oldest pending peer in
//     the same Apply, deleting its records (kept results included, so an
//     app that has not yet handled an evicted peer's message will not see
//     it redelivered). Peers we answered are never evicted.
//   - The bytes a first contact writes do not grow with the earlier ones
//     (about 1.8-2.0 KB put, plus the deletion of an evicted peer's ~25
//     records; TestFirstContactFlood): peers are listed one per record
//     ("peers/<slot>"), and accepted starts are appended in blocks of 16.
//     Before, the device record listed every peer and the set of accepted
//     starts was rewritten whole: 2.2 KB for the first first contact, 25 KB
//     for the 650th. What does grow is the set of accepted starts, 16 bytes
//     per start for the life of the signed prekey it names, kept so that a
//     replay is ErrDuplicate even after its peer is gone (libsignal keeps
//     the same).
//   - Block refuses an address or an identity: its envelopes are ErrBlocked
//     after one routing-tag lookup or one seal opening, before any key
//     agreement, with nothing written. Forget deletes everything about an
//     address.
//
// # Prekey rotation and expiry
//
// Call RotatePrekeys weekly (PrekeyRotation) and publish the new Bundle;
// Bundle rotates by itself when the current prekeys are older than that.
// The signed prekey and the mailbox key are signed with an expiry
// PrekeyLifetime (30 days) after they were made, and initiators refuse a
// bundle past it (ErrExpired), so a bundle published just before a
// rotation stays usable for three more weeks and a stale one a relay keeps
// serving stops working. A rotated-out prekey is kept until a week past its
// expiry (at most 8 of each kind), for session starts made just before it,
// then dropped with its accepted starts. The initiator checks a bundle's
// expiry once, in StartSession; its start rides on every message until the
// reply, also past the expiry.
//
// # Secrets in memory
//
// The session secret is cleared once the ratchet is seeded
// (keys.SessionKeys.Erase), prekey seeds are cleared from the records they
// are encoded into or decoded from, the saved device record is cleared
// after it is read, and the content of a sent message does not outlive
// Send. Go gives no guarantee that this erases every copy (the garbage
// collector moves values; crypto/ecdh, crypto/hpke and circl keep key
// material out of reach; the ratchet keeps its own state, see its package
// doc): it narrows the window for a memory disclosure, no more.
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
//     changed: the peer record (identity, mailbox, session list, pending
//     and unconfirmed flags), listed in the peer directory, per
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
//     so a replayed start is ErrDuplicate even after its session (or its
//     peer) is gone; they are kept per signed prekey, in blocks of 16, and
//     forgotten when RotatePrekeys drops that prekey (a start naming it can
//     no longer be accepted).
//   - A message on an archived session makes it current again, also when it
//     is older than the current one (libsignal's rule). Promoting only to a
//     session at least as new was considered and not done: the two sides
//     share no order of their sessions (each knows only when it made or
//     accepted each), so a rule by age lets each side settle on a
//     different session after a simultaneous start with a late message,
//     and after a restore the restored side's new start could be refused
//     for being "older"; answering on the session the peer just used is
//     what makes both sides converge (TestSimultaneousStartScenarios,
//     TestLatePrekeyMessageAgreement). The downgrade it allows needs a
//     genuine message on the older session: only the peer, or someone who
//     stole that session's state (who could then also forge on it), can
//     send one; it never crosses identities (an identity's sessions are
//     its own peer's), and the old session's ratchet steps on with fresh
//     keys from then on. A shared session generation in the session start
//     would allow the rule; it is left for a later session-start version.
package sealpost

// Package sealpost gives an app's users end-to-end encrypted one-to-one
// conversations over a relay the operator runs but cannot read.
//
// # What it protects
//
// Message contents, who sent a message, and whether an envelope is a
// message, a delivery receipt or a read receipt. Sessions start with a
// hybrid post-quantum key agreement (X25519 and ML-KEM-1024, PQXDH-class),
// continue under a Double Ratchet with header encryption and a KEM ratchet,
// and first-contact envelopes are sealed to the recipient with HPKE X-Wing,
// so the sender stays hidden from the relay even against a future quantum
// computer. Per-session transcripts expose a relay that drops, reorders or
// forges envelopes. There is no key escrow and no switch that turns this
// off.
//
// # What the relay still sees
//
// The recipient's mailbox id, a routing tag that looks random and changes
// every message, the padded size (Padmé, 384-byte floor: receipts and short
// messages are one size, 548 bytes), and the time. An envelope that starts
// a session is larger (about 3.6 KB: it carries the key agreement), so the
// relay learns that someone started a conversation with a mailbox, and
// when, though not who. A relay compelled to hand over everything it holds
// hands over that routing metadata only. docs/SPEC.md §2 and §15 say what
// is exposed and why each remaining leak is accepted.
//
// # The flow
//
//	alice, _ := sealpost.Open(ctx, aliceStore, sealpost.Address{User: "alice", Device: 1})
//	bob, _ := sealpost.Open(ctx, bobStore, bobAddr)
//
//	bundle, _ := bob.NewBundle(ctx, 10)  // upload bundle.Split() blobs to the relay
//	parsed, _ := keys.ParseBundle(blob)  // Alice fetched one blob
//	_ = alice.StartSession(ctx, bobAddr, parsed)
//
//	out, _ := alice.Send(ctx, bobAddr, []byte("hi"))  // post out.Envelope to out.Mailbox
//	_ = alice.Sent(ctx, out)                          // the relay took it: out of the outbox
//	in, _ := bob.Receive(ctx, out.Envelope)           // in.Body == "hi", in.From == alice
//	_ = bob.Done(ctx, in.ID)                          // after the app stored it
//	receipts, _ := bob.Flush(ctx)                     // on a timer: delayed, batched receipts
//
// Every change of state is written to the app's Store with one atomic
// Apply before a call returns, so a crash never loses an accepted message
// nor reuses a key; a failed call changes nothing. Receive keeps each
// result until Done, so an envelope the relay delivers again returns it
// again (Redelivered) instead of an error.
//
// # Accounts with several devices
//
// A person with a phone and a laptop is an account: NewAccount makes its
// account key and first signed device list, LinkCode and Approve add a
// device (the new device shows a code; a device holding the account key
// approves it and provisions it), RemoveDevice takes one off. Peers pin
// the account key and its newest list (UpdateDeviceList with the list the
// relay serves; lists also travel inside contents), and nothing is ever
// encrypted to, or accepted from, a device the pinned list does not name
// (ErrUnlistedDevice): the relay cannot add a "ghost device" without the
// user's own key, and every peer sees every change (AccountFindings).
// SendUser sends one message to every device of an account and a sync copy
// to each of our own other devices, committed with one Apply; MarkRead
// tells our other devices what was read. AccountSafetyNumber is computed
// over account keys, so adding a device does not change it. docs/SPEC.md
// §22 has the protocol and each decision.
//
// # Identities at an address
//
// For peers without accounts, until a key directory binds addresses to
// keys, an address in a session start is a claim. The first identity seen at an address is
// pinned (trust on first use). Another identity at that address never
// destroys or redirects anything: its messages arrive marked Unconfirmed
// with an identity-changed finding, replies keep going to the pinned
// identity, and Trust switches over once the user has compared the new
// safety number (keys.SafetyNumber). WithStrictIdentity refuses such
// messages instead (ErrIdentityChanged). A reinstall looks like this too.
//
// # Unsolicited first contacts
//
// Anyone with a published bundle can start sessions, and sealed sender
// keeps the relay from telling who. What they cost is bounded: at most
// WithMaxPendingPeers peers that we have neither answered nor trusted are
// kept (the oldest is evicted), a first contact writes about 2 KB however
// many came before, and Block refuses an address or an identity before any
// key agreement. Forget deletes everything about an address.
//
// # Restores, reinstalls and broken sessions
//
// After restoring the store from a backup, call Restored: the old sessions
// stop sending, Send asks for a new session (StartSession), and the peer
// is told how far the restored state goes, so its app gets a PeerRestored
// finding naming what to send again (Resend, under the same ids; a copy
// the receiver already holds arrives marked Repeated). A peer that starts
// a new session in place of one it had confirmed, a reinstalled peer once
// Trust accepts its new identity, and a session left unanswered
// (WithUnanswered) are reported the same way. ClassifyReceive says what to
// do with an envelope Receive refused.
//
// # Prekeys
//
// Call RotatePrekeys weekly (PrekeyRotation) and publish a NewBundle;
// signed prekeys expire PrekeyLifetime after they were made, and an
// initiator refuses an expired bundle (ErrExpired).
//
// # Packages
//
//   - sealpost (this package): the Device, behind one small API, saved in
//     the app's Store (MemoryStore, NewEncryptedStore, or your own; check
//     it with CheckStore).
//   - [github.com/sealpost/sealpost/keys]: identities, prekeys, bundles,
//     safety numbers, the hybrid session start, account keys, device lists
//     and link codes.
//   - [github.com/sealpost/sealpost/ratchet]: the Double Ratchet with header
//     encryption, routing tags and the KEM ratchet.
//   - [github.com/sealpost/sealpost/transcript]: per-session hash chains that
//     expose gaps, drops and forks, and bind receipts to exact bytes.
//   - [github.com/sealpost/sealpost/envelope]: the routing header, the only
//     part a relay reads; [github.com/sealpost/sealpost/envelope/seal] seals
//     first contacts and [github.com/sealpost/sealpost/envelope/attach]
//     encrypts attachments.
//
// Every sentinel error is re-exported here, so errors.Is works with these
// names whichever package made the error. The wire formats, the store
// layout and every protocol decision with its reason are in docs/SPEC.md
// (https://github.com/sealpost/sealpost/blob/main/docs/SPEC.md); the
// behaviour the tests hold the code to is in TESTING.md.
package sealpost

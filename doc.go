// Package sealpost gives an app's users end-to-end encrypted one-to-one
// conversations over a relay the operator runs but cannot read.
//
// # What it protects
//
// Message contents, who sent a message, and whether an envelope is a
// message, a delivery receipt or a read receipt. Sessions start with a
// hybrid post-quantum key agreement (X25519 and ML-KEM-1024, PQXDH-class),
// continue under a Double Ratchet with header encryption, and first-contact
// envelopes are sealed to the recipient with HPKE X-Wing, so a recorded
// conversation stays secret even against a future quantum computer. There
// is no key escrow and no switch that turns this off.
//
// # What the relay still sees
//
// The recipient's mailbox id, a routing tag that looks random and changes
// every message, the padded size, and the time. A relay compelled to hand
// over everything it holds hands over that routing metadata only.
//
// # Packages
//
//   - [github.com/sealpost/sealpost/keys]: identities, prekeys, bundles,
//     safety numbers and the hybrid session start.
//   - [github.com/sealpost/sealpost/ratchet]: the Double Ratchet with header
//     encryption and routing tags.
//   - [github.com/sealpost/sealpost/envelope]: the routing header, the only
//     part a relay reads; it links no cryptography.
//
// The root package re-exports every sentinel error, so errors.Is works with
// the names here whichever package made the error.
//
// # Example
//
// Bob publishes a bundle; Alice starts a session from it; Bob accepts it:
//
//	bob := keys.GenerateIdentity()
//	spk := keys.GenerateSignedPrekey(1, bob)
//	pq := keys.GeneratePQPrekey(1, true, bob)
//	mk, _ := keys.GenerateMailboxKey(1, bobAddr, mailbox, bob)
//	bundle := &keys.Bundle{Address: bobAddr, Mailbox: mailbox, Identity: bob.Public(),
//		SignedPrekey: spk.Public(), PQPrekey: pq.Public(), MailboxKey: mk.Public()}
//	blob, _ := bundle.MarshalBinary() // upload; the relay stores it opaque
//
//	parsed, err := keys.ParseBundle(blob) // Alice: verifies every signature
//	start, aliceKeys, err := keys.Initiate(alice, aliceAddr, parsed)
//	wire, _ := start.MarshalBinary() // sealed to Bob's mailbox key
//
//	msg, err := keys.ParseSessionStart(wire) // Bob
//	bobKeys, err := keys.Respond(bob, bobAddr, msg, spk, pq, nil)
//	// aliceKeys and bobKeys now hold the same secret; the ratchet starts here.
package sealpost

// Command quickstart walks Alice and Bob through what sealpost does today:
// Bob publishes a prekey bundle through a relay that stores it as opaque
// blobs, Alice fetches one, starts a hybrid post-quantum session, and both
// compare safety numbers.
//
// The rest of the conversation (ratchet messages, sealed envelopes,
// receipts, the transcript) joins this program as those parts land; until
// then it says so when it finishes.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/sealpost/sealpost/keys"
)

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// relay stands in for the relay's bundle store: opaque blobs per user, each
// one-time blob handed out once, the last-resort blob after that.
type relay struct{ blobs map[string][][]byte }

func (r *relay) upload(user string, blobs [][]byte) { r.blobs[user] = blobs }

func (r *relay) fetch(user string) []byte {
	list := r.blobs[user]
	if len(list) == 1 {
		return list[0]
	}
	r.blobs[user] = list[1:]
	return list[0]
}

func run(out io.Writer) error {
	aliceAddr, bobAddr := keys.Address{User: "alice", Device: 1}, keys.Address{User: "bob", Device: 1}
	alice, bob := keys.GenerateIdentity(), keys.GenerateIdentity()
	r := &relay{blobs: map[string][][]byte{}}

	// Bob: generate prekeys and publish one blob per one-time prekey.
	spk := keys.GenerateSignedPrekey(1, bob)
	pq := keys.GeneratePQPrekey(1, true, bob)
	otps := map[uint32]*keys.OneTimePrekey{}
	mailbox := []byte("mbx-bob-1")
	mk, err := keys.GenerateMailboxKey(1, bobAddr, mailbox, bob)
	if err != nil {
		return err
	}
	bundle := &keys.Bundle{Address: bobAddr, Mailbox: mailbox, Identity: bob.Public(),
		SignedPrekey: spk.Public(), PQPrekey: pq.Public(), MailboxKey: mk.Public()}
	for id := uint32(100); id < 103; id++ {
		otps[id] = keys.GenerateOneTimePrekey(id)
		bundle.OneTimePrekeys = append(bundle.OneTimePrekeys, otps[id].Public())
	}
	var blobs [][]byte
	for _, b := range bundle.Split() {
		blob, err := b.MarshalBinary()
		if err != nil {
			return err
		}
		blobs = append(blobs, blob)
	}
	r.upload("bob", blobs)
	fmt.Fprintf(out, "bob   published %d bundle blobs (%d bytes each); the relay stores them unread\n", len(blobs), len(blobs[0]))

	// Alice: fetch a blob, verify it, start a session.
	parsed, err := keys.ParseBundle(r.fetch("bob"))
	if err != nil {
		return err
	}
	start, aliceKeys, err := keys.Initiate(alice, aliceAddr, parsed)
	if err != nil {
		return err
	}
	wire, err := start.MarshalBinary()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "alice started a session: X25519 x4 + ML-KEM-1024, %d-byte session start\n", len(wire))

	// Bob: look up the prekeys it names, accept, then delete the one-time prekey.
	msg, err := keys.ParseSessionStart(wire)
	if err != nil {
		return err
	}
	var otp *keys.OneTimePrekey
	if msg.HasOneTimePrekey {
		if otp = otps[msg.OneTimePrekeyID]; otp == nil {
			return keys.ErrUnknownPrekey
		}
	}
	bobKeys, err := keys.Respond(bob, bobAddr, msg, spk, pq, otp)
	if err != nil {
		return err
	}
	delete(otps, msg.OneTimePrekeyID)
	fmt.Fprintf(out, "bob   accepted it from %s; one-time prekey %d deleted\n", msg.Initiator, msg.OneTimePrekeyID)
	fmt.Fprintf(out, "both  hold the same session secret: %t\n", bytes.Equal(aliceKeys.Secret(), bobKeys.Secret()))

	// Both: compare safety numbers out of band (read aloud, or scan a QR code).
	aliceView := keys.SafetyNumber(alice.Public(), "alice", aliceKeys.Peer(), "bob")
	bobView := keys.SafetyNumber(bob.Public(), "bob", bobKeys.Peer(), "alice")
	fmt.Fprintf(out, "alice sees safety number %s\n", aliceView)
	fmt.Fprintf(out, "bob   sees safety number %s (match: %t)\n", bobView, aliceView == bobView)
	if aliceView != bobView || !bytes.Equal(aliceKeys.Secret(), bobKeys.Secret()) {
		return fmt.Errorf("the two sides disagree")
	}
	fmt.Fprintln(out, "\nThis quickstart stops at the session start: messages, sealed envelopes and")
	fmt.Fprintln(out, "receipts join it as the ratchet and Device API land (see the README).")
	return nil
}

package seal_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/keys"
)

// exampleBob plays Bob: his private keys and the bundle he publishes.
type exampleBob struct {
	addr     keys.Address
	mailbox  []byte
	identity *keys.IdentityPrivateKey
	spk      *keys.SignedPrekey
	pq       *keys.PQPrekey
	mailKey  *keys.MailboxKey
}

func newExampleBob() *exampleBob {
	bob := &exampleBob{addr: keys.Address{User: "bob", Device: 2}, mailbox: []byte("bob-mailbox")}
	bob.identity = keys.GenerateIdentity()
	expires := time.Now().Add(30 * 24 * time.Hour)
	var err error
	if bob.spk, err = keys.GenerateSignedPrekey(1, expires, bob.identity); err != nil {
		log.Fatal(err)
	}
	bob.pq = keys.GeneratePQPrekey(2, true, bob.identity)
	if bob.mailKey, err = keys.GenerateMailboxKey(3, bob.addr, bob.mailbox, expires, bob.identity); err != nil {
		log.Fatal(err)
	}
	return bob
}

// publish returns Bob's encoded bundle, as the relay serves it.
func (bob *exampleBob) publish() []byte {
	raw, err := (&keys.Bundle{
		Address:      bob.addr,
		Mailbox:      bob.mailbox,
		Identity:     bob.identity.Public(),
		SignedPrekey: bob.spk.Public(),
		PQPrekey:     bob.pq.Public(),
		MailboxKey:   bob.mailKey.Public(),
	}).MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	return raw
}

// Alice starts a conversation with Bob: she seals her session start to his
// mailbox key, the relay routes it by the header alone, and Bob opens it
// and answers the start.
func ExampleFirstContact() {
	bob := newExampleBob()

	// Alice: verify Bob's bundle, start the session, seal the start.
	alice, aliceAddr := keys.GenerateIdentity(), keys.Address{User: "alice", Device: 1}
	b, err := keys.ParseBundle(bob.publish())
	if err != nil {
		log.Fatal(err)
	}
	m, aliceKeys, err := keys.Initiate(alice, aliceAddr, b)
	if err != nil {
		log.Fatal(err)
	}
	m.Payload = []byte("first ratchet message")
	start, err := m.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	env, err := seal.FirstContact(b, start)
	if err != nil {
		log.Fatal(err)
	}

	// The relay: it sees a mailbox and a random tag, not who sent it.
	h, err := envelope.Parse(env)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("relay: deliver to mailbox %q\n", h.Mailbox)

	// Bob: open with his mailbox key, then answer the start.
	got, err := seal.OpenFirstContact(bob.mailKey, bob.mailbox, env)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob: first contact from", got.Initiator)
	fmt.Println("bob: payload matches:", bytes.Equal(got.Payload, m.Payload))
	bobKeys, err := keys.Respond(bob.identity, bob.addr, got, bob.spk, bob.pq, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob: session secrets agree:", bytes.Equal(bobKeys.Secret(), aliceKeys.Secret()))

	// Anyone else's mailbox key fails to open it.
	_, err = seal.OpenFirstContact(newExampleBob().mailKey, bob.mailbox, env)
	fmt.Println("another key: ErrDecrypt:", errors.Is(err, seal.ErrDecrypt))
	// Output:
	// relay: deliver to mailbox "bob-mailbox"
	// bob: first contact from alice.1
	// bob: payload matches: true
	// bob: session secrets agree: true
	// another key: ErrDecrypt: true
}

// Inside a session the ratchet has already encrypted the message; Session
// only frames it with the routing header, and Split takes it apart again.
func ExampleSession() {
	tag := [envelope.TagSize]byte{0x5e, 0xa1, 0x90, 0x57} // from the ratchet's tag key
	ratchetMessage := []byte("ratchet header and body, already sealed")

	env := seal.Session(nil, []byte("bob-mailbox"), tag, ratchetMessage)

	h, body, err := seal.Split(env)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("mailbox %q, tag %x\n", h.Mailbox, h.Tag)
	fmt.Printf("body: %s\n", body)
	fmt.Println("header bytes:", len(env)-len(body))
	// Output:
	// mailbox "bob-mailbox", tag 5ea19057000000000000000000000000
	// body: ratchet header and body, already sealed
	// header bytes: 32
}

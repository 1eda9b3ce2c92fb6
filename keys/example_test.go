package keys_test

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// bobDevice plays Bob: it holds his private keys, publishes his bundle and
// answers session starts, looking prekeys up by the ids a start names.
type bobDevice struct {
	addr     keys.Address
	mailbox  []byte
	identity *keys.IdentityPrivateKey
	spk      *keys.SignedPrekey
	pq       *keys.PQPrekey // last resort
	oneTime  map[uint32]*keys.OneTimePrekey
	mailKey  *keys.MailboxKey
}

func newBob() *bobDevice {
	bob := &bobDevice{addr: keys.Address{User: "bob", Device: 2}, mailbox: []byte("bob-mailbox")}
	bob.identity = keys.GenerateIdentity()
	expires := time.Now().Add(30 * 24 * time.Hour) // Bob rotates weekly; see RotatePrekeys
	var err error
	if bob.spk, err = keys.GenerateSignedPrekey(1, expires, bob.identity); err != nil {
		log.Fatal(err)
	}
	bob.pq = keys.GeneratePQPrekey(2, true, bob.identity)
	bob.oneTime = map[uint32]*keys.OneTimePrekey{100: keys.GenerateOneTimePrekey(100)}
	if bob.mailKey, err = keys.GenerateMailboxKey(3, bob.addr, bob.mailbox, expires, bob.identity); err != nil {
		log.Fatal(err)
	}
	return bob
}

// publish returns Bob's encoded bundle.
func (bob *bobDevice) publish() []byte {
	b := &keys.Bundle{
		Address:        bob.addr,
		Mailbox:        bob.mailbox,
		Identity:       bob.identity.Public(),
		SignedPrekey:   bob.spk.Public(),
		PQPrekey:       bob.pq.Public(),
		OneTimePrekeys: []keys.PublicOneTimePrekey{bob.oneTime[100].Public()},
		MailboxKey:     bob.mailKey.Public(),
	}
	raw, err := b.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	return raw
}

// answer responds to a session start and deletes the one-time prekey it
// used, only once the start has succeeded.
func (bob *bobDevice) answer(msg []byte) (*keys.SessionKeys, error) {
	m, err := keys.ParseSessionStart(msg)
	if err != nil {
		return nil, err
	}
	var otp *keys.OneTimePrekey
	if m.HasOneTimePrekey {
		otp = bob.oneTime[m.OneTimePrekeyID]
	}
	var spk *keys.SignedPrekey
	if m.SignedPrekeyID == bob.spk.ID() {
		spk = bob.spk
	}
	var pq *keys.PQPrekey
	if !m.PQOneTime && m.PQPrekeyID == bob.pq.ID() {
		pq = bob.pq
	}
	sk, err := keys.Respond(bob.identity, bob.addr, m, spk, pq, otp)
	if err != nil {
		return nil, err
	}
	if otp != nil {
		delete(bob.oneTime, otp.ID())
	}
	return sk, nil
}

func ExampleGenerateIdentity() {
	id := keys.GenerateIdentity()
	pub := id.Public()
	fmt.Println("public identity size:", len(pub.Bytes()), len(pub.Bytes()) == keys.PublicIdentitySize)

	// The seed is all an app stores; it must be kept secret.
	again, err := keys.NewIdentityFromSeed(id.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("rebuilt from seed:", again.Public().Equal(pub))
	// Output:
	// public identity size: 130 true
	// rebuilt from seed: true
}

func ExampleParseBundle() {
	bob := newBob()
	raw := bob.publish()

	// Alice fetches Bob's bundle; ParseBundle verifies every signature.
	b, err := keys.ParseBundle(raw)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bundle of", b.Address, "with", len(b.OneTimePrekeys), "one-time prekey")

	// Bob uploads one blob per one-time prekey, plus the last resort.
	fmt.Println("blobs to upload:", len(b.Split()))
	// Output:
	// bundle of bob.2 with 1 one-time prekey
	// blobs to upload: 2
}

func ExampleInitiate() {
	bob := newBob()
	bundle := bob.publish()

	// Alice.
	alice := keys.GenerateIdentity()
	b, err := keys.ParseBundle(bundle)
	if err != nil {
		log.Fatal(err)
	}
	start, aliceKeys, err := keys.Initiate(alice, keys.Address{User: "alice", Device: 1}, b)
	if err != nil {
		log.Fatal(err)
	}
	start.Payload = []byte("the first ratchet message")
	msg, err := start.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}

	// Bob.
	bobKeys, err := bob.answer(msg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("secrets match:", bytes.Equal(aliceKeys.Secret(), bobKeys.Secret()))
	fmt.Println("associated data match:", bytes.Equal(aliceKeys.AssociatedData(), bobKeys.AssociatedData()))
	fmt.Println("Bob sees Alice:", bobKeys.Peer().Equal(alice.Public()))

	// The one-time prekey is gone: the same start cannot be answered again.
	_, err = bob.answer(msg)
	fmt.Println("replay refused:", err != nil)
	// Output:
	// secrets match: true
	// associated data match: true
	// Bob sees Alice: true
	// replay refused: true
}

func ExampleSafetyNumber() {
	alice, bob := keys.GenerateIdentity(), keys.GenerateIdentity()

	onAlice := keys.SafetyNumber(alice.Public(), "alice", bob.Public(), "bob")
	onBob := keys.SafetyNumber(bob.Public(), "bob", alice.Public(), "alice")
	fmt.Println("both sides agree:", onAlice == onBob)
	fmt.Println("digits:", len(strings.ReplaceAll(onAlice, " ", "")), "in", len(strings.Fields(onAlice)), "groups")

	// Or Alice scans the code on Bob's screen.
	ok, err := keys.CompareScannable(
		keys.Scannable(alice.Public(), "alice", bob.Public(), "bob"),
		keys.Scannable(bob.Public(), "bob", alice.Public(), "alice"))
	fmt.Println("scan matches:", ok, err)
	// Output:
	// both sides agree: true
	// digits: 60 in 12 groups
	// scan matches: true <nil>
}

// ParseBundle refuses a bundle past its expiry; WithClock sets the time it
// judges by (time.Now without it).
func ExampleWithClock() {
	raw := newBob().publish() // its keys expire 30 days from now
	later := func() time.Time { return time.Now().Add(31 * 24 * time.Hour) }
	_, err := keys.ParseBundle(raw, keys.WithClock(later))
	fmt.Println("a month later:", errors.Is(err, keys.ErrExpired))
	_, err = keys.ParseBundle(raw)
	fmt.Println("today:", err)
	// Output:
	// a month later: true
	// today: <nil>
}

// Erase clears the session secret once the ratchet is seeded with it.
func ExampleSessionKeys_Erase() {
	bob := newBob()
	b, err := keys.ParseBundle(bob.publish())
	if err != nil {
		log.Fatal(err)
	}
	_, sk, err := keys.Initiate(keys.GenerateIdentity(), keys.Address{User: "alice", Device: 1}, b)
	if err != nil {
		log.Fatal(err)
	}
	secret := sk.Secret()
	// ... seed the ratchet with secret and sk.AssociatedData() ...
	clear(secret)
	sk.Erase()
	fmt.Println("erased:", bytes.Equal(sk.Secret(), make([]byte, keys.SessionSecretSize)))
	// Output:
	// erased: true
}

// FingerprintText is what a UI shows for an identity, for example beside a
// device in a list or in a "key changed" notice.
func ExamplePublicIdentity_FingerprintText() {
	id, err := keys.NewIdentityFromSeed(make([]byte, 32))
	if err != nil {
		log.Fatal(err)
	}
	text := id.Public().FingerprintText()
	fmt.Println(len(text), "characters in", len(strings.Fields(text)), "groups")
	// Output: 39 characters in 8 groups
}

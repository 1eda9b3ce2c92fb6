package ratchet_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"

	"github.com/sealpost/sealpost/ratchet"
)

// Example shows a two-party exchange in which Bob receives Alice's two
// messages in the wrong order, then replies. In a real program the secret,
// associated data and Bob's first ratchet key come from the session start
// (keys.Initiate and keys.Respond), and the tag travels in the envelope's
// routing header.
func Example() {
	secret := make([]byte, ratchet.SecretSize)
	rand.Read(secret)
	ad := []byte("alice's and bob's identities and addresses")
	bobPrekey, _ := ecdh.X25519().GenerateKey(rand.Reader)

	alice, err := ratchet.NewInitiator(secret, ad, bobPrekey.PublicKey())
	if err != nil {
		panic(err)
	}
	bob, err := ratchet.NewResponder(secret, ad, bobPrekey)
	if err != nil {
		panic(err)
	}

	// Alice sends two messages.
	tag1, msg1, _ := alice.Encrypt([]byte("hello bob"))
	tag2, msg2, _ := alice.Encrypt([]byte("second message"))

	// Bob: the second arrives first; the first still decrypts after it.
	for _, m := range []struct {
		tag [ratchet.TagSize]byte
		msg []byte
	}{{tag2, msg2}, {tag1, msg1}} {
		pt, err := bob.Decrypt(m.tag, m.msg)
		fmt.Printf("bob: %q %v\n", pt, err)
	}

	// Bob replies: a DH ratchet step.
	tag, msg, _ := bob.Encrypt([]byte("hi alice"))
	pt, _ := alice.Decrypt(tag, msg)
	fmt.Printf("alice: %q\n", pt)

	// A replay is refused.
	_, err = bob.Decrypt(tag1, msg1)
	fmt.Println("replay:", err)
	// Output:
	// bob: "second message" <nil>
	// bob: "hello bob" <nil>
	// alice: "hi alice"
	// replay: ratchet: replay: sealpost: duplicate message
}

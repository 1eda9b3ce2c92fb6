package transcript_test

import (
	"fmt"

	"github.com/sealpost/sealpost/transcript"
)

// The relay drops Alice's second content. Bob sees a gap when the third
// arrives; Alice learns of the drop, with the exact message id, from Bob's
// next content. (encode and decode stand for the app's content encoding,
// which carries the transcript fields.)
func Example() {
	alice, bob := transcript.New(), transcript.New()

	// Alice sends three contents; the relay drops the second.
	var relayed [][]byte
	for i := byte(1); i <= 3; i++ {
		f := alice.Next()
		id := [16]byte{'a', i}
		content := encode(f, id, []byte("hello"))
		if err := alice.Sent(f, id, content); err != nil {
			panic(err)
		}
		if i != 2 {
			relayed = append(relayed, content)
		}
	}

	// Bob receives what the relay delivers, then replies.
	for _, content := range relayed {
		f, id := decode(content)
		found, err := bob.Received(f, id, content)
		if err != nil {
			panic(err)
		}
		for _, x := range found {
			fmt.Println("bob:", x)
		}
	}
	f := bob.Next()
	reply := encode(f, [16]byte{'b', 1}, []byte("hi"))
	if err := bob.Sent(f, [16]byte{'b', 1}, reply); err != nil {
		panic(err)
	}

	// Alice receives the reply.
	rf, rid := decode(reply)
	found, err := alice.Received(rf, rid, reply)
	if err != nil {
		panic(err)
	}
	for _, x := range found {
		fmt.Printf("alice: %v, id %x\n", x, x.IDs[0][:2])
	}
	// Output:
	// bob: gap: peer seq 2
	// alice: drop: our seq 2, id 6102
}

// A read receipt names contents and carries the receiver's hash of them;
// the sender marks them read only if it verifies.
func ExampleConversation_CheckReceipt() {
	alice, bob := transcript.New(), transcript.New()
	f := alice.Next()
	id := [16]byte{'a', 1}
	content := encode(f, id, []byte("see you at 8"))
	_ = alice.Sent(f, id, content)
	_, _ = bob.Received(f, id, content)

	// Bob reads it and sends a receipt.
	hash, err := bob.ReceiptHash([][16]byte{id})
	if err != nil {
		panic(err)
	}

	// Alice checks the receipt, and one naming a message she never sent.
	fmt.Println("genuine:", alice.CheckReceipt([][16]byte{id}, hash))
	fmt.Println("other:", alice.CheckReceipt([][16]byte{{'z'}}, hash))
	// Output:
	// genuine: []
	// other: [receipt mismatch: 1 ids]
}

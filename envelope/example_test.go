package envelope_test

import (
	"fmt"

	"github.com/sealpost/sealpost/envelope"
)

// A relay routes on the header alone: it reads the mailbox and the tag and
// stores the envelope for that mailbox, without any key.
func ExampleParse() {
	raw := build([]byte("bob-mailbox"), 0, 256) // as received from a sender

	h, err := envelope.Parse(raw)
	if err != nil {
		fmt.Println("refuse:", err)
		return
	}
	fmt.Printf("deliver %d bytes to mailbox %q (tag %x...)\n", len(raw), h.Mailbox, h.Tag[:4])

	_, err = envelope.Parse(raw[:10])
	fmt.Println("truncated:", err)
	// Output:
	// deliver 288 bytes to mailbox "bob-mailbox" (tag 00010203...)
	// truncated: sealpost: malformed input: envelope truncated
}

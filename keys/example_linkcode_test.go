package keys_test

import (
	"fmt"

	"github.com/sealpost/sealpost/keys"
)

// A new device shows its link code as a QR code; the approving device
// scans and parses it, and both show the short form for the user to
// compare before approving.
func ExampleParseLinkCode() {
	id := keys.GenerateIdentity()
	code, err := keys.NewLinkCode(keys.Address{User: "alice", Device: 2}, id.Public(), "laptop")
	if err != nil {
		panic(err)
	}
	scanned, err := keys.ParseLinkCode(code.Bytes())
	if err != nil {
		panic(err)
	}
	fmt.Println(scanned.Address, scanned.Name, scanned.Short() == code.Short(), len(scanned.Short()))
	// Output: alice.2 laptop true 14
}

// Two accounts compare one safety number, whatever devices they add.
func ExampleAccountSafetyNumber() {
	alice, bob := keys.GenerateAccountKey(), keys.GenerateAccountKey()
	a := keys.AccountSafetyNumber(alice.Public(), "alice", bob.Public(), "bob")
	b := keys.AccountSafetyNumber(bob.Public(), "bob", alice.Public(), "alice")
	fmt.Println(a == b, len(a))
	// Output: true 71
}

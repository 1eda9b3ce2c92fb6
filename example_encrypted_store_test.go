package sealpost_test

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/sealpost/sealpost"
)

// An app keeps the store key in the platform keychain and wraps its durable
// store, so a copy of the store reveals no contact and no key.
func ExampleNewEncryptedStore() {
	ctx := context.Background()
	key := make([]byte, sealpost.EncryptedStoreKeySize)
	rand.Read(key) // in an app: created once, kept in the keychain

	disk := sealpost.NewMemoryStore() // in an app: its bbolt or SQLite store
	store, err := sealpost.NewEncryptedStore(disk, key)
	if err != nil {
		panic(err)
	}
	dev, err := sealpost.Open(ctx, store, sealpost.Address{User: "alice", Device: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(dev.Address())
	for name := range disk.Snapshot() {
		if name == "device" {
			fmt.Println("a plaintext name reached the disk")
		}
	}
	// Output: alice.1
}

// An app checks its own Store implementation against the contract a Device
// relies on, in its tests.
func ExampleCheckStore() {
	if err := sealpost.CheckStore(context.Background(), sealpost.NewMemoryStore()); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the store keeps the contract")
	// Output: the store keeps the contract
}

package keys_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/sealpost/sealpost/keys"
)

// An account's first device makes the account key and signs a list with
// itself on it; linking a laptop signs the next list. A peer parses each
// list it is served and keeps the newest that Follows the one it pinned.
func ExampleNewDeviceList() {
	account := keys.GenerateAccountKey() // kept by the user's devices only
	phone, laptop := keys.GenerateIdentity(), keys.GenerateIdentity()
	now := time.Now()
	v1, err := keys.NewDeviceList(account, nil, now, now.Add(30*24*time.Hour),
		[]keys.ListedDevice{{ID: 1, Identity: phone.Public(), Name: "Anna's phone"}})
	if err != nil {
		log.Fatal(err)
	}
	v2, err := keys.NewDeviceList(account, v1, now, now.Add(30*24*time.Hour), []keys.ListedDevice{
		{ID: 1, Identity: phone.Public(), Name: "Anna's phone"},
		{ID: 2, Identity: laptop.Public(), Name: "Anna's laptop"},
	})
	if err != nil {
		log.Fatal(err)
	}
	// A peer: parse what the relay serves, check it follows the pinned one.
	pinned, err := keys.ParseDeviceList(v1.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	served, err := keys.ParseDeviceList(v2.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	if err := served.Follows(pinned); err != nil {
		log.Fatal(err)
	}
	fmt.Println("version", served.Version, "devices", len(served.Devices))
	// A relay serving the old list again is caught.
	fmt.Println("old list again:", errors.Is(pinned.Follows(served), keys.ErrRollback))
	// Output:
	// version 2 devices 2
	// old list again: true
}

// A relay (or a thief of the account key) that shows two different lists
// of one version is caught with both lists as evidence.
func ExampleForkError() {
	account := keys.GenerateAccountKey()
	phone, ghost := keys.GenerateIdentity(), keys.GenerateIdentity()
	now := time.Now()
	list := func(ids ...*keys.IdentityPrivateKey) *keys.DeviceList {
		var devices []keys.ListedDevice
		for i, id := range ids {
			devices = append(devices, keys.ListedDevice{ID: uint32(i + 1), Identity: id.Public(), Name: fmt.Sprint("device ", i+1)})
		}
		l, err := keys.NewDeviceList(account, nil, now, now.Add(time.Hour), devices)
		if err != nil {
			log.Fatal(err)
		}
		return l
	}
	honest, forked := list(phone), list(phone, ghost)
	var fork *keys.ForkError
	if errors.As(forked.Follows(honest), &fork) {
		fmt.Println("fork at version", fork.Pinned.Version, "with", len(fork.Other.Devices), "devices against", len(fork.Pinned.Devices))
	}
	// Output: fork at version 1 with 2 devices against 1
}

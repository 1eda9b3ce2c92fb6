package sealpost_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// exampleDeviceAt opens the device at addr on a new memory store.
func exampleDeviceAt(user string, device uint32) *sealpost.Device {
	d, err := sealpost.Open(context.Background(), sealpost.NewMemoryStore(), sealpost.Address{User: user, Device: device},
		sealpost.WithClock(exampleClock), sealpost.WithReceiptDelay(0, 0))
	if err != nil {
		panic(err)
	}
	return d
}

// exampleLink links laptop to phone's account as the app would: the laptop
// shows its link code, the phone scans it, the user compares the short
// forms, and the phone approves with the laptop's bundle from the relay.
// The laptop then receives its provisioning.
func exampleLink(phone, laptop *sealpost.Device, name string) *sealpost.Approval {
	ctx := context.Background()
	code, err := laptop.LinkCode(ctx, name)
	if err != nil {
		panic(err)
	}
	scanned, err := keys.ParseLinkCode(code.Bytes()) // from the QR code
	if err != nil {
		panic(err)
	}
	if scanned.Short() != code.Short() {
		panic("the short forms differ: do not approve")
	}
	ap, err := phone.Approve(ctx, scanned, exampleBundle(laptop), sealpost.ApproveOptions{})
	if err != nil {
		panic(err)
	}
	in, err := laptop.Receive(ctx, ap.Provision.Envelope)
	if err != nil {
		panic(err)
	}
	if err := laptop.Done(ctx, in.ID); err != nil {
		panic(err)
	}
	return ap
}

// A phone makes an account and links a laptop. Approve signs the next
// device list, and returns it (for the relay), the notices for the phone's
// peers and the provisioning for the laptop, to post in that order.
func ExampleDevice_Approve() {
	ctx := context.Background()
	phone, laptop := exampleDeviceAt("alice", 1), exampleDeviceAt("alice", 2)
	if _, err := phone.NewAccount(ctx, "phone"); err != nil {
		panic(err)
	}
	ap := exampleLink(phone, laptop, "laptop")
	fmt.Println("list version:", ap.List.Version)
	l, err := laptop.DeviceList(ctx, "alice")
	if err != nil {
		panic(err)
	}
	for _, d := range l.Devices {
		fmt.Println(d.ID, d.Name)
	}
	fmt.Println("laptop holds the account key:", laptop.HoldsAccountKey())
	// Output:
	// list version: 2
	// 1 phone
	// 2 laptop
	// laptop holds the account key: false
}

// Bob sends to Alice's account: one envelope for each device of her
// pinned list, in one Apply. NeedSessions names the devices whose bundles
// to fetch first.
func ExampleDevice_SendUser() {
	ctx := context.Background()
	phone, laptop := exampleDeviceAt("alice", 1), exampleDeviceAt("alice", 2)
	bob := exampleDeviceAt("bob", 1)
	if _, err := phone.NewAccount(ctx, "phone"); err != nil {
		panic(err)
	}
	ap := exampleLink(phone, laptop, "laptop")
	// Bob fetches Alice's list from the relay and pins it.
	if _, err := bob.UpdateDeviceList(ctx, "alice", ap.List.Bytes()); err != nil {
		panic(err)
	}
	need, err := bob.NeedSessions(ctx, "alice")
	if err != nil {
		panic(err)
	}
	for _, addr := range need {
		dev := map[uint32]*sealpost.Device{1: phone, 2: laptop}[addr.Device]
		if err := bob.StartSession(ctx, addr, exampleBundle(dev)); err != nil {
			panic(err)
		}
	}
	outs, err := bob.SendUser(ctx, "alice", []byte("see you both at noon"))
	if err != nil {
		panic(err)
	}
	for _, o := range outs {
		dev := map[uint32]*sealpost.Device{1: phone, 2: laptop}[o.To.Device]
		in, err := dev.Receive(ctx, o.Envelope)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s got %q from %s\n", o.To, in.Body, in.From)
	}
	// Output:
	// alice.1 got "see you both at noon" from bob.1
	// alice.2 got "see you both at noon" from bob.1
}

// The relay serves Bob a list of Alice's account with a device of its own
// added: the signature no longer verifies, the list is refused and kept as
// a finding, and nothing is ever encrypted to the ghost.
func ExampleDevice_UpdateDeviceList() {
	ctx := context.Background()
	phone, bob := exampleDeviceAt("alice", 1), exampleDeviceAt("bob", 1)
	list, err := phone.NewAccount(ctx, "phone")
	if err != nil {
		panic(err)
	}
	if _, err := bob.UpdateDeviceList(ctx, "alice", list.Bytes()); err != nil {
		panic(err)
	}
	forged := list.Bytes()
	forged[len(forged)-64-5] = 'P' // the relay renames "phone" (the signature covers it)
	_, err = bob.UpdateDeviceList(ctx, "alice", forged)
	fmt.Println(errors.Is(err, sealpost.ErrBadSignature))
	findings, err := bob.AccountFindings(ctx, "alice")
	if err != nil {
		panic(err)
	}
	fmt.Println(findings[0].Kind)
	ghost := exampleDeviceAt("alice", 9)
	err = bob.StartSession(ctx, ghost.Address(), exampleBundle(ghost))
	fmt.Println(errors.Is(err, sealpost.ErrUnlistedDevice))
	// Output:
	// true
	// device list refused
	// true
}

// Removing a device signs a list without it and notifies the peers; from
// then on nobody who holds the new list encrypts to it.
func ExampleDevice_RemoveDevice() {
	ctx := context.Background()
	phone, laptop := exampleDeviceAt("alice", 1), exampleDeviceAt("alice", 2)
	if _, err := phone.NewAccount(ctx, "phone"); err != nil {
		panic(err)
	}
	exampleLink(phone, laptop, "laptop")
	ap, err := phone.RemoveDevice(ctx, 2)
	if err != nil {
		panic(err)
	}
	fmt.Println("list version:", ap.List.Version, "devices:", len(ap.List.Devices))
	_, err = phone.Send(ctx, laptop.Address(), []byte("still there?"))
	fmt.Println(errors.Is(err, sealpost.ErrUnlistedDevice))
	// Output:
	// list version: 3 devices: 1
	// true
}

// Reading a message on one device: the read receipt goes to its sender,
// and the account's other devices hear that it was read.
func ExampleDevice_MarkRead() {
	ctx := context.Background()
	phone, laptop := exampleDeviceAt("alice", 1), exampleDeviceAt("alice", 2)
	bob := exampleDeviceAt("bob", 1)
	if _, err := phone.NewAccount(ctx, "phone"); err != nil {
		panic(err)
	}
	exampleLink(phone, laptop, "laptop")
	if err := bob.StartSession(ctx, phone.Address(), exampleBundle(phone)); err != nil {
		panic(err)
	}
	in, err := phone.Receive(ctx, mustSend(bob.Send(ctx, phone.Address(), []byte("hi"))).Envelope)
	if err != nil {
		panic(err)
	}
	syncs, err := phone.MarkRead(ctx, bob.Address(), in.ID)
	if err != nil {
		panic(err)
	}
	got, err := laptop.Receive(ctx, syncs[0].Envelope)
	if err != nil {
		panic(err)
	}
	fmt.Println(got.Kind, got.Sync, got.SyncFor, got.Read[0] == in.ID)
	// Output: read true bob true
}

package sealpost_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// acWorld is two accounts, alice (phone 1, laptop 2) and bob (phone 1,
// tablet 2), each laptop and tablet linked through the relay, with every
// session SendUser needs between them.
type acWorld struct {
	c                        *clock
	r                        *acRelay
	alice1, alice2           *acDevice
	bob1, bob2               *acDevice
	aliceList, bobList       *keys.DeviceList
	all                      []*acDevice
	aliceAccount, bobAccount keys.PublicAccountKey
}

func newACWorld(t testing.TB) *acWorld {
	t.Helper()
	w := &acWorld{c: newClock(), r: newACRelay()}
	w.alice1 = acOpen(t, sealpost.Address{User: "alice", Device: 1}, w.c)
	w.alice2 = acOpen(t, sealpost.Address{User: "alice", Device: 2}, w.c)
	w.bob1 = acOpen(t, sealpost.Address{User: "bob", Device: 1}, w.c)
	w.bob2 = acOpen(t, sealpost.Address{User: "bob", Device: 2}, w.c)
	w.all = []*acDevice{w.alice1, w.alice2, w.bob1, w.bob2}
	acAccount(t, w.alice1, "alice's phone")
	acAccount(t, w.bob1, "bob's phone")
	w.aliceList = acLink(t, w.r, w.alice1, w.alice2, "alice's laptop", true).List
	w.bobList = acLink(t, w.r, w.bob1, w.bob2, "bob's tablet", false).List
	for _, d := range []*acDevice{w.alice2, w.bob2} {
		in := w.r.drain(t, d)
		if len(in) != 1 || in[0].Provisioned == nil || in[0].Kind != sealpost.KindAccount {
			t.Fatalf("%s: provisioning not received: %+v", d.addr, in)
		}
	}
	// Each side fetches the other's list from the relay and starts the
	// sessions a fan-out needs.
	for _, d := range []*acDevice{w.alice1, w.alice2} {
		if _, err := d.UpdateDeviceList(ctx, "bob", w.bobList.Bytes()); err != nil {
			t.Fatal(err)
		}
		acConnectAll(t, d, "bob", w.all...)
	}
	for _, d := range []*acDevice{w.bob1, w.bob2} {
		if _, err := d.UpdateDeviceList(ctx, "alice", w.aliceList.Bytes()); err != nil {
			t.Fatal(err)
		}
		acConnectAll(t, d, "alice", w.all...)
	}
	w.aliceAccount, w.bobAccount = w.aliceList.Account, w.bobList.Account
	return w
}

// sendUser has from send body to user and posts every envelope.
func (w *acWorld) sendUser(t testing.TB, from *acDevice, user, body string) []*sealpost.Outgoing {
	t.Helper()
	outs, err := from.SendUser(ctx, user, []byte(body))
	if err != nil {
		t.Fatalf("%s SendUser(%s): %v", from.addr, user, err)
	}
	w.r.post(t, from, outs...)
	return outs
}

// TestSendUserFansOut: a message to an account reaches each of its listed
// devices and each of the sender's other devices (a sync copy naming the
// recipient), under one id, with one Apply for all of it.
func TestSendUserFansOut(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all { // the notices and first contacts so far
		w.r.drain(t, d)
	}
	before := w.alice1.fs.applies
	outs := w.sendUser(t, w.alice1, "bob", "hello, all of you")
	if got := w.alice1.fs.applies - before; got != 2 { // SendUser, then Sent
		t.Fatalf("SendUser and Sent made %d Applies, want 2", got)
	}
	want := []sealpost.Address{w.bob1.addr, w.bob2.addr, w.alice2.addr}
	if got := acTo(outs); !slices.Equal(got, want) {
		t.Fatalf("fan-out to %v, want %v", got, want)
	}
	for _, o := range outs[1:] {
		if o.ID != outs[0].ID {
			t.Fatal("the copies carry different message ids")
		}
	}
	for _, d := range []*acDevice{w.bob1, w.bob2} {
		in := w.r.drain(t, d)
		if len(in) != 1 || string(in[0].Body) != "hello, all of you" || in[0].From != w.alice1.addr || in[0].Sync {
			t.Fatalf("%s got %+v", d.addr, in)
		}
	}
	in := w.r.drain(t, w.alice2)
	if len(in) != 1 || !in[0].Sync || in[0].SyncFor != "bob" || in[0].From != w.alice1.addr || in[0].ID != outs[0].ID {
		t.Fatalf("alice's laptop got %+v, want a sync copy of the message to bob", in)
	}
	// Bob's tablet answers the account; both of alice's devices get it.
	w.sendUser(t, w.bob2, "alice", "hi alice")
	for _, d := range []*acDevice{w.alice1, w.alice2} {
		in := w.r.drain(t, d)
		if len(in) != 1 || string(in[0].Body) != "hi alice" || in[0].From != w.bob2.addr {
			t.Fatalf("%s got %+v", d.addr, in)
		}
	}
	// Safety numbers over account keys: the same on every device.
	var nums []string
	for _, pair := range [][2]any{{w.alice1, "bob"}, {w.alice2, "bob"}, {w.bob1, "alice"}, {w.bob2, "alice"}} {
		n, err := pair[0].(*acDevice).AccountSafetyNumber(ctx, pair[1].(string))
		if err != nil {
			t.Fatal(err)
		}
		nums = append(nums, n)
	}
	for _, n := range nums[1:] {
		if n != nums[0] {
			t.Fatalf("account safety numbers differ: %q", nums)
		}
	}
}

// TestSendUserMissingSessions: a listed device without a session stops
// the fan-out with a MissingSessionsError naming it, before any key is
// spent.
func TestSendUserMissingSessions(t *testing.T) {
	c := newClock()
	r := newACRelay()
	alice := acOpen(t, sealpost.Address{User: "alice", Device: 1}, c)
	bob1 := acOpen(t, sealpost.Address{User: "bob", Device: 1}, c)
	bob2 := acOpen(t, sealpost.Address{User: "bob", Device: 2}, c)
	acAccount(t, bob1, "phone")
	list := acLink(t, r, bob1, bob2, "tablet", false).List
	if _, err := alice.SendUser(ctx, "bob", []byte("x")); !errors.Is(err, sealpost.ErrNoAccount) {
		t.Fatalf("SendUser without a list: %v, want ErrNoAccount", err)
	}
	if _, err := alice.UpdateDeviceList(ctx, "bob", list.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := alice.StartSession(ctx, bob1.addr, acBundle(t, bob1)); err != nil {
		t.Fatal(err)
	}
	before := alice.store.Snapshot()
	_, err := alice.SendUser(ctx, "bob", []byte("x"))
	var missing *sealpost.MissingSessionsError
	if !errors.As(err, &missing) || !errors.Is(err, sealpost.ErrNoSession) || !slices.Equal(missing.Devices, []sealpost.Address{bob2.addr}) {
		t.Fatalf("SendUser with a device missing: %v", err)
	}
	acFails(t, "SendUser with a device missing", err, sealpost.ErrNoSession, alice, before)
}

// TestSingleDeviceAccountsInterwork: a device without an account and one
// with an account talk as before, and the one without pins the other's
// account from her first content after his answer (a stranger's first
// contact pins nothing: pending peers are evicted, a pin would outlive
// them).
func TestSingleDeviceAccountsInterwork(t *testing.T) {
	c := newClock()
	r := newACRelay()
	alice := acOpen(t, sealpost.Address{User: "alice", Device: 1}, c)
	bob := acOpen(t, sealpost.Address{User: "bob", Device: 1}, c)
	list := acAccount(t, alice, "phone")
	if err := alice.StartSession(ctx, bob.addr, acBundle(t, bob)); err != nil {
		t.Fatal(err)
	}
	out, err := alice.Send(ctx, bob.addr, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	r.post(t, alice, out)
	in := r.drain(t, bob)
	if len(in) != 1 || in[0].Devices != nil {
		t.Fatalf("bob pinned a stranger's account from her first contact: %+v", in)
	}
	if _, err := bob.DeviceList(ctx, "alice"); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("DeviceList before bob answered: %v", err)
	}
	out, err = bob.Send(ctx, alice.addr, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	r.post(t, bob, out)
	if in := r.drain(t, alice); len(in) != 1 || string(in[0].Body) != "hello" {
		t.Fatalf("alice got %+v", in)
	}
	out, err = alice.Send(ctx, bob.addr, []byte("how are you"))
	if err != nil {
		t.Fatal(err)
	}
	r.post(t, alice, out)
	in = r.drain(t, bob)
	if len(in) != 1 || in[0].Devices == nil || !in[0].Devices.First || in[0].Devices.Version != list.Version {
		t.Fatalf("bob did not pin alice's account after answering: %+v", in)
	}
	got, err := bob.DeviceList(ctx, "alice")
	if err != nil || got.Hash() != list.Hash() {
		t.Fatalf("bob's pinned list: %v", err)
	}
	if _, err := bob.DeviceList(ctx, "carol"); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("DeviceList of an unknown user: %v", err)
	}
	if _, err := bob.AccountSafetyNumber(ctx, "alice"); !errors.Is(err, sealpost.ErrNoAccount) {
		t.Fatalf("AccountSafetyNumber without our own account: %v", err)
	}
}

// TestGhostDevice is the compelled-operator attack of docs/SPEC.md §22:
// the relay serves bob a list of alice's account with a device of its
// own, by every means it has. Each list is refused with its typed error
// and kept as a finding, nothing is ever encrypted to the ghost (whose
// bundle StartSession refuses, and whose messages Receive refuses), and
// messages to alice's real devices still flow.
func TestGhostDevice(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	ghostAddr := sealpost.Address{User: "alice", Device: 9}
	ghost := acOpen(t, ghostAddr, w.c)
	ghostEntry := keys.ListedDevice{ID: 9, Identity: ghost.Identity(), Name: "alice's laptop"}
	relayKey := keys.GenerateAccountKey()
	withGhost := append(slices.Clone(w.aliceList.Devices), ghostEntry)
	relaySigned, err := keys.NewDeviceList(relayKey, nil, w.c.now(), acLater(w.c), withGhost)
	if err != nil {
		t.Fatal(err)
	}
	// A list whose laptop entry the relay swapped for its ghost, in place.
	swapped := slices.Clone(w.aliceList.Bytes())
	lap := w.alice2.Identity().Bytes()
	at := -1
	for i := 0; i+len(lap) <= len(swapped); i++ {
		if string(swapped[i:i+len(lap)]) == string(lap) {
			at = i
		}
	}
	if at < 0 {
		t.Fatal("the laptop's identity is not in the list")
	}
	copy(swapped[at:], ghost.Identity().Bytes())
	// An older list, correctly signed: the one before the laptop's link.
	older := w.alice1.firstList.Bytes()

	cases := []struct {
		name string
		raw  []byte
		want error
		kind sealpost.AccountFindingKind
	}{
		{"extra device, not signed by the account key", appendGhost(w.aliceList.Bytes(), ghostEntry), sealpost.ErrBadSignature, sealpost.ListRefused},
		{"a device swapped in place", swapped, sealpost.ErrBadSignature, sealpost.ListRefused},
		{"signed by the relay's own account key", relaySigned.Bytes(), sealpost.ErrWrongAccount, sealpost.AccountKeyChanged},
		{"an older list, correctly signed", older, sealpost.ErrRollback, sealpost.ListRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.bob1.UpdateDeviceList(ctx, "alice", tc.raw)
			if !errors.Is(err, tc.want) {
				t.Fatalf("UpdateDeviceList: %v, want %v", err, tc.want)
			}
			if !acHasFinding(t, w.bob1, "alice", tc.kind) {
				t.Fatalf("no %v finding", tc.kind)
			}
			pinned, err := w.bob1.DeviceList(ctx, "alice")
			if err != nil || pinned.Hash() != w.aliceList.Hash() {
				t.Fatalf("the pinned list changed: %v", err)
			}
		})
	}
	// The ghost's bundle is refused, whatever the relay hands out.
	before := w.bob1.store.Snapshot()
	err = w.bob1.StartSession(ctx, ghostAddr, acBundle(t, ghost))
	acFails(t, "StartSession with the ghost's bundle", err, sealpost.ErrUnlistedDevice, w.bob1, before)
	// A message from the ghost is refused, changing nothing.
	if err := ghost.StartSession(ctx, w.bob1.addr, acBundle(t, w.bob1)); err != nil {
		t.Fatal(err)
	}
	out, err := ghost.Send(ctx, w.bob1.addr, []byte("I am alice's laptop"))
	if err != nil {
		t.Fatal(err)
	}
	before = w.bob1.store.Snapshot()
	_, err = w.bob1.Receive(ctx, out.Envelope)
	acFails(t, "Receive from the ghost", err, sealpost.ErrUnlistedDevice, w.bob1, before)
	if sealpost.ClassifyReceive(err) != sealpost.Hold {
		t.Fatalf("ClassifyReceive(%v) = %v, want Hold", err, sealpost.ClassifyReceive(err))
	}
	// Messages to the real devices still flow, and none to the ghost.
	outs := w.sendUser(t, w.bob1, "alice", "still here")
	if got := acTo(outs); slices.Contains(got, ghostAddr) || len(got) != 3 {
		t.Fatalf("bob's fan-out went to %v", got)
	}
	for _, o := range w.r.posted {
		if string(o.Mailbox) == string(ghost.Mailbox()) {
			t.Fatalf("an envelope went to the ghost's mailbox: %v", o.To)
		}
	}
	for _, d := range []*acDevice{w.alice1, w.alice2} {
		if in := w.r.drain(t, d); len(in) != 1 || string(in[0].Body) != "still here" {
			t.Fatalf("%s got %+v", d.addr, in)
		}
	}
}

// appendGhost returns raw, a signed list, with a device entry inserted
// after the others and the count raised: the signature no longer covers
// it.
func appendGhost(raw []byte, dev keys.ListedDevice) []byte {
	const countAt = 1 + keys.PublicAccountKeySize + 8 + 32 + 8 + 8
	sig := raw[len(raw)-64:]
	out := slices.Clone(raw[:len(raw)-64])
	out[countAt]++
	out = append(out, byte(dev.ID>>24), byte(dev.ID>>16), byte(dev.ID>>8), byte(dev.ID))
	out = append(out, dev.Identity.Bytes()...)
	out = append(out, byte(len(dev.Name)))
	out = append(out, dev.Name...)
	return append(out, sig...)
}

// TestReadSyncAndDelivery: reading on one device tells the account's other
// devices (read-sync), the read receipt goes to the sending device, and
// the sender's Delivery summarises which devices acknowledged a message.
func TestReadSyncAndDelivery(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	outs := w.sendUser(t, w.alice1, "bob", "read me")
	id := outs[0].ID
	st, err := w.alice1.Delivery(ctx, "bob", id)
	if err != nil || len(st.Sent) != 2 || len(st.Delivered) != 0 {
		t.Fatalf("Delivery before any answer: %+v %v", st, err)
	}
	w.r.drain(t, w.bob1)
	w.r.drain(t, w.bob2)
	w.r.drain(t, w.alice2)
	// Bob reads it on his phone: his tablet hears of it, alice's phone
	// gets the read receipt.
	syncs, err := w.bob1.MarkRead(ctx, w.alice1.addr, id)
	if err != nil || !slices.Equal(acTo(syncs), []sealpost.Address{w.bob2.addr}) {
		t.Fatalf("MarkRead: %v %v", acTo(syncs), err)
	}
	w.r.post(t, w.bob1, syncs...)
	in := w.r.drain(t, w.bob2)
	if len(in) != 1 || in[0].Kind != sealpost.KindRead || !in[0].Sync || in[0].SyncFor != "alice" || !slices.Equal(in[0].Read, []sealpost.MessageID{id}) {
		t.Fatalf("the tablet's read sync: %+v", in)
	}
	w.r.flush(t, w.bob1)
	w.r.flush(t, w.bob2)
	var read bool
	for _, in := range w.r.drain(t, w.alice1) {
		read = read || slices.Contains(in.Read, id)
	}
	if !read {
		t.Fatal("alice's phone got no read receipt")
	}
	st, err = w.alice1.Delivery(ctx, "bob", id)
	if err != nil || len(st.Sent) != 2 || len(st.Delivered) != 2 {
		t.Fatalf("Delivery after both answered: %+v %v", st, err)
	}
}

// TestListVersionsInBand: a device that learns from a peer's content that
// a newer list of its own account exists is told to refresh, and a peer
// that holds an older list of ours gets ours with our next content.
func TestListVersionsInBand(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	// Alice's phone links a third device; bob's phone fetches the new
	// list from the relay, but alice's laptop has not heard yet.
	alice3 := acOpen(t, sealpost.Address{User: "alice", Device: 3}, w.c)
	code, err := alice3.LinkCode(ctx, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	ap, err := w.alice1.Approve(ctx, code, acBundle(t, alice3), sealpost.ApproveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	change, err := w.bob1.UpdateDeviceList(ctx, "alice", ap.List.Bytes())
	if err != nil || change == nil || len(change.Added) != 1 || change.Added[0].ID != 3 {
		t.Fatalf("bob's update: %+v %v", change, err)
	}
	// The laptop writes to bob, carrying version 2 of its own list; bob
	// holds 3 and says so in his answer; the laptop is told to refresh.
	out, err := w.alice2.Send(ctx, w.bob1.addr, []byte("from the laptop"))
	if err != nil {
		t.Fatal(err)
	}
	w.r.post(t, w.alice2, out)
	w.r.drain(t, w.bob1)
	w.r.flush(t, w.bob1)
	got := w.r.drain(t, w.alice2)
	if len(got) == 0 || !slices.Contains(got[len(got)-1].Refresh, "alice") {
		t.Fatalf("the laptop was not told to refresh its own list: %+v", got)
	}
	if _, err := w.alice2.UpdateDeviceList(ctx, "alice", ap.List.Bytes()); err != nil {
		t.Fatal(err)
	}
	// Bob's tablet still holds version 2 of alice's list: alice's next
	// content to it carries version 3, and the tablet pins it.
	out, err = w.alice1.Send(ctx, w.bob2.addr, []byte("hi tablet"))
	if err != nil {
		t.Fatal(err)
	}
	w.r.post(t, w.alice1, out)
	in := w.r.drain(t, w.bob2)
	if len(in) != 1 || in[0].Devices == nil || in[0].Devices.Version != ap.List.Version {
		t.Fatalf("bob's tablet did not take the newer list from the content: %+v", in)
	}
	// An older list in-band (a device that had not heard yet) is lag, not
	// an attack: nobody noted a refusal.
	for _, d := range []*acDevice{w.bob1, w.bob2} {
		if acHasFinding(t, d, "alice", sealpost.ListRefused) {
			t.Fatalf("%s noted a refused list", d.addr)
		}
	}
}

// TestReinstallWithLostAccountKey: bob reinstalls and his account key is
// gone, so he makes a new account: alice's devices refuse the new list as
// the identity change it is, until alice trusts it on one device; the
// decision follows to her other device, and the safety number changes.
func TestReinstallWithLostAccountKey(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	oldNumber, err := w.alice1.AccountSafetyNumber(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	newBob := acOpen(t, w.bob1.addr, w.c)
	fresh := acAccount(t, newBob, "bob's new phone")
	if _, err := w.alice1.UpdateDeviceList(ctx, "bob", fresh.Bytes()); !errors.Is(err, sealpost.ErrWrongAccount) {
		t.Fatalf("a list of bob's new account key: %v, want ErrWrongAccount", err)
	}
	if !acHasFinding(t, w.alice1, "bob", sealpost.AccountKeyChanged) {
		t.Fatal("no AccountKeyChanged finding for the list of another key")
	}
	if n, _ := w.alice1.AccountSafetyNumber(ctx, "bob"); n != oldNumber {
		t.Fatal("a refused list changed the safety number")
	}
	change, syncs, err := w.alice1.TrustAccount(ctx, "bob", fresh.Bytes())
	if err != nil || change == nil || !change.First || !slices.Equal(acTo(syncs), []sealpost.Address{w.alice2.addr}) {
		t.Fatalf("TrustAccount: %+v %v %v", change, acTo(syncs), err)
	}
	w.r.post(t, w.alice1, syncs...)
	in := w.r.drain(t, w.alice2)
	if len(in) != 1 || in[0].Kind != sealpost.KindAccount || !in[0].Sync || in[0].SyncFor != "bob" || in[0].Devices == nil || in[0].Devices.User != "bob" {
		t.Fatalf("the laptop's trust sync: %+v", in)
	}
	if !acHasFinding(t, w.alice2, "bob", sealpost.AccountKeyTrusted) {
		t.Fatal("the laptop has no AccountKeyTrusted finding")
	}
	n1, err1 := w.alice1.AccountSafetyNumber(ctx, "bob")
	n2, err2 := w.alice2.AccountSafetyNumber(ctx, "bob")
	nb, err3 := newBob.AccountSafetyNumber(ctx, "alice")
	if err3 != nil {
		// Bob's new phone has not pinned alice yet.
		if _, err := newBob.UpdateDeviceList(ctx, "alice", w.aliceList.Bytes()); err != nil {
			t.Fatal(err)
		}
		nb, err3 = newBob.AccountSafetyNumber(ctx, "alice")
	}
	if err1 != nil || err2 != nil || err3 != nil || n1 != n2 || n1 != nb || n1 == oldNumber {
		t.Fatalf("safety numbers after the trust: %q %q %q (old %q) %v %v %v", n1, n2, nb, oldNumber, err1, err2, err3)
	}
}

// TestAccountStoreFailures: when the store fails, SendUser, MarkRead,
// Approve, RemoveDevice and UpdateDeviceList change nothing and release
// nothing; once it recovers the same calls work, and what was sent after
// a failed fan-out decrypts everywhere with no finding (no key reused, no
// gap in the transcripts).
func TestAccountStoreFailures(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	a := w.alice1
	alice3 := acOpen(t, sealpost.Address{User: "alice", Device: 3}, w.c)
	code, err := alice3.LinkCode(ctx, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	in := w.r.drain(t, a) // nothing queued; keeps the helper honest
	if len(in) != 0 {
		t.Fatalf("unexpected %+v", in)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"SendUser", func() error { _, err := a.SendUser(ctx, "bob", []byte("x")); return err }},
		{"Approve", func() error {
			_, err := a.Approve(ctx, code, acBundle(t, alice3), sealpost.ApproveOptions{})
			return err
		}},
		{"RemoveDevice", func() error { _, err := a.RemoveDevice(ctx, 2); return err }},
		{"UpdateDeviceList", func() error { _, err := a.UpdateDeviceList(ctx, "bob", acFlip(w.bobList.Bytes(), 60)); return err }},
		{"TrustAccount", func() error {
			other := acOpen(t, sealpost.Address{User: "carol", Device: 1}, w.c)
			l := acAccount(t, other, "carol's phone")
			_, _, err := a.TrustAccount(ctx, "carol", l.Bytes())
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			before := a.store.Snapshot()
			a.fs.fail = true
			err := c.call()
			a.fs.fail = false
			if err == nil {
				t.Fatal("no error from a failing store")
			}
			if diff := dmStoreDiff(before, a.store.Snapshot()); diff != "" {
				t.Fatalf("the store changed: %s", diff)
			}
		})
	}
	if unsent, err := a.Unsent(ctx); err != nil || len(unsent) != 0 {
		t.Fatalf("a failed call left %d envelopes in the outbox (%v)", len(unsent), err)
	}
	outs := w.sendUser(t, a, "bob", "after the failures")
	if len(outs) != 3 {
		t.Fatalf("fan-out to %v", acTo(outs))
	}
	for _, d := range []*acDevice{w.bob1, w.bob2, w.alice2} {
		in := w.r.drain(t, d)
		if len(in) != 1 || string(in[0].Body) != "after the failures" || len(in[0].Findings) != 0 {
			t.Fatalf("%s got %+v", d.addr, in)
		}
	}
	// The same read of what arrived works after a failed one.
	w.sendUser(t, w.bob1, "alice", "read me")
	got := w.r.drain(t, a)
	w.r.drain(t, w.alice2)
	before := a.store.Snapshot()
	a.fs.fail = true
	_, err = a.MarkRead(ctx, w.bob1.addr, got[0].ID)
	a.fs.fail = false
	if err == nil || dmStoreDiff(before, a.store.Snapshot()) != "" {
		t.Fatalf("MarkRead with a failing store: %v", err)
	}
	syncs, err := a.MarkRead(ctx, w.bob1.addr, got[0].ID)
	if err != nil || len(syncs) != 1 {
		t.Fatalf("MarkRead after the store recovered: %v", err)
	}
}

// TestDeviceListFork: two devices holding the account key each sign a
// next list without having heard of the other's (or a thief of the key
// does): a peer that is served both has the evidence, a ListFork finding
// with both lists, keeps the one it pinned, and encrypts to no device only
// the other names.
func TestDeviceListFork(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	if !w.alice2.HoldsAccountKey() {
		t.Fatal("the laptop should hold the account key")
	}
	alice3 := acOpen(t, sealpost.Address{User: "alice", Device: 3}, w.c)
	alice4 := acOpen(t, sealpost.Address{User: "alice", Device: 4}, w.c)
	code3, err := alice3.LinkCode(ctx, "tablet")
	if err != nil {
		t.Fatal(err)
	}
	code4, err := alice4.LinkCode(ctx, "tv")
	if err != nil {
		t.Fatal(err)
	}
	ap3, err := w.alice1.Approve(ctx, code3, acBundle(t, alice3), sealpost.ApproveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ap4, err := w.alice2.Approve(ctx, code4, acBundle(t, alice4), sealpost.ApproveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ap3.List.Version != ap4.List.Version {
		t.Fatalf("versions %d and %d", ap3.List.Version, ap4.List.Version)
	}
	if _, err := w.bob1.UpdateDeviceList(ctx, "alice", ap3.List.Bytes()); err != nil {
		t.Fatal(err)
	}
	_, err = w.bob1.UpdateDeviceList(ctx, "alice", ap4.List.Bytes())
	var fork *keys.ForkError
	if !errors.As(err, &fork) || !errors.Is(err, sealpost.ErrFork) || fork.Pinned.Hash() != ap3.List.Hash() || fork.Other.Hash() != ap4.List.Hash() {
		t.Fatalf("the second list of version %d: %v", ap4.List.Version, err)
	}
	fs, err := w.bob1.AccountFindings(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	last := fs[len(fs)-1]
	if last.Kind != sealpost.ListFork || len(last.Evidence) != 2 {
		t.Fatalf("the fork finding: %+v", last)
	}
	if need, err := w.bob1.NeedSessions(ctx, "alice"); err != nil || slices.Contains(need, alice4.addr) {
		t.Fatalf("NeedSessions after the fork: %v %v", need, err)
	}
	err = w.bob1.StartSession(ctx, alice4.addr, acBundle(t, alice4))
	if !errors.Is(err, sealpost.ErrUnlistedDevice) {
		t.Fatalf("StartSession with the device only the other list names: %v", err)
	}
	// The fork also shows in-band: the laptop's notice carries its list.
	inBand := false
	for _, n := range ap4.Notices {
		if n.To == w.bob2.addr {
			inBand = true
			if _, err := w.bob2.UpdateDeviceList(ctx, "alice", ap3.List.Bytes()); err != nil {
				t.Fatal(err)
			}
			if _, err := w.bob2.Receive(ctx, n.Envelope); err != nil {
				t.Fatal(err)
			}
			if !acHasFinding(t, w.bob2, "alice", sealpost.ListFork) {
				t.Fatal("bob's tablet did not note the fork it received in-band")
			}
		}
	}
	if !inBand {
		t.Fatal("the laptop sent bob's tablet no notice")
	}
}

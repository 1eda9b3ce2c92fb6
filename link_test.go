package sealpost_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// TestLinkCodeFormat: a link code round-trips, its short form is stable
// for the same code, and every truncation or extension is refused.
func TestLinkCodeFormat(t *testing.T) {
	id := keys.GenerateIdentity().Public()
	code, err := keys.NewLinkCode(sealpost.Address{User: "alice", Device: 2}, id, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	raw := code.Bytes()
	got, err := keys.ParseLinkCode(raw)
	if err != nil || got.Address != code.Address || !got.Identity.Equal(id) || got.Name != "laptop" || got.Short() != code.Short() {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if len(code.Short()) != 14 {
		t.Fatalf("short form %q", code.Short())
	}
	for n := range len(raw) {
		if _, err := keys.ParseLinkCode(raw[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	if _, err := keys.ParseLinkCode(append(slices.Clone(raw), 0)); !errors.Is(err, keys.ErrMalformed) {
		t.Fatalf("extended: %v", err)
	}
	if _, err := keys.ParseLinkCode(acFlip(raw, 0)); !errors.Is(err, keys.ErrUnsupportedVersion) {
		t.Fatalf("format 0: %v", err)
	}
	other, _ := keys.NewLinkCode(code.Address, id, "laptop")
	if other.Short() == code.Short() {
		t.Fatal("two codes (two secrets) share a short form")
	}
	for _, bad := range []string{"", "tab\there", "\u202eevil"} {
		if _, err := keys.NewLinkCode(code.Address, id, bad); !errors.Is(err, keys.ErrMalformed) {
			t.Fatalf("name %q: %v", bad, err)
		}
	}
}

// TestLinkShowsEveryAddition: linking a device notifies every peer and own
// device before the new device can receive anything: a peer encrypts to
// it only once it holds a list naming it, which it reports as a change.
func TestLinkShowsEveryAddition(t *testing.T) {
	c := newClock()
	r := newACRelay()
	alice1 := acOpen(t, sealpost.Address{User: "alice", Device: 1}, c)
	alice2 := acOpen(t, sealpost.Address{User: "alice", Device: 2}, c)
	bob := acOpen(t, sealpost.Address{User: "bob", Device: 1}, c)
	acAccount(t, alice1, "phone")
	acAccount(t, bob, "bob's phone")
	// Bob and alice's phone talk; bob holds alice's first list.
	if err := bob.StartSession(ctx, alice1.addr, acBundle(t, alice1)); err != nil {
		t.Fatal(err)
	}
	outs, err := bob.SendUser(ctx, "alice", []byte("hi"))
	if !errors.Is(err, sealpost.ErrNoAccount) {
		t.Fatalf("SendUser before bob holds alice's list: %v %v", outs, err)
	}
	out, err := bob.Send(ctx, alice1.addr, []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	r.post(t, bob, out)
	r.drain(t, alice1)
	r.post(t, alice1, mustSend(alice1.Send(ctx, bob.addr, []byte("hello")))) // carries alice's list
	if in := r.drain(t, bob); len(in) != 1 || in[0].Devices == nil || !in[0].Devices.First {
		t.Fatalf("bob did not pin alice's account: %+v", in)
	}
	r.post(t, bob, mustSend(bob.Send(ctx, alice1.addr, []byte("ok")))) // alice answered: this one pins bob's
	r.drain(t, alice1)
	ap := acLink(t, r, alice1, alice2, "laptop", false)
	// Every notice is posted before the provisioning.
	pi := slices.Index(r.posted, ap.Provision)
	for _, n := range ap.Notices {
		if slices.Index(r.posted, n) > pi {
			t.Fatal("a notice was posted after the provisioning")
		}
	}
	if got := acTo(ap.Notices); !slices.Equal(got, []sealpost.Address{bob.addr}) {
		t.Fatalf("notices to %v, want bob", got)
	}
	// Until bob receives the notice, his fan-out does not include the
	// laptop: he has no list naming it.
	outs, err = bob.SendUser(ctx, "alice", []byte("before"))
	if err != nil || !slices.Equal(acTo(outs), []sealpost.Address{alice1.addr}) {
		t.Fatalf("bob's fan-out before the notice: %v %v", acTo(outs), err)
	}
	r.post(t, bob, outs...)
	in := r.drain(t, bob)
	if len(in) != 1 || in[0].Kind != sealpost.KindAccount || in[0].Devices == nil ||
		len(in[0].Devices.Added) != 1 || in[0].Devices.Added[0].ID != 2 || in[0].Devices.Added[0].Name != "laptop" {
		t.Fatalf("bob's notice: %+v", in)
	}
	fs, err := bob.AccountFindings(ctx, "alice")
	if err != nil || len(fs) != 1 || fs[0].Kind != sealpost.DeviceAdded || fs[0].Devices[0].Name != "laptop" || !fs[0].At.Equal(c.now()) {
		t.Fatalf("bob's findings: %+v %v", fs, err)
	}
	if need, err := bob.NeedSessions(ctx, "alice"); err != nil || !slices.Equal(need, []sealpost.Address{alice2.addr}) {
		t.Fatalf("NeedSessions after the notice: %v %v", need, err)
	}
	// The laptop: provisioned, and its own list names it.
	got := r.drain(t, alice2)
	if len(got) != 1 || got[0].Provisioned == nil || got[0].Provisioned.AccountKey || got[0].Provisioned.Accounts != 1 {
		t.Fatalf("the laptop's provisioning: %+v", got)
	}
	if alice2.HoldsAccountKey() {
		t.Fatal("the laptop holds the account key it was not given")
	}
	l, err := alice2.DeviceList(ctx, "alice")
	if err != nil || l.Hash() != ap.List.Hash() {
		t.Fatalf("the laptop's own list: %v", err)
	}
	if _, err := alice2.RemoveDevice(ctx, 1); !errors.Is(err, sealpost.ErrNoAccount) {
		t.Fatalf("RemoveDevice without the account key: %v", err)
	}
}

// TestLinkRelayStandIn: the relay tries to stand in for either side of a
// link. It replaces the identity of the new device's bundle; it forges a
// provisioning from a device of its own; it replays the real one; it
// sends the waiting device messages from a device of its own; it links a
// device of its own with its own account key. All fail with typed errors,
// changing nothing.
func TestLinkRelayStandIn(t *testing.T) {
	c := newClock()
	alice1 := acOpen(t, sealpost.Address{User: "alice", Device: 1}, c)
	alice2 := acOpen(t, sealpost.Address{User: "alice", Device: 2}, c)
	acAccount(t, alice1, "phone")
	code, err := alice2.LinkCode(ctx, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	// 1. The relay serves the bundle of its own device at the new
	// device's address.
	impostor := acOpen(t, alice2.addr, c)
	before := alice1.store.Snapshot()
	_, err = alice1.Approve(ctx, code, acBundle(t, impostor), sealpost.ApproveOptions{})
	acFails(t, "Approve with the impostor's bundle", err, sealpost.ErrIdentityChanged, alice1, before)

	// 2. A device the relay runs, with an account of its own, forges the
	// provisioning: it has the new device's identity, not the secret.
	relayDev := acOpen(t, sealpost.Address{User: "alice", Device: 5}, c)
	acAccount(t, relayDev, "relay")
	forged, err := keys.NewLinkCode(alice2.addr, alice2.Identity(), "laptop")
	if err != nil {
		t.Fatal(err)
	}
	fap, err := relayDev.Approve(ctx, forged, acBundle(t, alice2), sealpost.ApproveOptions{ShareAccountKey: true})
	if err != nil {
		t.Fatal(err)
	}
	before = alice2.store.Snapshot()
	_, err = alice2.Receive(ctx, fap.Provision.Envelope)
	acFails(t, "the forged provisioning", err, sealpost.ErrBadSignature, alice2, before)

	// 3. Messages from the relay's device while the new one waits.
	plain := acOpen(t, sealpost.Address{User: "alice", Device: 6}, c) // no account at all
	if err := plain.StartSession(ctx, alice2.addr, acBundle(t, alice2)); err != nil {
		t.Fatal(err)
	}
	out, err := plain.Send(ctx, alice2.addr, []byte("I am your phone"))
	if err != nil {
		t.Fatal(err)
	}
	before = alice2.store.Snapshot()
	_, err = alice2.Receive(ctx, out.Envelope)
	acFails(t, "a message from our user's device before the link", err, sealpost.ErrUnlistedDevice, alice2, before)

	// 4. The real link, then a replay of its provisioning.
	ap, err := alice1.Approve(ctx, code, acBundle(t, alice2), sealpost.ApproveOptions{ShareAccountKey: true})
	if err != nil {
		t.Fatal(err)
	}
	in, err := alice2.Receive(ctx, ap.Provision.Envelope)
	if err != nil || in.Provisioned == nil || !in.Provisioned.AccountKey {
		t.Fatalf("the real provisioning: %+v %v", in, err)
	}
	if err := alice2.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if !alice2.HoldsAccountKey() {
		t.Fatal("the laptop does not hold the account key it was given")
	}
	before = alice2.store.Snapshot()
	_, err = alice2.Receive(ctx, ap.Provision.Envelope)
	acFails(t, "the replayed provisioning", err, sealpost.ErrDuplicate, alice2, before)
	// Approving again (after a crash, say) provisions again; the linked
	// device refuses it.
	again, err := alice1.Approve(ctx, code, acBundle(t, alice2), sealpost.ApproveOptions{})
	if err != nil || again.List.Version != ap.List.Version {
		t.Fatalf("approving again: %v", err)
	}
	before = alice2.store.Snapshot()
	_, err = alice2.Receive(ctx, again.Provision.Envelope)
	acFails(t, "a second provisioning", err, sealpost.ErrDuplicate, alice2, before)
	// The forged provisioning, now that the device is linked.
	_, err = alice2.Receive(ctx, fap.Provision.Envelope)
	if !errors.Is(err, sealpost.ErrUnlistedDevice) && !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("the forged provisioning after the link: %v", err)
	}

	// 5. The relay links a device of its own: its list is signed by its
	// own key, which no device of alice's accepts, and its messages are
	// refused.
	if _, err := alice1.UpdateDeviceList(ctx, "alice", fap.List.Bytes()); !errors.Is(err, sealpost.ErrWrongAccount) {
		t.Fatalf("the relay's list of alice's account: %v", err)
	}
	if err := plain.StartSession(ctx, alice1.addr, acBundle(t, alice1)); err != nil {
		t.Fatal(err)
	}
	out, err = plain.Send(ctx, alice1.addr, []byte("I am your laptop"))
	if err != nil {
		t.Fatal(err)
	}
	before = alice1.store.Snapshot()
	_, err = alice1.Receive(ctx, out.Envelope)
	acFails(t, "a message from a device the relay linked", err, sealpost.ErrUnlistedDevice, alice1, before)
}

// TestRemovedDevice: after a removal nobody who holds the new list
// encrypts to the removed device, checked on the wire (no envelope posted
// after it can be opened by it), and what it still sends is refused.
func TestRemovedDevice(t *testing.T) {
	w := newACWorld(t)
	for _, d := range w.all {
		w.r.drain(t, d)
	}
	if _, err := w.bob2.RemoveDevice(ctx, 1); !errors.Is(err, sealpost.ErrNoAccount) {
		t.Fatalf("RemoveDevice on a device without the account key: %v", err)
	}
	if _, err := w.alice1.RemoveDevice(ctx, 1); !errors.Is(err, sealpost.ErrMalformed) {
		t.Fatalf("a device removing itself: %v", err)
	}
	if _, err := w.alice1.RemoveDevice(ctx, 7); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("removing an unlisted device: %v", err)
	}
	ap, err := w.alice1.RemoveDevice(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := acTo(ap.Notices); slices.Contains(got, w.alice2.addr) || len(got) != 2 {
		t.Fatalf("removal notices to %v", got)
	}
	mark := len(w.r.posted)
	w.r.post(t, w.alice1, ap.Notices...)
	for _, d := range []*acDevice{w.bob1, w.bob2} {
		in := w.r.drain(t, d)
		if len(in) != 1 || in[0].Devices == nil || len(in[0].Devices.Removed) != 1 || in[0].Devices.Removed[0].ID != 2 {
			t.Fatalf("%s's removal notice: %+v", d.addr, in)
		}
		if !acHasFinding(t, d, "alice", sealpost.DeviceRemoved) {
			t.Fatalf("%s has no DeviceRemoved finding", d.addr)
		}
	}
	w.sendUser(t, w.bob1, "alice", "after the removal")
	w.sendUser(t, w.alice1, "bob", "from the phone")
	w.r.flush(t, w.bob2)
	// On the wire: nothing posted since the removal is for the laptop, or
	// can be opened by it.
	for _, o := range w.r.posted[mark:] {
		if o.To == w.alice2.addr || string(o.Mailbox) == string(w.alice2.Mailbox()) {
			t.Fatalf("an envelope to the removed device: %v", o.To)
		}
		if _, err := w.alice2.Receive(ctx, o.Envelope); err == nil {
			t.Fatalf("the removed device opened an envelope to %v", o.To)
		}
	}
	// The removed laptop has not heard; what it sends is refused.
	outs, err := w.alice2.SendUser(ctx, "bob", []byte("am I still here?"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range outs {
		if o.To != w.bob1.addr {
			continue
		}
		before := w.bob1.store.Snapshot()
		_, err := w.bob1.Receive(ctx, o.Envelope)
		acFails(t, "a message from the removed device", err, sealpost.ErrUnlistedDevice, w.bob1, before)
	}
}

// TestLinkCarriesTrustDecisions: the new device inherits the approving
// device's pins: peer accounts, and the identities of peers without an
// account, so the relay cannot hand it another identity for them.
func TestLinkCarriesTrustDecisions(t *testing.T) {
	c := newClock()
	r := newACRelay()
	alice1 := acOpen(t, sealpost.Address{User: "alice", Device: 1}, c)
	alice2 := acOpen(t, sealpost.Address{User: "alice", Device: 2}, c)
	carol := acOpen(t, sealpost.Address{User: "carol", Device: 1}, c) // no account
	acAccount(t, alice1, "phone")
	if err := alice1.StartSession(ctx, carol.addr, acBundle(t, carol)); err != nil {
		t.Fatal(err)
	}
	acLink(t, r, alice1, alice2, "laptop", false)
	in := r.drain(t, alice2)
	if len(in) != 1 || in[0].Provisioned == nil || in[0].Provisioned.Devices != 1 {
		t.Fatalf("provisioning: %+v", in)
	}
	id, _, err := alice2.PeerIdentity(carol.addr)
	if err != nil || !id.Equal(carol.Identity()) {
		t.Fatalf("the laptop's pin for carol: %v", err)
	}
	// The relay hands the laptop another identity for carol: refused.
	impostor := acOpen(t, carol.addr, c)
	err = alice2.StartSession(ctx, carol.addr, acBundle(t, impostor))
	if !errors.Is(err, sealpost.ErrIdentityChanged) {
		t.Fatalf("StartSession with another identity for carol: %v", err)
	}
	// The real carol's bundle works, and the pin survives a restart.
	if err := alice2.StartSession(ctx, carol.addr, acBundle(t, carol)); err != nil {
		t.Fatal(err)
	}
	re, err := sealpost.Open(ctx, alice2.fs, alice2.addr, sealpost.WithClock(c.now), sealpost.WithExisting())
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := re.PeerIdentity(carol.addr); err != nil || !id.Equal(carol.Identity()) {
		t.Fatalf("after a restart: %v", err)
	}
}

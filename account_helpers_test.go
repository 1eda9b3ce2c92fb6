package sealpost_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// Helpers of the account tests: devices of one account on their own
// stores, a relay that is a map from mailbox to the envelopes posted to
// it, and the steps of linking.

// acDevice is one device of an account, on a store that counts Applies.
type acDevice struct {
	*party
	fs        *faultyStore
	firstList *keys.DeviceList // the list NewAccount made, if it did
}

// acOpen opens the device at addr on a new store.
func acOpen(t testing.TB, addr sealpost.Address, c *clock, opts ...sealpost.Option) *acDevice {
	t.Helper()
	fs := &faultyStore{MemoryStore: sealpost.NewMemoryStore()}
	opts = append([]sealpost.Option{sealpost.WithClock(c.now), sealpost.WithReceiptDelay(0, 0)}, opts...)
	d, err := sealpost.Open(ctx, fs, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &acDevice{party: &party{Device: d, addr: addr, store: fs.MemoryStore}, fs: fs}
}

// acBundle returns a fresh bundle of d, as the relay would serve it.
func acBundle(t testing.TB, d *acDevice) *keys.Bundle {
	t.Helper()
	b, err := d.NewBundle(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Split()[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := keys.ParseBundle(raw, testBundleClock)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// acRelay holds what was posted, per mailbox, in order.
type acRelay struct {
	boxes map[string][][]byte
	// posted logs every envelope with its recipient, for wire checks, and
	// from the device that posted each.
	posted []*sealpost.Outgoing
	from   map[string]sealpost.Address
	ids    map[string]sealpost.MessageID
}

func newACRelay() *acRelay {
	return &acRelay{boxes: map[string][][]byte{}, from: map[string]sealpost.Address{}, ids: map[string]sealpost.MessageID{}}
}

// post queues outs at their mailboxes and reports them Sent.
func (r *acRelay) post(t testing.TB, from *acDevice, outs ...*sealpost.Outgoing) {
	t.Helper()
	for _, o := range outs {
		r.boxes[string(o.Mailbox)] = append(r.boxes[string(o.Mailbox)], o.Envelope)
		r.posted = append(r.posted, o)
		r.from[string(o.Envelope)], r.ids[string(o.Envelope)] = from.addr, o.ID
	}
	if err := from.Sent(ctx, outs...); err != nil {
		t.Fatal(err)
	}
}

// drain receives everything queued for d, in order, calling Done, and
// returns the results; an error fails the test.
func (r *acRelay) drain(t testing.TB, d *acDevice) []*sealpost.Incoming {
	t.Helper()
	var got []*sealpost.Incoming
	box := string(d.Mailbox())
	for len(r.boxes[box]) > 0 {
		env := r.boxes[box][0]
		r.boxes[box] = r.boxes[box][1:]
		in, err := d.Receive(ctx, env)
		if err != nil {
			t.Fatalf("%s Receive: %v", d.addr, err)
		}
		if err := d.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
		got = append(got, in)
	}
	return got
}

// flush posts d's due receipts.
func (r *acRelay) flush(t testing.TB, d *acDevice) {
	t.Helper()
	outs, err := d.Flush(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r.post(t, d, outs...)
}

// acAccount makes first the first device of a new account named name.
func acAccount(t testing.TB, first *acDevice, name string) *keys.DeviceList {
	t.Helper()
	l, err := first.NewAccount(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	first.firstList = l
	return l
}

// acLink links nd to approver's account through the relay, sharing the
// account key when share is set; it delivers the notices to nobody (the
// caller drains) and the provisioning to nd, and returns the approval.
func acLink(t testing.TB, r *acRelay, approver, nd *acDevice, name string, share bool) *sealpost.Approval {
	t.Helper()
	code, err := nd.LinkCode(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	scanned, err := keys.ParseLinkCode(code.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if scanned.Short() != code.Short() {
		t.Fatalf("short forms differ: %s, %s", scanned.Short(), code.Short())
	}
	ap, err := approver.Approve(ctx, scanned, acBundle(t, nd), sealpost.ApproveOptions{ShareAccountKey: share})
	if err != nil {
		t.Fatal(err)
	}
	r.post(t, approver, ap.Notices...)
	r.post(t, approver, ap.Provision)
	return ap
}

// acConnectAll starts a session from from to every device SendUser to
// user needs, from their fresh bundles.
func acConnectAll(t testing.TB, from *acDevice, user string, devices ...*acDevice) {
	t.Helper()
	need, err := from.NeedSessions(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range need {
		var found *acDevice
		for _, d := range devices {
			if d.addr == addr {
				found = d
			}
		}
		if found == nil {
			t.Fatalf("%s needs a session with %s, which the test does not have", from.addr, addr)
		}
		if err := from.StartSession(ctx, addr, acBundle(t, found)); err != nil {
			t.Fatal(err)
		}
	}
}

// acTo returns the recipients of outs.
func acTo(outs []*sealpost.Outgoing) []sealpost.Address {
	var to []sealpost.Address
	for _, o := range outs {
		to = append(to, o.To)
	}
	return to
}

// acHasFinding reports whether d holds a finding of kind about user.
func acHasFinding(t testing.TB, d *acDevice, user string, kind sealpost.AccountFindingKind) bool {
	t.Helper()
	fs, err := d.AccountFindings(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Kind == kind {
			return true
		}
	}
	return false
}

// acFails checks that err matches want and that d's store is as before.
func acFails(t testing.TB, what string, err error, want error, d *acDevice, before map[string][]byte) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
	if before != nil {
		if diff := dmStoreDiff(before, d.store.Snapshot()); diff != "" {
			t.Fatalf("%s changed the store: %s", what, diff)
		}
	}
}

// acFlip returns raw with byte i xored with 1.
func acFlip(raw []byte, i int) []byte {
	out := bytes.Clone(raw)
	out[i] ^= 1
	return out
}

// acLater is a time past every test list's issue.
func acLater(c *clock) time.Time { return c.now().Add(time.Hour) }

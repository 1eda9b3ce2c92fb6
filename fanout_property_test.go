package sealpost_test

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

var fanoutRuns = flag.Int("sealpost.fanoutruns", 12, "random histories for TestFanOutProperty")

// fpAccount is one account of the property test: its devices as the
// model knows them, device 1 holding the account key.
type fpAccount struct {
	user    string
	devices []*acDevice // listed now, device 1 first
	removed []*acDevice
	// linking are listed devices whose provisioning has not arrived yet.
	linking map[*acDevice]bool
	newest  *keys.DeviceList
	nextID  uint32
}

// fpModel is what the property test expects.
type fpModel struct {
	t        *testing.T
	rng      *rand.Rand
	c        *clock
	r        *acRelay
	accounts [2]*fpAccount
	// expect holds, per message id, the devices listed at send time, and
	// got the devices that received it (new results only).
	expect, got map[sealpost.MessageID]map[sealpost.Address]int
	// sender of each message, and which devices must hear that a
	// device read it.
	sender   map[sealpost.MessageID]sealpost.Address
	readSync map[sealpost.MessageID]map[sealpost.Address]int
	readWant map[sealpost.MessageID]map[sealpost.Address]bool
	syncEnv  map[string]sealpost.MessageID // a read sync's envelope: the message it reports read
	// unDone are results received but not yet Done, to redeliver.
	unDone []fpPending
}

type fpPending struct {
	d   *acDevice
	env []byte
	id  sealpost.MessageID
}

// TestFanOutProperty: random histories of adding and removing devices,
// sending, receiving, reordering and redelivering across two accounts of
// up to four devices: every message reaches exactly the devices listed at
// send time, exactly once (in-flight messages of a device removed before
// they arrive excepted: receivers that hold the new list refuse them), and
// every device of a reader's account hears of each read.
func TestFanOutProperty(t *testing.T) {
	for run := range *fanoutRuns {
		t.Run(fmt.Sprint(run), func(t *testing.T) { fanOutHistory(t, uint64(run)) })
	}
}

func fanOutHistory(t *testing.T, seed uint64) {
	m := &fpModel{t: t, rng: rand.New(rand.NewPCG(seed, 0x5ea1)), c: newClock(), r: newACRelay(),
		expect: map[sealpost.MessageID]map[sealpost.Address]int{}, got: map[sealpost.MessageID]map[sealpost.Address]int{},
		sender: map[sealpost.MessageID]sealpost.Address{}, readSync: map[sealpost.MessageID]map[sealpost.Address]int{},
		readWant: map[sealpost.MessageID]map[sealpost.Address]bool{}, syncEnv: map[string]sealpost.MessageID{}}
	for i, user := range []string{"alice", "bob"} {
		first := acOpen(t, sealpost.Address{User: user, Device: 1}, m.c)
		a := &fpAccount{user: user, devices: []*acDevice{first}, nextID: 2, linking: map[*acDevice]bool{}}
		a.newest = acAccount(t, first, user+" 1")
		m.accounts[i] = a
	}
	for range 30 {
		switch op := m.rng.IntN(10); {
		case op == 0:
			m.add(m.accounts[m.rng.IntN(2)])
		case op == 1:
			m.remove(m.accounts[m.rng.IntN(2)])
		case op < 5:
			i := m.rng.IntN(2)
			m.send(m.accounts[i], m.accounts[1-i])
		case op < 8:
			m.deliver(m.randomDevice(), m.rng.IntN(4)+1)
		case op == 8:
			m.markRead()
		default:
			m.redeliver()
		}
	}
	m.settle()
	for id, want := range m.expect {
		got := m.got[id]
		for addr := range want {
			if got[addr] != 1 {
				t.Fatalf("message %s from %s reached %s %d times, want once", id, m.sender[id], addr, got[addr])
			}
		}
		for addr, n := range got {
			if want[addr] == 0 {
				t.Fatalf("message %s from %s reached %s (%d times), not listed at send time", id, m.sender[id], addr, n)
			}
		}
	}
	for id, want := range m.readWant {
		for addr := range want {
			if m.readSync[id][addr] != 1 {
				t.Fatalf("%s heard %d times that message %s was read, want once", addr, m.readSync[id][addr], id)
			}
		}
	}
}

// randomDevice returns any device, removed ones included.
func (m *fpModel) randomDevice() *acDevice {
	var all []*acDevice
	for _, a := range m.accounts {
		all = append(append(all, a.devices...), a.removed...)
	}
	return all[m.rng.IntN(len(all))]
}

// add links a new device to a.
func (m *fpModel) add(a *fpAccount) {
	if len(a.devices) == 4 {
		return
	}
	nd := acOpen(m.t, sealpost.Address{User: a.user, Device: a.nextID}, m.c)
	a.nextID++
	ap := acLink(m.t, m.r, a.devices[0], nd, fmt.Sprintf("%s %d", a.user, nd.addr.Device), m.rng.IntN(2) == 0)
	a.devices, a.newest = append(a.devices, nd), ap.List
	a.linking[nd] = true
}

// active returns a's devices that are linked (their provisioning arrived).
func (a *fpAccount) active() []*acDevice {
	return slices.DeleteFunc(slices.Clone(a.devices), func(d *acDevice) bool { return a.linking[d] })
}

// accountOf returns the account of d.
func (m *fpModel) accountOf(d *acDevice) *fpAccount {
	for _, a := range m.accounts {
		if a.user == d.addr.User {
			return a
		}
	}
	return nil
}

// remove removes one of a's devices other than the first.
func (m *fpModel) remove(a *fpAccount) {
	if len(a.devices) < 2 {
		return
	}
	i := 1 + m.rng.IntN(len(a.devices)-1)
	gone := a.devices[i]
	ap, err := a.devices[0].RemoveDevice(m.t.Context(), gone.addr.Device)
	if err != nil {
		m.t.Fatal(err)
	}
	m.r.post(m.t, a.devices[0], ap.Notices...)
	a.devices, a.newest = slices.Delete(a.devices, i, i+1), ap.List
	a.removed = append(a.removed, gone)
}

// refresh has d pin the newest lists of both accounts and start every
// session a fan-out to user needs.
func (m *fpModel) refresh(d *acDevice, to *fpAccount) {
	for _, a := range m.accounts {
		if _, err := d.UpdateDeviceList(ctx, a.user, a.newest.Bytes()); err != nil {
			m.t.Fatalf("%s UpdateDeviceList(%s): %v", d.addr, a.user, err)
		}
	}
	acConnectAll(m.t, d, to.user, m.all()...)
}

func (m *fpModel) all() []*acDevice {
	var all []*acDevice
	for _, a := range m.accounts {
		all = append(append(all, a.devices...), a.removed...)
	}
	return all
}

// send has a random device of from send to the account to.
func (m *fpModel) send(from, to *fpAccount) {
	active := from.active()
	d := active[m.rng.IntN(len(active))]
	m.refresh(d, to)
	outs, err := d.SendUser(ctx, to.user, []byte("m"))
	if err != nil {
		m.t.Fatalf("%s SendUser: %v", d.addr, err)
	}
	id := outs[0].ID
	want := map[sealpost.Address]int{}
	for _, x := range append(slices.Clone(to.devices), from.devices...) {
		if x != d {
			want[x.addr] = 1
		}
	}
	if got := acTo(outs); len(got) != len(want) {
		m.t.Fatalf("%s's fan-out to %v, want %v", d.addr, got, want)
	}
	m.expect[id], m.sender[id] = want, d.addr
	m.r.post(m.t, d, outs...)
}

// deliver receives up to n of d's envelopes, in a random order, calling
// Done on some only (the others are redelivered later).
func (m *fpModel) deliver(d *acDevice, n int) {
	box := string(d.Mailbox())
	q := m.r.boxes[box]
	m.rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
	n = min(n, len(q))
	take := q[:n]
	m.r.boxes[box] = q[n:]
	for _, env := range take {
		if !m.receive(d, env, m.rng.IntN(3) > 0) {
			m.r.boxes[box] = append(m.r.boxes[box], env) // held: received again later
		}
	}
}

// receive has d receive env and records what came; it reports false for
// an envelope held for later (ClassifyReceive's Hold).
func (m *fpModel) receive(d *acDevice, env []byte, done bool) bool {
	in, err := d.Receive(ctx, env)
	from := m.r.from[string(env)]
	switch {
	case errors.Is(err, sealpost.ErrDuplicate):
		return true
	case errors.Is(err, sealpost.ErrUnlistedDevice) && m.removed(from):
		// In flight from a device removed since: a receiver holding the
		// new list refuses it.
		if id := m.r.ids[string(env)]; id != (sealpost.MessageID{}) {
			delete(m.expect[id], d.addr)
		}
		if id, ok := m.syncEnv[string(env)]; ok {
			delete(m.readWant[id], d.addr)
		}
		return true
	case errors.Is(err, sealpost.ErrUnlistedDevice) && m.accountOf(d).linking[d]:
		return false // before its provisioning: held
	case err != nil:
		m.t.Fatalf("%s Receive: %v", d.addr, err)
	}
	if in.Provisioned != nil {
		delete(m.accountOf(d).linking, d)
	}
	if !in.Redelivered {
		switch {
		case in.Kind == sealpost.KindMessage:
			if m.got[in.ID] == nil {
				m.got[in.ID] = map[sealpost.Address]int{}
			}
			m.got[in.ID][d.addr]++
		case in.Kind == sealpost.KindRead && in.Sync:
			for _, id := range in.Read {
				if m.readSync[id] == nil {
					m.readSync[id] = map[sealpost.Address]int{}
				}
				m.readSync[id][d.addr]++
			}
		}
	}
	if done {
		if err := d.Done(ctx, in.ID); err != nil {
			m.t.Fatal(err)
		}
	} else {
		m.unDone = append(m.unDone, fpPending{d, env, in.ID})
	}
	return true
}

// removed reports whether addr is a device removed from its account.
func (m *fpModel) removed(addr sealpost.Address) bool {
	for _, a := range m.accounts {
		if slices.ContainsFunc(a.removed, func(d *acDevice) bool { return d.addr == addr }) {
			return true
		}
	}
	return false
}

// redeliver hands a received but not Done envelope to its device again.
func (m *fpModel) redeliver() {
	if len(m.unDone) == 0 {
		return
	}
	i := m.rng.IntN(len(m.unDone))
	p := m.unDone[i]
	m.unDone = slices.Delete(m.unDone, i, i+1)
	in, err := p.d.Receive(ctx, p.env)
	if err != nil || !in.Redelivered || in.ID != p.id {
		m.t.Fatalf("%s redelivery: %+v %v", p.d.addr, in, err)
	}
	if err := p.d.Done(ctx, in.ID); err != nil {
		m.t.Fatal(err)
	}
}

// markRead has a device that received a message from the other account
// mark it read; every other device of its account listed now must hear.
func (m *fpModel) markRead() {
	for _, a := range m.accounts {
		for _, d := range a.active() {
			for id, got := range m.got {
				if got[d.addr] == 0 || m.readWant[id] != nil || m.sender[id].User == a.user {
					continue
				}
				m.refresh(d, a)
				syncs, err := d.MarkRead(ctx, m.sender[id], id)
				if err != nil {
					m.t.Fatalf("%s MarkRead: %v", d.addr, err)
				}
				want := map[sealpost.Address]bool{}
				for _, x := range a.devices {
					if x != d {
						want[x.addr] = true
					}
				}
				if len(syncs) != len(want) {
					m.t.Fatalf("%s read-synced to %v, want %v", d.addr, acTo(syncs), want)
				}
				m.readWant[id] = want
				for _, o := range syncs {
					m.syncEnv[string(o.Envelope)] = id
				}
				m.r.post(m.t, d, syncs...)
				return
			}
		}
	}
}

// settle delivers everything, receipts included, until nothing moves.
func (m *fpModel) settle() {
	for range 10 {
		for len(m.unDone) > 0 {
			m.redeliver()
		}
		moved := false
		for _, d := range m.all() {
			if len(m.r.boxes[string(d.Mailbox())]) > 0 {
				moved = true
				m.deliver(d, len(m.r.boxes[string(d.Mailbox())]))
			}
		}
		for _, a := range m.accounts {
			for _, d := range a.active() {
				outs, err := d.Flush(ctx)
				if err != nil {
					m.t.Fatal(err)
				}
				moved = moved || len(outs) > 0
				m.r.post(m.t, d, outs...)
			}
		}
		if !moved {
			return
		}
	}
}

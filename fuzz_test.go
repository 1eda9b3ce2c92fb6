package sealpost_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/keys"
)

// Fuzz targets of the root package (TESTING.md, "Fuzz targets"): Receive
// on an established device (5, 3, 4 through the Device), Open over
// corrupted stored records (6), store faults during a conversation (11) and
// a schedule of sends, deliveries, drops, duplicates, reorders, flushes and
// restarts between two devices (10). Each is seeded from real envelopes
// and records made in its setup, so a plain `go test` runs the seeds.

// FuzzDeviceReceive feeds arbitrary bytes to a device that holds a session
// with Alice. Receive never panics; an error is a sentinel and leaves the
// store unchanged with no Apply; success is only for an envelope that was
// genuinely made (then the device is reset to its baseline).
func FuzzDeviceReceive(f *testing.F) {
	c := newClock()
	alice := newParty(f, "alice", c)
	bob, fs := newFaultyParty(f, "bob", c)
	carol := newParty(f, "carol", c)
	connect(f, alice, bob)
	receive(f, bob, send(f, alice, bob, "first contact"))
	receive(f, alice, send(f, bob, alice, "reply"))
	seen := send(f, alice, bob, "already received")
	receive(f, bob, seen)
	genuine := map[[32]byte]string{}
	var seeds [][]byte
	for i := range 3 {
		o := send(f, alice, bob, fmt.Sprint("pending ", i))
		genuine[sha256.Sum256(o.Envelope)] = fmt.Sprint("pending ", i)
		seeds = append(seeds, o.Envelope)
	}
	connect(f, carol, bob)
	fc := send(f, carol, bob, "carol's first contact")
	genuine[sha256.Sum256(fc.Envelope)] = "carol's first contact"
	seeds = append(seeds, fc.Envelope, seen.Envelope)
	own := send(f, bob, alice, "bob's own")
	seeds = append(seeds, own.Envelope)
	for _, s := range slices.Clone(seeds) {
		seeds = append(seeds, s[:len(s)/2], s[:len(s)-1], append(bytes.Clone(s), 0))
	}
	seeds = append(seeds, nil, []byte{1}, []byte{1, 16})
	for _, s := range seeds {
		f.Add(s)
	}
	baseline := bob.store.Snapshot()
	dirty := false
	f.Fuzz(func(t *testing.T, raw []byte) {
		if dirty {
			fs.MemoryStore.Restore(baseline)
			d, err := sealpost.Open(ctx, fs, bob.addr, sealpost.WithClock(c.now), sealpost.WithReceiptDelay(0, 0))
			if err != nil {
				t.Fatal(err)
			}
			bob.Device = d
			dirty = false
		}
		before := dmCapture(bob, fs)
		in, err := bob.Receive(ctx, raw)
		if err != nil {
			if !dmTyped(err) {
				t.Fatalf("untyped error %v", err)
			}
			dmUnchanged(t, bob, fs, before, "failed Receive")
			return
		}
		dirty = true
		body, ok := genuine[sha256.Sum256(raw)]
		if !ok {
			t.Fatalf("accepted an envelope nobody made: %+v", in)
		}
		if string(in.Body) != body || in.Redelivered {
			t.Fatalf("genuine envelope: got %q (redelivered %v), want %q", in.Body, in.Redelivered, body)
		}
	})
}

// FuzzDeviceOpen replaces one stored record with arbitrary bytes and
// opens the device: no panic, a typed error, or a device whose Receive,
// Send and Flush fail only with typed errors. which picks the record (low
// 7 bits) and whether value is stored as is (high bit set: the record
// checksum must catch it) or as a record value with a valid checksum (so
// the decoders behind the checksum see arbitrary bytes).
func FuzzDeviceOpen(f *testing.F) {
	c := newClock()
	bob, got := dmConversationStore(f, c)
	snap := bob.store.Snapshot()
	names := slices.Sorted(maps.Keys(snap))
	if len(names) > 0x80 {
		f.Fatal("too many records")
	}
	for i, k := range names {
		v := dmRecordValue(f, k, snap[k])
		f.Add(uint8(i), v)
		f.Add(uint8(i), v[:len(v)/2])
		f.Add(uint8(i)|0x80, snap[k])
		if len(v) > 10 {
			w := bytes.Clone(v)
			w[10] ^= 4
			f.Add(uint8(i), w)
		}
	}
	alice := sealpost.Address{User: "alice", Device: 1}
	f.Fuzz(func(t *testing.T, which uint8, value []byte) {
		m := maps.Clone(snap)
		key := names[int(which&0x7F)%len(names)]
		if which&0x80 != 0 {
			m[key] = value
		} else {
			m[key] = dmRecord(key, value)
		}
		s := sealpost.NewMemoryStore()
		s.Restore(m)
		d, err := sealpost.Open(ctx, s, bob.addr, sealpost.WithClock(c.now))
		if err != nil {
			// ErrNotFound: a device record naming a peer record that does
			// not exist (see TestCorruptStoredState); tolerated here so the
			// fuzzer looks further.
			if !errors.Is(err, sealpost.ErrMalformed) && !errors.Is(err, sealpost.ErrUnsupportedVersion) && !errors.Is(err, sealpost.ErrNotFound) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		for _, o := range got {
			if _, err := d.Receive(ctx, o.Envelope); err != nil && !dmTyped(err) {
				t.Fatalf("Receive after Open: %v", err)
			}
		}
		if _, err := d.Send(ctx, alice, []byte("after a corrupted record")); err != nil && !dmTyped(err) {
			t.Fatalf("Send after Open: %v", err)
		}
		if _, err := d.Flush(ctx); err != nil && !dmTyped(err) {
			t.Fatalf("Flush after Open: %v", err)
		}
	})
}

// errStoreDown is the failure a scheduleStore injects.
var errStoreDown = errors.New("store down (injected)")

// crash is the panic value of an injected crash inside Apply.
type crash struct{ committed bool }

// scheduleStore is a MemoryStore whose Apply number i (counted across
// every device sharing the schedule) follows schedule[i] % 4: 0 succeeds,
// 1 fails, 2 crashes before writing, 3 writes and then crashes. Applies
// past the end of the schedule succeed. A crash is a panic that the
// harness turns into a restart of the device from its store.
type scheduleStore struct {
	*sealpost.MemoryStore
	sched *faultSchedule
}

type faultSchedule struct {
	mu       sync.Mutex
	schedule []byte
	n        int
}

// next returns the fault for the next Apply.
func (s *faultSchedule) next() byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.n
	s.n++
	if i >= len(s.schedule) {
		return 0
	}
	return s.schedule[i] % 4
}

func (s *scheduleStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	switch s.sched.next() {
	case 1:
		return errStoreDown
	case 2:
		panic(crash{})
	case 3:
		if err := s.MemoryStore.Apply(ctx, b); err != nil {
			return err
		}
		panic(crash{committed: true})
	}
	return s.MemoryStore.Apply(ctx, b)
}

// app is one side of a harnessed conversation: the device, its store and
// what the app has saved.
type app struct {
	t     *testing.T
	dev   *sealpost.Device
	addr  sealpost.Address
	store sealpost.Store
	mem   *sealpost.MemoryStore
	c     *clock
	opts  []sealpost.Option
	// got counts the results returned with Redelivered false, by id; has
	// is what the app has saved (fresh or redelivered).
	got      map[sealpost.MessageID]int
	has      map[sealpost.MessageID]bool
	restarts int
	// committedCrash: the last crash came after its Apply was written.
	committedCrash bool
	// posted is every envelope the app handed to the relay, by its bytes.
	posted map[string]bool
}

// restart reopens the device from its store, as after a crash.
func (a *app) restart() {
	a.t.Helper()
	d, err := sealpost.Open(ctx, a.store, a.addr, a.opts...)
	if err != nil {
		a.t.Fatalf("reopening %s: %v", a.addr, err)
	}
	a.dev = d
	a.restarts++
}

// do runs op on the device; an injected crash restarts the device and is
// reported as crashed. Any other panic is a bug and propagates.
func (a *app) do(op func() error) (err error, crashed bool) {
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(crash)
			if !ok {
				panic(r)
			}
			a.committedCrash = c.committed
			a.restart()
			err, crashed = errStoreDown, true
		}
	}()
	return op(), false
}

// flight is an envelope in the relay.
type flight struct {
	out  *sealpost.Outgoing
	to   *app
	from *app
}

// tagLog records every routing tag that left a device.
type tagLog map[[16]byte]bool

func (l tagLog) add(t *testing.T, o *sealpost.Outgoing) {
	t.Helper()
	h, err := envelope.Parse(o.Envelope)
	if err != nil {
		t.Fatalf("an outgoing envelope does not parse: %v", err)
	}
	if l[h.Tag] {
		t.Fatalf("routing tag %x reused", h.Tag)
	}
	l[h.Tag] = true
}

// FuzzStoreFaults runs a scripted conversation in which the schedule
// chooses which Apply fails, crashes before writing or crashes after
// writing (the device then restarts from its store). The
// relay redelivers until the app has called Done, senders retry failed
// sends, and the apps report every posted envelope Sent and, after a crash
// in Send or Flush, post what Unsent hands back. Invariants: no result
// comes back with Redelivered false twice; a crash after Send's commit
// leaves the envelope in the outbox and one before it leaves nothing;
// every message whose Send committed (returned, or recovered from the
// outbox) reaches the app; no routing tag leaves twice; the outboxes are
// empty once everything is reported Sent; after the faults both sides
// still talk.
func FuzzStoreFaults(f *testing.F) {
	c := newClock()
	base := map[string]map[string][]byte{}
	var blob []byte
	for _, user := range []string{"alice", "bob"} {
		p := newParty(f, user, c)
		if user == "bob" {
			blob = dmBlob(f, p, 1, 0)
		}
		base[user] = p.store.Snapshot()
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{0, 1, 0, 1, 0, 1})
	f.Add([]byte{2, 0, 3, 0, 0, 3, 0, 5, 0, 0, 2})
	f.Add(bytes.Repeat([]byte{0, 0, 3}, 12))
	f.Add(bytes.Repeat([]byte{5, 0}, 20))
	f.Add([]byte{0, 0, 0, 0, 3, 3, 3, 1, 1, 1, 2, 2, 2, 7, 7, 7})
	f.Fuzz(func(t *testing.T, schedule []byte) {
		if len(schedule) > 96 {
			schedule = schedule[:96]
		}
		sched := &faultSchedule{schedule: schedule}
		cl := &clock{t: c.t}
		mk := func(user string) *app {
			mem := sealpost.NewMemoryStore()
			mem.Restore(base[user])
			a := &app{t: t, addr: sealpost.Address{User: user, Device: 1}, mem: mem,
				store: &scheduleStore{MemoryStore: mem, sched: sched}, c: cl,
				opts: []sealpost.Option{sealpost.WithClock(cl.now), sealpost.WithReceiptDelay(0, 2*time.Second)},
				got:  map[sealpost.MessageID]int{}, has: map[sealpost.MessageID]bool{}, posted: map[string]bool{}}
			a.restart()
			a.restarts = 0
			return a
		}
		alice, bob := mk("alice"), mk("bob")
		other := func(a *app) *app {
			if a == alice {
				return bob
			}
			return alice
		}
		bundle, err := keys.ParseBundle(blob, testBundleClock)
		if err != nil {
			t.Fatal(err)
		}
		for attempt := 0; ; attempt++ {
			err, _ := alice.do(func() error { return alice.dev.StartSession(ctx, bob.addr, bundle) })
			if err == nil {
				break
			}
			if !errors.Is(err, errStoreDown) || attempt > len(schedule) {
				t.Fatalf("StartSession: %v", err)
			}
		}
		tags := tagLog{}
		var relay []*flight
		sent := map[sealpost.MessageID]string{} // messages whose Send committed
		// post hands an envelope to the relay (once per envelope) and
		// reports it Sent; a failed Sent leaves it in the outbox.
		post := func(from *app, o *sealpost.Outgoing) {
			if from.posted[string(o.Envelope)] {
				return
			}
			from.posted[string(o.Envelope)] = true
			tags.add(t, o)
			relay = append(relay, &flight{out: o, to: other(from), from: from})
			if err, _ := from.do(func() error { return from.dev.Sent(ctx, o) }); err != nil && !errors.Is(err, errStoreDown) {
				t.Fatalf("%s Sent: %v", from.addr, err)
			}
		}
		// recoverOutbox posts what the outbox holds that the app never
		// posted, as an app does after a restart; a message in it that the
		// app did not see sent is the one being sent (body), or a bug.
		recoverOutbox := func(from *app, body string) (found bool) {
			outs, err := from.dev.Unsent(ctx)
			if err != nil {
				t.Fatalf("%s Unsent: %v", from.addr, err)
			}
			for _, o := range outs {
				if from.posted[string(o.Envelope)] {
					continue
				}
				if o.ID != (sealpost.MessageID{}) {
					if _, ok := sent[o.ID]; !ok {
						if body == "" || found {
							t.Fatalf("%s: an unposted message in the outbox that was never sent", from.addr)
						}
						sent[o.ID], found = body, true
					}
				}
				post(from, o)
			}
			return found
		}
		sendOne := func(from, to *app, body string) {
			for attempt := 0; attempt <= len(schedule)+1; attempt++ {
				var out *sealpost.Outgoing
				err, crashed := from.do(func() (err error) {
					out, err = from.dev.Send(ctx, to.addr, []byte(body))
					return err
				})
				if crashed {
					// A crash after the commit: the envelope is in the
					// outbox and must come back; before it: nothing may.
					committed := from.committedCrash // recoverOutbox may crash again
					if found := recoverOutbox(from, body); found != committed {
						t.Fatalf("%s: crash (committed %v) in Send, the outbox gave the message back: %v", from.addr, committed, found)
					}
					if committed {
						return
					}
					continue
				}
				switch {
				case err != nil && out != nil:
					t.Fatalf("%s Send released an envelope with the error %v", from.addr, err)
				case err == nil:
					sent[out.ID] = body
					post(from, out)
					return
				case errors.Is(err, sealpost.ErrNoSession) && from == bob:
					return // Bob has heard nothing yet
				case !errors.Is(err, errStoreDown):
					t.Fatalf("%s Send: %v", from.addr, err)
				}
			}
			t.Fatalf("%s Send never succeeded", from.addr)
		}
		// deliver tries one envelope and reports whether the relay may
		// forget it (the app called Done, or it is a duplicate of one done).
		deliver := func(fl *flight) bool {
			a := fl.to
			var in *sealpost.Incoming
			err, _ := a.do(func() (err error) {
				in, err = a.dev.Receive(ctx, fl.out.Envelope)
				return err
			})
			switch {
			case err != nil && in != nil:
				t.Fatalf("%s Receive released a result with the error %v", a.addr, err)
			case errors.Is(err, sealpost.ErrDuplicate):
				return true
			case errors.Is(err, errStoreDown):
				return false
			case err != nil:
				t.Fatalf("%s Receive: %v", a.addr, err)
			}
			if !in.Redelivered {
				if a.got[in.ID]++; a.got[in.ID] > 1 {
					t.Fatalf("%s: message %v returned as new twice", a.addr, in.ID)
				}
			}
			if in.Kind == sealpost.KindMessage {
				if want, ok := sent[in.ID]; !ok || want != string(in.Body) {
					t.Fatalf("%s got %q, sent %q (%v)", a.addr, in.Body, want, ok)
				}
			}
			a.has[in.ID] = true
			err, _ = a.do(func() error { return a.dev.Done(ctx, in.ID) })
			if err != nil && !errors.Is(err, errStoreDown) {
				t.Fatalf("%s Done: %v", a.addr, err)
			}
			return err == nil
		}
		flush := func(a *app, other *app) {
			var outs []*sealpost.Outgoing
			err, crashed := a.do(func() (err error) {
				outs, err = a.dev.Flush(ctx)
				return err
			})
			if err != nil && !errors.Is(err, errStoreDown) {
				t.Fatalf("%s Flush: %v", a.addr, err)
			}
			for _, o := range outs {
				post(a, o)
			}
			if crashed {
				recoverOutbox(a, "") // receipts committed before the crash
			}
		}
		pump := func() {
			var keep []*flight
			for _, fl := range relay {
				if !deliver(fl) {
					keep = append(keep, fl)
				}
			}
			relay = keep
		}
		for round := range 5 {
			sendOne(alice, bob, fmt.Sprint("alice ", round))
			sendOne(bob, alice, fmt.Sprint("bob ", round))
			pump()
			cl.advance(3 * time.Second)
			flush(alice, bob)
			flush(bob, alice)
			pump()
		}
		// Quiesce: past the schedule every Apply succeeds.
		for range len(schedule) + 4 {
			cl.advance(3 * time.Second)
			flush(alice, bob)
			flush(bob, alice)
			pump()
		}
		if len(relay) != 0 {
			t.Fatalf("%d envelopes still undelivered after quiescing", len(relay))
		}
		// Everything in the outboxes was posted; reported Sent now (the
		// store is healthy past the schedule), nothing is left.
		for _, a := range []*app{alice, bob} {
			recoverOutbox(a, "")
			outs, err := a.dev.Unsent(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.dev.Sent(ctx, outs...); err != nil {
				t.Fatalf("%s Sent: %v", a.addr, err)
			}
			if left, _ := a.dev.Unsent(ctx); len(left) != 0 {
				t.Fatalf("%s: %d envelopes left in the outbox after Sent", a.addr, len(left))
			}
		}
		for id, body := range sent {
			if !alice.has[id] && !bob.has[id] {
				t.Fatalf("message %q (%v) was sent and never reached the app", body, id)
			}
		}
		t.Logf("%d applies, %d faults scheduled, restarts: alice %d, bob %d; %d messages sent", sched.n, len(schedule), alice.restarts, bob.restarts, len(sent))
		// Both sides still talk once the store is healthy. Quiescing only
		// consumes the schedule while there is work, so end it here.
		sched.mu.Lock()
		sched.schedule = nil
		sched.mu.Unlock()
		sendOne(alice, bob, "after the faults")
		sendOne(bob, alice, "after the faults, too")
		pump()
		if len(relay) != 0 {
			t.Fatal("the final exchange did not go through")
		}
	})
}

// FuzzInteraction turns bytes into a schedule of operations on two
// devices: 0 Alice sends, 1 Bob sends, 2 deliver an envelope, 3 drop one,
// 4 duplicate one, 5 move one to the back (reorder), 6 advance the clock
// and Flush both, 7 restart a device from its store, 8 the apps call Done
// for what they hold, 9 acknowledge a received message as read. The
// operand (byte / 10) picks the envelope or side. Invariants: no panic;
// an envelope's first delivery returns a fresh result, later ones the kept
// result (Redelivered) until Done and ErrDuplicate after; nothing reaches
// an app twice as new; after quiescing every message not dropped in all
// its copies has arrived, and both sides still talk.
func FuzzInteraction(f *testing.F) {
	c := newClock()
	base := map[string]map[string][]byte{}
	var blob []byte
	for _, user := range []string{"alice", "bob"} {
		p := newParty(f, user, c)
		if user == "bob" {
			blob = dmBlob(f, p, 1, 0)
		}
		base[user] = p.store.Snapshot()
	}
	f.Add([]byte{0, 2, 1, 2})
	f.Add([]byte{0, 0, 0, 12, 2, 2, 1, 1, 6, 2, 2, 2, 8})
	f.Add([]byte{0, 0, 13, 4, 2, 2, 2, 1, 2, 7, 17, 1, 2})
	f.Add([]byte{0, 0, 0, 5, 15, 2, 2, 2, 9, 1, 1, 2, 2, 6, 2, 2, 8, 7, 0, 2})
	f.Add([]byte{0, 3, 0, 2, 1, 1, 1, 3, 2, 2, 6, 2, 2, 19, 29, 0, 0, 22, 12, 2, 2, 8, 6, 2, 2, 2})
	f.Add(bytes.Repeat([]byte{0, 1, 4, 2, 6, 2, 9, 7, 8, 5}, 8))
	// Batches (op 2 with arg%5 == 4: 42, 92, 142, 192) among copies and
	// restarts.
	f.Add([]byte{0, 0, 0, 2, 1, 4, 0, 0, 42, 1, 1, 92, 6, 0, 4, 142, 7, 0, 0, 192, 1, 42, 6, 92})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 256 {
			ops = ops[:256]
		}
		cl := &clock{t: c.t}
		mk := func(user string) *app {
			mem := sealpost.NewMemoryStore()
			mem.Restore(base[user])
			a := &app{t: t, addr: sealpost.Address{User: user, Device: 1}, mem: mem, store: mem, c: cl,
				opts: []sealpost.Option{sealpost.WithClock(cl.now), sealpost.WithReceiptDelay(time.Second, 2*time.Second)},
				got:  map[sealpost.MessageID]int{}, has: map[sealpost.MessageID]bool{}}
			a.restart()
			return a
		}
		alice, bob := mk("alice"), mk("bob")
		bundle, err := keys.ParseBundle(blob, testBundleClock)
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.dev.StartSession(ctx, bob.addr, bundle); err != nil {
			t.Fatal(err)
		}
		type copyOf struct {
			hash [32]byte
			fl   *flight
		}
		type envState struct {
			id        sealpost.MessageID // known once delivered (receipts) or sent (messages)
			message   bool
			delivered bool
			done      bool
			copies    int // copies still in the relay
		}
		tags := tagLog{}
		var relay []copyOf
		envs := map[[32]byte]*envState{}
		byID := map[sealpost.MessageID]*envState{}
		pending := map[*app][]sealpost.MessageID{}
		var sentIDs []sealpost.MessageID
		emit := func(from, to *app, o *sealpost.Outgoing) {
			tags.add(t, o)
			h := sha256.Sum256(o.Envelope)
			st := &envState{id: o.ID, message: o.ID != (sealpost.MessageID{}), copies: 1}
			envs[h] = st
			if st.message {
				byID[o.ID] = st
				sentIDs = append(sentIDs, o.ID)
			}
			relay = append(relay, copyOf{hash: h, fl: &flight{out: o, to: to, from: from}})
		}
		bodies := map[sealpost.MessageID]string{}
		sendOne := func(from, to *app, n int) {
			body := fmt.Sprintf("%s %d", from.addr.User, n)
			out, err := from.dev.Send(ctx, to.addr, []byte(body))
			if errors.Is(err, sealpost.ErrNoSession) && from == bob {
				return
			}
			if err != nil {
				t.Fatalf("%s Send: %v", from.addr, err)
			}
			bodies[out.ID] = body
			emit(from, to, out)
		}
		done := func(a *app) {
			if err := a.dev.Done(ctx, pending[a]...); err != nil {
				t.Fatalf("%s Done: %v", a.addr, err)
			}
			for _, id := range pending[a] {
				if st := byID[id]; st != nil {
					st.done = true
				}
			}
			pending[a] = nil
		}
		// take removes copy i from the relay.
		take := func(i int) copyOf {
			cp := relay[i]
			relay = slices.Delete(relay, i, i+1)
			envs[cp.hash].copies--
			return cp
		}
		var check func(cp copyOf, in *sealpost.Incoming, err error, doneNow bool)
		deliver := func(i int, doneNow bool) {
			cp := take(i)
			in, err := cp.fl.to.dev.Receive(ctx, cp.fl.out.Envelope)
			check(cp, in, err, doneNow)
		}
		// deliverBatch hands the first copies for one device, up to n, to
		// ReceiveBatch; each result must be what Receive would give.
		deliverBatch := func(a *app, n int) {
			var cps []copyOf
			for i := 0; i < len(relay) && len(cps) < n; {
				if relay[i].fl.to == a {
					cps = append(cps, take(i))
					continue
				}
				i++
			}
			if len(cps) == 0 {
				return
			}
			raws := make([][]byte, len(cps))
			for i, cp := range cps {
				raws[i] = cp.fl.out.Envelope
			}
			res, err := a.dev.ReceiveBatch(ctx, raws)
			if err != nil {
				t.Fatalf("%s ReceiveBatch: %v", a.addr, err)
			}
			for i, cp := range cps {
				check(cp, res[i].Incoming, res[i].Err, false)
			}
		}
		check = func(cp copyOf, in *sealpost.Incoming, err error, doneNow bool) {
			st := envs[cp.hash]
			a := cp.fl.to
			switch {
			case st.done:
				if !errors.Is(err, sealpost.ErrDuplicate) {
					t.Fatalf("%s: delivery after Done: %v, want ErrDuplicate", a.addr, err)
				}
				return
			case err != nil:
				t.Fatalf("%s: Receive (delivered before: %v): %v", a.addr, st.delivered, err)
			case in.Redelivered != st.delivered:
				t.Fatalf("%s: Redelivered %v, delivered before %v", a.addr, in.Redelivered, st.delivered)
			}
			if !st.delivered {
				if a.got[in.ID]++; a.got[in.ID] > 1 {
					t.Fatalf("%s: %v returned as new twice", a.addr, in.ID)
				}
				st.delivered = true
				if !st.message {
					st.id = in.ID
					byID[in.ID] = st
				}
				pending[a] = append(pending[a], in.ID)
			}
			if st.message && (in.ID != st.id || string(in.Body) != bodies[in.ID]) {
				t.Fatalf("%s: got %v %q, want %v %q", a.addr, in.ID, in.Body, st.id, bodies[st.id])
			}
			a.has[in.ID] = true
			if doneNow {
				done(a)
			}
		}
		flush := func() {
			cl.advance(3 * time.Second)
			for _, pair := range [][2]*app{{alice, bob}, {bob, alice}} {
				outs, err := pair[0].dev.Flush(ctx)
				if err != nil {
					t.Fatalf("%s Flush: %v", pair[0].addr, err)
				}
				for _, o := range outs {
					emit(pair[0], pair[1], o)
				}
			}
		}
		side := func(arg byte) (*app, *app) {
			if arg%2 == 0 {
				return alice, bob
			}
			return bob, alice
		}
		for n, b := range ops {
			op, arg := b%10, int(b/10)
			switch op {
			case 0:
				sendOne(alice, bob, n)
			case 1:
				sendOne(bob, alice, n)
			case 2:
				switch {
				case len(relay) == 0:
				case arg%5 == 4:
					a, _ := side(byte(arg / 5))
					deliverBatch(a, 1+arg%7)
				default:
					deliver(arg%len(relay), arg%3 == 0)
				}
			case 3:
				if len(relay) > 0 {
					i := arg % len(relay)
					envs[relay[i].hash].copies--
					relay = slices.Delete(relay, i, i+1)
				}
			case 4:
				if len(relay) > 0 {
					cp := relay[arg%len(relay)]
					envs[cp.hash].copies++
					relay = append(relay, cp)
				}
			case 5:
				if len(relay) > 0 {
					i := arg % len(relay)
					cp := relay[i]
					relay = append(slices.Delete(relay, i, i+1), cp)
				}
			case 6:
				flush()
			case 7:
				a, _ := side(byte(arg))
				a.restart()
			case 8:
				done(alice)
				done(bob)
			case 9:
				a, peer := side(byte(arg))
				var ids []sealpost.MessageID
				for id, st := range byID {
					if st.message && a.has[id] && bodies[id] != "" && st.delivered && sentBy(bodies[id], peer) {
						ids = append(ids, id)
					}
				}
				if len(ids) > 0 {
					slices.SortFunc(ids, func(x, y sealpost.MessageID) int { return bytes.Compare(x[:], y[:]) })
					if err := a.dev.Acknowledge(ctx, peer.addr, sealpost.KindRead, ids[arg%len(ids)]); err != nil {
						t.Fatalf("%s Acknowledge: %v", a.addr, err)
					}
				}
			}
		}
		// Quiesce: deliver everything, flush receipts until quiet.
		for round := 0; len(relay) > 0 || round == 0; round++ {
			if round > 8 {
				t.Fatalf("receipts keep coming: %d in the relay", len(relay))
			}
			for len(relay) > 0 {
				deliver(0, true)
			}
			done(alice)
			done(bob)
			flush()
		}
		t.Logf("%d ops: %d messages sent, restarts alice %d bob %d", len(ops), len(sentIDs), alice.restarts, bob.restarts)
		// deliver fails on any error of a first delivery, and the quiesce
		// delivered every copy left, so a message not delivered now had
		// all its copies dropped.
		for _, id := range sentIDs {
			if st := byID[id]; !st.delivered && st.copies != 0 {
				t.Fatalf("message %q was neither dropped nor delivered", bodies[id])
			}
		}
		// Convergence: both sides still talk.
		for _, pair := range [][2]*app{{alice, bob}, {bob, alice}} {
			sendOne(pair[0], pair[1], -1)
			for len(relay) > 0 {
				deliver(0, true)
			}
			if id := lastSent(bodies, pair[0].addr.User+" -1"); !pair[1].has[id] {
				t.Fatalf("the final message from %s did not arrive", pair[0].addr)
			}
		}
	})
}

// sentBy reports whether body was sent by p (bodies start with the user).
func sentBy(body string, p *app) bool {
	return len(body) > len(p.addr.User) && body[:len(p.addr.User)] == p.addr.User && body[len(p.addr.User)] == ' '
}

// lastSent returns the id of the message with body.
func lastSent(bodies map[sealpost.MessageID]string, body string) sealpost.MessageID {
	for id, b := range bodies {
		if b == body {
			return id
		}
	}
	return sealpost.MessageID{}
}

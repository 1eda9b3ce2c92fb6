package loadtest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

var (
	loadDuration = flag.Duration("load.duration", 4*time.Second, "load phase of each TestRelayLoad scenario (60s for the full run)")
	loadDevices  = flag.Int("load.devices", 100, "devices in TestRelayLoad, in pairs (200 for the full run, 20 with -short)")
	loadRate     = flag.Float64("load.rate", 1, "messages per second each device sends on average (2 for the full run)")
	loadSeed     = flag.Uint64("load.seed", 0, "seed of the send schedules and the bad client (0: from the clock)")
)

// maxWait bounds every wait of the test for something to happen (a
// drain, the bad client's conditions): only a broken relay or device
// gets near it.
const maxWait = 2 * time.Minute

type scenario struct {
	name     string
	depth    int  // the relay's mailbox depth (0: its default)
	restarts int  // SIGKILL and restart the relay this many times, evenly spaced
	bad      bool // run the bad client
}

// TestRelayLoad runs -load.devices sealpost Devices (memory stores) in
// pairs through one relay process with embedded NATS JetStream on
// loopback, each device with its own loopback address and mailbox
// WebSocket, sending messages to its peer at -load.rate per second (each
// acknowledged as read, receipts flushed every 100 ms) for
// -load.duration, then waiting until everything sent has arrived and
// every read receipt is back. Three scenarios:
//
//   - steady: just the load.
//   - restarts: the relay is killed (SIGKILL) and restarted on the same
//     data folder at 1/3 and 2/3 of the load; devices reconnect and post
//     again whatever the relay had not answered 202.
//   - bad-client: from 1/5 of the load, a hostile client posts garbage,
//     envelopes of another version, empty, truncated, tampered and
//     oversized ones (with and without Content-Length) from one address,
//     and floods one honest device's mailbox (the victim's) from four
//     more. The victim is offline until the flood has filled its mailbox
//     (507) and its peer has been refused with 507 too, so both happen
//     whatever the machine's speed. The bad client stops at 4/5 of the
//     load, or later: not before every honest device has received a
//     message sent after it started.
//
// Every scenario checks: no message lost (each one sent reached the
// peer's app), none handed to an app twice, every read receipt back, no
// envelope delivered that nobody posted, no honest envelope refused by
// the relay (other than 429/503/507, which the devices ride out) or by a
// Device, no open transcript finding at the end, and the relay process
// exiting cleanly. The bad-client scenario also checks each kind's
// answers (badKinds), that no refused envelope was delivered, that every
// bad envelope the relay accepted reached the victim and was refused by
// its Device with a typed error, that the rate limit answered 429, and
// that the victim holds nothing from Mallory.
//
// It reports envelopes/s accepted and delivered, latency percentiles and
// peak memory of this process (the devices) and of the relay; nothing of
// that is asserted.
func TestRelayLoad(t *testing.T) {
	for _, sc := range []scenario{
		{name: "steady"},
		{name: "restarts", restarts: 2},
		{name: "bad-client", depth: badDepth, bad: true},
	} {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
	}
}

func runScenario(t *testing.T, sc scenario) {
	n, dur := *loadDevices, *loadDuration
	if testing.Short() {
		n, dur = min(n, 20), min(dur, 2*time.Second)
	}
	if n < 2 || n%2 != 0 {
		t.Fatalf("-load.devices must be even and at least 2, not %d", n)
	}
	seed := *loadSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (-load.seed)", seed)
	runtime.GC()
	hwmReset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil // resets VmHWM

	relay := startRelay(t, sc.depth)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &run{t: t, ctx: ctx, cancel: cancel, relay: relay,
		honest: map[envKey]struct{}{}, bad: map[envKey]*badEnv{}}

	// Devices, bundles and sessions, in parallel.
	setupStart := time.Now()
	agents := make([]*agent, n)
	parallel(t, n, func(i int) error {
		dev, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), sealpost.Address{User: fmt.Sprintf("d%03d", i), Device: 1},
			sealpost.WithReceiptDelay(receiptMin, receiptMax))
		if err != nil {
			return err
		}
		agents[i] = newAgent(r, i, dev, localClient(relay.url(), deviceIP(i)))
		return agents[i].publish(ctx)
	})
	parallel(t, n/2, func(p int) error {
		a, b := agents[2*p], agents[2*p+1]
		a.peer, b.peer = b, a
		a.markReady() // b can send once a's first message arrives
		return startSession(ctx, a.c, a.dev, b.dev.Address())
	})
	var bad *badClient
	if sc.bad {
		r.victim = agents[1]
		var err error
		if bad, err = newBadClient(ctx, r, r.victim); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d devices, sessions and bundles ready in %v", n, time.Since(setupStart).Round(time.Millisecond))

	// The load.
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	var sampler sync.WaitGroup
	sampler.Go(func() { r.sampleMemory(sampleCtx) })
	stopSending := make(chan struct{})
	var wg sync.WaitGroup
	r.t0 = time.Now()
	cpu0 := cpuTime()
	for _, a := range agents {
		wg.Go(a.receiveLoop)
		wg.Go(a.flushLoop)
	}
	// The load starts once every mailbox is connected.
	for r.connections.Load() < int64(n) && !r.failed() {
		if time.Since(r.t0) > maxWait {
			r.fail("%d of %d mailboxes connected after %v", r.connections.Load(), n, maxWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
	loadStart := time.Now()
	for _, a := range agents {
		wg.Go(func() { a.sendLoop(stopSending, *loadRate, seed) })
	}
	until := func(at time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(loadStart.Add(at))):
		}
	}
	var badLog string
	switch {
	case sc.restarts > 0:
		for i := 1; i <= sc.restarts && !r.failed(); i++ {
			until(dur * time.Duration(i) / time.Duration(sc.restarts+1))
			down := relay.kill()
			t.Logf("relay killed and serving again after %v", down.Round(time.Millisecond))
		}
	case sc.bad:
		until(dur / 5)
		badLog = runBadClient(r, bad, agents, loadStart, dur, seed)
	}
	until(dur)
	close(stopSending)
	loadTime := time.Since(loadStart)
	accepted := r.acceptedMsgs.Load() + r.acceptedReceipts.Load()
	delivered := r.deliveries.Load()

	// Wait until every message sent has arrived and its read receipt is
	// back. A device's transcript may then still show a Drop: the peer's
	// newest report was made while one of the device's contents was late
	// (a receipt envelope overtaken by a message posted at the same time),
	// and the peer has sent nothing since. A message from the peer brings
	// a newer report; send one, at most three rounds, and let the check
	// below find whatever stays open.
	drainStart := time.Now()
	drained := r.drain(agents)
	rng := rand.New(rand.NewPCG(seed, 1))
	nudges := 0
	for round := 0; drained && round < 3; round++ {
		var open []*agent
		for _, a := range agents {
			if len(a.dev.Findings(a.peer.dev.Address())) > 0 {
				open = append(open, a)
			}
		}
		if len(open) == 0 {
			break
		}
		for _, a := range open {
			if a.peer.sendOne(time.Now(), rng) != nil {
				break
			}
			nudges++
		}
		drained = r.drain(agents)
	}
	drainTime := time.Since(drainStart)
	cancel()
	wg.Wait()
	stopSampling()
	sampler.Wait()
	relay.stop()
	devCPU, relayCPU := cpuTime()-cpu0, time.Duration(relay.cpu.Load())
	hwm, _ := procStatus("/proc/self/status", "VmHWM:")

	// Checks.
	var lost, sent, gotTotal, readTotal int
	var latency, receiptRT []int64
	for _, a := range agents {
		lost += a.lost()
		got, s, _, rd := a.progress()
		sent, gotTotal, readTotal = sent+s, gotTotal+got, readTotal+rd
		a.mu.Lock()
		latency = append(latency, a.latency...)
		receiptRT = append(receiptRT, a.receiptRT...)
		a.mu.Unlock()
		if !r.failed() {
			if f := a.dev.Findings(a.peer.dev.Address()); len(f) > 0 {
				t.Errorf("%s: open transcript findings at the end: %v", a.name, f)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d messages lost", lost)
	}
	for _, a := range agents {
		if a.peer != r.victim && a.refused[507] > 0 {
			t.Errorf("%s: %d posts to a mailbox nobody flooded refused with 507", a.name, a.refused[507])
		}
	}
	if sc.bad && !r.failed() {
		bad.check()
		if _, _, err := r.victim.dev.PeerIdentity(sealpost.Address{User: "mallory", Device: 1}); err == nil {
			t.Errorf("the victim pinned Mallory's identity: a bad envelope changed its state")
		}
		if r.victim.peer.refused[507] == 0 {
			t.Errorf("the victim's peer was never refused with 507")
		}
	}
	if sc.restarts > 0 && relay.starts != sc.restarts+1 {
		t.Errorf("the relay started %d times, want %d", relay.starts, sc.restarts+1)
	}

	// Report.
	p50, p99, pmax := percentiles(latency)
	r50, r99, rmax := percentiles(receiptRT)
	var rep bytes.Buffer
	fmt.Fprintf(&rep, "scenario %s: %d devices (%d pairs), %.3g messages/s each, load %v, drain %v",
		sc.name, n, n/2, *loadRate, loadTime.Round(time.Millisecond), drainTime.Round(time.Millisecond))
	fmt.Fprintf(&rep, "\n  messages: %d sent, %d handed to the apps, %d lost, %d handed to an app twice; read receipts back for %d",
		sent, gotTotal, lost, r.appDuplicates.Load(), readTotal)
	fmt.Fprintf(&rep, "\n  relay accepted (202) %d honest envelopes during the load: %.0f/s (%d messages, %d receipt envelopes over the whole run, %.0f B each on average)",
		accepted, float64(accepted)/loadTime.Seconds(), r.acceptedMsgs.Load(), r.acceptedReceipts.Load(),
		float64(r.honestBytes.Load())/float64(max(1, r.acceptedMsgs.Load()+r.acceptedReceipts.Load())))
	fmt.Fprintf(&rep, "\n  delivered %d envelopes during the load: %.0f/s; over the whole run %d, of which %d repeats the devices caught (ErrDuplicate) and %d the bad client's",
		delivered, float64(delivered)/loadTime.Seconds(), r.deliveries.Load(), r.relayRepeats.Load(), r.badDelivered.Load())
	fmt.Fprintf(&rep, "\n  latency send→receive: p50 %v, p99 %v, max %v; send→read receipt: p50 %v, p99 %v, max %v",
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), pmax.Round(time.Microsecond),
		r50.Round(time.Microsecond), r99.Round(time.Microsecond), rmax.Round(time.Microsecond))
	fmt.Fprintf(&rep, "\n  CPU: devices (this process) %v, relay %v: %.0f µs per envelope accepted",
		devCPU.Round(time.Millisecond), relayCPU.Round(time.Millisecond),
		float64((devCPU+relayCPU).Microseconds())/float64(max(1, r.acceptedMsgs.Load()+r.acceptedReceipts.Load())))
	fmt.Fprintf(&rep, "\n  messages sent after the drain to settle stale transcript reports: %d", nudges)
	fmt.Fprintf(&rep, "\n  honest posts not accepted at first: %v; mailbox connections %d (%d failed attempts)",
		&r.honestRefused, r.connections.Load(), r.subscribeErrors.Load())
	hwmNote := ""
	if !hwmReset {
		hwmNote = " (since the process started: /proc/self/clear_refs refused)"
	}
	fmt.Fprintf(&rep, "\n  memory: devices (this process) heap in use peak %s, heap sys peak %s, VmHWM %s%s; relay process heap in use peak %s, heap sys peak %s, VmHWM %s",
		mib(r.peakHeap.Load()), mib(r.peakSys.Load()), mib(hwm), hwmNote,
		mib(relay.peakHeap.Load()), mib(relay.peakSys.Load()), mib(relay.peakHWM.Load()))
	if sc.restarts > 0 {
		fmt.Fprintf(&rep, "\n  relay killed %d times, down %v", len(relay.downtimes), relay.downtimes)
	}
	if sc.bad {
		fmt.Fprintf(&rep, "\n  bad client: %s\n  relay's answers to it:%s\n  the victim's Device refused: %v",
			badLog, bad.summary(), &r.deviceRefused)
	}
	t.Log(rep.String())
}

// drain waits until every message sent has arrived and its read receipt
// is back, and reports whether that happened.
func (r *run) drain(agents []*agent) bool {
	start := time.Now()
	for !r.failed() {
		done := true
		for _, a := range agents {
			_, sent, _, read := a.progress()
			got, _, _, _ := a.peer.progress()
			done = done && got == sent && read == sent
		}
		if done {
			return true
		}
		if time.Since(start) > maxWait {
			r.fail("not drained within %v: %s", maxWait, totals(agents))
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// runBadClient runs the bad client from now until 4/5 of the load and
// until its conditions hold (see TestRelayLoad), and returns what
// happened when.
func runBadClient(r *run, bad *badClient, agents []*agent, loadStart time.Time, dur time.Duration, seed uint64) string {
	deadline := time.Now().Add(maxWait)
	wait := func(what string, cond func() bool) bool {
		for !cond() {
			if r.failed() {
				return false
			}
			if time.Now().After(deadline) {
				r.fail("bad client: %s did not happen within %v", what, maxWait)
				return false
			}
			time.Sleep(5 * time.Millisecond)
		}
		return true
	}
	wait("every device having a session", func() bool {
		for _, a := range agents {
			if !a.isReady() {
				return false
			}
		}
		return true
	})
	start := time.Since(loadStart)
	base := make([]uint32, len(agents)) // the first message number sent after the start
	for i, a := range agents {
		base[i] = a.sentCount()
	}
	r.victim.setOnline(false)
	bad.start(seed)
	// Every device sends a message now, besides its schedule: the bad
	// client stops only once each has arrived, however low -load.rate is.
	var probes sync.WaitGroup
	for _, a := range agents {
		probes.Go(func() { a.sendOne(time.Now(), rand.New(rand.NewPCG(seed, 300+uint64(a.idx)))) })
	}
	wait("the flood filling the victim's mailbox and its peer being refused", func() bool {
		r.victim.peer.mu.Lock()
		defer r.victim.peer.mu.Unlock()
		return bad.filled.Load() && r.victim.peer.refused[507] > 0
	})
	online := time.Since(loadStart)
	r.victim.setOnline(true)
	wait("every device receiving a message sent after the bad client started, and the relay giving each answer the test needs", func() bool {
		if time.Since(loadStart) < dur*4/5 || !bad.answered() {
			return false
		}
		for _, a := range agents {
			if !a.receivedSince(base[a.peer.idx]) {
				return false
			}
		}
		return true
	})
	probes.Wait()
	bad.halt()
	return fmt.Sprintf("from %v to %v of the load; the victim offline until %v", start.Round(time.Millisecond),
		time.Since(loadStart).Round(time.Millisecond), online.Round(time.Millisecond))
}

// cpuTime returns the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// totals sums the progress of every device, for a failure message.
func totals(agents []*agent) string {
	var got, sent, del, read int
	for _, a := range agents {
		g, s, d, rd := a.progress()
		got, sent, del, read = got+g, sent+s, del+d, read+rd
	}
	return fmt.Sprintf("%d sent, %d received, %d with a delivery receipt, %d with a read receipt", sent, got, del, read)
}

// parallel runs fn(0..n-1) on GOMAXPROCS goroutines and fails t on the
// first error.
func parallel(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					errs <- fmt.Errorf("%d: %w", i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

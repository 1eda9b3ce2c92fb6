package sealpost_test

import (
	"container/heap"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// The statistical disclosure attack on sealed sender (Martiny et al., NDSS
// 2021), against a model of the library's traffic (docs/SPEC.md §15.13).
//
// This is a model, not a run of Devices: an event simulation of who sends
// what to which mailbox and when, with the library's rules for receipts
// (§14: a queue that was empty is due after a random delay, every receipt
// queued for a peer leaves in one envelope, receipts ride along with a
// message sent before they are due) and for reply mailboxes (§15.13: the
// first contact goes to the responder's published mailbox and names the
// initiator's reply mailbox; everything after goes between the two reply
// mailboxes). The relay sees, for each envelope, the mailbox, the time and
// a padded size (all the same here); never the sender. Delivery is
// instant and every device is online; see the SPEC for what this leaves
// out.

var sdaRuns = flag.Int("sealpost.sdaruns", 0, "seeded runs per configuration for the disclosure simulations (0: 7, or 3 with -short)")

// sdaConfig is one configuration of the population.
type sdaConfig struct {
	users    int           // each with a published mailbox
	contacts int           // established conversations each user starts (each user ends with about twice as many)
	rate     float64       // background messages per second, population total, on random edges
	dMin     time.Duration // receipt delay range
	dMax     time.Duration
	replies  bool    // reply mailboxes (WithReplyMailboxes) everywhere
	bobReply float64 // probability that Bob answers each of Alice's messages
	messages int     // Alice→Bob messages per run
	rotateAt int     // with replies: Alice's message (1-based) that names her new reply mailbox for Bob; 0: none
}

func (c sdaConfig) withDelay(min, max time.Duration) sdaConfig { c.dMin, c.dMax = min, max; return c }

// sdaBase: 200 users, ~10 conversations each, 0.5 messages/s in all (each
// user sends about 9 an hour), Alice writes to Bob every 60 s + Exp(240 s).
var sdaBase = sdaConfig{users: 200, contacts: 5, rate: 0.5, messages: 60}

// sdaImmediate is WithReceiptDelay(0, 0) with an app that calls Flush
// every 250 ms: the receipt leaves within a quarter second.
const sdaImmediate = 250 * time.Millisecond

type sdaEnvelope struct {
	at float64 // seconds
	mb int
}

type sdaEvent struct {
	at       float64
	kind     int // sdaMsg, sdaReceipt, sdaAlice
	from, to int
	gen      int // for receipts: the queue generation it flushes
}

const (
	sdaMsg = iota
	sdaReceipt
	sdaAlice
)

type sdaQueue []sdaEvent

func (q sdaQueue) Len() int           { return len(q) }
func (q sdaQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q sdaQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *sdaQueue) Push(x any)        { *q = append(*q, x.(sdaEvent)) }
func (q *sdaQueue) Pop() any          { old := *q; e := old[len(old)-1]; *q = old[:len(old)-1]; return e }

// sdaWorld is one run: the relay's log and the mailboxes that matter.
type sdaWorld struct {
	log        []sdaEnvelope // in time order
	mailboxes  int
	alicePub   int
	bobPub     int
	aliceReply int       // Alice's reply mailbox for Bob (replies only)
	bobReply   int       // Bob's reply mailbox for Alice (replies only)
	aliceAt    []float64 // when Alice sent each message to Bob
	start, end float64   // the span of the log
	aliceNew   int       // with rotateAt: Alice's new reply mailbox for Bob
	rotated    float64   // and when Alice sent the content naming it
}

const (
	sdaAlice0 = 0 // user ids of the target pair
	sdaBob0   = 1
)

// sdaRun simulates one seeded run.
func sdaRun(cfg sdaConfig, seed uint64) *sdaWorld {
	rng := rand.New(rand.NewPCG(seed, 18))
	n := cfg.users
	// The contact graph: each user starts conversations with `contacts`
	// random others; Alice and Bob are not among each other's background
	// contacts, so every envelope between them is the target's.
	type edge struct{ a, b int }
	seen := map[edge]bool{}
	var edges []edge
	for u := range n {
		for range cfg.contacts {
			v := rng.IntN(n)
			a, b := min(u, v), max(u, v)
			if a == b || seen[edge{a, b}] || a == sdaAlice0 && b == sdaBob0 {
				continue
			}
			seen[edge{a, b}] = true
			edges = append(edges, edge{a, b})
		}
	}
	w := &sdaWorld{alicePub: sdaAlice0, bobPub: sdaBob0}
	// Mailbox ids: 0..n-1 published; then, with reply mailboxes, one per
	// (owner, peer).
	next := n
	reply := make([]int, n*n) // (owner, peer) → owner's mailbox for peer, 0: none yet
	replyOf := func(owner, peer int) int {
		k := owner*n + peer
		if reply[k] == 0 {
			reply[k] = next
			next++
		}
		return reply[k]
	}
	if cfg.replies {
		w.aliceReply = replyOf(sdaAlice0, sdaBob0)
		w.bobReply = replyOf(sdaBob0, sdaAlice0)
	}
	aliceKnowsBobReply := false // Alice has received a content naming Bob's reply mailbox
	bobSwitched := false        // Bob has received Alice's content naming her new mailbox
	aliceSent := 0
	if cfg.replies && cfg.rotateAt > 0 {
		w.aliceNew = next
		next++
	}
	// to is where an envelope from `from` to user `to` goes.
	dest := func(from, to int) int {
		if !cfg.replies {
			return to
		}
		if from == sdaAlice0 && to == sdaBob0 && !aliceKnowsBobReply {
			return sdaBob0 // first contact: the responder's published mailbox
		}
		if from == sdaBob0 && to == sdaAlice0 && bobSwitched {
			return w.aliceNew
		}
		return replyOf(to, from)
	}
	delay := func() float64 {
		lo, hi := cfg.dMin.Seconds(), cfg.dMax.Seconds()
		if hi <= lo {
			return lo + rng.Float64()*sdaImmediate.Seconds()
		}
		return lo + rng.Float64()*(hi-lo)
	}
	// pending[(v,u)] is the generation of v's receipt queue for u when it
	// has receipts waiting, 0 when empty.
	pending := make([]int, n*n)
	gen := 0
	q := &sdaQueue{}
	const warm = 600.0
	// Background messages come from a source of their own, in time order,
	// merged with the queue of everything else: the same seed gives every
	// configuration the same background.
	bg := rand.New(rand.NewPCG(seed, 19))
	nextBackground := func() sdaEvent {
		if cfg.rate <= 0 {
			return sdaEvent{at: math.Inf(1)}
		}
		e := edges[bg.IntN(len(edges))]
		if bg.IntN(2) == 0 {
			e.a, e.b = e.b, e.a
		}
		return sdaEvent{kind: sdaMsg, from: e.a, to: e.b}
	}
	background := nextBackground()
	background.at = bg.ExpFloat64() / cfg.rate
	at := warm
	for range cfg.messages {
		heap.Push(q, sdaEvent{at: at, kind: sdaAlice, from: sdaAlice0, to: sdaBob0})
		w.aliceAt = append(w.aliceAt, at)
		at += 60 + rng.ExpFloat64()*240
	}
	w.end = at
	for {
		var ev sdaEvent
		if q.Len() > 0 && (*q)[0].at < background.at {
			ev = heap.Pop(q).(sdaEvent)
		} else {
			ev = background
			t := background.at + bg.ExpFloat64()/cfg.rate
			background = nextBackground()
			background.at = t
		}
		if ev.at > w.end {
			break
		}
		switch ev.kind {
		case sdaAlice, sdaMsg:
			w.log = append(w.log, sdaEnvelope{ev.at, dest(ev.from, ev.to)})
			// Receipts the sender had queued for this peer ride along.
			pending[ev.from*n+ev.to] = 0
			if ev.from == sdaBob0 && ev.to == sdaAlice0 {
				aliceKnowsBobReply = true
			}
			if ev.kind == sdaAlice {
				aliceSent++
				if aliceSent == cfg.rotateAt && w.aliceNew > 0 {
					bobSwitched, w.rotated = true, ev.at // delivery is instant
				}
			}
			// The recipient queues a delivery receipt.
			k := ev.to*n + ev.from
			if pending[k] == 0 {
				gen++
				pending[k] = gen
				heap.Push(q, sdaEvent{at: ev.at + delay(), kind: sdaReceipt, from: ev.to, to: ev.from, gen: gen})
			}
			if ev.kind == sdaAlice && cfg.bobReply > 0 && rng.Float64() < cfg.bobReply {
				heap.Push(q, sdaEvent{at: ev.at + 2 + rng.ExpFloat64()*60, kind: sdaMsg, from: sdaBob0, to: sdaAlice0})
			}
		case sdaReceipt:
			k := ev.from*n + ev.to
			if pending[k] != ev.gen {
				continue // it rode along with a message
			}
			pending[k] = 0
			w.log = append(w.log, sdaEnvelope{ev.at, dest(ev.from, ev.to)})
			if ev.from == sdaBob0 && ev.to == sdaAlice0 {
				aliceKnowsBobReply = true
			}
		}
	}
	w.mailboxes = next
	return w
}

// sdaAttack is the relay's statistical disclosure attack on target: for
// every envelope into target, each other mailbox that receives an envelope
// within window after it scores 1, less what its own rate over the whole
// log predicts (1 - exp(-rate*window)). A mailbox that scored nothing is
// no candidate. It returns, for each k in 1..len(checkpoints), the top
// candidate counting the windows closed by checkpoints[k-1].
func sdaAttack(w *sdaWorld, target int, window float64, checkpoints []float64) []int {
	counts := make([]float64, w.mailboxes)
	for _, e := range w.log {
		counts[e.mb]++
	}
	expect := make([]float64, w.mailboxes)
	for m, c := range counts {
		expect[m] = 1 - math.Exp(-c/(w.end-w.start)*window)
	}
	hits := make([]float64, w.mailboxes)
	mark := make([]int, w.mailboxes)
	var touched []int
	windows := 0
	tops := make([]int, len(checkpoints))
	i := 0
	for k, cp := range checkpoints {
		for ; i < len(w.log) && w.log[i].at+window <= cp; i++ {
			if w.log[i].mb != target {
				continue
			}
			windows++
			for j := i + 1; j < len(w.log) && w.log[j].at <= w.log[i].at+window; j++ {
				m := w.log[j].mb
				if m == target || mark[m] == windows {
					continue
				}
				mark[m] = windows
				if hits[m] == 0 {
					touched = append(touched, m)
				}
				hits[m]++
			}
		}
		top, best := -1, math.Inf(-1)
		for _, m := range touched {
			if s := hits[m] - float64(windows)*expect[m]; s > best {
				top, best = m, s
			} else if s == best {
				top = -1 // a tie names nobody
			}
		}
		tops[k] = top
	}
	return tops
}

// sdaLinkedAfter is the number of Alice→Bob messages after which cand is
// the top candidate and stays so to the end of the run, or 0 (never).
func sdaLinkedAfter(w *sdaWorld, target, cand int, window float64) int {
	cps := append(slices.Clone(w.aliceAt[1:]), w.end)
	tops := sdaAttack(w, target, window, cps)
	linked := 0
	for k := len(tops) - 1; k >= 0 && tops[k] == cand; k-- {
		linked = k + 1
	}
	return linked
}

// sdaSince is w from time t0 on: the log the relay scores after a
// rotation, and Alice's messages from then.
func sdaSince(w *sdaWorld, t0 float64) *sdaWorld {
	v := *w
	v.start = t0
	i, _ := slices.BinarySearchFunc(w.log, t0, func(e sdaEnvelope, t float64) int { return cmpFloat(e.at, t) })
	v.log = w.log[i:]
	j, _ := slices.BinarySearch(w.aliceAt, t0)
	v.aliceAt = w.aliceAt[j:]
	return &v
}

// sdaMedian of messages-to-link, where 0 (never) sorts last; 0 if at
// least half never linked.
func sdaMedian(xs []int) int {
	s := slices.Clone(xs)
	slices.SortFunc(s, func(a, b int) int {
		if a == 0 {
			a = math.MaxInt
		}
		if b == 0 {
			b = math.MaxInt
		}
		return a - b
	})
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return s[len(s)/2-1] // the lower median: never optimistic for the defence
}

func sdaFmt(n, cap int) string {
	if n == 0 {
		return fmt.Sprintf("never (>%d)", cap)
	}
	return fmt.Sprint(n)
}

func sdaRunCount(t *testing.T) int {
	if *sdaRuns > 0 {
		return *sdaRuns
	}
	if testing.Short() {
		return 3
	}
	return 7
}

var sdaWindows = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}

// TestStatisticalDisclosureSDA: messages until the relay's attack ranks
// Alice's published mailbox first, for (a) immediate receipts, (b) the
// default receipt delay, (b') the default delay with Bob answering half
// the messages, (c) reply mailboxes; and for (c) how fast the two reply
// mailboxes are linked to each other.
func TestStatisticalDisclosureSDA(t *testing.T) {
	runs := sdaRunCount(t)
	def := sdaBase.withDelay(sealpost.DefaultReceiptDelayMin, sealpost.DefaultReceiptDelayMax)
	answered := def
	answered.bobReply = 0.5
	withReplies := def
	withReplies.replies = true
	rotating := withReplies
	rotating.rotateAt = 30
	configs := []struct {
		name string
		cfg  sdaConfig
	}{
		{"(a) published mailboxes, immediate receipts", sdaBase.withDelay(0, 0)},
		{"(b) published mailboxes, default receipt delay", def},
		{"(b') as (b), Bob answers half after 2 s + Exp(60 s)", answered},
		{"(c) reply mailboxes, default receipt delay", withReplies},
		{"(c) reply mailboxes, immediate receipts", withReplies.withDelay(0, 0)},
		{"(d) as (c) with the default delay, Alice rotates at message 30", rotating},
	}
	medians := map[string]map[time.Duration]int{}
	for _, c := range configs {
		medians[c.name] = map[time.Duration]int{}
		res := map[time.Duration][]int{}
		pair := map[time.Duration][]int{}
		for r := range runs {
			w := sdaRun(c.cfg, uint64(r+1)) // the same seeds for every configuration
			for _, win := range sdaWindows {
				res[win] = append(res[win], sdaLinkedAfter(w, w.bobPub, w.alicePub, win.Seconds()))
				switch {
				case c.cfg.rotateAt > 0:
					// Bob's mailbox is unchanged: the attack on it, from the
					// rotation on, against Alice's new mailbox.
					pair[win] = append(pair[win], sdaLinkedAfter(sdaSince(w, w.rotated), w.bobReply, w.aliceNew, win.Seconds()))
				case c.cfg.replies:
					pair[win] = append(pair[win], sdaLinkedAfter(w, w.bobReply, w.aliceReply, win.Seconds()))
				}
			}
		}
		for _, win := range sdaWindows {
			m := sdaMedian(res[win])
			medians[c.name][win] = m
			t.Logf("%s, W=%v: Alice's published mailbox linked after %s messages (median of %d runs; runs %v)",
				c.name, win, sdaFmt(m, c.cfg.messages), runs, res[win])
			switch {
			case c.cfg.rotateAt > 0:
				t.Logf("%s, W=%v: Alice's new reply mailbox linked to Bob's (so to her old one) after %s messages from the rotation (median; runs %v)",
					c.name, win, sdaFmt(sdaMedian(pair[win]), c.cfg.messages-c.cfg.rotateAt+1), pair[win])
			case c.cfg.replies:
				t.Logf("%s, W=%v: Alice's reply mailbox linked to Bob's after %s messages (median; runs %v)",
					c.name, win, sdaFmt(sdaMedian(pair[win]), c.cfg.messages), pair[win])
			}
		}
	}
	a, b := medians[configs[0].name], medians[configs[1].name]
	// Robust facts. With immediate receipts every window links Alice; the
	// default delay leaves the 1 s window (shorter than any delay) with
	// nothing to score, and needs more messages at 5 s.
	for _, win := range sdaWindows {
		if a[win] == 0 {
			t.Errorf("(a) W=%v: immediate receipts never linked on median; the simulation does not model the attack", win)
		}
	}
	if b[time.Second] != 0 {
		t.Errorf("(b) W=1s: linked after %d on median, but no receipt leaves within 1 s", b[time.Second])
	}
	if b[5*time.Second] != 0 && b[5*time.Second] <= a[5*time.Second] {
		t.Errorf("(b) W=5s links after %d, (a) after %d: the delay did not slow the attack", b[5*time.Second], a[5*time.Second])
	}
	// Each attacker at its best window: the delay costs it messages (it
	// must widen the window to the delay's range, which lets in more of
	// the background).
	best := func(m map[time.Duration]int) int {
		out := 0
		for _, n := range m {
			if n != 0 && (out == 0 || n < out) {
				out = n
			}
		}
		return out
	}
	if ba, bb := best(a), best(b); ba == 0 || bb != 0 && bb <= ba {
		t.Errorf("best window: (a) links after %d, (b) after %d; want (a) sooner", ba, bb)
	}
	// With reply mailboxes nothing of the conversation reaches Alice's
	// published mailbox: on median the attack never ranks it first.
	for _, c := range configs[3:] {
		for _, win := range sdaWindows {
			if m := medians[c.name][win]; m != 0 {
				t.Errorf("%s, W=%v: Alice's published mailbox linked after %d messages on median", c.name, win, m)
			}
		}
	}
}

// TestStatisticalDisclosureReplyStructure checks the model itself: with
// reply mailboxes, one envelope of the conversation goes to Bob's
// published mailbox (the first contact) and none to Alice's.
func TestStatisticalDisclosureReplyStructure(t *testing.T) {
	cfg := sdaBase.withDelay(sealpost.DefaultReceiptDelayMin, sealpost.DefaultReceiptDelayMax)
	cfg.replies, cfg.rate, cfg.messages = true, 0, 20
	cfg.bobReply = 0.5
	w := sdaRun(cfg, 7)
	var toAlice, toBob, toReplies int
	for _, e := range w.log {
		switch e.mb {
		case w.alicePub:
			toAlice++
		case w.bobPub:
			toBob++
		case w.aliceReply, w.bobReply:
			toReplies++
		}
	}
	if toAlice != 0 || toBob != 1 || toReplies != len(w.log)-1 {
		t.Fatalf("to Alice's published %d, Bob's published %d, the reply mailboxes %d of %d", toAlice, toBob, toReplies, len(w.log))
	}
}

// sdaPoisson returns a Poisson-distributed count of mean mu.
func sdaPoisson(rng *rand.Rand, mu float64) int {
	if mu > 50 {
		return max(0, int(math.Round(mu+math.Sqrt(mu)*rng.NormFloat64())))
	}
	k, p, l := 0, 1.0, math.Exp(-mu)
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// sdaFirstContactLink: with reply mailboxes everywhere, published mailboxes
// receive only first contacts, and a fresh mailbox's first envelope is the
// responder's receipt (or answer) to one of them. The relay, seeing a
// fresh mailbox's first envelope at s, picks uniformly among the first
// contacts in [s-dMax, s-dMin] (Bayes-optimal for a uniform delay and one
// new mailbox at a time; matching several at once could do better). It
// returns how often it picks Alice's. fcRate is first contacts per second
// over the relay's whole population.
func sdaFirstContactLink(rng *rand.Rand, fcRate float64, dMin, dMax time.Duration, trials int) float64 {
	lo, hi := dMin.Seconds(), dMax.Seconds()
	if hi <= lo {
		hi = lo + sdaImmediate.Seconds()
	}
	right := 0.0
	for range trials {
		// Alice's first contact is in the window by construction; the
		// others in it are Poisson over its length.
		k := 1 + sdaPoisson(rng, fcRate*(hi-lo))
		right += 1 / float64(k)
	}
	return right / float64(trials)
}

// sdaReadLink: does the relay tie Alice's reply mailbox to her published
// one by when they are read? Each of users devices wakes every Exp(10 min)
// and reads its published mailbox and its `mailboxes` reply mailboxes.
// oneConn: over one connection, which the relay sees read both: linked at
// the first wake-up. correlated: over separate connections within 2 s of
// the wake-up. Otherwise each mailbox is read over its own connection at
// its own Exp(10 min) times. For the last two the relay scores, for each
// read of Alice's reply mailbox, the published mailboxes read within 2 s,
// less their rate; it returns after how many reads of the reply mailbox
// Alice's published one is top and stays so to the cap (0: never).
func sdaReadLink(rng *rand.Rand, users, mailboxes int, correlated bool, cap int) int {
	const mean, spread = 600.0, 2.0
	type read struct {
		at float64
		mb int // published: user; reply mailbox of user u: users + u*mailboxes + i
	}
	var reads []read
	end := mean * float64(cap)
	aliceReply := users // Alice (user 0)'s first reply mailbox
	for u := range users {
		if correlated {
			for t := rng.ExpFloat64() * mean; t < end; t += rng.ExpFloat64() * mean {
				reads = append(reads, read{t + rng.Float64()*spread, u})
				for i := range mailboxes {
					reads = append(reads, read{t + rng.Float64()*spread, users + u*mailboxes + i})
				}
			}
			continue
		}
		for i := -1; i < mailboxes; i++ {
			mb := u
			if i >= 0 {
				mb = users + u*mailboxes + i
			}
			for t := rng.ExpFloat64() * mean; t < end; t += rng.ExpFloat64() * mean {
				reads = append(reads, read{t, mb})
			}
		}
	}
	slices.SortFunc(reads, func(a, b read) int { return cmpFloat(a.at, b.at) })
	expect := spread * 2 / mean // P(a published mailbox is read within ±spread of a time)
	hits := make([]float64, users)
	mark := make([]int, users)
	var tops []int
	n := 0
	for i, r := range reads {
		if r.mb != aliceReply {
			continue
		}
		n++
		for j := i - 1; j >= 0 && reads[j].at >= r.at-spread; j-- {
			if m := reads[j].mb; m < users && mark[m] != n {
				mark[m] = n
				hits[m]++
			}
		}
		for j := i + 1; j < len(reads) && reads[j].at <= r.at+spread; j++ {
			if m := reads[j].mb; m < users && mark[m] != n {
				mark[m] = n
				hits[m]++
			}
		}
		top, best := -1, math.Inf(-1)
		for m, h := range hits {
			if h == 0 {
				continue
			}
			if s := h - float64(n)*expect; s > best {
				top, best = m, s
			} else if s == best {
				top = -1
			}
		}
		tops = append(tops, top)
	}
	linked := 0
	for k := len(tops) - 1; k >= 0 && tops[k] == 0; k-- {
		linked = k + 1
	}
	return linked
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// sdaRotationLink: a rotation replaces a reply mailbox O by N. Seen by the
// relay, the peer's last envelope to O (at L) comes before its first to N
// (at F): the peer switches when it receives the content naming N, and
// envelopes it sent before that were already logged when they were sent
// (the grace period keeps O readable, it does not make envelopes to O
// arrive later). F-L is one gap of the conversation (60 s + Exp(240 s)
// here, as Alice's) plus the new receipt delay less the old. The relay
// links N to the mailbox whose last envelope came most recently before F
// among those that later go silent (other rotations, Poisson at
// deathRate); right when no other goes silent in (L, F).
func sdaRotationLink(rng *rand.Rand, deathRate float64, dMin, dMax time.Duration, trials int) float64 {
	lo, hi := dMin.Seconds(), dMax.Seconds()
	right := 0
	for range trials {
		d := func() float64 { return lo + rng.Float64()*(hi-lo) }
		gap := 60 + rng.ExpFloat64()*240 + d() - d()
		if sdaPoisson(rng, deathRate*max(gap, 0)) == 0 {
			right++
		}
	}
	return float64(right) / float64(trials)
}

// TestStatisticalDisclosureReplyLinks quantifies what the relay can still
// link with reply mailboxes: the first contact to the new reply mailbox by
// timing, the reply mailbox to the published one by reads, and a rotated
// mailbox to the one it replaced.
func TestStatisticalDisclosureReplyLinks(t *testing.T) {
	runs := sdaRunCount(t)
	trials := 400 * runs
	rng := rand.New(rand.NewPCG(18, 3))
	type pop struct {
		name   string
		fcRate float64 // first contacts per second: one new conversation per user per day
		deaths float64 // reply mailboxes replaced per second: ~10 per user (one per conversation), every 7 days
	}
	day, week := 86400.0, 7*86400.0
	pops := []pop{
		{"200 users", 200 / day, 200 * 10 / week},
		{"20,000 users", 20_000 / day, 20_000 * 10 / week},
		{"2,000,000 users", 2_000_000 / day, 2_000_000 * 10 / week},
	}
	imm := [2]time.Duration{0, 0}
	def := [2]time.Duration{sealpost.DefaultReceiptDelayMin, sealpost.DefaultReceiptDelayMax}
	for _, p := range pops {
		pi := sdaFirstContactLink(rng, p.fcRate, imm[0], imm[1], trials)
		pd := sdaFirstContactLink(rng, p.fcRate, def[0], def[1], trials)
		t.Logf("(c) %s: first contact linked to the new reply mailbox with probability %.3f (immediate receipts), %.3f (default delay)", p.name, pi, pd)
		if pd > pi {
			t.Errorf("%s: the delay made the first contact easier to link (%.3f > %.3f)", p.name, pd, pi)
		}
		rd := sdaRotationLink(rng, p.deaths, def[0], def[1], trials)
		t.Logf("(d) %s: both sides rotated at once: new mailbox linked to the old by timing with probability %.3f", p.name, rd)
	}
	// Reads.
	const readCap = 20
	var corr, indep []int
	for r := range runs {
		rr := rand.New(rand.NewPCG(uint64(r+1), 4))
		corr = append(corr, sdaReadLink(rr, 200, 10, true, readCap))
		indep = append(indep, sdaReadLink(rr, 200, 10, false, readCap))
	}
	// One connection reading both is a link by assumption (the relay sees
	// it at the first read), not a measurement.
	t.Logf("(c) reply mailbox tied to the published one: over one connection at the first read (assumed); separate connections at one wake-up after %s reads (runs %v); separate connections at independent times after %s (runs %v)",
		sdaFmt(sdaMedian(corr), readCap), corr, sdaFmt(sdaMedian(indep), readCap), indep)
	if sdaMedian(corr) == 0 {
		t.Errorf("reads at one wake-up over separate connections never linked: the model does not see correlated reads")
	}
	if sdaMedian(indep) != 0 {
		t.Errorf("independent reads linked after %d on median", sdaMedian(indep))
	}
}

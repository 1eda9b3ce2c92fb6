package loadtest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// envKey identifies an envelope by the first half of its SHA-256.
type envKey [16]byte

func keyOf(env []byte) envKey {
	sum := sha256.Sum256(env)
	return envKey(sum[:16])
}

// counts is a set of labelled counters.
type counts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counts) add(label string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[label] += n
}

func (c *counts) get(label string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[label]
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.m[k]))
	}
	return strings.Join(parts, ", ")
}

// run is what the devices of one scenario share: the relay, the failure
// switch, the record of every envelope posted, and the counters.
type run struct {
	t      *testing.T
	ctx    context.Context // canceled at the end and on the first failure
	cancel context.CancelFunc
	relay  *relayProc
	t0     time.Time // message send times are offsets from t0
	victim *agent    // the device whose mailbox the bad client floods, or nil
	nfail  atomic.Int64

	envMu  sync.Mutex
	honest map[envKey]struct{} // every envelope an honest device posted
	bad    map[envKey]*badEnv  // every envelope the bad client posted

	acceptedMsgs     atomic.Int64 // honest posts answered 202: messages
	acceptedReceipts atomic.Int64 // and receipt envelopes
	honestBytes      atomic.Int64 // bytes of the envelopes accepted
	honestRefused    counts       // honest posts not answered 202, by reason
	deliveries       atomic.Int64 // envelopes delivered to honest devices (with repeats)
	relayRepeats     atomic.Int64 // of which the device reported ErrDuplicate
	appDuplicates    atomic.Int64 // results handed to an app a second time: must stay 0
	badDelivered     atomic.Int64 // of which were the bad client's
	deviceRefused    counts       // bad envelopes Receive refused, by error
	connections      atomic.Int64 // mailbox WebSockets opened
	subscribeErrors  atomic.Int64 // failed attempts to open one

	peakHeap atomic.Uint64 // this process: runtime HeapInuse
	peakSys  atomic.Uint64 // runtime HeapSys
}

// fail reports a failure (the first 20 of them) and stops the scenario.
// Failures after the scenario was stopped are consequences, not causes.
func (r *run) fail(format string, args ...any) {
	if r.ctx.Err() != nil && r.nfail.Load() == 0 {
		return
	}
	if r.nfail.Add(1) <= 20 {
		r.t.Errorf(format, args...)
	}
	r.cancel()
}

func (r *run) failed() bool { return r.nfail.Load() > 0 }

func (r *run) markHonest(env []byte) {
	k := keyOf(env)
	r.envMu.Lock()
	r.honest[k] = struct{}{}
	r.envMu.Unlock()
}

func (r *run) isHonest(k envKey) bool {
	r.envMu.Lock()
	defer r.envMu.Unlock()
	_, ok := r.honest[k]
	return ok
}

// sampleMemory records peak heap figures of this process and of the relay
// until ctx ends.
func (r *run) sampleMemory(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var ms runtime.MemStats
	for {
		runtime.ReadMemStats(&ms)
		storeMax(&r.peakHeap, ms.HeapInuse)
		storeMax(&r.peakSys, ms.HeapSys)
		r.relay.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// percentiles returns the p50, p99 and maximum of samples (nanoseconds).
func percentiles(samples []int64) (p50, p99, maxv time.Duration) {
	if len(samples) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(samples)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) time.Duration { return time.Duration(s[int(q*float64(len(s)-1))]) }
	return at(0.50), at(0.99), time.Duration(s[len(s)-1])
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

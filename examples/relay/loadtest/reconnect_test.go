package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/client"
)

var (
	reconnectDuration = flag.Duration("reconnect.duration", 0, "run TestReconnectRate for this long (20s for the report; 0 skips it)")
	reconnectWorkers  = flag.Int("reconnect.workers", 4, "clients of TestReconnectRate opening connections in a loop")
	reconnectOpen     = flag.Int("reconnect.open", 1100, "connections TestReconnectRate holds open at once first")
)

// TestReconnectRate first holds reconnectOpen mailbox connections open at
// once (more than JetStream's default limit of 1,000 consumers a stream),
// then measures how many connections a second the relay sustains without
// refusing one: reconnectWorkers clients each open
// the mailbox's WebSocket (signed GET, ownership check, consumer), wait for
// the one envelope waiting, close it and start again, for
// reconnectDuration, against the relay process with its defaults. The
// connections come from 256 loopback addresses in turn, so the per-IP rate
// limit (20/s) is not what is measured. It fails on any 503: every
// connection's consumer must go when the connection does, or JetStream's
// limit of 1,000 consumers a stream refuses new ones (examples/relay/README.md).
//
//	go test -run TestReconnectRate -v ./relay/loadtest -reconnect.duration 20s
func TestReconnectRate(t *testing.T) {
	if *reconnectDuration <= 0 {
		t.Skip("set -reconnect.duration to run it")
	}
	relay := startRelay(t, 0)
	defer relay.stop()
	ctx := context.Background()
	const ips = 256
	clients := make([]*client.Client, ips)
	for i := range clients {
		clients[i] = localClient(relay.url(), deviceIP(1000+i))
	}
	mbx := []byte("reconnect-rate")
	owner, err := client.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := clients[0].RegisterMailbox(ctx, mbx, owner); err != nil {
		t.Fatal(err)
	}
	env := []byte{envelope.Version, byte(len(mbx))}
	env = append(env, mbx...)
	env = append(env, make([]byte, 16)...) // tag
	env = append(env, 0, 0, 64)            // body length
	env = append(env, make([]byte, 64)...)
	if err := clients[1].Post(ctx, env); err != nil {
		t.Fatal(err)
	}

	holdOpen(t, relay, clients, mbx, owner, *reconnectOpen)

	var (
		next, ok, refused, limited, failed atomic.Int64
		firstRefusal                       atomic.Int64 // connections opened before the first 503, +1
		mu                                 sync.Mutex
		firstErr                           error
		perSecond                          = make([]atomic.Int64, int(reconnectDuration.Seconds())+2)
	)
	start := time.Now()
	stop := start.Add(*reconnectDuration)
	var wg sync.WaitGroup
	for range *reconnectWorkers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				n := next.Add(1)
				c := clients[n%ips]
				err := connectOnce(ctx, c, mbx, owner)
				switch {
				case err == nil:
					ok.Add(1)
					if s := int(time.Since(start).Seconds()); s < len(perSecond) {
						perSecond[s].Add(1)
					}
				case client.IsStatus(err, http.StatusServiceUnavailable):
					refused.Add(1)
					firstRefusal.CompareAndSwap(0, ok.Load()+1)
				case client.IsStatus(err, http.StatusTooManyRequests):
					limited.Add(1)
				default:
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	var rates []int64
	for i := range int(took.Seconds()) {
		rates = append(rates, perSecond[i].Load())
	}
	t.Logf("%d workers, %v: %d connections (%.0f/s), %d refused with 503, %d with 429, %d other errors; per second %v",
		*reconnectWorkers, took.Round(time.Millisecond), ok.Load(), float64(ok.Load())/took.Seconds(),
		refused.Load(), limited.Load(), failed.Load(), rates)
	if f := firstRefusal.Load(); f != 0 {
		t.Errorf("the first 503 came after %d connections", f-1)
	}
	if firstErr != nil {
		t.Errorf("first other error: %v", firstErr)
	}
	if limited.Load() > 0 {
		t.Errorf("%d connections were rate limited: use more addresses", limited.Load())
	}
}

// connectOnce opens the mailbox, waits for its one envelope and closes.
func connectOnce(ctx context.Context, c *client.Client, mbx []byte, owner *client.Key) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		return err
	}
	defer sub.Close()
	select {
	case _, ok := <-sub.C():
		if !ok {
			return fmt.Errorf("subscription ended: %v", sub.Err())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no delivery: %w", ctx.Err())
	}
}

// holdOpen opens n connections to the mailbox, each from the next client,
// keeps them all open until the last is, then closes them.
func holdOpen(t *testing.T, relay *relayProc, clients []*client.Client, mbx []byte, owner *client.Key, n int) {
	if n <= 0 {
		return
	}
	time.Sleep(200 * time.Millisecond) // a memory report of the idle relay
	heapBefore := relay.peakHeap.Load()
	ctx := context.Background()
	subs := make([]*client.Subscription, n)
	errs := make([]error, n)
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				sub, err := clients[i%len(clients)].Subscribe(ctx, mbx, owner)
				if err == nil {
					select {
					case _, ok := <-sub.C():
						if !ok {
							err = fmt.Errorf("subscription ended: %v", sub.Err())
						}
					case <-time.After(10 * time.Second):
						err = errors.New("no delivery")
					}
				}
				subs[i], errs[i] = sub, err
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	open, first := 0, -1
	for i, err := range errs {
		if err == nil {
			open++
		} else if first < 0 {
			first = i
		}
	}
	time.Sleep(300 * time.Millisecond) // the relay's memory reports with all of them open
	heapOpen := relay.peakHeap.Load()
	for _, sub := range subs {
		if sub != nil {
			sub.Close()
		}
	}
	t.Logf("%d of %d connections open at once (opened in %v); relay heap in use %s before, peak %s with them open (%.1f KiB a connection)",
		open, n, took.Round(time.Millisecond), mib(heapBefore), mib(heapOpen), float64(heapOpen-heapBefore)/1024/float64(max(open, 1)))
	if first >= 0 {
		t.Errorf("%d connections refused or failed, the first: %v", n-open, errs[first])
	}
}

package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/server"
)

// BenchmarkPost measures envelopes accepted per second: 1 KiB envelopes
// posted over HTTP on loopback from parallel clients, each answered only
// after JetStream stored it.
//
//	go test -run '^$' -bench Relay ./relay/server
func BenchmarkRelayPost(b *testing.B) {
	b.Run("sync-2m", func(b *testing.B) { benchPost(b, server.Config{Rate: -1}) })
	b.Run("sync-always", func(b *testing.B) { benchPost(b, server.Config{Rate: -1, SyncAlways: true}) })
}

// benchPost posts 1 KiB envelopes from 4 goroutines to a relay of cfg.
func benchPost(b *testing.B, cfg server.Config) {
	tr := startRelay(b, cfg)
	c := tr.client()
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := n.Add(1)
		env := fakeEnvelope(fmt.Appendf(nil, "bench-%d", i%16), 1, 1024)
		for pb.Next() {
			env[len(env)-1]++ // distinct bytes: JetStream drops duplicates
			env[len(env)-2] = byte(i)
			env[len(env)-3]++
			if err := c.Post(ctx, env); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkRelayDeliver measures envelopes delivered per second: b.N
// envelopes already stored are read over one WebSocket, each acknowledged
// (and so deleted) as it arrives.
func BenchmarkRelayDeliver(b *testing.B) {
	ctx := context.Background()
	tr := startRelay(b, server.Config{Rate: -1, MaxDepth: b.N + 1})
	c := tr.client()
	mbx := []byte("bench")
	for i := range b.N {
		env := fakeEnvelope(mbx, 1, 1024)
		env[len(env)-1], env[len(env)-2], env[len(env)-3] = byte(i), byte(i>>8), byte(i>>16)
		if err := c.Post(ctx, env); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	sub, err := c.Subscribe(ctx, mbx, tr.own(mbx))
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	for i := range b.N {
		select {
		case d, ok := <-sub.C():
			if !ok {
				b.Fatal(sub.Err())
			}
			if err := sub.Ack(ctx, d.ID); err != nil {
				b.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			b.Fatalf("delivery %d missing", i)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkReadPath measures opening a mailbox: the client signs the
// request, the relay checks it (header, window, Ed25519 verify, the owner
// key and the seen-set on NATS), opens the WebSocket and the consumer and
// delivers the one envelope waiting; the client then closes. "unsigned"
// is the same with the relay's check turned off (a test-only switch), so
// the difference is what ownership costs a read.
//
//	go test -run '^$' -bench ReadPath -benchmem -benchtime 400x -count 3 ./relay/server
func BenchmarkReadPath(b *testing.B) {
	for _, signed := range []bool{true, false} {
		name := "signed"
		if !signed {
			name = "unsigned"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			tr := startRelay(b, server.Config{Rate: -1})
			if !signed {
				tr.mu.Lock()
				tr.relay.SkipMailboxAuth()
				tr.mu.Unlock()
			}
			c := tr.client()
			mbx := []byte("bench-read")
			owner := tr.own(mbx)
			if err := c.Post(ctx, fakeEnvelope(mbx, 1, 1024)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				sub, err := c.Subscribe(ctx, mbx, owner)
				if err != nil {
					b.Fatal(err)
				}
				if _, ok := next(b, sub, 10*time.Second); !ok {
					b.Fatal("no delivery")
				}
				sub.Close()
			}
		})
	}
}

package boltstore

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// BenchmarkCatchUp receives a backlog of envelopes (1,000, or
// -catchup.envelopes) into a bbolt store, one Receive per envelope against one ReceiveBatch (issue 18, item
// 5): one Apply, so one fsync, for the whole backlog. Each iteration
// reopens the receiver on a copy of the same store.
//
//	go test -run '^$' -bench CatchUp -benchtime 3x ./boltstore
var catchUpEnvelopes = flag.Int("catchup.envelopes", 1000, "backlog of BenchmarkCatchUp")

func BenchmarkCatchUp(b *testing.B) {
	n := *catchUpEnvelopes
	ctx := context.Background()
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	opts := []sealpost.Option{sealpost.WithClock(now), sealpost.WithReceiptDelay(0, 0)}
	alice, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), sealpost.Address{User: "alice", Device: 1}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	bobMem := sealpost.NewMemoryStore()
	bobAddr := sealpost.Address{User: "bob", Device: 1}
	bob, err := sealpost.Open(ctx, bobMem, bobAddr, opts...)
	if err != nil {
		b.Fatal(err)
	}
	bundle, err := bob.NewBundle(ctx, 0)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := bundle.Split()[0].MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	parsed, err := keys.ParseBundle(raw, keys.WithClock(now))
	if err != nil {
		b.Fatal(err)
	}
	if err := alice.StartSession(ctx, bobAddr, parsed); err != nil {
		b.Fatal(err)
	}
	// One exchange, so that the backlog is session envelopes, not first
	// contacts.
	hello, err := alice.Send(ctx, bobAddr, []byte("hello"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := bob.Receive(ctx, hello.Envelope); err != nil {
		b.Fatal(err)
	}
	reply, err := bob.Send(ctx, alice.Address(), []byte("hi"))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice.Receive(ctx, reply.Envelope); err != nil {
		b.Fatal(err)
	}
	var envs [][]byte
	for range n {
		out, err := alice.Send(ctx, bobAddr, []byte("while you were away"))
		if err != nil {
			b.Fatal(err)
		}
		if err := alice.Sent(ctx, out); err != nil {
			b.Fatal(err)
		}
		envs = append(envs, out.Envelope)
	}
	snap := bobMem.Snapshot()
	run := func(b *testing.B, batch bool) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			s, err := Open(filepath.Join(b.TempDir(), "bob.db"))
			if err != nil {
				b.Fatal(err)
			}
			var load sealpost.Batch
			for k, v := range snap {
				load.Put(k, v)
			}
			if err := s.Apply(ctx, &load); err != nil {
				b.Fatal(err)
			}
			dev, err := sealpost.Open(ctx, s, bobAddr, opts...)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if batch {
				res, err := dev.ReceiveBatch(ctx, envs)
				if err != nil || res[n-1].Err != nil {
					b.Fatal(err)
				}
			} else {
				for _, e := range envs {
					if _, err := dev.Receive(ctx, e); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/envelope")
	}
	b.Run("receive", func(b *testing.B) { run(b, false) })
	b.Run("batch", func(b *testing.B) { run(b, true) })
}

package boltstore

import (
	"context"
	"flag"
	"path/filepath"
	"slices"
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

// countingStore counts Applies: one fsync each on bbolt.
type countingStore struct {
	*Store
	applies int
}

func (c *countingStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	c.applies++
	return c.Store.Apply(ctx, b)
}

// BenchmarkFanOutSend sends 100 bytes from alice:1, on bbolt, to bob's
// account of four devices, which with alice's two other devices is six
// envelopes: one SendUser (one Apply for all six) against six Send calls
// (one Apply each), on sessions both sides have answered. Sent runs
// outside the timer; applies/op counts the Applies (so fsyncs) of the
// sending alone.
//
//	go test -run '^$' -bench FanOut -benchmem ./boltstore
func BenchmarkFanOutSend(b *testing.B) {
	ctx := context.Background()
	opts := []sealpost.Option{sealpost.WithReceiptDelay(0, 0)}
	bs, err := Open(filepath.Join(b.TempDir(), "alice1.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	cs := &countingStore{Store: bs}
	alice1, err := sealpost.Open(ctx, cs, sealpost.Address{User: "alice", Device: 1}, opts...)
	if err != nil {
		b.Fatal(err)
	}
	alice, bob := []*sealpost.Device{alice1}, []*sealpost.Device(nil)
	for i := range 6 {
		user, dev := "bob", uint32(i+1)
		if i >= 4 {
			user, dev = "alice", uint32(i-2)
		}
		d, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), sealpost.Address{User: user, Device: dev}, opts...)
		if err != nil {
			b.Fatal(err)
		}
		if user == "bob" {
			bob = append(bob, d)
		} else {
			alice = append(alice, d)
		}
	}
	if err := fanAccounts(ctx, alice, bob); err != nil {
		b.Fatal(err)
	}
	// One message each way on every session, so that what is measured is
	// ratchet messages, not first contacts.
	others := append(slices.Clone(bob), alice[1:]...)
	outs, err := alice1.SendUser(ctx, "bob", []byte("hello"))
	if err != nil || len(outs) != 6 {
		b.Fatalf("SendUser: %d envelopes, %v", len(outs), err)
	}
	if err := alice1.Sent(ctx, outs...); err != nil {
		b.Fatal(err)
	}
	for _, o := range outs {
		for _, d := range others {
			if d.Address() != o.To {
				continue
			}
			if _, err := d.Receive(ctx, o.Envelope); err != nil {
				b.Fatal(err)
			}
			reply, err := d.Send(ctx, alice1.Address(), []byte("hi"))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := alice1.Receive(ctx, reply.Envelope); err != nil {
				b.Fatal(err)
			}
		}
	}
	body := make([]byte, 100)
	run := func(b *testing.B, send func() ([]*sealpost.Outgoing, error)) {
		b.ReportAllocs()
		applies := 0
		for b.Loop() {
			before := cs.applies
			outs, err := send()
			if err != nil || len(outs) != 6 {
				b.Fatalf("%d envelopes, %v", len(outs), err)
			}
			applies += cs.applies - before
			b.StopTimer()
			if err := alice1.Sent(ctx, outs...); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(applies)/float64(b.N), "applies/op")
	}
	b.Run("senduser", func(b *testing.B) {
		run(b, func() ([]*sealpost.Outgoing, error) { return alice1.SendUser(ctx, "bob", body) })
	})
	b.Run("send6", func(b *testing.B) {
		run(b, func() ([]*sealpost.Outgoing, error) {
			var outs []*sealpost.Outgoing
			for _, d := range others {
				o, err := alice1.Send(ctx, d.Address(), body)
				if err != nil {
					return outs, err
				}
				outs = append(outs, o)
			}
			return outs, nil
		})
	})
}

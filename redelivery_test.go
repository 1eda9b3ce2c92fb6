package sealpost_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// TestRedeliveryInterleaved: every envelope delivered 2 to 5 times,
// interleaved with new ones, and Done called at a random point after the
// first delivery. The app sees each message once with Redelivered false,
// then copies with Redelivered true until Done, then ErrDuplicate; each
// message gets exactly one delivery receipt (TESTING.md item 36).
func TestRedeliveryInterleaved(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 36))
			c := newClock()
			alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
			bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
			connect(t, alice, bob)
			type item struct {
				out   *sealpost.Outgoing
				body  string
				left  int  // deliveries still to make
				seen  bool // delivered once
				done  bool // Done called
				doneN int  // deliveries after which Done is called
			}
			var queue []*item
			var receipts []*sealpost.Outgoing
			const messages = 12
			sent := 0
			for sent < messages || len(queue) > 0 {
				if sent < messages && (len(queue) == 0 || rng.IntN(3) == 0) {
					n, body := 2+rng.IntN(4), fmt.Sprint("m", sent)
					queue = append(queue, &item{out: send(t, alice, bob, body), body: body, left: n, doneN: 1 + rng.IntN(n)})
					sent++
					continue
				}
				i := rng.IntN(len(queue))
				it := queue[i]
				in, err := bob.Receive(ctx, it.out.Envelope)
				switch {
				case it.done:
					if !errors.Is(err, sealpost.ErrDuplicate) {
						t.Fatalf("delivery after Done: %v, want ErrDuplicate", err)
					}
				case err != nil:
					t.Fatalf("delivery before Done: %v", err)
				case in.ID != it.out.ID || in.Redelivered != it.seen || string(in.Body) != it.body:
					t.Fatalf("delivery (seen before: %v): id %v %q, want %v %q, Redelivered %v", it.seen, in.ID, in.Body, it.out.ID, it.body, in.Redelivered)
				}
				it.seen = true
				it.left--
				if !it.done {
					if it.doneN--; it.doneN == 0 {
						if err := bob.Done(ctx, it.out.ID); err != nil {
							t.Fatal(err)
						}
						it.done = true
					}
				}
				if it.left == 0 {
					queue = slices.Delete(queue, i, i+1)
				}
				if rng.IntN(2) == 0 {
					out, err := bob.Flush(ctx)
					if err != nil {
						t.Fatal(err)
					}
					receipts = append(receipts, out...)
				}
			}
			out, err := bob.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			receipts = append(receipts, out...)
			count := map[sealpost.MessageID]int{}
			for _, o := range receipts {
				in := receive(t, alice, o)
				if in.Kind != sealpost.KindDelivered {
					t.Fatalf("receipt kind %v", in.Kind)
				}
				if hasKind(in.Findings, transcript.ReceiptMismatch) || hasKind(in.Findings, transcript.Fork) {
					t.Fatalf("receipt findings %v", in.Findings)
				}
				for _, id := range in.Delivered {
					count[id]++
				}
			}
			if len(count) != messages {
				t.Fatalf("%d messages acknowledged, want %d", len(count), messages)
			}
			for id, n := range count {
				if n != 1 {
					t.Fatalf("message %v acknowledged %d times", id, n)
				}
			}
		})
	}
}

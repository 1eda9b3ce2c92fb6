package sealpost_test

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// TestRestoreRecoveryProperty plays random conversations in which Bob
// restores his store (and his app's history) from a backup taken at a
// random point, then recovers either by calling Restored and starting a
// new session, or without telling anyone, until Alice's Findings report
// the session unanswered and she starts a new one. Alice's app resends
// what the findings name. In every run, every message Alice ever sent ends
// up in Bob's app history, and a message already there comes back only
// marked Repeated.
var restoreRuns = flag.Int("sealpost.restoreruns", 40, "random conversations for TestRestoreRecoveryProperty")

func TestRestoreRecoveryProperty(t *testing.T) {
	runs := *restoreRuns
	if testing.Short() {
		runs = 10
	}
	for run := range runs {
		t.Run(fmt.Sprint(run), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(run), 7))
			c := newClock()
			alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
			bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
			connect(t, alice, bob)
			sentByAlice := map[sealpost.MessageID]string{}
			history := map[sealpost.MessageID]bool{} // Bob's app
			deliverToBob := func(o *sealpost.Outgoing) {
				t.Helper()
				in, err := bob.Receive(ctx, o.Envelope)
				if err != nil {
					t.Fatalf("Bob: %v", err)
				}
				if in.Kind == sealpost.KindMessage {
					if history[in.ID] && !in.Repeated {
						t.Fatalf("message %v shown twice", in.ID)
					}
					history[in.ID] = true
				}
				if err := bob.Done(ctx, in.ID); err != nil {
					t.Fatal(err)
				}
			}
			talk := func(n int) {
				for range n {
					c.advance(time.Minute)
					if r.IntN(2) == 0 {
						o := send(t, alice, bob, "a")
						sentByAlice[o.ID] = "a"
						deliverToBob(o)
					} else {
						receive(t, alice, send(t, bob, alice, "b"))
					}
				}
			}
			receive(t, bob, send(t, alice, bob, "start")) // confirmed both ways after the first reply
			receive(t, alice, send(t, bob, alice, "ok"))
			talk(r.IntN(20))
			backup, saved := bob.store.Snapshot(), maps.Clone(history)
			talk(1 + r.IntN(20))
			bob.store.Restore(backup)
			history = saved
			bob = dmReopen(t, bob, c, sealpost.WithReceiptDelay(0, 0))

			var lost []transcript.Finding
			if r.IntN(2) == 0 {
				// Bob says so.
				if err := bob.Restored(ctx); err != nil {
					t.Fatal(err)
				}
				connect(t, bob, alice)
				in := receive(t, alice, send(t, bob, alice, "I restored"))
				lost = append(lost, in.Findings...)
			} else {
				// Bob does not: Alice writes into the dead session until
				// her Findings say it is unanswered.
				for i := 0; ; i++ {
					if i > 2*sealpost.DefaultUnansweredCount {
						t.Fatal("never reported unanswered")
					}
					c.advance(10 * time.Hour)
					o := send(t, alice, bob, "into the void")
					sentByAlice[o.ID] = "into the void"
					if in, err := bob.Receive(ctx, o.Envelope); err == nil {
						// Bob's restored state can still read this chain.
						history[o.ID] = true
						if err := bob.Done(ctx, in.ID); err != nil {
							t.Fatal(err)
						}
					}
					if fs := alice.Findings(bob.addr); hasKind(fs, transcript.Unanswered) {
						lost = append(lost, fs...)
						break
					}
				}
				connect(t, alice, bob)
				// Bob answers on the new session; his content says what
				// his (restored) old session holds.
				deliverToBob(send(t, alice, bob, "are you there?"))
				in := receive(t, alice, send(t, bob, alice, "yes"))
				lost = append(lost, in.Findings...)
			}
			for _, f := range lost {
				if f.Kind != transcript.PeerRestored && f.Kind != transcript.Unanswered {
					continue
				}
				for _, id := range f.IDs {
					if body, ok := sentByAlice[id]; ok {
						o, err := alice.Resend(ctx, bob.addr, id, []byte(body))
						if err != nil {
							t.Fatal(err)
						}
						deliverToBob(o)
					}
				}
			}
			for id := range sentByAlice {
				if !history[id] {
					t.Fatalf("message %v never reached Bob's app", id)
				}
			}
			// The conversation goes on.
			receive(t, alice, send(t, bob, alice, "on"))
			deliverToBob(send(t, alice, bob, "on"))
		})
	}
}

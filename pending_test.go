package sealpost_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// TestPendingPeers (issue 14): with WithMaxPendingPeers(3), a first
// contact beyond three unanswered strangers evicts the oldest unanswered
// one; a stranger the device answered (Send) or trusted (Trust) is never
// evicted; an unconfirmed identity at a known address counts as pending,
// and so does the identity Trust archives. The evictions hold after a
// restart.
func TestPendingPeers(t *testing.T) {
	c := newClock()
	opts := []sealpost.Option{sealpost.WithMaxPendingPeers(3)}
	victim, fs := akPartyAt(t, sealpost.Address{User: "victim", Device: 1}, c, opts...)
	blob := akBundles(t, victim, 0)[0]
	strangers := map[int]*akSession{}
	contact := func(i int) {
		t.Helper()
		s := akNewPeer(fmt.Sprint("s", i)).start(t, blob)
		strangers[i] = s
		env, _ := s.send("hello")
		if in := receive(t, victim, &sealpost.Outgoing{Envelope: env}); in.Unconfirmed {
			t.Fatal("a stranger's first message is marked unconfirmed")
		}
		c.advance(time.Second)
	}
	kept := func(victim *party, want map[int]bool, when string) {
		t.Helper()
		for i, w := range want {
			if _, _, err := victim.PeerIdentity(strangers[i].p.addr); (err == nil) != w {
				t.Fatalf("%s: stranger %d kept %t, want %t", when, i, err == nil, w)
			}
		}
	}
	for i := 1; i <= 4; i++ {
		contact(i)
	}
	kept(victim, map[int]bool{1: false, 2: true, 3: true, 4: true}, "after 4")
	strangers[2].receive(send(t, victim, &party{addr: strangers[2].p.addr}, "hi s2").Envelope) // answered
	contact(5)
	contact(6)
	kept(victim, map[int]bool{2: true, 3: false, 4: true, 5: true, 6: true}, "after 6")
	if err := victim.Trust(ctx, strangers[4].p.addr, strangers[4].p.id.Public()); err != nil { // accepted
		t.Fatal(err)
	}
	contact(7)
	contact(8)
	kept(victim, map[int]bool{2: true, 4: true, 5: false, 6: true, 7: true, 8: true}, "after 8")

	// Another identity at s2's address: pending, so it evicts s6.
	m := akNewPeer("s2")
	ms := m.start(t, blob)
	env, _ := ms.send("I am s2")
	if in := receive(t, victim, &sealpost.Outgoing{Envelope: env}); !in.Unconfirmed {
		t.Fatal("another identity at s2's address is not unconfirmed")
	}
	kept(victim, map[int]bool{2: true, 6: false, 7: true, 8: true}, "after the other identity")
	// Trusting it archives s2's first identity, which becomes pending in
	// its place: nothing else is evicted.
	if err := victim.Trust(ctx, m.addr, m.id.Public()); err != nil {
		t.Fatal(err)
	}
	if ids := victim.UnconfirmedIdentities(m.addr); len(ids) != 1 || !ids[0].Equal(strangers[2].p.id.Public()) {
		t.Fatal("s2's first identity is not archived as unconfirmed")
	}
	kept(victim, map[int]bool{2: true, 4: true, 7: true, 8: true}, "after Trust")
	contact(9) // evicts s7, the oldest pending
	kept(victim, map[int]bool{4: true, 7: false, 8: true, 9: true}, "after 9")

	d, err := sealpost.Open(ctx, fs, victim.addr, append(opts, sealpost.WithClock(c.now))...)
	if err != nil {
		t.Fatal(err)
	}
	victim = &party{Device: d, addr: victim.addr, store: victim.store}
	kept(victim, map[int]bool{1: false, 2: true, 3: false, 4: true, 5: false, 6: false, 7: false, 8: true, 9: true}, "after a restart")
	contact(10) // evicts s8
	kept(victim, map[int]bool{8: false, 9: true, 10: true}, "after 10")
	if ids := victim.UnconfirmedIdentities(m.addr); len(ids) != 1 {
		t.Fatal("the archived identity was evicted before an older pending peer")
	}
	contact(11) // the archived identity at s2 is the oldest pending now
	if ids := victim.UnconfirmedIdentities(m.addr); len(ids) != 0 {
		t.Fatal("the archived identity, oldest pending, was not evicted")
	}
	kept(victim, map[int]bool{2: true, 4: true, 9: true, 10: true, 11: true}, "after 11")
}

package sealpost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/transcript"
)

// faultyStore wraps a MemoryStore and fails Apply when fail is set, and
// counts Applys.
type faultyStore struct {
	*sealpost.MemoryStore
	mu      sync.Mutex
	fail    bool
	applies int
}

func (s *faultyStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applies++
	if s.fail {
		return errors.New("store unavailable")
	}
	return s.MemoryStore.Apply(ctx, b)
}

func newFaultyParty(t testing.TB, user string, c *clock, opts ...sealpost.Option) (*party, *faultyStore) {
	t.Helper()
	fs := &faultyStore{MemoryStore: sealpost.NewMemoryStore()}
	addr := sealpost.Address{User: user, Device: 1}
	opts = append([]sealpost.Option{sealpost.WithClock(c.now), sealpost.WithReceiptDelay(0, 0)}, opts...)
	d, err := sealpost.Open(ctx, fs, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &party{Device: d, addr: addr, store: fs.MemoryStore}, fs
}

// TestStoreFailureOnReceive: a failing Apply releases no plaintext and
// changes nothing; after the store recovers the same envelope is accepted
// exactly once (TESTING.md items 31, 32).
func TestStoreFailureOnReceive(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob, fs := newFaultyParty(t, "bob", c)
	connect(t, alice, bob)
	first := send(t, alice, bob, "first")
	second := send(t, alice, bob, "second")
	for _, out := range []*sealpost.Outgoing{first, second} {
		before := bob.store.Snapshot()
		fs.fail = true
		if in, err := bob.Receive(ctx, out.Envelope); err == nil || in != nil {
			t.Fatalf("Receive with a failing store: %v, %v", in, err)
		}
		fs.fail = false
		if !maps.EqualFunc(before, bob.store.Snapshot(), func(a, b []byte) bool { return string(a) == string(b) }) {
			t.Fatal("a failed Receive changed the store")
		}
		in := receive(t, bob, out)
		if _, err := bob.Receive(ctx, out.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
			t.Fatalf("second delivery after Done: %v (%q)", err, in.Body)
		}
	}
	// The session goes on both ways.
	receive(t, alice, send(t, bob, alice, "reply"))
}

// TestStoreFailureOnSend: no envelope comes out, and the next Send does
// not reuse the failed one's routing tag (nor its key).
func TestStoreFailureOnSend(t *testing.T) {
	c := newClock()
	alice, fs := newFaultyParty(t, "alice", c)
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	fs.fail = true
	if out, err := alice.Send(ctx, bob.addr, []byte("lost")); err == nil || out != nil {
		t.Fatalf("Send with a failing store: %v, %v", out, err)
	}
	fs.fail = false
	out := send(t, alice, bob, "after")
	in := receive(t, bob, out)
	if string(in.Body) != "after" {
		t.Fatalf("got %q", in.Body)
	}
	for _, f := range in.Findings {
		if f.Kind != transcript.Gap {
			t.Fatalf("unexpected finding %v", f)
		}
	}
}

// TestFailedReceiveChangesNothing feeds garbage and tampered envelopes: each
// is a typed error, no Apply happens, and the store is unchanged
// (TESTING.md items 22, 23, 31).
func TestFailedReceiveChangesNothing(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	bob, fs := newFaultyParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	out := send(t, alice, bob, "second")
	before, applies := bob.store.Snapshot(), fs.applies
	inputs := [][]byte{nil, {1}, out.Envelope[:len(out.Envelope)-1], append(append([]byte{}, out.Envelope...), 0)}
	for i := 0; i < len(out.Envelope); i += 7 {
		flipped := append([]byte{}, out.Envelope...)
		flipped[i] ^= 0x10
		inputs = append(inputs, flipped)
	}
	for i, raw := range inputs {
		_, err := bob.Receive(ctx, raw)
		if err == nil {
			t.Fatalf("input %d accepted", i)
		}
		if !errors.Is(err, sealpost.ErrMalformed) && !errors.Is(err, sealpost.ErrDecrypt) && !errors.Is(err, sealpost.ErrUnsupportedVersion) {
			t.Fatalf("input %d: untyped error %v", i, err)
		}
	}
	if fs.applies != applies || !maps.EqualFunc(before, bob.store.Snapshot(), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("a failed Receive wrote to the store")
	}
	receive(t, bob, out)
}

// TestIdentityChange: a peer reinstalls with a new identity. By default the
// message is delivered marked Unconfirmed with its identity and an
// identity-changed finding, the pinned identity (and so the safety number
// and where replies go) stays until the app calls Trust, which switches
// both; in strict mode it is ErrIdentityChanged and nothing is written
// until Trust (TESTING.md item 45, as amended by issue 14).
func TestIdentityChange(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%t", strict), func(t *testing.T) {
			c := newClock()
			var opts []sealpost.Option
			if strict {
				opts = append(opts, sealpost.WithStrictIdentity())
			}
			alice := newParty(t, "alice", c)
			bob, fs := newFaultyParty(t, "bob", c, opts...)
			connect(t, alice, bob)
			receive(t, bob, send(t, alice, bob, "hello"))
			oldNumber, _ := bob.SafetyNumber(alice.addr)

			alice2 := newParty(t, "alice", c) // reinstalled: new store, new identity
			connect(t, alice2, bob)
			out := send(t, alice2, bob, "new phone")
			applies := fs.applies
			in, err := bob.Receive(ctx, out.Envelope)
			if strict {
				var ice *sealpost.IdentityChangedError
				if !errors.Is(err, sealpost.ErrIdentityChanged) || !errors.As(err, &ice) || fs.applies != applies {
					t.Fatalf("strict: %v (applies %d→%d)", err, applies, fs.applies)
				}
				if !ice.New.Equal(alice2.Identity()) || !ice.Old.Equal(alice.Identity()) {
					t.Fatal("strict: the error names the wrong identities")
				}
				if err := bob.Trust(ctx, alice.addr, ice.New); err != nil {
					t.Fatal(err)
				}
				in, err = bob.Receive(ctx, out.Envelope)
			}
			if err != nil || string(in.Body) != "new phone" || !in.Identity.Equal(alice2.Identity()) {
				t.Fatalf("after the change: %v", err)
			}
			if !strict {
				if !in.Unconfirmed || !hasKind(in.Findings, transcript.IdentityChanged) {
					t.Fatalf("not marked unconfirmed (%t) with an identity-changed finding: %v", in.Unconfirmed, in.Findings)
				}
				if n, _ := bob.SafetyNumber(alice.addr); n != oldNumber {
					t.Fatal("the safety number changed before Trust")
				}
				// Until Trust, Bob's replies go to the pinned identity.
				if o := send(t, bob, alice, "is that you?"); !bytes.Equal(o.Mailbox, alice.Mailbox()) {
					t.Fatal("a reply went to the unconfirmed identity")
				}
				if err := bob.Trust(ctx, alice.addr, in.Identity); err != nil {
					t.Fatal(err)
				}
			} else if in.Unconfirmed {
				t.Fatal("strict: a trusted identity's message is marked unconfirmed")
			}
			newNumber, _ := bob.SafetyNumber(alice.addr)
			if newNumber == oldNumber {
				t.Fatal("the safety number did not change")
			}
			if id, changed, _ := bob.PeerIdentity(alice.addr); !id.Equal(alice2.Identity()) || changed.IsZero() {
				t.Fatal("PeerIdentity does not report the switch")
			}
			receive(t, alice2, send(t, bob, alice2, "welcome back"))
		})
	}
}

// TestSimultaneousStart: both sides start a session at once, with loss and
// repeats; they converge on one session and every message decrypts
// (TESTING.md item 25).
func TestSimultaneousStart(t *testing.T) {
	for seed := range 5 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 1))
			c := newClock()
			alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
			connect(t, alice, bob)
			connect(t, bob, alice)
			a1, b1 := send(t, alice, bob, "a1"), send(t, bob, alice, "b1")
			a2, b2 := send(t, alice, bob, "a2"), send(t, bob, alice, "b2")
			// Loss and repeats: each side gets one or both, maybe twice.
			deliver := func(to *party, outs ...*sealpost.Outgoing) {
				for _, o := range outs {
					if rng.IntN(4) == 0 {
						continue // lost
					}
					in, err := to.Receive(ctx, o.Envelope)
					if err != nil {
						t.Fatalf("%s: %v", to.addr, err)
					}
					_ = to.Done(ctx, in.ID)
					if rng.IntN(2) == 0 {
						if _, err := to.Receive(ctx, o.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
							t.Fatalf("repeat: %v", err)
						}
					}
				}
			}
			deliver(bob, a1, a2)
			deliver(alice, b1, b2)
			// After quiescing, a few exchanges carry everything.
			for i := range 3 {
				receive(t, bob, send(t, alice, bob, fmt.Sprint("a", i)))
				receive(t, alice, send(t, bob, alice, fmt.Sprint("b", i)))
			}
		})
	}
}

// TestConcurrentUse runs Send and Receive from 64 goroutines on one device,
// on the same and on different peers (TESTING.md item 38, under -race): no
// lost update, every envelope decrypts exactly once, and every session
// still works afterwards.
func TestConcurrentUse(t *testing.T) {
	c := newClock()
	hub := newParty(t, "hub", c)
	const peers = 8
	var others []*party
	for i := range peers {
		p := newParty(t, fmt.Sprint("peer", i), c)
		connect(t, p, hub)
		receive(t, hub, send(t, p, hub, "hello"))
		others = append(others, p)
	}
	// Four envelopes from each peer to the hub, made before the race.
	var inbound []*sealpost.Outgoing
	for _, p := range others {
		for j := range 4 {
			inbound = append(inbound, send(t, p, hub, fmt.Sprint(p.addr.User, " ", j)))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	var mu sync.Mutex
	seen := map[sealpost.MessageID]int{}
	var outbound []*sealpost.Outgoing
	for g := range 64 {
		wg.Go(func() {
			if g%2 == 0 {
				out, err := hub.Send(ctx, others[g%peers].addr, []byte("from hub"))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				outbound = append(outbound, out)
				mu.Unlock()
				return
			}
			env := inbound[g/2]
			in, err := hub.Receive(ctx, env.Envelope)
			if err != nil {
				errs <- err
				return
			}
			if err := hub.Done(ctx, in.ID); err != nil {
				errs <- err
				return
			}
			mu.Lock()
			seen[in.ID]++
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != len(inbound) {
		t.Fatalf("%d distinct messages received, want %d", len(seen), len(inbound))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("message %v received %d times", id, n)
		}
	}
	// Every envelope the hub sent decrypts once at its peer, in any order.
	for _, out := range outbound {
		for _, p := range others {
			if p.addr == out.To {
				receive(t, p, out)
			}
		}
	}
	for _, p := range others {
		receive(t, hub, send(t, p, hub, "still here"))
	}
}

// TestStoreFailureOnConfirmingReply: the initiator's store fails while it
// receives the peer's first reply. The session stays unconfirmed in memory
// as in the store (the next send still carries the session start), and
// the reply received again confirms it.
func TestStoreFailureOnConfirmingReply(t *testing.T) {
	c := newClock()
	alice, fs := newFaultyParty(t, "alice", c)
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	first := send(t, alice, bob, "hello")
	receive(t, bob, first)
	reply := send(t, bob, alice, "hi")
	before := alice.store.Snapshot()
	fs.fail = true
	if in, err := alice.Receive(ctx, reply.Envelope); err == nil || in != nil {
		t.Fatalf("Receive with a failing store: %v, %v", in, err)
	}
	fs.fail = false
	if !maps.EqualFunc(before, alice.store.Snapshot(), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("a failed Receive changed the store")
	}
	again := send(t, alice, bob, "still starting")
	if len(again.Envelope) < len(first.Envelope)-64 {
		t.Fatalf("a send after the failed confirmation is %d bytes, the first contact %d: it lost the session start", len(again.Envelope), len(first.Envelope))
	}
	receive(t, bob, again)
	receive(t, alice, reply)
	after := send(t, alice, bob, "confirmed")
	if len(after.Envelope) > len(first.Envelope)/2 {
		t.Fatalf("a send after the reply is %d bytes: it still carries the session start", len(after.Envelope))
	}
	receive(t, bob, after)
	reopened, err := sealpost.Open(ctx, alice.store, alice.addr, sealpost.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	alice.Device = reopened
	receive(t, bob, send(t, alice, bob, "after reopen"))
	receive(t, alice, send(t, bob, alice, "both ways"))
}

package sealpost

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/proto/statepb"
	"github.com/sealpost/sealpost/ratchet"
)

// slowPair is a device with n peers that each started a session with it
// and had one message received.
func slowPair(t testing.TB, n int) (*Device, *MemoryStore, []*Device) {
	t.Helper()
	ctx := context.Background()
	store := NewMemoryStore()
	bob, err := Open(ctx, store, Address{User: "bob", Device: 1})
	if err != nil {
		t.Fatal(err)
	}
	var peers []*Device
	for i := range n {
		a, err := Open(ctx, NewMemoryStore(), Address{User: fmt.Sprint("alice", i), Device: 1})
		if err != nil {
			t.Fatal(err)
		}
		b, err := bob.NewBundle(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.StartSession(ctx, bob.Address(), b); err != nil {
			t.Fatal(err)
		}
		out, err := a.Send(ctx, bob.Address(), []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Receive(ctx, out.Envelope); err != nil {
			t.Fatal(err)
		}
		reply, err := bob.Send(ctx, a.Address(), []byte("hi"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Receive(ctx, reply.Envelope); err != nil {
			t.Fatal(err)
		}
		peers = append(peers, a)
	}
	return bob, store, peers
}

// garbage returns a session envelope to d's mailbox whose tag no session
// expects, carrying the current ratchet message version (other versions
// are refused before any trial decryption).
func garbage(d *Device) []byte {
	var tag [16]byte
	rand.Read(tag[:])
	body := make([]byte, 300)
	rand.Read(body)
	body[0] = ratchet.Version
	return seal.Session(nil, d.Mailbox(), tag, body)
}

// TestSlowPathBudget: an envelope with an unknown tag is tried on at most
// maxSlowPath sessions, the most recently used, whatever the number of
// sessions, and changes nothing (TESTING.md item 24). A message past its
// session's tag window is still found when the session is among them.
func TestSlowPathBudget(t *testing.T) {
	ctx := context.Background()
	n := maxSlowPath + 8
	bob, store, alices := slowPair(t, n)
	before := store.Snapshot()
	for range 20 {
		bob.slowTrials = 0
		if _, err := bob.Receive(ctx, garbage(bob)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("garbage: %v, want ErrDecrypt", err)
		}
		if bob.slowTrials > maxSlowPath || bob.slowTrials == 0 {
			t.Fatalf("garbage tried on %d sessions, want 1..%d", bob.slowTrials, maxSlowPath)
		}
	}
	// Junk with another version byte, or too short to be a message, is no
	// more attributable: ErrDecrypt, not "unsupported version".
	for _, edit := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)-300] = ratchet.Version + 1; return b },
		func(b []byte) []byte { // a body one byte short of a ratchet message
			return seal.Session(nil, bob.Mailbox(), [16]byte{7}, b[len(b)-300:len(b)-300+ratchet.Overhead-1])
		},
	} {
		if _, err := bob.Receive(ctx, edit(garbage(bob))); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("junk: %v, want ErrDecrypt", err)
		}
	}
	if !maps.EqualFunc(before, store.Snapshot(), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("garbage changed the store")
	}
	// A message further ahead than the tag window, from the peer that
	// talked last (the newest session), is found on the slow path.
	ahead := func(a *Device) []byte {
		var out *Outgoing
		for range ratchet.TagWindow + 5 {
			var err error
			if out, err = a.Send(ctx, bob.Address(), []byte("far ahead")); err != nil {
				t.Fatal(err)
			}
		}
		return out.Envelope
	}
	last := alices[n-1]
	in, err := bob.Receive(ctx, ahead(last))
	if err != nil || string(in.Body) != "far ahead" {
		t.Fatalf("message past the window from the newest session: %v", err)
	}
	// From the peer that talked first (not among the most recently used
	// sessions) it is not tried: ErrDecrypt, nothing changed.
	first := alices[0]
	env := ahead(first)
	before = store.Snapshot()
	if _, err := bob.Receive(ctx, env); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("message past the window from a session beyond the budget: %v, want ErrDecrypt", err)
	}
	if !maps.EqualFunc(before, store.Snapshot(), func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatal("a failed Receive changed the store")
	}
	// Once that session is used again it is tried, and the message opens.
	reply, err := bob.Send(ctx, first.Address(), []byte("are you there"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Receive(ctx, reply.Envelope); err != nil {
		t.Fatal(err)
	}
	if in, err := bob.Receive(ctx, env); err != nil || string(in.Body) != "far ahead" {
		t.Fatalf("after the session was used again: %v", err)
	}
	// The budget survives a reopen: the sessions that received last.
	again, err := Open(ctx, store, bob.Address())
	if err != nil {
		t.Fatal(err)
	}
	if len(again.active) != maxSlowPath || again.active[0].p.addr != first.Address() {
		t.Fatalf("after reopen: %d active sessions, first %v", len(again.active), again.active[0].p.addr)
	}
}

// addSyntheticSessions gives d n peers with one live session each, built
// from the ratchet directly (a Device-level start per peer would make a
// 100k-session benchmark take minutes to set up).
func addSyntheticSessions(tb testing.TB, d *Device, n int) {
	tb.Helper()
	secret, ad := make([]byte, 32), []byte("synthetic")
	for i := range n {
		rand.Read(secret)
		key, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		ini, err := ratchet.NewInitiator(secret, ad, key.PublicKey())
		if err != nil {
			tb.Fatal(err)
		}
		resp, err := ratchet.NewResponder(secret, ad, key)
		if err != nil {
			tb.Fatal(err)
		}
		tag, msg, err := ini.Encrypt([]byte("x"))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := resp.Decrypt(tag, msg); err != nil {
			tb.Fatal(err)
		}
		addr := Address{User: fmt.Sprint("peer", i), Device: 1}
		base := make([]byte, 32)
		rand.Read(base)
		s := newSession(addr.String(), resp, &sessionMeta{BaseKey: base})
		p := &peer{addr: addr, name: addr.String(), key: record.KeyPeerPrefix + addr.String(), rec: &statepb.Peer{}, sessions: []*session{s}, slot: -1}
		d.peers[addr] = p
		d.index(p)
		d.used(p, s)
	}
}

// BenchmarkUnknownTag measures Receive of an envelope with an unknown tag
// (a flood) against 1, 1,000 and 100,000 sessions (TESTING.md item 24): the
// cost per envelope is bounded by maxSlowPath, not by the session count.
func BenchmarkUnknownTag(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprint("sessions=", n), func(b *testing.B) {
			ctx := context.Background()
			d, err := Open(ctx, NewMemoryStore(), Address{User: "bob", Device: 1})
			if err != nil {
				b.Fatal(err)
			}
			addSyntheticSessions(b, d, n)
			env := garbage(d)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := d.Receive(ctx, env); !errors.Is(err, ErrDecrypt) {
					b.Fatal(err)
				}
			}
		})
	}
}

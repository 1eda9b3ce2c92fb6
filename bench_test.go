package sealpost_test

import (
	"testing"

	"github.com/sealpost/sealpost"
)

// BenchmarkSendReceive measures Device.Send plus Sent plus Device.Receive
// plus Done of a 100-byte message on memory stores, one direction, in
// steady state: the whole per-message path (content, transcript, padding,
// ratchet, envelope, the outbox entry, two Applies on each side).
func BenchmarkSendReceive(b *testing.B) {
	c := newClock()
	alice, bob := newParty(b, "alice", c), newParty(b, "bob", c)
	connect(b, alice, bob)
	receive(b, bob, send(b, alice, bob, "start"))
	receive(b, alice, send(b, bob, alice, "ok"))
	body := make([]byte, 100)
	b.ReportAllocs()
	var wire int
	for b.Loop() {
		out, err := alice.Send(ctx, bob.addr, body)
		if err != nil {
			b.Fatal(err)
		}
		if err := alice.Sent(ctx, out); err != nil {
			b.Fatal(err)
		}
		in, err := bob.Receive(ctx, out.Envelope)
		if err != nil {
			b.Fatal(err)
		}
		if err := bob.Done(ctx, in.ID); err != nil {
			b.Fatal(err)
		}
		wire = len(out.Envelope) - len(body)
	}
	b.ReportMetric(float64(wire), "wire-bytes")
}

// BenchmarkSendReceiveEncryptedStore is BenchmarkSendReceive with both
// devices on an EncryptedStore over a MemoryStore: the cost of sealing
// every record and hashing every name.
func BenchmarkSendReceiveEncryptedStore(b *testing.B) {
	c := newClock()
	alice := encryptedParty(b, sealpost.Address{User: "alice", Device: 1}, c, sealpost.NewMemoryStore(), storeKey(1))
	bob := encryptedParty(b, sealpost.Address{User: "bob", Device: 1}, c, sealpost.NewMemoryStore(), storeKey(2))
	connect(b, alice, bob)
	receive(b, bob, send(b, alice, bob, "start"))
	receive(b, alice, send(b, bob, alice, "ok"))
	body := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		out, err := alice.Send(ctx, bob.addr, body)
		if err != nil {
			b.Fatal(err)
		}
		if err := alice.Sent(ctx, out); err != nil {
			b.Fatal(err)
		}
		in, err := bob.Receive(ctx, out.Envelope)
		if err != nil {
			b.Fatal(err)
		}
		if err := bob.Done(ctx, in.ID); err != nil {
			b.Fatal(err)
		}
	}
}

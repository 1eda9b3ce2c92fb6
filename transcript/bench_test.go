package transcript_test

import (
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// body is a typical content: a short message padded as sealpost pads.
var body = make([]byte, 200)

// full returns a conversation whose logs are full, as in a long-running
// conversation, and the peer it talks to.
func full(b *testing.B) (me, peer *transcript.Conversation) {
	me, peer = transcript.New(), transcript.New()
	for range transcript.MaxLog {
		recv(b, me, send(b, peer, 'b', "m"))
		recv(b, peer, send(b, me, 'a', "m"))
	}
	return me, peer
}

// BenchmarkSent measures recording one of our contents (per-message path).
func BenchmarkSent(b *testing.B) {
	c, _ := full(b)
	content := encode(c.Next(), [16]byte{1}, body)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Sent(c.Next(), [16]byte{1}, content); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReceived measures recording a peer content in order (the
// per-message path). Contents are made in batches with the timer stopped.
func BenchmarkReceived(b *testing.B) {
	me, peer := full(b)
	batch := make([]msg, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%cap(batch) == 0 {
			b.StopTimer()
			batch = batch[:0]
			for range cap(batch) {
				f := peer.Next()
				m := msg{f: f, id: [16]byte{2, byte(f.Seq)}, raw: encode(f, [16]byte{2, byte(f.Seq)}, body)}
				if err := peer.Sent(f, m.id, m.raw); err != nil {
					b.Fatal(err)
				}
				batch = append(batch, m)
			}
			b.StartTimer()
		}
		m := &batch[i%cap(batch)]
		if fs, err := me.Received(m.f, m.id, m.raw); err != nil || fs != nil {
			b.Fatal(err, fs)
		}
	}
}

// BenchmarkReceivedReordered measures a content that arrives ahead of a
// gap and the one that fills it (two calls per op).
func BenchmarkReceivedReordered(b *testing.B) {
	me, peer := full(b)
	batch := make([]msg, 0, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%(cap(batch)/2) == 0 {
			b.StopTimer()
			batch = batch[:0]
			for range cap(batch) {
				f := peer.Next()
				m := msg{f: f, id: [16]byte{2, byte(f.Seq)}, raw: encode(f, [16]byte{2, byte(f.Seq)}, body)}
				_ = peer.Sent(f, m.id, m.raw)
				batch = append(batch, m)
			}
			b.StartTimer()
		}
		j := 2 * (i % (cap(batch) / 2))
		for _, m := range []*msg{&batch[j+1], &batch[j]} {
			if _, err := me.Received(m.f, m.id, m.raw); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkClone and BenchmarkMarshalBinary measure what a caller pays per
// message to work on a copy and save it, with full logs.
func BenchmarkClone(b *testing.B) {
	c, _ := full(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Clone()
	}
}

func BenchmarkMarshalBinary(b *testing.B) {
	c, _ := full(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalBinary(b *testing.B) {
	c, _ := full(b)
	raw := state(b, c)
	b.ReportAllocs()
	for b.Loop() {
		if err := transcript.New().UnmarshalBinary(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReceipt(b *testing.B) {
	me, peer := full(b)
	ids := [][16]byte{}
	for range 3 {
		m := send(b, peer, 'b', "m")
		recv(b, me, m)
		ids = append(ids, m.id)
	}
	b.ReportAllocs()
	for b.Loop() {
		h, _ := me.ReceiptHash(ids)
		if peer.CheckReceipt(ids, h) != nil {
			b.Fatal("mismatch")
		}
	}
}

package seal_test

import (
	"testing"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/seal"
)

// BenchmarkFirstContact seals a session start with a 100-byte first ratchet
// message. wire-bytes is what the envelope adds to the start: header,
// padding, X-Wing encapsulation and AEAD tag.
func BenchmarkFirstContact(b *testing.B) {
	bundle := bobSpec.build(b).bundle(b)
	_, start := newStart(b, bundle, payloadOf(100))
	var env []byte
	b.ReportAllocs()
	for b.Loop() {
		env = firstContact(b, bundle, start)
	}
	b.ReportMetric(float64(len(env)-len(start)), "wire-bytes")
}

// BenchmarkOpenFirstContact opens the envelope of BenchmarkFirstContact:
// X-Wing decapsulation, AEAD open, unpadding and the session-start decode.
func BenchmarkOpenFirstContact(b *testing.B) {
	bob := bobSpec.build(b)
	_, start := newStart(b, bob.bundle(b), payloadOf(100))
	env := firstContact(b, bob.bundle(b), start)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := seal.OpenFirstContact(bob.mailKey, bob.mailbox, env); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(env)-len(start)), "wire-bytes")
}

// BenchmarkSession frames a 1 KiB ratchet message into a reused buffer.
func BenchmarkSession(b *testing.B) {
	var tag [envelope.TagSize]byte
	mailbox, msg := []byte("bob-mailbox"), payloadOf(1024)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		buf = seal.Session(buf[:0], mailbox, tag, msg)
	}
}

package sealpost_test

import (
	"bytes"
	"testing"

	"github.com/sealpost/sealpost"
)

// TestFirstContactSizeCost measures what the relay can tell from sizes
// (issue 14, a lower-severity item; the reasoning is in the package doc,
// "What the relay still sees"): first-contact envelopes, which carry the
// session start (identity, ML-KEM-1024 ciphertext, ...), are several times
// the size of session envelopes, so the relay sees which envelopes start
// conversations. It logs the sizes, which message bodies share the first
// contacts' padding bucket, and what two ways of hiding them would cost:
// padding first contacts up to the next power of two (a bucket shared with
// large messages), or padding every session envelope up to a first
// contact's size. Run with -v to see the numbers.
func TestFirstContactSizeCost(t *testing.T) {
	c := newClock()
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	firsts := map[string]int{}
	for _, tc := range []struct {
		name    string
		oneTime int
		body    int
	}{{"one-time prekeys, 0 B body", 1, 0}, {"one-time prekeys, 256 B body", 1, 256}, {"last resort, 0 B body", 0, 0}, {"last resort, 256 B body", 0, 256}} {
		alice := newParty(t, "alice", c)
		if err := alice.StartSession(ctx, bob.addr, akBundles(t, bob, tc.oneTime)[0]); err != nil {
			t.Fatal(err)
		}
		firsts[tc.name] = len(send(t, alice, bob, string(make([]byte, tc.body))).Envelope)
	}
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hi"))
	receive(t, alice, send(t, bob, alice, "hi"))
	session := func(n int) int {
		o := send(t, alice, bob, string(bytes.Repeat([]byte{'x'}, n)))
		receive(t, bob, o)
		return len(o.Envelope)
	}
	session(0) // takes Alice's queued receipt: the sizes below carry none
	small, fc := session(100), 0
	for name, n := range firsts {
		t.Logf("first contact, %s: %d B", name, n)
		fc = max(fc, n)
	}
	if fc < 4*small {
		t.Fatalf("first contacts (%d B) are no longer much larger than a 100 B message (%d B): update the package doc", fc, small)
	}
	// The bodies whose session envelopes are within 128 B of a first
	// contact (Padmé's step at this size), and the largest whose envelope
	// still fits the next power of two.
	pow := 1
	for pow < fc {
		pow <<= 1
	}
	lo, hi, fits := -1, -1, -1
	for n := 0; n <= 4096; n += 8 {
		size := session(n)
		if size >= fc-128 && size <= fc+128 {
			if lo < 0 {
				lo = n
			}
			hi = n
		}
		if size <= pow {
			fits = n
		}
	}
	t.Logf("session envelope, 100 B body: %d B; a first contact is %.1fx that", small, float64(fc)/float64(small))
	t.Logf("session envelopes within 128 B of a first contact carry bodies of %d-%d B", lo, hi)
	t.Logf("padding first contacts to %d B (the next power of two, a bucket shared with messages of bodies up to %d B if those were padded to it too): +%d B per first contact (+%.0f%%)",
		pow, fits, pow-fc, 100*float64(pow-fc)/float64(fc))
	t.Logf("padding every session envelope to a first contact's size instead: +%d B on a 100 B message (%.1fx its bytes)", fc-small, float64(fc)/float64(small))
}

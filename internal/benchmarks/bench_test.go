package benchmarks

import (
	"bytes"
	"testing"
)

// Every benchmark runs the same workload on each implementation, as
// sub-benchmarks named impl=NAME. ns/op, B/op and allocs/op are per
// message (per session start for BenchmarkEstablish); wire-bytes is what
// the message (or envelope) adds to the 100-byte body on the wire.

func ratchetPair() (Pair[RatchetMsg], error) { return NewRatchetPair() }
func devicePair() (Pair[[]byte], error)      { return NewDevicePair() }
func libsignalPair(saved bool) func() (Pair[SignalMsg], error) {
	return func() (Pair[SignalMsg], error) { return NewLibsignalPair(saved) }
}
func statusPair() (Pair[StatusMsg], error) { return NewStatusPair(true) }

// ready returns a warmed-up pair or stops the benchmark.
func ready[M any](b *testing.B, newPair func() (Pair[M], error)) Pair[M] {
	b.Helper()
	p, err := newPair()
	if err != nil {
		b.Fatal(err)
	}
	if err := Warm(p); err != nil {
		b.Fatal(err)
	}
	return p
}

func roundTrip[M any](b *testing.B, p Pair[M], from int, pt []byte) int {
	m, err := p.Seal(from, pt)
	if err != nil {
		b.Fatal(err)
	}
	got, err := p.Open(1-from, m)
	if err != nil {
		b.Fatal(err)
	}
	if len(got) != len(pt) {
		b.Fatalf("opened %d bytes, sealed %d", len(got), len(pt))
	}
	return p.Wire(m)
}

// sealOpen: steady state, one direction (Alice to Bob), a 100-byte body:
// the symmetric step only.
func sealOpen[M any](b *testing.B, newPair func() (Pair[M], error)) {
	p := ready(b, newPair)
	pt := make([]byte, Body)
	var wire int
	b.ReportAllocs()
	for b.Loop() {
		wire = roundTrip(b, p, Alice, pt)
	}
	b.ReportMetric(float64(wire-Body), "wire-bytes")
}

// pingPong: the direction alternates every message, so every message
// starts a new chain: a DH ratchet step.
func pingPong[M any](b *testing.B, newPair func() (Pair[M], error)) {
	p := ready(b, newPair)
	pt := make([]byte, Body)
	var wire, i int
	b.ReportAllocs()
	for b.Loop() {
		wire = roundTrip(b, p, i%2, pt)
		i++
	}
	b.ReportMetric(float64(wire-Body), "wire-bytes")
}

// reverse100: Alice seals 100 messages (not timed), Bob opens them last
// first: the first one opened skips 99 keys, the others use skipped keys.
// ns/op is per message opened.
func reverse100[M any](b *testing.B, newPair func() (Pair[M], error)) {
	p := ready(b, newPair)
	pt := make([]byte, Body)
	batch := make([]M, 0, 100)
	var wire int
	b.ReportAllocs()
	for b.Loop() {
		if len(batch) == 0 {
			b.StopTimer()
			for range 100 {
				m, err := p.Seal(Alice, pt)
				if err != nil {
					b.Fatal(err)
				}
				batch = append(batch, m)
			}
			b.StartTimer()
		}
		m := batch[len(batch)-1]
		batch = batch[:len(batch)-1]
		got, err := p.Open(Bob, m)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != Body {
			b.Fatalf("opened %d bytes", len(got))
		}
		wire = p.Wire(m)
	}
	b.ReportMetric(float64(wire-Body), "wire-bytes")
}

func BenchmarkSealOpen(b *testing.B) {
	b.Run("impl=sealpost", func(b *testing.B) { sealOpen(b, ratchetPair) })
	b.Run("impl=sealpost-device", func(b *testing.B) { sealOpen(b, devicePair) })
	b.Run("impl=libsignal", func(b *testing.B) { sealOpen(b, libsignalPair(false)) })
	b.Run("impl=libsignal-saved", func(b *testing.B) { sealOpen(b, libsignalPair(true)) })
	b.Run("impl=statusdr", func(b *testing.B) { sealOpen(b, statusPair) })
}

func BenchmarkPingPong(b *testing.B) {
	b.Run("impl=sealpost", func(b *testing.B) { pingPong(b, ratchetPair) })
	b.Run("impl=sealpost-device", func(b *testing.B) { pingPong(b, devicePair) })
	b.Run("impl=libsignal", func(b *testing.B) { pingPong(b, libsignalPair(false)) })
	b.Run("impl=libsignal-saved", func(b *testing.B) { pingPong(b, libsignalPair(true)) })
	b.Run("impl=statusdr", func(b *testing.B) { pingPong(b, statusPair) })
}

func BenchmarkReverse100(b *testing.B) {
	b.Run("impl=sealpost", func(b *testing.B) { reverse100(b, ratchetPair) })
	b.Run("impl=sealpost-device", func(b *testing.B) { reverse100(b, devicePair) })
	b.Run("impl=libsignal", func(b *testing.B) { reverse100(b, libsignalPair(false)) })
	b.Run("impl=libsignal-saved", func(b *testing.B) { reverse100(b, libsignalPair(true)) })
	b.Run("impl=statusdr", func(b *testing.B) { reverse100(b, statusPair) })
}

// establish: from the responder's published bundle to the responder
// accepting the first message (see each Establisher for what that
// includes). Reset, which makes fresh state, is not timed.
func establish(b *testing.B, newEst func() (Establisher, error)) {
	e, err := newEst()
	if err != nil {
		b.Fatal(err)
	}
	pt := make([]byte, Body)
	pt[0] = 1
	var wire int
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		if err := e.Reset(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, n, err := e.Establish(pt)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			b.Fatal("first message differs")
		}
		wire = n
	}
	b.ReportMetric(float64(wire-Body), "wire-bytes")
}

func BenchmarkEstablish(b *testing.B) {
	b.Run("impl=sealpost", func(b *testing.B) { establish(b, NewRatchetEstablish) })
	b.Run("impl=sealpost-device", func(b *testing.B) { establish(b, NewDeviceEstablish) })
	b.Run("impl=libsignal", func(b *testing.B) {
		establish(b, func() (Establisher, error) { return NewLibsignalEstablish(false) })
	})
	b.Run("impl=libsignal-saved", func(b *testing.B) {
		establish(b, func() (Establisher, error) { return NewLibsignalEstablish(true) })
	})
	b.Run("impl=statusdr", func(b *testing.B) { establish(b, NewStatusEstablish) })
}

// BenchmarkFloor times the primitives sealpost's ratchet performs, summed
// ("seal-open" for BenchmarkSealOpen, "pingpong" adds a DH step for
// BenchmarkPingPong) and alone, with the associated data of a real
// session.
func BenchmarkFloor(b *testing.B) {
	a, _, err := sessionKeys()
	if err != nil {
		b.Fatal(err)
	}
	f := NewFloor(len(a.AssociatedData()))
	for _, c := range []struct {
		name string
		run  func()
	}{
		{"seal-open", f.SealOpen},
		{"pingpong", func() { f.SealOpen(); f.DHStep() }},
		{"part=chain-step", f.ChainStep},
		{"part=tag", f.Tag},
		{"part=header-seal-open", f.HeaderSealOpen},
		{"part=body-nonce", f.BodyNonce},
		{"part=body-seal-open", f.BodySealOpen},
		{"part=dh-step", f.DHStep},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.run()
			}
		})
	}
}

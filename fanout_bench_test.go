package sealpost_test

import (
	"fmt"
	"testing"

	"github.com/sealpost/sealpost"
)

// fbAccount links n devices of user through r; the first holds the key.
func fbAccount(tb testing.TB, r *acRelay, c *clock, user string, n int) []*acDevice {
	tb.Helper()
	devs := []*acDevice{acOpen(tb, sealpost.Address{User: user, Device: 1}, c)}
	acAccount(tb, devs[0], user+" 1")
	for i := 2; i <= n; i++ {
		d := acOpen(tb, sealpost.Address{User: user, Device: uint32(i)}, c)
		acLink(tb, r, devs[0], d, fmt.Sprintf("%s %d", user, i), false)
		devs = append(devs, d)
	}
	for _, d := range devs {
		r.drain(tb, d)
	}
	return devs
}

// fbSteady sets up alice's phone sending to bob's four devices and her
// two other devices, every session confirmed both ways and every list
// known, so that a send carries no session start and no list.
func fbSteady(b *testing.B) (*acDevice, []*acDevice) {
	c := newClock()
	r := newACRelay()
	alice := fbAccount(b, r, c, "alice", 3)
	bob := fbAccount(b, r, c, "bob", 4)
	l, err := bob[0].DeviceList(ctx, "bob")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := alice[0].UpdateDeviceList(ctx, "bob", l.Bytes()); err != nil {
		b.Fatal(err)
	}
	all := append(append([]*acDevice{}, alice...), bob...)
	acConnectAll(b, alice[0], "bob", all...)
	outs, err := alice[0].SendUser(ctx, "bob", []byte("hi"))
	if err != nil {
		b.Fatal(err)
	}
	r.post(b, alice[0], outs...)
	targets := append(append([]*acDevice{}, bob...), alice[1:]...)
	for _, d := range targets {
		r.drain(b, d)
		out, err := d.Send(ctx, alice[0].addr, []byte("ok"))
		if err != nil {
			b.Fatal(err)
		}
		r.post(b, d, out)
	}
	r.drain(b, alice[0])
	return alice[0], targets
}

// BenchmarkSendUser measures SendUser of 100 bytes to an account of four
// devices with two own other devices (six envelopes, one Apply) plus
// Sent, against six Send plus Sent to the same devices (the fan-out's
// target is at most 6.3x one Send: docs/SPEC.md §22.5).
func BenchmarkSendUser(b *testing.B) {
	body := make([]byte, 100)
	b.Run("fan-out", func(b *testing.B) {
		from, _ := fbSteady(b)
		before := from.fs.applies
		b.ReportAllocs()
		for b.Loop() {
			outs, err := from.SendUser(ctx, "bob", body)
			if err != nil {
				b.Fatal(err)
			}
			if len(outs) != 6 {
				b.Fatalf("%d envelopes", len(outs))
			}
			if err := from.Sent(ctx, outs...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(from.fs.applies-before)/float64(b.N), "applies/op")
	})
	b.Run("six-sends", func(b *testing.B) {
		from, targets := fbSteady(b)
		before := from.fs.applies
		b.ReportAllocs()
		for b.Loop() {
			for _, d := range targets {
				out, err := from.Send(ctx, d.addr, body)
				if err != nil {
					b.Fatal(err)
				}
				if err := from.Sent(ctx, out); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(from.fs.applies-before)/float64(b.N), "applies/op")
	})
	b.Run("one-send", func(b *testing.B) {
		from, targets := fbSteady(b)
		b.ReportAllocs()
		for b.Loop() {
			out, err := from.Send(ctx, targets[0].addr, body)
			if err != nil {
				b.Fatal(err)
			}
			if err := from.Sent(ctx, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

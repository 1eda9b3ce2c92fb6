package sealpost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

var ctx = context.Background()

// clock is a manual clock shared by the devices of a test.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock                   { return &clock{t: time.Unix(1_800_000_000, 0)} }

// testBundleClock is the clock the tests parse bundles with: where every
// test clock starts. Bundles expire PrekeyLifetime after the device made
// them, never before that, so parsing at this time accepts every bundle a
// test device makes however far its clock has run, and the tests do not
// depend on the real date (the Device checks expiry again with its own
// clock in StartSession).
var testBundleClock = keys.WithClock(func() time.Time { return time.Unix(1_800_000_000, 0) })

type party struct {
	*sealpost.Device
	addr  sealpost.Address
	store *sealpost.MemoryStore
}

func newParty(t testing.TB, user string, c *clock, opts ...sealpost.Option) *party {
	t.Helper()
	s := sealpost.NewMemoryStore()
	addr := sealpost.Address{User: user, Device: 1}
	opts = append([]sealpost.Option{sealpost.WithClock(c.now), sealpost.WithReceiptDelay(time.Second, 2*time.Second)}, opts...)
	d, err := sealpost.Open(ctx, s, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &party{Device: d, addr: addr, store: s}
}

// connect has a start a session with b from a fresh bundle.
func connect(t testing.TB, a, b *party) {
	t.Helper()
	bundle, err := b.NewBundle(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := bundle.Split()[0].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := keys.ParseBundle(raw, testBundleClock)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.StartSession(ctx, b.addr, parsed); err != nil {
		t.Fatal(err)
	}
}

func send(t testing.TB, from, to *party, body string) *sealpost.Outgoing {
	t.Helper()
	out, err := from.Send(ctx, to.addr, []byte(body))
	if err != nil {
		t.Fatalf("%s Send: %v", from.addr, err)
	}
	return out
}

func receive(t testing.TB, to *party, out *sealpost.Outgoing) *sealpost.Incoming {
	t.Helper()
	in, err := to.Receive(ctx, out.Envelope)
	if err != nil {
		t.Fatalf("%s Receive: %v", to.addr, err)
	}
	if err := to.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	return in
}

func TestConversation(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	for i := range 5 {
		for _, dir := range [][2]*party{{alice, bob}, {bob, alice}} {
			from, to := dir[0], dir[1]
			body := fmt.Sprintf("%s says %d", from.addr.User, i)
			out := send(t, from, to, body)
			in := receive(t, to, out)
			if string(in.Body) != body || in.From != from.addr || in.Kind != sealpost.KindMessage || in.ID != out.ID {
				t.Fatalf("got %+v, want %q from %s", in, body, from.addr)
			}
			if len(in.Findings) != 0 {
				t.Fatalf("unexpected findings %v", in.Findings)
			}
		}
	}
	an, _ := alice.SafetyNumber(bob.addr)
	bn, _ := bob.SafetyNumber(alice.addr)
	if an != bn || len(an) != 71 {
		t.Fatalf("safety numbers differ: %q vs %q", an, bn)
	}
}

func TestBobRepliesFirstAfterSilence(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	// Alice's first two envelopes both carry the session start; the first
	// is lost, the second still starts the session.
	send(t, alice, bob, "lost")
	in := receive(t, bob, send(t, alice, bob, "second"))
	if string(in.Body) != "second" {
		t.Fatalf("got %q", in.Body)
	}
	receive(t, alice, send(t, bob, alice, "reply"))
	if f := alice.Findings(bob.addr); len(f) != 0 {
		// Bob's reply acknowledges only seq 2 of Alice's: 1 was dropped.
		t.Logf("findings after a lost first message: %v", f)
	}
}

func TestReceiptsAndRedelivery(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	out := send(t, alice, bob, "hello")
	in, err := bob.Receive(ctx, out.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	again, err := bob.Receive(ctx, out.Envelope)
	if err != nil || !again.Redelivered || string(again.Body) != "hello" || again.ID != in.ID {
		t.Fatalf("redelivery before Done: %+v, %v", again, err)
	}
	if err := bob.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Receive(ctx, out.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("redelivery after Done: %v, want ErrDuplicate", err)
	}
	// The delivery receipt waits for its random delay.
	if got, err := bob.Flush(ctx); err != nil || len(got) != 0 {
		t.Fatalf("Flush before the delay: %d envelopes, %v", len(got), err)
	}
	c.advance(3 * time.Second)
	got, err := bob.Flush(ctx)
	if err != nil || len(got) != 1 {
		t.Fatalf("Flush after the delay: %d envelopes, %v", len(got), err)
	}
	if len(got[0].Envelope) != len(out.Envelope)-len(""+"") && false {
		t.Fatal("unreachable")
	}
	r := receive(t, alice, got[0])
	if r.Kind != sealpost.KindDelivered || len(r.Delivered) != 1 || r.Delivered[0] != out.ID || len(r.Findings) != 0 {
		t.Fatalf("receipt: %+v", r)
	}
	// A read receipt rides along with Bob's next message.
	if err := bob.Acknowledge(ctx, alice.addr, sealpost.KindRead, in.ID); err != nil {
		t.Fatal(err)
	}
	m := receive(t, alice, send(t, bob, alice, "read it"))
	if len(m.Read) != 1 || m.Read[0] != out.ID || len(m.Findings) != 0 {
		t.Fatalf("piggy-backed read receipt: %+v", m)
	}
}

func TestRelayViewIsUniform(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0)), newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hi"))
	receive(t, alice, send(t, bob, alice, "hello"))
	sizes := map[int]int{}
	tags := map[[16]byte]bool{}
	for i := range 200 {
		out := send(t, alice, bob, string(bytes.Repeat([]byte{'x'}, i%100)))
		receive(t, bob, out)
		receipts, err := bob.Flush(ctx)
		if err != nil || len(receipts) != 1 {
			t.Fatalf("Flush: %d, %v", len(receipts), err)
		}
		for _, o := range []*sealpost.Outgoing{out, receipts[0]} {
			h, err := envelope.Parse(o.Envelope)
			if err != nil {
				t.Fatal(err)
			}
			if tags[h.Tag] {
				t.Fatal("a routing tag repeated")
			}
			tags[h.Tag] = true
			sizes[len(o.Envelope)]++
			for _, secret := range [][]byte{[]byte("alice"), alice.Identity().Bytes()[1:33]} {
				if bytes.Contains(o.Envelope, secret) {
					t.Fatal("the envelope shows the sender")
				}
			}
		}
		receive(t, alice, receipts[0])
	}
	if len(sizes) != 1 {
		t.Fatalf("messages under 100 bytes and receipts have %d sizes: %v", len(sizes), sizes)
	}
}

func TestDropReorderReplayFindings(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "start"))
	receive(t, alice, send(t, bob, alice, "ok"))
	k := send(t, alice, bob, "k")   // dropped by the relay
	k1 := send(t, alice, bob, "k1") // delivered
	in := receive(t, bob, k1)
	if !hasKind(in.Findings, transcript.Gap) {
		t.Fatalf("no gap finding for a dropped message: %v", in.Findings)
	}
	// Bob's next message tells Alice he has k+1 but not k.
	back := receive(t, alice, send(t, bob, alice, "got k1"))
	if !hasKind(back.Findings, transcript.Drop) {
		t.Fatalf("no drop finding at the sender: %v", back.Findings)
	}
	// The late message still arrives and closes the gap.
	late := receive(t, bob, k)
	if string(late.Body) != "k" {
		t.Fatalf("late message %q", late.Body)
	}
	if _, err := bob.Receive(ctx, k.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("replay: %v, want ErrDuplicate", err)
	}
}

func hasKind(fs []transcript.Finding, k transcript.Kind) bool {
	for _, f := range fs {
		if f.Kind == k {
			return true
		}
	}
	return false
}

func TestReopenContinues(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "before"))
	reopened, err := sealpost.Open(ctx, bob.store, bob.addr, sealpost.WithClock(c.now))
	if err != nil {
		t.Fatal(err)
	}
	bob2 := &party{Device: reopened, addr: bob.addr, store: bob.store}
	receive(t, bob2, send(t, alice, bob2, "after"))
	receive(t, alice, send(t, bob2, alice, "reply"))
}

func TestNoSession(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c)
	if _, err := alice.Send(ctx, sealpost.Address{User: "nobody", Device: 1}, []byte("x")); !errors.Is(err, sealpost.ErrNoSession) {
		t.Fatalf("Send without a session: %v", err)
	}
}

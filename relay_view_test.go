package sealpost_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/transcript"
)

// TestRelayViewOverConversation: the relay's view (envelope.Parse) of 1,000
// envelopes of a conversation in both directions, messages of fewer than
// 100 bytes, delivery and read receipts: no tag repeats, no envelope holds
// either side's address, identity or mailbox key bytes or the sender's
// mailbox id, every envelope names the recipient's mailbox, and all session
// envelopes have one size (first-contact envelopes, which carry the session
// start, have one size of their own) (TESTING.md item 39).
func TestRelayViewOverConversation(t *testing.T) {
	total := 1000
	if testing.Short() {
		total = 300
	}
	c := newClock()
	alice := newParty(t, "alice.sender@example.org", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob.recipient@example.org", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	rng := rand.New(rand.NewPCG(39, 39))

	// Secrets the relay must not see, as 16-byte windows.
	windows := map[string]string{}
	addWindows := func(name string, b []byte) {
		for i := 0; i+16 <= len(b); i++ {
			windows[string(b[i:i+16])] = name
		}
	}
	for _, p := range []*party{alice, bob} {
		addWindows(p.addr.User+" address", []byte(p.addr.User))
		addWindows(p.addr.User+" identity", p.Identity().Bytes())
		b, err := p.NewBundle(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		addWindows(p.addr.User+" mailbox key", b.MailboxKey.Bytes())
	}

	type sent struct {
		out      *sealpost.Outgoing
		from, to *party
		receipt  bool
		firstHop bool
	}
	var log []sent
	confirmed := map[*party]bool{}
	deliver := func(s sent) {
		in := receive(t, s.to, s.out)
		confirmed[s.to] = true // what the receiver sends now is a session envelope
		if in.Kind == sealpost.KindMessage {
			if rng.IntN(4) == 0 {
				if err := s.to.Acknowledge(ctx, in.From, sealpost.KindRead, in.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for len(log) < total {
		from, to := alice, bob
		if rng.IntN(2) == 0 && confirmed[bob] {
			from, to = bob, alice
		}
		body := make([]byte, rng.IntN(100))
		for i := range body {
			body[i] = 'a' + byte(rng.IntN(26))
		}
		s := sent{out: send(t, from, to, string(body)), from: from, to: to, firstHop: from == alice && !confirmed[alice]}
		log = append(log, s)
		deliver(s)
		for _, p := range []*party{alice, bob} {
			outs, err := p.Flush(ctx)
			if err != nil {
				t.Fatal(err)
			}
			other := alice
			if p == alice {
				other = bob
			}
			for _, o := range outs {
				r := sent{out: o, from: p, to: other, receipt: true}
				log = append(log, r)
				deliver(r)
			}
		}
	}

	tags := map[[16]byte]bool{}
	sizes := map[bool]map[int]int{false: {}, true: {}} // first contact -> size -> count
	receipts := 0
	for i, s := range log {
		h, err := envelope.Parse(s.out.Envelope)
		if err != nil {
			t.Fatalf("envelope %d: %v", i, err)
		}
		if h.Version != envelope.Version || !bytes.Equal(h.Mailbox, s.to.Mailbox()) || !bytes.Equal(s.out.Mailbox, h.Mailbox) {
			t.Fatalf("envelope %d: header %+v, want the recipient's mailbox", i, h)
		}
		if tags[h.Tag] {
			t.Fatalf("envelope %d: the routing tag repeated", i)
		}
		tags[h.Tag] = true
		env := s.out.Envelope
		for j := 0; j+16 <= len(env); j++ {
			if name, ok := windows[string(env[j:j+16])]; ok {
				t.Fatalf("envelope %d shows %s at offset %d", i, name, j)
			}
		}
		if bytes.Contains(env, s.from.Mailbox()) {
			t.Fatalf("envelope %d shows the sender's mailbox id", i)
		}
		sizes[s.firstHop][len(env)]++
		if s.receipt {
			receipts++
		}
	}
	t.Logf("%d envelopes (%d receipts): session sizes %v, first-contact sizes %v", len(log), receipts, sizes[false], sizes[true])
	if receipts == 0 || len(sizes[false]) == 0 {
		t.Fatal("the conversation had no receipts or no session envelopes")
	}
	if len(sizes[false]) != 1 || len(sizes[true]) > 1 {
		t.Fatalf("session envelopes have sizes %v and first-contact envelopes %v, want one size each", sizes[false], sizes[true])
	}
}

// TestReflectedEnvelope: Alice's own envelopes fed back to Alice, as sent
// (routed to Bob's mailbox) and with the routing header rewritten to her
// own mailbox, first-contact and session envelopes alike: an error, and
// nothing changed (TESTING.md item 42).
func TestReflectedEnvelope(t *testing.T) {
	c := newClock()
	alice, fs := newFaultyParty(t, "alice", c)
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	first := send(t, alice, bob, "first contact")
	receive(t, bob, first)
	receive(t, alice, send(t, bob, alice, "reply"))
	session := send(t, alice, bob, "session")
	receive(t, bob, session)
	receive(t, alice, send(t, bob, alice, "to be acknowledged"))
	outs, err := alice.Flush(ctx) // no receipt delay on a faulty party
	if err != nil || len(outs) != 1 {
		t.Fatalf("Alice's receipt: %d, %v", len(outs), err)
	}
	receipt := outs[0]
	for _, o := range []*sealpost.Outgoing{first, session, receipt} {
		h, body, err := wire.Parse(o.Envelope)
		if err != nil {
			t.Fatal(err)
		}
		mirrored := wire.AppendEnvelope(nil, alice.Mailbox(), h.Tag, body)
		for _, raw := range [][]byte{o.Envelope, mirrored} {
			before := dmCapture(alice, fs)
			if _, err := alice.Receive(ctx, raw); err == nil || !dmTyped(err) {
				t.Fatalf("reflected envelope: %v, want a typed error", err)
			}
			dmUnchanged(t, alice, fs, before, "reflected envelope")
		}
	}
	receive(t, bob, send(t, alice, bob, "still fine"))
	receive(t, alice, send(t, bob, alice, "yes"))
}

// dmFinding looks for a finding of kind on the given side.
func dmFinding(fs []transcript.Finding, kind transcript.Kind, outgoing bool) (transcript.Finding, bool) {
	for _, f := range fs {
		if f.Kind == kind && f.Outgoing == outgoing {
			return f, true
		}
	}
	return transcript.Finding{}, false
}

// dmWantFinding fails unless fs holds exactly the finding want (IDs in
// order, nil meaning none).
func dmWantFinding(t testing.TB, fs []transcript.Finding, want transcript.Finding, what string) {
	t.Helper()
	got, ok := dmFinding(fs, want.Kind, want.Outgoing)
	if !ok || got.Seq != want.Seq || got.ToSeq != want.ToSeq || !slices.Equal(got.IDs, want.IDs) {
		t.Fatalf("%s: findings %v (ids %v), want %v with ids %v", what, fs, dmIDs(fs), want, want.IDs)
	}
}

func dmIDs(fs []transcript.Finding) [][][16]byte {
	var out [][][16]byte
	for _, f := range fs {
		out = append(out, f.IDs)
	}
	return out
}

// TestRelayReorderReplayDrop: the relay reorders k and k+1, replays k and
// drops messages: Bob reports a Gap with the exact seqs, Alice a Drop with
// the exact seqs and message ids; the reordered message closes the gap,
// the replay is Redelivered or ErrDuplicate (TESTING.md item 43).
func TestRelayReorderReplayDrop(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "seq 1"))
	receive(t, alice, send(t, bob, alice, "ok"))

	// Reorder k = seq 2 and k+1 = seq 3.
	k, k1 := send(t, alice, bob, "seq 2"), send(t, alice, bob, "seq 3")
	in := receive(t, bob, k1)
	dmWantFinding(t, in.Findings, transcript.Finding{Kind: transcript.Gap, Seq: 2, ToSeq: 2}, "k+1 before k")
	dmWantFinding(t, bob.Findings(alice.addr), transcript.Finding{Kind: transcript.Gap, Seq: 2, ToSeq: 2}, "Bob's open findings")
	back := receive(t, alice, send(t, bob, alice, "I have 3, not 2"))
	dmWantFinding(t, back.Findings, transcript.Finding{Kind: transcript.Drop, Outgoing: true, Seq: 2, ToSeq: 2, IDs: [][16]byte{k.ID}}, "Alice hears of the missing k")
	late, err := bob.Receive(ctx, k.Envelope)
	if err != nil || string(late.Body) != "seq 2" || late.Redelivered || len(late.Findings) != 0 {
		t.Fatalf("k after k+1: %+v, %v", late, err)
	}
	// Replay k before and after Done.
	if again, err := bob.Receive(ctx, k.Envelope); err != nil || !again.Redelivered {
		t.Fatalf("replay of k before Done: %+v, %v", again, err)
	}
	if err := bob.Done(ctx, late.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Receive(ctx, k.Envelope); !errors.Is(err, sealpost.ErrDuplicate) {
		t.Fatalf("replay of k after Done: %v, want ErrDuplicate", err)
	}
	if fs := bob.Findings(alice.addr); len(fs) != 0 {
		t.Fatalf("Bob's findings after the reorder healed: %v", fs)
	}
	receive(t, alice, send(t, bob, alice, "now I have 2 and 3"))
	if fs := alice.Findings(bob.addr); len(fs) != 0 {
		t.Fatalf("Alice's findings after the reorder healed: %v", fs)
	}

	// Drop seqs 4 and 5 for good; seq 6 arrives.
	d4, d5 := send(t, alice, bob, "seq 4"), send(t, alice, bob, "seq 5")
	in = receive(t, bob, send(t, alice, bob, "seq 6"))
	dmWantFinding(t, in.Findings, transcript.Finding{Kind: transcript.Gap, Seq: 4, ToSeq: 5}, "after a dropped pair")
	back = receive(t, alice, send(t, bob, alice, "I have 6"))
	want := transcript.Finding{Kind: transcript.Drop, Outgoing: true, Seq: 4, ToSeq: 5, IDs: [][16]byte{d4.ID, d5.ID}}
	dmWantFinding(t, back.Findings, want, "Alice hears of the dropped pair")
	dmWantFinding(t, alice.Findings(bob.addr), want, "Alice's open findings")
	// The drop stays open while later messages arrive.
	receive(t, bob, send(t, alice, bob, "seq 7"))
	receive(t, alice, send(t, bob, alice, "I have 7"))
	dmWantFinding(t, alice.Findings(bob.addr), want, "Alice's open findings later")
	dmWantFinding(t, bob.Findings(alice.addr), transcript.Finding{Kind: transcript.Gap, Seq: 4, ToSeq: 5}, "Bob's open gap later")
}

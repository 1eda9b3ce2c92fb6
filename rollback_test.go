package sealpost_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// TestRollbackFork restores Alice's store from an old snapshot (a restored
// backup, a cloned device) and has her send again. The checklist
// (TESTING.md items 35, 43) wants: Bob reports a duplicate, rollback or fork;
// no message reaches Bob's app twice; the session heals within one round
// trip. What happens is logged step by step.
func TestRollbackFork(t *testing.T) {
	c := newClock()
	alice := newParty(t, "alice", c, sealpost.WithReceiptDelay(0, 0))
	bob := newParty(t, "bob", c, sealpost.WithReceiptDelay(0, 0))
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	old := alice.store.Snapshot()
	x := send(t, alice, bob, "x: sent before the rollback")
	xin := receive(t, bob, x)

	alice.store.Restore(old)
	alice = dmReopen(t, alice, c, sealpost.WithReceiptDelay(0, 0))
	y := send(t, alice, bob, "y: sent after the rollback")
	delivered := map[sealpost.MessageID]int{xin.ID: 1}
	yin, err := bob.Receive(ctx, y.Envelope)
	switch {
	case err == nil:
		t.Logf("y after the rollback: accepted, findings %v", yin.Findings)
		delivered[yin.ID]++
		_ = bob.Done(ctx, yin.ID)
	case !dmTyped(err):
		t.Fatalf("y after the rollback: untyped error %v", err)
	default:
		t.Logf("y after the rollback: %v", err)
	}
	z := send(t, alice, bob, "z: the next message")
	zin := receive(t, bob, z)
	delivered[zin.ID]++
	t.Logf("z: Bob's findings %v", zin.Findings)
	sawFork := hasKind(zin.Findings, transcript.Fork) || (yin != nil && hasKind(yin.Findings, transcript.Fork))
	if err == nil && !sawFork {
		t.Fatal("Bob accepted a message from rolled-back state with no fork finding")
	}
	if err != nil && !errors.Is(err, sealpost.ErrDuplicate) && !sawFork {
		t.Fatalf("Bob reports neither a duplicate nor a fork: %v, %v", err, zin.Findings)
	}

	// One round trip: Bob replies (with his receipts), Alice answers.
	outs, ferr := bob.Flush(ctx)
	if ferr != nil {
		t.Fatal(ferr)
	}
	for _, o := range outs {
		r := receive(t, alice, o)
		t.Logf("Bob's receipt at the rolled-back Alice: kind %v ids %d, findings %v", r.Kind, len(r.Delivered)+len(r.Read), r.Findings)
	}
	w := receive(t, alice, send(t, bob, alice, "w: Bob's reply"))
	t.Logf("w: Alice's findings %v", w.Findings)
	v := receive(t, bob, send(t, alice, bob, "v: after one round trip"))
	delivered[v.ID]++
	t.Logf("v: Bob's findings %v; Bob's open findings %v; Alice's open findings %v", v.Findings, bob.Findings(alice.addr), alice.Findings(bob.addr))
	if string(v.Body) != "v: after one round trip" {
		t.Fatalf("got %q", v.Body)
	}
	for id, n := range delivered {
		if n != 1 {
			t.Fatalf("message %v reached Bob's app %d times", id, n)
		}
	}
	receive(t, alice, send(t, bob, alice, "u"))
}

// TestRollbackReusesNoKey: after Alice's state is rolled back, her next
// Send must not encrypt under the message key and nonce her lost Send
// already used (TESTING.md item 35). The chain position, and so the routing tag
// and the encrypted header, repeat; the body nonce is synthetic (derived
// from the message key and the plaintext), so a different plaintext gets a
// different nonce and the two bodies share no keystream.
func TestRollbackReusesNoKey(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hello"))
	receive(t, alice, send(t, bob, alice, "hi"))
	old := alice.store.Snapshot()
	x := send(t, alice, bob, "the attack is at dawn")
	alice.store.Restore(old)
	alice = dmReopen(t, alice, c)
	y := send(t, alice, bob, "the attack is at dusk")
	if len(x.Envelope) != len(y.Envelope) {
		t.Fatalf("sizes %d and %d", len(x.Envelope), len(y.Envelope))
	}
	// The ratchet body starts after the routing header, the version byte
	// and the encrypted header; its first 12 bytes are the nonce.
	hx, _ := envelope.Parse(x.Envelope)
	encHeader := ratchet.Overhead - 1 - 12 - 16 // all but version, nonce and body tag
	off := 2 + len(hx.Mailbox) + envelope.TagSize + 1 + encHeader
	nx, ny := x.Envelope[off:off+12], y.Envelope[off:off+12]
	if bytes.Equal(nx, ny) {
		t.Fatal("two plaintexts from a rolled-back state share a body nonce")
	}
	same := 0
	for i := off + 12; i < len(x.Envelope); i++ {
		if x.Envelope[i] == y.Envelope[i] {
			same++
		}
	}
	if body := len(x.Envelope) - off - 12; same > body/16 {
		t.Fatalf("%d of %d body bytes equal: keystream reuse", same, body)
	}
}

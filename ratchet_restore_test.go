package sealpost

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost/envelope/seal"
)

// wireNonce returns the header nonce and the encrypted header of the
// ratchet message in an envelope's body, as the relay sees them: ratchet
// message version 2 took the nonce from the routing tag (the header after
// the version byte), version 3 sends it first (ratchet/header.go).
func wireNonce(tag [16]byte, msg []byte) (nonce, hdr []byte) {
	const encHeader = 98
	if msg[0] == 2 {
		return tag[:12], msg[1 : 1+encHeader]
	}
	return msg[1:13], msg[13 : 13+encHeader]
}

// TestRestoredDeviceNeverReusesHeaderNonce is issue 14's defect 1 at the
// Device (TESTING.md items 35, 51): Alice's store is backed up
// (MemoryStore.Snapshot), she sends, her store is restored from the backup
// and the Device reopened, she receives a message Bob sent on the same
// chain, and she sends again: the same routing tag as the lost envelope.
// Over many rounds, no two envelopes Alice ever sent carry the same tag
// and the same header nonce with different header ciphertexts, which
// would be one keystream and one Poly1305 key over two headers.
func TestRestoredDeviceNeverReusesHeaderNonce(t *testing.T) {
	ctx := context.Background()
	aliceStore := NewMemoryStore()
	aliceAddr, bobAddr := Address{User: "alice", Device: 1}, Address{User: "bob", Device: 1}
	alice, err := Open(ctx, aliceStore, aliceAddr)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := Open(ctx, NewMemoryStore(), bobAddr)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := bob.NewBundle(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.StartSession(ctx, bobAddr, bundle); err != nil {
		t.Fatal(err)
	}
	receive := func(to *Device, env []byte) {
		t.Helper()
		in, err := to.Receive(ctx, env)
		if err != nil {
			t.Fatalf("%s: %v", to.Address(), err)
		}
		if err := to.Done(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	sendTo := func(from *Device, to Address, body string) []byte {
		t.Helper()
		out, err := from.Send(ctx, to, []byte(body))
		if err != nil {
			t.Fatalf("%s: %v", from.Address(), err)
		}
		return out.Envelope
	}
	type sealed struct{ nonce, hdr []byte }
	sent := map[[16]byte][]sealed{}
	sameTag := 0
	record := func(env []byte) {
		t.Helper()
		h, msg, err := seal.Split(env)
		if err != nil {
			t.Fatal(err)
		}
		nonce, hdr := wireNonce(h.Tag, msg)
		for _, s := range sent[h.Tag] {
			sameTag++
			if bytes.Equal(s.nonce, nonce) && !bytes.Equal(s.hdr, hdr) {
				t.Fatalf("two envelopes with tag %x share a header nonce over different header ciphertexts", h.Tag)
			}
		}
		sent[h.Tag] = append(sent[h.Tag], sealed{bytes.Clone(nonce), bytes.Clone(hdr)})
	}
	// Bob is the responder: Alice speaks first.
	e := sendTo(alice, bobAddr, "hello")
	record(e)
	receive(bob, e)
	for i := range 150 {
		for range 1 + i%3 {
			receive(alice, sendTo(bob, aliceAddr, "from bob"))
		}
		backup := aliceStore.Snapshot()
		probe := fmt.Sprint("probe ", i)
		record(sendTo(alice, bobAddr, probe)) // lost with the device
		aliceStore.Restore(backup)
		if alice, err = Open(ctx, aliceStore, aliceAddr); err != nil {
			t.Fatal(err)
		}
		receive(alice, sendTo(bob, aliceAddr, "on the same chain"))
		again := sendTo(alice, bobAddr, probe)
		record(again)
		receive(bob, again)
	}
	if sameTag < 150 {
		t.Fatalf("only %d envelopes repeated a tag: the restored device did not resend at the same chain position", sameTag)
	}
}

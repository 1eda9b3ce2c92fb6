package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/sealpost/sealpost/examples/relay/server"
)

// TestSharedNATS runs two relays on one external NATS server, as relays
// scaled out behind a load balancer would: blobs uploaded through one are
// handed out once across both, and an envelope posted to one is delivered
// and removed through the other.
func TestSharedNATS(t *testing.T) {
	ctx := context.Background()
	ns, _ := natsFor(t)

	a := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1})
	b := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1})
	ca, cb := a.client(), b.client()

	if err := ca.PutBundle(ctx, uploadKey, "bob", 1, [][]byte{[]byte("1"), []byte("2"), []byte("3")}, []byte("lr")); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := range 5 {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		blob, _, err := c.FetchBundle(ctx, "bob", 1)
		if err != nil {
			t.Fatal(err)
		}
		seen[string(blob)]++
	}
	if seen["1"] != 1 || seen["2"] != 1 || seen["3"] != 1 || seen["lr"] != 2 {
		t.Errorf("blobs handed out %v", seen)
	}

	mbx := []byte("shared")
	env := fakeEnvelope(mbx, 3, 40)
	if err := ca.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	sub, err := cb.Subscribe(ctx, mbx, a.own(mbx))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, ok := next(t, sub, 10*time.Second)
	if !ok || string(d.Envelope) != string(env) {
		t.Fatalf("relay B delivered %x, %v", d.Envelope, ok)
	}
	if err := sub.Ack(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for a.pending(mbx) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := a.pending(mbx); n != 0 {
		t.Errorf("relay A still sees %d envelopes after B's ack", n)
	}
}

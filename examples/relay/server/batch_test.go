package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

func concat(envs ...[]byte) []byte { return bytes.Join(envs, nil) }

// TestBatchDelivers posts one batch to three mailboxes (a fan-out): every
// envelope reaches its mailbox, in order, and a retried batch stores none
// twice.
func TestBatchDelivers(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mailboxes := [][]byte{[]byte("phone"), []byte("laptop"), []byte("tablet")}
	var envs [][]byte
	want := map[string][][]byte{}
	for i := range 7 {
		m := mailboxes[i%len(mailboxes)]
		env := fakeEnvelope(m, byte(i), 16+100*i)
		envs = append(envs, env)
		want[string(m)] = append(want[string(m)], env)
	}
	if err := c.PostBatch(ctx, envs); err != nil {
		t.Fatalf("PostBatch: %v", err)
	}
	if err := c.PostBatch(ctx, envs); err != nil { // a retry
		t.Fatalf("PostBatch again: %v", err)
	}
	for _, m := range mailboxes {
		if n := tr.pending(m); n != uint64(len(want[string(m)])) {
			t.Errorf("mailbox %s holds %d envelopes, want %d", m, n, len(want[string(m)]))
		}
		sub, err := c.Subscribe(ctx, m, tr.own(m))
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want[string(m)] {
			d, ok := next(t, sub, 10*time.Second)
			if !ok {
				t.Fatalf("mailbox %s: delivery %d missing", m, i)
			}
			if !bytes.Equal(d.Envelope, w) {
				t.Fatalf("mailbox %s: delivery %d is another envelope", m, i)
			}
		}
		if _, ok := next(t, sub, 100*time.Millisecond); ok {
			t.Fatalf("mailbox %s: a delivery too many", m)
		}
		sub.Close()
	}
	// One envelope is a batch too; none is nothing to do.
	if err := c.PostBatch(ctx, [][]byte{fakeEnvelope([]byte("phone"), 99, 16)}); err != nil {
		t.Fatal(err)
	}
	if err := c.PostBatch(ctx, nil); err != nil {
		t.Fatal(err)
	}
}

// TestBatchRefusedWhole: a batch with one damaged envelope, anywhere in
// it, is refused as a whole before anything is stored.
func TestBatchRefusedWhole(t *testing.T) {
	tr := startRelay(t, server.Config{Rate: -1})
	a, b := []byte("mbx-a"), []byte("mbx-b")
	good1, good2, good3 := fakeEnvelope(a, 1, 40), fakeEnvelope(b, 2, 40), fakeEnvelope(a, 3, 40)
	header := len(fakeEnvelope(a, 1, 0))
	many := slices.Repeat([][]byte{fakeEnvelope(b, 4, 16)}, server.MaxBatchEnvelopes+1)
	for _, tc := range []struct {
		name string
		body []byte
		want int
		msg  string
	}{
		{"last one truncated", concat(good1, good2, good3[:len(good3)-1]), http.StatusBadRequest, "envelope 2: malformed"},
		{"first one truncated", concat(good1[:len(good1)-5], good2, good3), http.StatusBadRequest, "envelope 1:"}, // the first takes bytes of the second

		{"middle one truncated", concat(good1, good2[:len(good2)-1], good3), http.StatusBadRequest, "envelope 2:"},
		{"cut inside a header", concat(good1, good2[:10]), http.StatusBadRequest, "envelope 1: malformed"},
		{"bytes appended", concat(good1, good2, []byte{0}), http.StatusBadRequest, "envelope 2: malformed"},
		{"another version", concat(good1, append([]byte{1}, good2[1:]...)), http.StatusBadRequest, "envelope 1: unsupported"},
		{"empty", nil, http.StatusBadRequest, "empty"},
		{"one over envelope.MaxSize", concat(good1, fakeEnvelope(b, 5, envelope.MaxSize-header+1)), http.StatusRequestEntityTooLarge, "envelope 1 over"},
		{"65 envelopes", concat(append(many, good1)...), http.StatusRequestEntityTooLarge, "more than 64"},
		{"over 64 × envelope.MaxSize", make([]byte, server.MaxBatchSize+1), http.StatusRequestEntityTooLarge, "batch over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := signedRequest(t, tr, http.MethodPost, "/v1/envelopes/batch", tc.body, "", "")
			if code != tc.want || !strings.Contains(msg, tc.msg) {
				t.Errorf("%d %q, want %d and a message with %q", code, msg, tc.want, tc.msg)
			}
			if na, nb := tr.pending(a), tr.pending(b); na != 0 || nb != 0 {
				t.Errorf("a refused batch left %d and %d envelopes in the mailboxes", na, nb)
			}
		})
	}
	err := tr.client().PostBatch(context.Background(), [][]byte{good1, good2[:len(good2)-1], good3})
	wantStatus(t, err, http.StatusBadRequest)

	// The largest batch: 64 envelopes of nearly envelope.MaxSize.
	big := slices.Repeat([][]byte{nil}, server.MaxBatchEnvelopes)
	for i := range big {
		big[i] = fakeEnvelope(a, byte(i), envelope.MaxSize-header-i)
	}
	if err := tr.client().PostBatch(context.Background(), big); err != nil {
		t.Fatalf("the largest batch: %v", err)
	}
	if n := tr.pending(a); n != server.MaxBatchEnvelopes {
		t.Errorf("after the largest batch the mailbox holds %d", n)
	}
}

// TestBatchRateLimit: a batch takes a token per envelope from the client's
// bucket, all or none.
func TestBatchRateLimit(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: 1, Burst: 10})
	c := tr.client()
	m := []byte("limited")
	batch := func(n, tag int) [][]byte {
		var envs [][]byte
		for i := range n {
			envs = append(envs, fakeEnvelope(m, byte(tag+i), 16))
		}
		return envs
	}
	// Over the burst, a batch could never pass: 413 (its request took a
	// token, 9 left).
	wantStatus(t, c.PostBatch(ctx, batch(11, 0)), http.StatusRequestEntityTooLarge)
	if err := c.PostBatch(ctx, batch(7, 20)); err != nil {
		t.Fatalf("7 of 9 tokens: %v", err)
	}
	err := c.PostBatch(ctx, batch(4, 30)) // 2 tokens left
	wantStatus(t, err, http.StatusTooManyRequests)
	if se := err.(*client.StatusError); se.RetryAfter <= 0 {
		t.Errorf("429 without Retry-After")
	}
	if n := tr.pending(m); n != 7 {
		t.Errorf("mailbox holds %d after a refused batch, want 7", n)
	}
	// The refused batch took only the one token of its request.
	if err := c.PostBatch(ctx, batch(1, 40)); err != nil {
		t.Fatalf("the token left: %v", err)
	}
	wantStatus(t, c.Post(ctx, fakeEnvelope(m, 50, 16)), http.StatusTooManyRequests)
}

// TestBatchMailboxFull: a full mailbox refuses its own envelopes of a
// batch; the others are stored, and the answer names the refused ones.
func TestBatchMailboxFull(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, MaxDepth: 2})
	c := tr.client()
	full, free := []byte("full"), []byte("free")
	envs := [][]byte{fakeEnvelope(full, 1, 16), fakeEnvelope(free, 2, 16), fakeEnvelope(full, 3, 16),
		fakeEnvelope(full, 4, 16), fakeEnvelope(free, 5, 16)}
	err := c.PostBatch(ctx, envs)
	var be *client.BatchError
	if !errors.As(err, &be) || be.Code != http.StatusInsufficientStorage || fmt.Sprint(be.Refused) != "[3]" ||
		be.Message != "mailbox full" || be.RetryAfter <= 0 {
		t.Fatalf("PostBatch: %#v, want a BatchError 507 refusing [3]", err)
	}
	if !client.IsStatus(err, http.StatusInsufficientStorage) {
		t.Errorf("IsStatus does not see the BatchError's status")
	}
	if nf, nr := tr.pending(full), tr.pending(free); nf != 2 || nr != 2 {
		t.Errorf("mailboxes hold %d and %d, want 2 and 2", nf, nr)
	}
}

package server_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/auth"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

func wantStatus(t *testing.T, err error, code int) {
	t.Helper()
	if !client.IsStatus(err, code) {
		t.Fatalf("got %v, want status %d", err, code)
	}
}

func TestBundles(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()

	if _, _, err := c.FetchBundle(ctx, "bob", 1); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("fetch before upload: %v", err)
	}
	one := [][]byte{[]byte("ot-1"), []byte("ot-2"), []byte("ot-3")}
	if err := c.PutBundle(ctx, uploadKey, "bob", 1, one, []byte("lr-1")); err != nil {
		t.Fatal(err)
	}
	// Another device of the same user, and a user name that needs escaping.
	if err := c.PutBundle(ctx, uploadKey, "bob", 2, nil, []byte("bob2-lr")); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBundle(ctx, uploadKey, "carol/../x y", 1, [][]byte{[]byte("carol-ot")}, []byte("carol-lr")); err != nil {
		t.Fatal(err)
	}
	fetch := func(user string, dev uint32, want string, wantOneTime bool) {
		t.Helper()
		blob, oneTime, err := c.FetchBundle(ctx, user, dev)
		if err != nil || string(blob) != want || oneTime != wantOneTime {
			t.Fatalf("fetch %s.%d = %q, one-time %v, %v; want %q, %v", user, dev, blob, oneTime, err, want, wantOneTime)
		}
	}
	fetch("bob", 1, "ot-1", true)
	fetch("bob", 1, "ot-2", true)
	fetch("bob", 2, "bob2-lr", false)
	fetch("carol/../x y", 1, "carol-ot", true)
	fetch("carol/../x y", 1, "carol-lr", false)
	fetch("bob", 1, "ot-3", true)
	fetch("bob", 1, "lr-1", false)
	fetch("bob", 1, "lr-1", false)

	// POST adds one-time blobs and may replace the last resort.
	if err := c.AddBundle(ctx, uploadKey, "bob", 1, [][]byte{[]byte("ot-4")}, nil); err != nil {
		t.Fatal(err)
	}
	fetch("bob", 1, "ot-4", true)
	fetch("bob", 1, "lr-1", false)
	if err := c.AddBundle(ctx, uploadKey, "bob", 1, nil, []byte("lr-2")); err != nil {
		t.Fatal(err)
	}
	fetch("bob", 1, "lr-2", false)

	// PUT replaces everything.
	if err := c.AddBundle(ctx, uploadKey, "bob", 1, [][]byte{[]byte("ot-5")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBundle(ctx, uploadKey, "bob", 1, [][]byte{[]byte("ot-6")}, []byte("lr-3")); err != nil {
		t.Fatal(err)
	}
	fetch("bob", 1, "ot-6", true)
	fetch("bob", 1, "lr-3", false)

	// Refusals.
	wantStatus(t, c.PutBundle(ctx, uploadKey, "bob", 1, one, nil), http.StatusBadRequest)
	wantStatus(t, c.PutBundle(ctx, uploadKey, "bob", 1, nil, bytes.Repeat([]byte{1}, server.MaxBlobSize+1)), http.StatusRequestEntityTooLarge)
	many := make([][]byte, server.MaxOneTimeBlobs+1)
	for i := range many {
		many[i] = []byte{byte(i)}
	}
	wantStatus(t, c.AddBundle(ctx, uploadKey, "bob", 1, many, nil), http.StatusRequestEntityTooLarge)
	wantStatus(t, c.AddBundle(ctx, uploadKey, strings.Repeat("u", 257), 1, [][]byte{{1}}, nil), http.StatusBadRequest)
	for _, path := range []string{"/v1/bundles/bob/x", "/v1/bundles/bob/4294967296", "/v1/bundles/bob/-1"} {
		resp, err := http.Get(tr.url() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
	// An unsigned upload is refused before its body is read; a signed
	// one that is not JSON is a 400.
	resp, err := http.Post(tr.url()+"/v1/bundles/bob/1", "application/json", strings.NewReader(`{"one_time": 7}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned upload: %d", resp.StatusCode)
	}
	body := []byte(`{"one_time": 7}`)
	code, _ := signedRequest(t, tr, http.MethodPost, "/v1/bundles/bob/1", body,
		auth.Sign(uploadPriv, http.MethodPost, auth.BundleResource("bob", 1), body, time.Now()),
		auth.EncodeKey(uploadKey.Public()))
	if code != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", code)
	}
}

// TestOneTimeBlobsOnce has many clients race for few one-time blobs: each
// is handed out exactly once.
func TestOneTimeBlobsOnce(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	var blobs [][]byte
	for i := range 20 {
		blobs = append(blobs, []byte{byte(i)})
	}
	if err := c.PutBundle(ctx, uploadKey, "bob", 1, blobs, []byte("last")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				blob, _, err := c.FetchBundle(ctx, "bob", 1)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[string(blob)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range 20 {
		if n := seen[string([]byte{byte(i)})]; n != 1 {
			t.Errorf("one-time blob %d handed out %d times", i, n)
		}
	}
	if seen["last"] != 20 {
		t.Errorf("last resort handed out %d times, want 20", seen["last"])
	}
}

func TestEnvelopeRefusals(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("mailbox-1")

	for name, env := range map[string][]byte{
		"empty":         {},
		"garbage":       []byte("garbage"),
		"version 1":     append([]byte{1}, fakeEnvelope(mbx, 1, 32)[1:]...),
		"version 3":     append([]byte{3}, fakeEnvelope(mbx, 1, 32)[1:]...),
		"no mailbox":    {envelope.Version, 0, 1, 2, 3},
		"truncated":     fakeEnvelope(mbx, 1, 32)[:len(fakeEnvelope(mbx, 1, 32))-1],
		"extended":      append(fakeEnvelope(mbx, 1, 32), 0),
		"long mailbox":  fakeEnvelope(bytes.Repeat([]byte{1}, 65), 1, 32),
		"truncated tag": fakeEnvelope(mbx, 1, 0)[:10],
		"short body":    fakeEnvelope(mbx, 1, 15),
	} {
		if err := c.Post(ctx, env); !client.IsStatus(err, http.StatusBadRequest) {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	// The size limit, probed at the limit and one past it.
	header := len(fakeEnvelope(mbx, 1, 0))
	if err := c.Post(ctx, fakeEnvelope(mbx, 1, envelope.MaxSize-header)); err != nil {
		t.Errorf("an envelope of exactly MaxSize: %v", err)
	}
	wantStatus(t, c.Post(ctx, fakeEnvelope(mbx, 1, envelope.MaxSize-header+1)), http.StatusRequestEntityTooLarge)
	// Without a Content-Length, the body is cut at the limit.
	req, _ := http.NewRequest(http.MethodPost, tr.url()+"/v1/envelopes",
		struct{ *bytes.Reader }{bytes.NewReader(fakeEnvelope(mbx, 1, envelope.MaxSize))})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked oversize: %d", resp.StatusCode)
	}
	if err := c.Post(ctx, fakeEnvelope(mbx, 1, 16)); err != nil {
		t.Errorf("a minimal envelope: %v", err)
	}
	if n := tr.pending(mbx); n != 2 {
		t.Errorf("mailbox holds %d envelopes, want 2", n)
	}
	// Bad mailbox ids on the WebSocket route.
	for _, m := range []string{"zz", "", strings.Repeat("ab", 65)} {
		resp, err := http.Get(tr.url() + "/v1/mailboxes/" + m)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusNotFound {
			t.Errorf("mailbox %q: %d", m, resp.StatusCode)
		}
	}
}

func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: 1, Burst: 3})
	c := tr.client()
	env := fakeEnvelope([]byte("m"), 1, 16)
	for i := range 3 {
		if err := c.Post(ctx, env); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	err := c.Post(ctx, env)
	wantStatus(t, err, http.StatusTooManyRequests)
	if se := err.(*client.StatusError); se.RetryAfter <= 0 {
		t.Errorf("429 without Retry-After")
	}
	// Every route is limited.
	_, _, err = c.FetchBundle(ctx, "bob", 1)
	wantStatus(t, err, http.StatusTooManyRequests)
	time.Sleep(1100 * time.Millisecond)
	if err := c.Post(ctx, env); err != nil {
		t.Fatalf("after a second: %v", err)
	}
}

func TestMailboxFull(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, MaxDepth: 3})
	c := tr.client()
	mbx := []byte("full")
	for i := range 3 {
		if err := c.Post(ctx, fakeEnvelope(mbx, byte(i), 16)); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Post(ctx, fakeEnvelope(mbx, 9, 16))
	wantStatus(t, err, http.StatusInsufficientStorage)
	if se := err.(*client.StatusError); se.Message != "mailbox full" || se.RetryAfter <= 0 {
		t.Errorf("507 says %q, Retry-After %v", se.Message, se.RetryAfter)
	}
	// Another mailbox is not affected.
	if err := c.Post(ctx, fakeEnvelope([]byte("other"), 9, 16)); err != nil {
		t.Fatal(err)
	}
	// Taking one out makes room for one.
	sub, err := c.Subscribe(ctx, mbx, tr.own(mbx))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, ok := next(t, sub, 10*time.Second)
	if !ok {
		t.Fatal("no delivery")
	}
	if err := sub.Ack(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.pending(mbx) != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Post(ctx, fakeEnvelope(mbx, 10, 16)); err != nil {
		t.Fatalf("after an ack: %v", err)
	}
	wantStatus(t, c.Post(ctx, fakeEnvelope(mbx, 11, 16)), http.StatusInsufficientStorage)
}

// TestDeliveryAndAcks checks that an envelope stays in the mailbox until
// acknowledged, that what a connection left unacknowledged comes back on
// the next, and that a repeated POST of the same bytes is stored once.
func TestDeliveryAndAcks(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("acks")
	var envs [][]byte
	for i := range 10 {
		envs = append(envs, fakeEnvelope(mbx, byte(i), 16+i))
		if err := c.Post(ctx, envs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Post(ctx, envs[0]); err != nil { // a retried POST
		t.Fatal(err)
	}
	if n := tr.pending(mbx); n != 10 {
		t.Fatalf("pending %d, want 10", n)
	}
	owner := tr.own(mbx)
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for i := range 10 {
		d, ok := next(t, sub, 10*time.Second)
		if !ok {
			t.Fatalf("delivery %d missing", i)
		}
		if !bytes.Equal(d.Envelope, envs[i]) {
			t.Fatalf("delivery %d is %x", i, d.Envelope[:20])
		}
		if i < 4 {
			if err := sub.Ack(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
			got[string(d.Envelope)] = true
		}
	}
	if _, ok := next(t, sub, 200*time.Millisecond); ok {
		t.Fatal("a delivery beyond the ten")
	}
	deadline := time.Now().Add(5 * time.Second)
	for tr.pending(mbx) != 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tr.pending(mbx); n != 6 {
		t.Fatalf("pending %d after 4 acks, want 6", n)
	}
	sub.Close()

	sub, err = c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var ids []uint64
	for i := range 6 {
		d, ok := next(t, sub, 10*time.Second)
		if !ok {
			t.Fatalf("redelivery %d missing", i)
		}
		if got[string(d.Envelope)] {
			t.Fatalf("an acknowledged envelope came back: %s", hex.EncodeToString(d.Envelope[:20]))
		}
		got[string(d.Envelope)] = true
		ids = append(ids, d.ID)
	}
	if err := sub.Ack(ctx, ids...); err != nil { // several ids in one frame
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for tr.pending(mbx) != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := tr.pending(mbx); n != 0 {
		t.Fatalf("pending %d after all acks", n)
	}
}

// TestLogsHoldNoBodies posts an envelope and a bundle blob with a
// recognisable body and checks the log has neither, in any encoding.
func TestLogsHoldNoBodies(t *testing.T) {
	ctx := context.Background()
	var buf syncBuffer
	tr := startRelay(t, server.Config{Rate: -1, Logger: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	c := tr.client()
	secret := []byte("SECRET-BODY-0123456789-SECRET-BODY")
	mbx := []byte("logcheck-mailbox")
	env := fakeEnvelope(mbx, 7, len(secret))
	copy(env[len(env)-len(secret):], secret)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBundle(ctx, uploadKey, "bob", 1, [][]byte{secret}, secret); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.FetchBundle(ctx, "bob", 1); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, mbx, tr.own(mbx))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := next(t, sub, 10*time.Second)
	sub.Ack(ctx, d.ID)
	sub.Close()
	tr.stop()
	log := buf.String()
	if !strings.Contains(log, `"status":202`) {
		t.Fatalf("the log has no request lines:\n%s", log)
	}
	for _, enc := range []string{string(secret), hex.EncodeToString(secret), "U0VDUkVU", "bob", hex.EncodeToString(mbx)} {
		if strings.Contains(log, enc) {
			t.Errorf("the log contains %q:\n%s", enc, log)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

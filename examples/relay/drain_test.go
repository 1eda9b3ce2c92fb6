package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/auth"
	"github.com/sealpost/sealpost/examples/relay/client"
)

// startRun runs the command on data with args, returning its address,
// the cancel that stands for SIGTERM and the channel of run's result.
func startRun(t *testing.T, data string, args ...string) (string, context.CancelFunc, <-chan error, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"-addr", "127.0.0.1:0", "-data", data, "-rate", "-1"}, args...)
	go func() { done <- run(ctx, args, logs, ready) }()
	select {
	case addr := <-ready:
		return addr, cancel, done, logs
	case err := <-done:
		cancel()
		t.Fatalf("run: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("the relay did not start")
	}
	return "", cancel, done, logs
}

// testEnvelope is a routing header and a 32-byte body; i makes it unique.
func testEnvelope(mailbox []byte, i int) []byte {
	env := []byte{envelope.Version, byte(len(mailbox))}
	env = append(env, mailbox...)
	env = binary.BigEndian.AppendUint64(env, uint64(i))
	env = append(env, make([]byte, 8)...)
	env = append(env, 0, 0, 32)
	return append(env, make([]byte, 32)...)
}

// TestDrain sends SIGTERM (the context) to a relay with a mailbox
// WebSocket open and posts in flight: readyz turns 503 during
// -drain-delay, the WebSocket is closed by the relay, run returns nil
// within -drain-timeout, and after a restart on the same data folder
// every envelope that was answered 202 is delivered: a post either was
// accepted and kept, or got an error.
func TestDrain(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	addr, sigterm, done, logs := startRun(t, data, "-drain-delay", "300ms", "-drain-timeout", "10s")
	c := client.New("http://" + addr)
	mbx := []byte("drain-mailbox")
	owner, err := client.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterMailbox(ctx, mbx, owner); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	// Posters post until the relay has stopped, recording each 202.
	var mu sync.Mutex
	accepted := map[string]bool{}
	refused := 0
	stopPosting := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; ; i += 4 {
				select {
				case <-stopPosting:
					return
				default:
				}
				env := testEnvelope(mbx, i)
				err := c.Post(ctx, env)
				mu.Lock()
				if err == nil {
					accepted[string(env)] = true
				} else {
					refused++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	sigterm()
	start := time.Now()

	// readyz is 503 at once, while requests are still served.
	saw503 := false
	for time.Since(start) < 250*time.Millisecond && !saw503 {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			break
		}
		resp.Body.Close()
		saw503 = resp.StatusCode == http.StatusServiceUnavailable
	}
	if !saw503 {
		t.Error("readyz did not answer 503 during the drain delay")
	}
	// The relay ends the WebSocket (going away; see consumers_test.go for
	// why coder/websocket may report EOF instead).
	for range sub.C() {
	}
	if code := websocket.CloseStatus(sub.Err()); code != websocket.StatusGoingAway {
		t.Logf("subscription ended with %v", sub.Err())
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the drain outlived its timeout")
	}
	took := time.Since(start)
	close(stopPosting)
	wg.Wait()
	mu.Lock()
	t.Logf("drained in %v: %d posts accepted, %d refused", took, len(accepted), refused)
	mu.Unlock()
	if len(accepted) == 0 {
		t.Fatal("no post was accepted before the drain")
	}

	addr, sigterm, done, logs = startRun(t, data)
	defer func() {
		sigterm()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, logs.String())
		}
	}()
	c = client.New("http://" + addr)
	sub2, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub2.Close()
	missing := len(accepted)
	deadline := time.After(10 * time.Second)
	for missing > 0 {
		select {
		case d, ok := <-sub2.C():
			if !ok {
				t.Fatalf("subscription ended: %v", sub2.Err())
			}
			if accepted[string(d.Envelope)] {
				delete(accepted, string(d.Envelope))
				missing--
			}
			// At most 256 are sent unacknowledged.
			if err := sub2.Ack(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatalf("%d accepted envelopes lost in the drain", missing)
		}
	}
	if err := sub2.Close(); err != nil && !errors.Is(err, context.Canceled) {
		t.Log(err)
	}
}

// TestDrainDeadline: a WebSocket client that never answers the close
// handshake cannot hold the stop past -drain-timeout; run reports the
// drain incomplete, and the data folder is intact (the embedded NATS was
// still shut down cleanly): a relay starts on it and serves the mailbox.
func TestDrainDeadline(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	addr, sigterm, done, logs := startRun(t, data, "-drain-timeout", "500ms")
	c := client.New("http://" + addr)
	mbx := []byte("stuck-client")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := client.ParseKey(priv.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterMailbox(ctx, mbx, owner); err != nil {
		t.Fatal(err)
	}
	env := testEnvelope(mbx, 1)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	// A raw WebSocket that is never read: the close frame is never
	// answered.
	h := http.Header{}
	h.Set(auth.Header, auth.Sign(priv, http.MethodGet, auth.MailboxResource(mbx), nil, time.Now()))
	conn, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/mailboxes/"+hex.EncodeToString(mbx), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	time.Sleep(100 * time.Millisecond) // the envelope is sent, unread
	start := time.Now()
	sigterm()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("run reported a complete drain with a connection stuck open\n%s", logs.String())
		}
		t.Logf("run: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the stop outlived -drain-timeout")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("stopping took %v with -drain-timeout 500ms", took)
	}
	if !strings.Contains(logs.String(), `"msg":"drain incomplete"`) {
		t.Errorf("no drain incomplete line:\n%s", logs.String())
	}

	addr, sigterm, done, logs = startRun(t, data)
	defer func() {
		sigterm()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, logs.String())
		}
	}()
	sub, err := client.New("http://"+addr).Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	select {
	case d := <-sub.C():
		if string(d.Envelope) != string(env) {
			t.Fatalf("delivered %x", d.Envelope)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unacknowledged envelope did not come back")
	}
}

package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/auth"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// testRelay runs a relay on a real loopback listener. restart stops it and
// starts it again on the same address and data folder.
type testRelay struct {
	t     testing.TB
	cfg   server.Config
	addr  string
	mu    sync.Mutex
	relay *server.Relay
	srv   *http.Server
	done  chan struct{}
}

func startRelay(t testing.TB, cfg server.Config) *testRelay {
	t.Helper()
	if cfg.DataDir == "" && cfg.NATSURL == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tr := &testRelay{t: t, cfg: cfg, addr: "127.0.0.1:0"}
	tr.start()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *testRelay) start() {
	tr.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := server.New(ctx, tr.cfg)
	if err != nil {
		tr.t.Fatalf("server.New: %v", err)
	}
	var ln net.Listener
	for i := 0; ; i++ { // the old listener's port may take a moment to free
		ln, err = net.Listen("tcp", tr.addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.Close()
		tr.t.Fatalf("listen: %v", err)
	}
	tr.mu.Lock()
	tr.addr = ln.Addr().String()
	tr.relay = r
	tr.srv = &http.Server{Handler: r.Handler(), ReadHeaderTimeout: 5 * time.Second}
	tr.done = make(chan struct{})
	srv, done := tr.srv, tr.done
	tr.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			tr.t.Errorf("serve: %v", err)
		}
	}()
}

func (tr *testRelay) stop() {
	tr.mu.Lock()
	srv, r, done := tr.srv, tr.relay, tr.done
	tr.srv, tr.relay = nil, nil
	tr.mu.Unlock()
	if srv == nil {
		return
	}
	// Shutdown lets requests in flight finish, but waits 5 s for
	// connections a client opened and sent nothing on yet: Close those.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if srv.Shutdown(ctx) != nil {
		srv.Close()
	}
	<-done
	if err := r.Close(); err != nil {
		tr.t.Errorf("relay Close: %v", err)
	}
}

func (tr *testRelay) restart() {
	tr.t.Helper()
	tr.stop()
	tr.start()
}

func (tr *testRelay) url() string { return "http://" + tr.addr }

func (tr *testRelay) client() *client.Client { return client.New(tr.url()) }

func (tr *testRelay) pending(mailbox []byte) uint64 {
	tr.t.Helper()
	tr.mu.Lock()
	r := tr.relay
	tr.mu.Unlock()
	n, err := r.Pending(context.Background(), mailbox)
	if err != nil {
		tr.t.Fatalf("Pending: %v", err)
	}
	return n
}

// fakeEnvelope is a well-formed routing header and a body of n bytes: all
// the relay checks.
func fakeEnvelope(mailbox []byte, tag byte, n int) []byte {
	env := []byte{envelope.Version, byte(len(mailbox))}
	env = append(env, mailbox...)
	for range 16 {
		env = append(env, tag)
	}
	env = append(env, byte(n>>16), byte(n>>8), byte(n)) // the body's length
	for i := range n {
		env = append(env, byte(i))
	}
	return env
}

// next waits for one delivery.
func next(t testing.TB, sub *client.Subscription, wait time.Duration) (client.Delivery, bool) {
	t.Helper()
	select {
	case d, ok := <-sub.C():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return d, true
	case <-time.After(wait):
		return client.Delivery{}, false
	}
}

// uploadKey signs every honest bundle upload of these tests (each test has
// a relay of its own, so one key for all devices is trusted on first use).
var uploadKey, uploadPriv = keyPair()

// keyPair returns a new client key and the same key for crypto/ed25519,
// for requests the tests sign themselves.
func keyPair() (*client.Key, ed25519.PrivateKey) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k, err := client.ParseKey(priv.Seed())
	if err != nil {
		panic(err)
	}
	return k, priv
}

func mustKey() *client.Key {
	k, _ := keyPair()
	return k
}

// signedRequest sends method path with body and the given Sealpost-Auth
// and Sealpost-Key values (left out when empty), returning the status
// and the JSON error message.
func signedRequest(t testing.TB, tr *testRelay, method, path string, body []byte, sig, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, tr.url()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if sig != "" {
		req.Header.Set(auth.Header, sig)
	}
	if key != "" {
		req.Header.Set(auth.KeyHeader, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error string `json:"error"`
	}
	raw, _ := io.ReadAll(resp.Body)
	// 426 is the WebSocket library's answer to a plain GET that passed the
	// relay's checks; every answer of the relay's own is JSON.
	if len(raw) > 0 && resp.StatusCode != http.StatusUpgradeRequired && json.Unmarshal(raw, &e) != nil {
		t.Errorf("%s %s: %d with a body that is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, e.Error
}

// own registers a fresh owner key for mailbox and returns it.
func (tr *testRelay) own(mailbox []byte) *client.Key {
	tr.t.Helper()
	k := mustKey()
	if err := tr.client().RegisterMailbox(context.Background(), mailbox, k); err != nil {
		tr.t.Fatalf("RegisterMailbox: %v", err)
	}
	return k
}

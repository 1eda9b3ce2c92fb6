package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/auth"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// consumers returns the number of consumers of the mailbox stream.
func (tr *testRelay) consumers() int {
	tr.t.Helper()
	tr.mu.Lock()
	r := tr.relay
	tr.mu.Unlock()
	n, err := r.MailboxConsumers(context.Background())
	if err != nil {
		tr.t.Fatalf("MailboxConsumers: %v", err)
	}
	return n
}

// waitConsumers waits until the mailbox stream has want consumers: a
// connection's consumer is deleted just after the connection ends, so a
// moment after the client saw it end.
func waitConsumers(t *testing.T, count func() int, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := count()
	for n != want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		n = count()
	}
	if n != want {
		t.Fatalf("%s: %d consumers, want %d (one per open connection)", what, n, want)
	}
}

// rawSubscribe opens the mailbox's WebSocket without the client package,
// so the test can end it in ways the client does not.
func rawSubscribe(t *testing.T, tr *testRelay, mbx []byte, owner *client.Key) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	hdr.Set(auth.Header, auth.Sign(ownerPriv(t, owner), http.MethodGet, auth.MailboxResource(mbx), nil, time.Now()))
	u := "ws://" + tr.addr + mailboxPath(mbx)
	conn, _, err := websocket.Dial(context.Background(), u, &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	return conn
}

// TestConsumersGoWithConnections opens and ends mailbox connections in a
// row, each way a connection can end, and checks that the stream's
// consumers follow the open connections: JetStream allows about 1,000
// consumers a stream, so consumers left to their idle expiry made the
// relay refuse (503) clients that reconnect often.
func TestConsumersGoWithConnections(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("consumers")
	owner := tr.own(mbx)
	env := fakeEnvelope(mbx, 1, 32)
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	held, err := c.Subscribe(ctx, mbx, owner)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := next(t, held, 10*time.Second); !ok {
		t.Fatal("no delivery")
	}
	waitConsumers(t, tr.consumers, 1, "one connection open")

	n := 100
	if testing.Short() {
		n = 30
	}
	for i := range n { // the client closes
		sub, err := c.Subscribe(ctx, mbx, owner)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if d, ok := next(t, sub, 10*time.Second); !ok || !bytes.Equal(d.Envelope, env) {
			t.Fatalf("connection %d: no delivery", i)
		}
		sub.Close()
	}
	waitConsumers(t, tr.consumers, 1, "after connections the client closed")

	for range 10 { // the client vanishes: TCP closed, no close frame
		conn := rawSubscribe(t, tr, mbx, owner)
		if _, _, err := conn.Read(ctx); err != nil {
			t.Fatal(err)
		}
		conn.CloseNow()
	}
	waitConsumers(t, tr.consumers, 1, "after connections dropped")

	for range 10 { // a malformed acknowledgement: the relay ends it
		conn := rawSubscribe(t, tr, mbx, owner)
		if err := conn.Write(ctx, websocket.MessageText, []byte("ack")); err != nil {
			t.Fatal(err)
		}
		for {
			if _, _, err := conn.Read(ctx); err != nil {
				break
			}
		}
		conn.CloseNow()
	}
	waitConsumers(t, tr.consumers, 1, "after bad acknowledgements")

	for range 10 { // signed, but no WebSocket upgrade: refused after the consumer was made
		sig := auth.Sign(ownerPriv(t, owner), http.MethodGet, auth.MailboxResource(mbx), nil, time.Now())
		if code, _ := signedRequest(t, tr, http.MethodGet, mailboxPath(mbx), nil, sig, ""); code != http.StatusUpgradeRequired {
			t.Fatalf("a plain GET: %d", code)
		}
	}
	waitConsumers(t, tr.consumers, 1, "after plain GETs")

	held.Close()
	waitConsumers(t, tr.consumers, 0, "every connection closed")
	if p := tr.pending(mbx); p != 1 {
		t.Errorf("pending %d, want the 1 envelope never acknowledged", p)
	}
}

// TestConsumersGoOnShutdown closes a relay with connections open, on an
// external NATS server that outlives it, and checks the relay deleted
// their consumers before it let go of NATS, and told each client it is
// going away (a close status, not a dropped TCP connection).
func TestConsumersGoOnShutdown(t *testing.T) {
	ctx := context.Background()
	ns, js := natsFor(t)
	count := func() int {
		s, err := js.Stream(ctx, server.MailboxStream)
		if err != nil {
			t.Fatal(err)
		}
		return s.CachedInfo().State.Consumers
	}

	tr := startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1})
	c := tr.client()
	mbx := []byte("shutdown")
	owner := tr.own(mbx)
	if err := c.Post(ctx, fakeEnvelope(mbx, 2, 32)); err != nil {
		t.Fatal(err)
	}
	subs := openDelivering(t, c, mbx, owner, 5)
	waitConsumers(t, count, 5, "five connections open")
	tr.stop()
	if n := count(); n != 0 {
		t.Errorf("%d consumers left after the relay closed", n)
	}
	// Every one should end with going away; coder/websocket's client now
	// and then reports EOF for a close frame it has answered (the relay's
	// side of the handshake completed), about one connection in 50 here,
	// so one is enough. Before the relay ended its reader's context last,
	// none did: each Read cancelled dropped the TCP connection.
	going := 0
	for i, sub := range subs {
		<-sub.C() // ended by the relay
		if err := sub.Err(); websocket.CloseStatus(err) == websocket.StatusGoingAway {
			going++
		} else {
			t.Logf("subscription %d ended with %v, not going away (1001)", i, err)
		}
		sub.Close()
	}
	if going == 0 {
		t.Errorf("no subscription ended with the close status going away (1001)")
	}
}

// TestQuickReconnects reads a mailbox over connections that each
// acknowledge a few envelopes, close and reconnect at once: every
// connection must deliver exactly the envelopes not yet acknowledged, in
// order, each once, and none acknowledged before may come back.
func TestQuickReconnects(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("reconnects")
	owner := tr.own(mbx)
	var left [][]byte
	for i := range 40 {
		env := fakeEnvelope(mbx, byte(i), 16+i)
		if err := c.Post(ctx, env); err != nil {
			t.Fatal(err)
		}
		left = append(left, env)
	}
	for round := 0; len(left) > 0; round++ {
		sub, err := c.Subscribe(ctx, mbx, owner)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var ids []uint64
		for i, want := range left {
			d, ok := next(t, sub, 10*time.Second)
			if !ok {
				t.Fatalf("round %d: delivery %d of %d missing", round, i, len(left))
			}
			if !bytes.Equal(d.Envelope, want) {
				t.Fatalf("round %d: delivery %d is envelope %d, want %d", round, i, d.Envelope[2+len(mbx)], want[2+len(mbx)])
			}
			ids = append(ids, d.ID)
		}
		if d, ok := next(t, sub, 50*time.Millisecond); ok {
			t.Fatalf("round %d: an extra delivery, envelope %d", round, d.Envelope[2+len(mbx)])
		}
		k := min(7, len(ids))
		if err := sub.Ack(ctx, ids[:k]...); err != nil {
			t.Fatal(err)
		}
		sub.Close() // returns after the relay answered the close, so after it handled the ack
		left = left[k:]
	}
	if p := tr.pending(mbx); p != 0 {
		t.Errorf("pending %d after every envelope was acknowledged", p)
	}
	waitConsumers(t, tr.consumers, 0, "after the last connection")
}

// TestMaxConnections checks Config.MaxConnections: the mailbox stream's
// consumer limit, so the bound on mailbox connections open at once. Past
// it a read is 503 with Retry-After; closing one makes room; a restart
// with another value changes the limit of the existing stream.
func TestMaxConnections(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1, MaxConnections: 3})
	c := tr.client()
	mbx := []byte("max-connections")
	owner := tr.own(mbx)
	if err := c.Post(ctx, fakeEnvelope(mbx, 1, 32)); err != nil {
		t.Fatal(err)
	}
	open := func(n int) []*client.Subscription {
		t.Helper()
		var subs []*client.Subscription
		for i := range n {
			sub, err := c.Subscribe(ctx, mbx, owner)
			if err != nil {
				t.Fatalf("connection %d: %v", i+1, err)
			}
			if _, ok := next(t, sub, 10*time.Second); !ok {
				t.Fatalf("connection %d: no delivery", i+1)
			}
			subs = append(subs, sub)
		}
		return subs
	}
	refused := func(what string) {
		t.Helper()
		_, err := c.Subscribe(ctx, mbx, owner)
		var se *client.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusServiceUnavailable || se.RetryAfter == 0 {
			t.Fatalf("%s: %v, want 503 with Retry-After", what, err)
		}
	}
	subs := open(3)
	refused("a fourth connection")
	subs[0].Close()
	waitConsumers(t, tr.consumers, 2, "after closing one of three")
	subs = append(subs[1:], open(1)...)
	refused("a fourth connection again")
	for _, sub := range subs {
		sub.Close()
	}

	tr.cfg.MaxConnections = 5
	tr.restart()
	c = tr.client()
	subs = open(5)
	refused("a sixth connection after the restart with 5")
	for _, sub := range subs {
		sub.Close()
	}
}

// TestStalledReaderReadAhead fills a mailbox with large envelopes and
// opens it with a client that reads one and then nothing: the relay may
// hold what the TCP buffers take plus a bounded read-ahead, not 256
// envelopes (64 MiB of them at envelope.MaxSize) per stalled connection.
func TestStalledReaderReadAhead(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("stalled")
	owner := tr.own(mbx)
	const n, size = 300, 240 << 10
	for i := range n {
		env := fakeEnvelope(mbx, byte(i), size)
		env[len(env)-1], env[len(env)-2] = byte(i), byte(i>>8)
		if err := c.Post(ctx, env); err != nil {
			t.Fatal(err)
		}
	}
	conn := rawSubscribe(t, tr, mbx, owner)
	defer conn.CloseNow()
	if _, _, err := conn.Read(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the relay reads ahead and fills the socket buffers
	tr.mu.Lock()
	r := tr.relay
	tr.mu.Unlock()
	delivered, err := r.MailboxConsumerDelivered(ctx)
	if err != nil || len(delivered) != 1 {
		t.Fatalf("consumers: %v, %v", delivered, err)
	}
	// Loopback socket buffers hold a few MiB, some 10 to 40 envelopes of
	// this size; the read-ahead adds at most 1 MiB, 4 more.
	t.Logf("JetStream sent the relay %d of %d envelopes of %d KiB for a client that read one", delivered[0], n, size>>10)
	if delivered[0] > 100 {
		t.Errorf("the relay took %d envelopes (%d MiB) for a client that read one", delivered[0], delivered[0]*size>>20)
	}
}

// TestLargestEnvelopeDelivered: the read-ahead bound is in bytes, and an
// envelope of envelope.MaxSize must still fit it.
func TestLargestEnvelopeDelivered(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("largest")
	env := fakeEnvelope(mbx, 1, 0)
	env = fakeEnvelope(mbx, 1, envelope.MaxSize-len(env))
	if err := c.Post(ctx, env); err != nil {
		t.Fatal(err)
	}
	sub, err := c.Subscribe(ctx, mbx, tr.own(mbx))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	d, ok := next(t, sub, 10*time.Second)
	if !ok || !bytes.Equal(d.Envelope, env) {
		t.Fatalf("the %d-byte envelope was not delivered", len(env))
	}
}

// TestConnectionMemory opens 100 mailbox connections and checks what each
// costs the process (relay, embedded NATS and the test's own client): a
// frame buffer of envelope.MaxSize per connection, or a read-ahead buffer
// sized for a million messages (PullMaxBytes alone), would each show.
func TestConnectionMemory(t *testing.T) {
	ctx := context.Background()
	tr := startRelay(t, server.Config{Rate: -1})
	c := tr.client()
	mbx := []byte("memory")
	owner := tr.own(mbx)
	if err := c.Post(ctx, fakeEnvelope(mbx, 1, 1024)); err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	const n = 100
	before := heap()
	subs := openDelivering(t, c, mbx, owner, n)
	per := (int64(heap()) - int64(before)) / n
	for _, sub := range subs {
		sub.Close()
	}
	t.Logf("%d KiB of heap a connection", per>>10)
	if per > 200<<10 {
		t.Errorf("each open connection costs %d KiB of heap, want under 200", per>>10)
	}
}

// TestMaxConnectionsOnOldStream starts a relay on a NATS whose mailbox
// stream an older relay made, without a consumer limit (JetStream's
// default of 1,000 then applies): the relay must update it, not fail.
func TestMaxConnectionsOnOldStream(t *testing.T) {
	ctx := context.Background()
	ns, js := natsFor(t)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: server.MailboxStream, Subjects: []string{"mbx.*"},
		Storage: jetstream.FileStorage, MaxMsgsPerSubject: server.DefaultMaxDepth, Discard: jetstream.DiscardNew,
		DiscardNewPerSubject: true})
	if err != nil {
		t.Fatal(err)
	}
	startRelay(t, server.Config{NATSURL: ns.ClientURL(), Rate: -1})
	s, err := js.Stream(ctx, server.MailboxStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.MaxConsumers; got != server.DefaultMaxConnections {
		t.Errorf("the mailbox stream's MaxConsumers is %d, want %d", got, server.DefaultMaxConnections)
	}
}

// openDelivering opens n subscriptions to mbx and waits for a delivery on
// each (the mailbox holds an envelope), so that each has its consumer.
func openDelivering(t *testing.T, c *client.Client, mbx []byte, owner *client.Key, n int) []*client.Subscription {
	t.Helper()
	var subs []*client.Subscription
	for range n {
		sub, err := c.Subscribe(context.Background(), mbx, owner)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := next(t, sub, 10*time.Second); !ok {
			t.Fatal("no delivery")
		}
		subs = append(subs, sub)
	}
	return subs
}

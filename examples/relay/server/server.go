// Package server is the sealpost relay: an HTTP and WebSocket server that
// stores bundle blobs and routes envelopes into mailboxes on NATS
// JetStream, reading nothing but the routing header (envelope.Parse). It
// imports no other sealpost package and holds no key (a test checks the
// imports), so a relay compelled to hand over everything it holds hands
// over routing metadata only.
//
// # HTTP API
//
//	PUT  /v1/bundles/{user}/{device}   replace the device's bundle blobs (signed: upload key)
//	POST /v1/bundles/{user}/{device}   add one-time blobs, optionally a new last resort (signed: upload key)
//	GET  /v1/bundles/{user}/{device}   take one blob: each one-time blob once, then the last resort
//	POST /v1/envelopes                 store an envelope in its recipient's mailbox
//	POST /v1/envelopes/batch           store envelopes sent back to back, each in its mailbox (a fan-out)
//	PUT  /v1/accounts/{user}/devices   store the account's newest device list (signed by the account key)
//	GET  /v1/accounts/{user}/devices   the account's newest device list
//	PUT  /v1/mailboxes/{mailbox}/owner register the mailbox's owner key, the body (signed by it)
//	GET  /v1/mailboxes/{mailbox}       WebSocket: receive the mailbox's envelopes, acknowledging each (signed: owner key)
//	DELETE /v1/mailboxes/{mailbox}     remove every envelope waiting (signed: owner key)
//	POST /v1/blobs                     reserve a blob of Upload-Length bytes (see "Blobs")
//	HEAD /v1/blobs/{id}/upload         the blob's Upload-Offset (upload token)
//	PATCH /v1/blobs/{id}/upload        store the body at Upload-Offset (upload token)
//	GET  /v1/blobs/{id}                the blob, or a Range of it (download token)
//	GET  /healthz                      200 when NATS is connected
//	GET  /livez                        200 while the process serves HTTP
//	GET  /readyz                       200 when NATS and every stream answer; 503 while draining
//	GET  /metrics                      Prometheus text format (metrics.go)
//
// Bundle requests carry JSON, {"one_time": [base64...], "last_resort":
// base64}: the blobs of keys.Bundle.Split, the last one being the last
// resort. The relay never parses a blob. GET answers with the blob's bytes
// and a Sealpost-Bundle header, "one-time" or "last-resort".
//
// POST /v1/envelopes takes the raw envelope as the body and answers 202
// once JetStream has stored it (with the stream's replication), so a 202
// means it survives a relay restart. Errors are JSON {"error": "..."}:
// 400 for an envelope envelope.Parse refuses, 413 over envelope.MaxSize,
// 429 over the per-IP request rate (with Retry-After), 507 when the
// mailbox holds MaxDepth envelopes already, 503 when NATS is unavailable.
// POST /v1/envelopes/batch takes up to MaxBatchEnvelopes envelopes back
// to back and parses all before it stores any (see postBatch).
//
// Device lists (docs/SPEC.md section 22) are stored opaquely, the newest
// of each account in DeviceListBucket: the relay checks only that a list
// is signed by the account key it names, that this is the key of the
// account's first list and that its version grows (see devicelists.go).
//
// # Ownership
//
// Reading a mailbox (and so acknowledging, which deletes) and deleting
// need a Sealpost-Auth header signed by the owner key the mailbox was
// first registered with; a bundle upload needs one signed by the key in
// its Sealpost-Key header, which must be the key of the device's first
// upload. The signed bytes (examples/relay/auth) are a fixed context
// string, the method, the mailbox or device, a Unix timestamp within
// auth.Window of the relay's clock, a random nonce and the SHA-256 of the
// body; a signature seen before (SeenBucket) is refused. The keys are kept
// in OwnerBucket, public keys only. 400 is a malformed header, 401 a
// missing, stale or replayed signature, 403 another key's, 409 a second
// registration of a mailbox with another key. The byte format, and why
// timestamps rather than challenges, are in examples/relay/README.md.
//
// # Delivery
//
// The mailbox is the hex of the mailbox id. The server sends each
// envelope as one binary message, an 8-byte big-endian delivery id
// followed by the envelope; the client acknowledges with a binary message
// of one or more 8-byte delivery ids once it has handled them (for a
// sealpost.Device: after Receive returned). Only then is the envelope
// removed. At most 256 envelopes are outstanding on a connection.
// Envelopes not acknowledged when a connection ends are delivered again on
// the next one, so a client sees an envelope more than once after a crash,
// a reconnect or a relay restart (a Device reports a repeat as Redelivered
// or ErrDuplicate); two connections to one mailbox both receive everything.
//
// Ack confirmations (optional, negotiated): a client that opens the
// WebSocket with the query confirm=1 (ConfirmQuery) is answered, on the
// upgrade, with the header Sealpost-Ack-Confirm: 1 (ConfirmHeader), and
// then gets, after each acknowledgement message, a text message
// {"confirmed":[id,...]} (AckConfirmation) naming the ids of it whose
// envelopes are deleted for good (DeleteMsg returned, or the envelope was
// gone already). An id whose delete failed is not named and stays
// outstanding: the client acknowledges it again (client.Subscription
// re-sends after AckRetry), and if it does not, the envelope is delivered
// again on the next connection. An id the connection gave that is no
// longer outstanding was deleted by an earlier acknowledgement and is
// confirmed again. Without the query nothing changes (an
// older client never sees a text message); an older relay answers without
// the header, and the client then expects no confirmation. Delivery ids
// are per connection: an acknowledgement is only ever re-sent on the
// connection that delivered the id.
//
// Stalls: a connection that delivered nothing for StallTimeout (flag
// -stall-timeout, 5 s) while its mailbox holds an envelope stored after
// the last one it delivered is stalled (an ordered consumer whose reset
// never fired after a NATS node died); the relay checks every
// min(StallTimeout/2, 2 s) while the connection waits, one request (the
// mailbox subject's last message) per StallTimeout of an idle connection,
// and replaces the connection's consumer by one that starts after the last
// envelope delivered (sealpost_relay_delivery_stalls_total).
//
// # Storage on JetStream
//
// Mailboxes are one stream, SEALPOST_MAILBOXES, with a subject per mailbox
// (mbx.<hex mailbox>), file storage and limits retention: an envelope stays
// until a client acknowledges it (the relay then deletes it by sequence
// number, DeleteMsg, which returns once JetStream has removed it) or until
// MaxAge. Each connection reads its mailbox through an ordered consumer,
// which holds no acknowledgement state: nothing can be stuck "delivered"
// to a connection, relay or NATS server that is gone, and a restarted or
// different relay simply reads the mailbox again. The relay deletes the
// consumer when the connection ends (one that a crashed relay left behind
// expires after consumerIdle); the stream's MaxConsumers, MaxConnections,
// bounds the connections open at once. One stream rather than a
// stream per mailbox keeps JetStream's per-stream cost (files, goroutines,
// a raft group in a cluster) independent of the number of users;
// per-subject limits still give each mailbox its own depth bound
// (MaxMsgsPerSubject with DiscardNewPerSubject: a full mailbox refuses new
// envelopes instead of dropping old ones). Bundle blobs are a second
// stream, SEALPOST_BUNDLES: bnd.<hex user>.<device>.ot holds one message
// per one-time blob, taken by reading the first and deleting it (a delete
// that fails means another relay took it first, so the next is tried),
// and bnd.<hex user>.<device>.lr the last resort.
//
// # Blobs
//
// Attachments (envelope/attach) are stored as opaque encrypted blobs. POST
// /v1/blobs with an Upload-Length header reserves one (201, JSON
// BlobCreated: a random 128-bit id, and a 256-bit upload token and download
// token, each handed out once and kept only as its SHA-256), or refuses it
// with 413 over BlobMaxSize. Every other request names the id in the path
// and carries its token as "Authorization: Bearer <token>"; a wrong token,
// an unknown id and an expired blob are the same 404, and nothing lists
// blobs. Uploads follow tus.io's core protocol: PATCH streams the body in
// at Upload-Offset (409 with the right Upload-Offset if it is not the
// blob's), HEAD returns Upload-Offset. GET serves a complete blob (409
// before), with one byte range if asked (206, Content-Range; 416 if
// unsatisfiable).
//
// A blob lives in BlobPartBucket, a NATS object store, as parts of
// BlobPartSize bytes named "<id>.<part>", each stored as it arrives. The
// object store cannot append, so a part is the unit of resumption: a PATCH
// whose body ends inside a part (a dropped connection) keeps the whole
// parts before it, and its client resumes from the Upload-Offset the
// relay reports. A range request starts at the part that holds its first
// byte. Neither ever holds more than a read buffer in memory. The record
// of a blob (size, part size, bytes stored, expiry, token hashes) is a key
// of BlobRecordBucket, a NATS key-value bucket; both expire after
// BlobMaxAge (the record's expiry is checked on every request, and NATS
// removes the data). No name, type or owner is stored.
//
// # What is logged
//
// One structured line per request: method, route pattern (not the path:
// no user names), status, size, duration (took_ms, in milliseconds; for a
// mailbox WebSocket, how long the connection lasted) and client address;
// mailbox ids appear shortened to 4 bytes. Envelope and blob bytes are
// never logged.
//
// # Operating
//
// /livez, /readyz and /metrics are for probes and scrapers (neither
// rate-limited nor logged); the metrics carry fixed labels only (route
// patterns, status classes, refusal reasons: metrics.go). StartDrain
// turns readyz to 503 and refuses new mailbox connections; Shutdown then
// closes the open ones with going away (1001) and stops NATS, within its
// context. examples/relay/README.md, "Operating the relay", lists every
// metric, the drain sequence and the backup procedure.
//
// # What is not here
//
// Bundles are not tied to device lists: anyone may still publish a
// bundle for a device number not used before, listed or not, fetch
// one-time blobs (each once) and post to any mailbox. Contents stay safe
// (bundles are signed; a replaced identity shows as a changed safety
// number), but put the relay behind the app's own authentication before
// using it for real.
package server

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/envelope"
)

// Defaults of Config, each with its reason.
const (
	// DefaultMaxDepth bounds the envelopes waiting in one mailbox: a
	// device offline for weeks in a busy conversation stays well under
	// it, and a sender cannot fill the relay's disk through one mailbox.
	DefaultMaxDepth = 10_000
	// DefaultRate and DefaultBurst are the per-IP token bucket: requests
	// per second and bucket size. A chat client posts a message and a
	// receipt batch now and then; a burst covers a reconnect catching up.
	DefaultRate  = 20
	DefaultBurst = 100
	// DefaultMaxAge drops envelopes nobody fetched for 30 days; zero
	// keeps them forever.
	DefaultMaxAge = 30 * 24 * time.Hour
	// MaxOneTimeBlobs bounds the one-time bundle blobs kept per device
	// (a Device hands out at most 100 one-time prekeys at once); adding
	// more drops the oldest. MaxBlobSize bounds one blob (a split bundle
	// is about 5 KB).
	MaxOneTimeBlobs = 100
	MaxBlobSize     = 16 << 10
	// maxBundleRequest bounds a bundle upload: every blob, base64.
	maxBundleRequest = (MaxOneTimeBlobs + 1) * MaxBlobSize * 4 / 3 * 11 / 10
	// maxInflight bounds the envelopes delivered on one connection and not
	// yet acknowledged.
	maxInflight = 256
	// DefaultMaxConnections bounds the mailbox connections open at once
	// on all the relays of one NATS: each reads through a JetStream
	// consumer of its own, and this is the mailbox stream's consumer limit
	// (JetStream's default, 1,000 a stream, would refuse the 1,001st
	// device online). An open connection costs the relay and an embedded
	// NATS about 70 KiB of heap (examples/relay/README.md, Reconnects).
	DefaultMaxConnections = 10_000
	// consumerIdle is how long JetStream keeps the consumer of a
	// connection that was not deleted: the relay deletes it when the
	// connection ends, so this is for a relay that crashed or lost NATS.
	consumerIdle = time.Minute
	// consumerTimeout bounds creating and deleting a connection's
	// consumer.
	consumerTimeout = 5 * time.Second
	// DefaultStallTimeout is how long a connection may go without
	// delivering while its mailbox holds envelopes it has not delivered
	// before the relay replaces its consumer (a stalled delivery: an
	// ordered consumer whose reset never fired after a NATS node died).
	DefaultStallTimeout = 5 * time.Second
	// maxStallCheck bounds the interval of a connection's stall checks.
	maxStallCheck = 2 * time.Second
)

// Stream names and subject prefixes on NATS.
const (
	MailboxStream = "SEALPOST_MAILBOXES"
	BundleStream  = "SEALPOST_BUNDLES"
	mailboxPrefix = "mbx."
	bundlePrefix  = "bnd."
)

// Config configures a Relay. The zero value runs an embedded NATS server
// with JetStream in DataDir with the defaults above.
type Config struct {
	// NATSURL is an external NATS server or cluster (nats://host:port,
	// comma-separated for several). Empty runs NATS embedded, in process.
	NATSURL string
	// DataDir is where the embedded NATS stores JetStream data. Required
	// without NATSURL.
	DataDir string
	// NATSListen, if set (host:port), makes the embedded NATS accept
	// outside connections too; by default it is reachable in process only.
	NATSListen string
	// SyncAlways makes the embedded NATS sync JetStream's files to disk
	// before it acknowledges each write, so a 202 survives an OS crash or
	// power loss, not only a crash of the relay. Without it nats-server
	// syncs every 2 minutes. Measured: BenchmarkRelayPost, about 10% fewer
	// envelopes/s with it (README, "What a 202 promises"). An external
	// NATS is configured on its own (sync_interval).
	SyncAlways bool
	// Replicas is the number of JetStream replicas of both streams (1, or
	// 3 on a cluster of three).
	Replicas int
	MaxDepth int           // envelopes per mailbox (DefaultMaxDepth)
	Rate     float64       // requests per second per client IP (DefaultRate); negative: no limit
	Burst    int           // token bucket size (DefaultBurst)
	MaxAge   time.Duration // DefaultMaxAge; negative: keep forever
	Logger   *slog.Logger  // slog.Default() when nil

	// MaxConnections bounds the mailbox WebSockets open at once across
	// every relay of the NATS (DefaultMaxConnections); past it a mailbox
	// read is answered 503. The last relay started sets it.
	MaxConnections int

	BlobMaxAge   time.Duration // how long a blob is kept (DefaultBlobMaxAge)
	BlobMaxSize  int64         // the largest blob accepted (DefaultBlobMaxSize)
	BlobPartSize int64         // the size of a blob's stored parts (DefaultBlobPartSize)

	// SeenMaxBytes bounds the set of signed requests seen in the replay
	// window (DefaultSeenMaxBytes).
	SeenMaxBytes int64

	// StallTimeout is how long a mailbox connection may deliver nothing
	// while its mailbox holds envelopes not delivered on it, before the
	// relay replaces the connection's consumer (DefaultStallTimeout);
	// negative: never checked.
	StallTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxAge < 0 {
		c.MaxAge = 0
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BlobMaxAge <= 0 {
		c.BlobMaxAge = DefaultBlobMaxAge
	}
	if c.BlobMaxSize <= 0 {
		c.BlobMaxSize = DefaultBlobMaxSize
	}
	if c.BlobPartSize <= 0 {
		c.BlobPartSize = DefaultBlobPartSize
	}
	if c.SeenMaxBytes <= 0 {
		c.SeenMaxBytes = DefaultSeenMaxBytes
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
}

// Relay is the server. Handler serves its API; Close stops it.
type Relay struct {
	cfg         Config
	log         *slog.Logger
	ns          *server.Server // the embedded server, or nil
	nc          *nats.Conn
	js          jetstream.JetStream
	mailbox     jetstream.Stream
	bundles     jetstream.Stream
	blobRecs    jetstream.KeyValue
	blobParts   jetstream.ObjectStore
	owners      jetstream.KeyValue // owner keys of mailboxes and bundles
	seen        jetstream.KeyValue // signed requests seen in the window
	devLists    jetstream.KeyValue // the newest device list of each account
	noAuth      bool               // benchmarks only (export_test.go)
	testStall   atomic.Bool        // tests only: the next delivery's consumer yields nothing (export_test.go)
	failDeletes atomic.Bool        // tests only: every DeleteMsg fails (export_test.go)
	limiter     *limiter
	mux         *http.ServeMux
	handler     http.Handler // mux, counted and logged
	metrics     *metrics
	draining    atomic.Bool     // set by StartDrain: readyz 503, no new mailbox connection
	readyAt     atomic.Int64    // UnixNano of readyz's last successful check (readyCache)
	ctx         context.Context // canceled by Close: ends every WebSocket
	cancel      context.CancelFunc
	connMu      sync.Mutex
	closing     bool
	conns       sync.WaitGroup
	closeErr    error
	once        sync.Once
}

// track counts a WebSocket connection unless the relay is closing.
func (r *Relay) track() bool {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	if r.closing {
		return false
	}
	r.conns.Add(1)
	return true
}

// New connects to NATS (starting the embedded server when cfg.NATSURL is
// empty), creates or updates the two streams, and returns the relay.
func New(ctx context.Context, cfg Config) (*Relay, error) {
	cfg.setDefaults()
	r := &Relay{cfg: cfg, log: cfg.Logger, limiter: newLimiter(cfg.Rate, cfg.Burst), metrics: newMetrics()}
	if err := r.connect(); err != nil {
		return nil, err
	}
	if err := r.setupStreams(ctx); err != nil {
		r.shutdownNATS()
		return nil, err
	}
	if err := r.setupBlobs(ctx); err != nil {
		r.shutdownNATS()
		return nil, err
	}
	if err := r.setupAuth(ctx); err != nil {
		r.shutdownNATS()
		return nil, err
	}
	if err := r.setupDeviceLists(ctx); err != nil {
		r.shutdownNATS()
		return nil, err
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.routes()
	return r, nil
}

func (r *Relay) connect() error {
	opts := []nats.Option{nats.Name("sealpost-relay"), nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			r.readyAt.Store(0) // readyz checks the streams again once reconnected
			if err != nil {
				r.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { r.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
		// Asynchronous errors (a slow consumer) go to the log, not to
		// stderr as nats.go's default handler prints them; the
		// subscription's subject is left out (an inbox, but in no case a
		// mailbox in the log).
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			r.log.Warn("nats asynchronous error", "err", err)
		}),
	}
	url := r.cfg.NATSURL
	if url == "" {
		if r.cfg.DataDir == "" {
			return errors.New("relay: no NATS URL and no data folder")
		}
		ns, err := startEmbedded(r.cfg.DataDir, r.cfg.NATSListen, r.cfg.SyncAlways)
		if err != nil {
			return err
		}
		r.ns = ns
		opts = append(opts, nats.InProcessServer(ns))
		r.log.Info("embedded nats started", "store", r.cfg.DataDir, "listen", r.cfg.NATSListen)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		r.shutdownNATS()
		return fmt.Errorf("relay: connecting to nats: %w", err)
	}
	r.nc = nc
	js, err := jetstream.New(nc)
	if err != nil {
		r.shutdownNATS()
		return err
	}
	r.js = js
	return nil
}

// startEmbedded runs nats-server with JetStream in this process.
func startEmbedded(dir, listen string, syncAlways bool) (*server.Server, error) {
	opts := &server.Options{ServerName: "sealpost-relay", JetStream: true, StoreDir: dir,
		NoSigs: true, NoLog: true, DontListen: listen == "", SyncAlways: syncAlways}
	if listen != "" {
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			return nil, fmt.Errorf("relay: -nats-listen: %w", err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("relay: -nats-listen port: %w", err)
		}
		opts.Host, opts.Port = host, p
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("relay: embedded nats: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("relay: embedded nats did not start")
	}
	return ns, nil
}

func (r *Relay) setupStreams(ctx context.Context) error {
	var err error
	r.mailbox, err = r.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:                 MailboxStream,
		Description:          "sealpost mailboxes: one subject per mailbox, an envelope per message",
		Subjects:             []string{mailboxPrefix + "*"},
		Retention:            jetstream.LimitsPolicy,
		Storage:              jetstream.FileStorage,
		Replicas:             r.cfg.Replicas,
		MaxMsgsPerSubject:    int64(r.cfg.MaxDepth),
		Discard:              jetstream.DiscardNew,
		DiscardNewPerSubject: true,
		MaxMsgSize:           envelope.MaxSize + 1024, // the envelope and the Nats-Msg-Id header
		MaxAge:               r.cfg.MaxAge,
		Duplicates:           2 * time.Minute,
		MaxConsumers:         r.cfg.MaxConnections,
	})
	if err != nil {
		return fmt.Errorf("relay: stream %s: %w", MailboxStream, err)
	}
	r.bundles, err = r.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              BundleStream,
		Description:       "sealpost bundle blobs: one-time ones to hand out once, and a last resort",
		Subjects:          []string{bundlePrefix + ">"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           jetstream.FileStorage,
		Replicas:          r.cfg.Replicas,
		MaxMsgsPerSubject: MaxOneTimeBlobs,
		MaxMsgSize:        MaxBlobSize,
	})
	if err != nil {
		return fmt.Errorf("relay: stream %s: %w", BundleStream, err)
	}
	return nil
}

// Pending returns the number of envelopes stored in a mailbox: delivered
// or not, but not yet acknowledged. It is for tests and operators: it asks
// JetStream for the stream's per-subject counts, which is not cheap.
func (r *Relay) Pending(ctx context.Context, mailbox []byte) (uint64, error) {
	subj := mailboxPrefix + hex.EncodeToString(mailbox)
	info, err := r.mailbox.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return 0, err
	}
	return info.State.Subjects[subj], nil
}

// Handler returns the relay's HTTP API, with /healthz, /livez, /readyz
// and /metrics.
func (r *Relay) Handler() http.Handler { return r.handler }

func (r *Relay) routes() {
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("PUT /v1/bundles/{user}/{device}", r.limited(r.putBundle))
	r.mux.HandleFunc("POST /v1/bundles/{user}/{device}", r.limited(r.addBundle))
	r.mux.HandleFunc("GET /v1/bundles/{user}/{device}", r.limited(r.getBundle))
	r.mux.HandleFunc("POST /v1/envelopes", r.limited(r.postEnvelope))
	r.mux.HandleFunc("POST /v1/envelopes/batch", r.limited(r.postBatch))
	r.mux.HandleFunc("PUT /v1/accounts/{user}/devices", r.limited(r.putDeviceList))
	r.mux.HandleFunc("GET /v1/accounts/{user}/devices", r.limited(r.getDeviceList))
	r.mux.HandleFunc("GET /v1/mailboxes/{mailbox}", r.limited(r.subscribe))
	r.mux.HandleFunc("PUT /v1/mailboxes/{mailbox}/owner", r.limited(r.registerMailbox))
	r.mux.HandleFunc("DELETE /v1/mailboxes/{mailbox}", r.limited(r.deleteMailbox))
	r.mux.HandleFunc("POST /v1/blobs", r.limited(r.createBlob))
	r.mux.HandleFunc("HEAD /v1/blobs/{id}/upload", r.limited(r.blobOffset))
	r.mux.HandleFunc("PATCH /v1/blobs/{id}/upload", r.limited(r.patchBlob))
	r.mux.HandleFunc("GET /v1/blobs/{id}", r.limited(r.getBlob))
	// healthz is as it always was: the NATS connection is up (a draining
	// relay still answers 200). Probes use livez and readyz.
	r.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.nc.IsConnected() {
			httpError(w, http.StatusServiceUnavailable, "nats not connected")
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	r.mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	r.mux.HandleFunc("GET /readyz", r.readyz)
	r.mux.HandleFunc("GET /metrics", r.serveMetrics)
	r.handler = http.HandlerFunc(r.serveHTTP)
}

// serveHTTP serves one request through the mux, counting it by route and
// status class (and its refusal by reason), and logging the API's.
func (r *Relay) serveHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	if req.Body != nil && req.Body != http.NoBody {
		sw.body, req.Body = req.Body, (*countedBody)(sw)
	}
	if r.draining.Load() {
		// A client on a kept-alive connection opens a new one for its
		// next request, which the load balancer sends elsewhere.
		sw.Header().Set("Connection", "close")
	}
	r.mux.ServeHTTP(sw, req)
	route := routeOf(req.Pattern)
	status := sw.status
	if status == 0 {
		status = http.StatusOK
	}
	r.metrics.request(route, status, sw.reason)
	r.metrics.bytesRead[route].Add(uint64(sw.in))
	r.metrics.bytesWritten[route].Add(uint64(sw.n))
	if !logged(route) {
		return
	}
	lvl := slog.LevelInfo
	if sw.status >= 500 {
		lvl = slog.LevelWarn
	}
	r.log.LogAttrs(req.Context(), lvl, "request", slog.String("method", req.Method),
		slog.String("route", req.Pattern), slog.Int("status", sw.status), slog.Int("bytes", sw.n),
		slog.Int64("in", req.ContentLength), tookMS(time.Since(start)), slog.String("ip", clientIP(req)))
}

// readyCache is how long a successful readiness check is reused: a probe
// every second from each of several load balancers costs JetStream seven
// stream lookups a second at most.
const readyCache = time.Second

// readyTimeout bounds readyz's JetStream requests.
const readyTimeout = 2 * time.Second

// readyz answers 200 when the relay can serve: not draining, NATS
// connected, and every stream and bucket it uses answering JetStream's
// info request (so a stream without a leader in a cluster is 503 too).
func (r *Relay) readyz(w http.ResponseWriter, req *http.Request) {
	if r.draining.Load() {
		refuse(w, reasonDraining)
		httpError(w, http.StatusServiceUnavailable, "draining")
		return
	}
	if !r.nc.IsConnected() {
		httpError(w, http.StatusServiceUnavailable, "nats not connected")
		return
	}
	if last := r.readyAt.Load(); last == 0 || time.Since(time.Unix(0, last)) > readyCache {
		ctx, cancel := context.WithTimeout(req.Context(), readyTimeout)
		defer cancel()
		for _, name := range r.streamNames() {
			if _, err := r.js.Stream(ctx, name); err != nil {
				r.log.Warn("readiness: stream unreachable", "stream", name, "err", err)
				httpError(w, http.StatusServiceUnavailable, "stream "+name+" unreachable")
				return
			}
		}
		r.readyAt.Store(time.Now().UnixNano())
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// streamNames are the JetStream streams behind the relay's streams,
// key-value buckets and object store.
func (r *Relay) streamNames() []string {
	return []string{MailboxStream, BundleStream, "KV_" + OwnerBucket, "KV_" + SeenBucket,
		"KV_" + DeviceListBucket, "KV_" + BlobRecordBucket, "OBJ_" + BlobPartBucket}
}

// StartDrain begins a graceful stop and returns at once: /readyz answers
// 503 from now on (so a load balancer stops sending), new mailbox
// connections are refused with 503 and every response asks the client to
// close its connection. Requests are still served; Shutdown ends the rest.
func (r *Relay) StartDrain() {
	if !r.draining.Swap(true) {
		r.log.Info("draining")
	}
}

// Close is Shutdown with no deadline.
func (r *Relay) Close() error { return r.Shutdown(context.Background()) }

// Shutdown stops the relay: it drains (StartDrain), ends every WebSocket
// connection with the close status going away (1001: reconnect, to any
// relay; their unacknowledged envelopes stay in the mailboxes) and waits
// for them to have deleted their consumers, then drains the NATS
// connection (flushing what it has buffered) and stops the embedded
// server, which writes JetStream's files out. Stop the HTTP server first
// (http.Server.Shutdown), so that requests in flight have finished.
//
// When ctx ends first, Shutdown stops waiting: connections still open
// are left to fail, the NATS connection is closed rather than drained,
// and the error says so. The embedded server is stopped cleanly either
// way. Calls after the first return the first's result.
func (r *Relay) Shutdown(ctx context.Context) error {
	r.once.Do(func() {
		r.StartDrain()
		r.connMu.Lock()
		r.closing = true
		r.connMu.Unlock()
		r.cancel()
		waited := make(chan struct{})
		go func() {
			r.conns.Wait()
			close(waited)
		}()
		select {
		case <-waited:
		case <-ctx.Done():
			select {
			case <-waited: // both ready: the connections did end
			default:
				r.closeErr = fmt.Errorf("relay: %d mailbox connections still open at the drain deadline",
					r.metrics.subscriptions.Load())
			}
		}
		if err := r.nc.Drain(); err != nil && r.closeErr == nil {
			r.closeErr = err
		}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for !r.nc.IsClosed() {
			select {
			case <-t.C:
			case <-ctx.Done():
				if r.closeErr == nil {
					r.closeErr = errors.New("relay: the NATS connection did not drain before the deadline")
				}
				r.nc.Close()
			}
		}
		r.shutdownNATS()
	})
	return r.closeErr
}

func (r *Relay) shutdownNATS() {
	if r.nc != nil {
		r.nc.Close()
	}
	if r.ns != nil {
		r.ns.Shutdown()
		r.ns.WaitForShutdown()
	}
}

// statusWriter records the status and size of a response for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
	n      int
	reason reason        // why a refusal was refused, if its handler said (refuse)
	body   io.ReadCloser // the request's body, read through countedBody
	in     int64         // bytes of it read
}

// countedBody is the request body of a statusWriter, counting what the
// handler reads (the same allocation as the writer).
type countedBody statusWriter

func (b *countedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.in += int64(n)
	return n, err
}

func (b *countedBody) Close() error { return b.body.Close() }

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += n
	return n, err
}

// Unwrap lets http.ResponseController and the WebSocket upgrade reach the
// underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// limited applies the per-IP rate limit.
func (r *Relay) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if ok, retry := r.limiter.allow(clientIP(req), time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+1)))
			httpError(w, http.StatusTooManyRequests, "rate limit")
			return
		}
		h(w, req)
	}
}

// tookMS is a request's duration as the attribute took_ms, milliseconds
// with microsecond resolution. slog.Duration would print integer
// nanoseconds with no unit in JSON (and "1.5ms" in text), so the unit is
// in the name and the same in both handlers.
func tookMS(d time.Duration) slog.Attr {
	return slog.Float64("took_ms", float64(d.Microseconds())/1000)
}

func clientIP(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

// httpError writes {"error": msg} with code.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

// readDeadline bounds how long a request body may take to arrive.
func readDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(30 * time.Second))
}

// short returns the first 4 bytes of a mailbox in hex, for logs.
func short(mailbox []byte) string {
	if len(mailbox) > 4 {
		mailbox = mailbox[:4]
	}
	return fmt.Sprintf("%x", mailbox)
}

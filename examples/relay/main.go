// Command relay is a sealpost relay: it stores bundle blobs and routes
// envelopes into mailboxes on NATS JetStream, reading only routing headers
// (see package server for the API and the storage layout).
//
// One relay, NATS embedded, data in ./relay-data:
//
//	go run ./relay -addr 127.0.0.1:8080 -data ./relay-data
//
// Several relays sharing a NATS cluster (each relay is stateless):
//
//	go run ./relay -addr :8081 -nats nats://10.0.0.1:4222,nats://10.0.0.2:4222 -replicas 3
//
// SIGTERM or SIGINT drains it (see run): /readyz turns 503 at once, the
// requests in flight finish, mailbox WebSockets are closed with going
// away (1001) so their clients reconnect elsewhere, and NATS is flushed
// and stopped, all within -drain-timeout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sealpost/sealpost/examples/relay/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "relay:", err)
		}
		os.Exit(2)
	}
}

// run serves until ctx ends. It sends the listening address on ready.
func run(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := flag.NewFlagSet("relay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen address")
	data := fs.String("data", "relay-data", "folder of the embedded NATS JetStream store (without -nats)")
	natsURL := fs.String("nats", "", "external NATS server or cluster, e.g. nats://127.0.0.1:4222 (default: embedded)")
	natsListen := fs.String("nats-listen", "", "let the embedded NATS accept connections on host:port too")
	syncAlways := fs.Bool("sync-always", false, "embedded NATS: sync to disk before acknowledging each write, so a 202 survives power loss (about 10% slower)")
	replicas := fs.Int("replicas", 1, "JetStream replicas of the streams (3 on a three-node cluster)")
	depth := fs.Int("max-depth", server.DefaultMaxDepth, "envelopes per mailbox")
	conns := fs.Int("max-connections", server.DefaultMaxConnections, "mailbox connections open at once on all relays of the NATS")
	rate := fs.Float64("rate", server.DefaultRate, "requests per second per client IP (negative: no limit)")
	burst := fs.Int("burst", server.DefaultBurst, "request burst per client IP")
	maxAge := fs.Duration("max-age", server.DefaultMaxAge, "drop envelopes not fetched for this long (negative: never)")
	blobAge := fs.Duration("blob-max-age", server.DefaultBlobMaxAge, "how long a blob is kept")
	blobSize := fs.Int64("blob-max-size", server.DefaultBlobMaxSize, "the largest blob accepted, in bytes")
	stall := fs.Duration("stall-timeout", server.DefaultStallTimeout, "replace a mailbox connection's consumer that delivered nothing this long while the mailbox held envelopes (negative: never)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	drainTimeout := fs.Duration("drain-timeout", 15*time.Second, "bound on a graceful stop after SIGTERM, -drain-delay included")
	drainDelay := fs.Duration("drain-delay", 0, "after SIGTERM, keep serving this long with /readyz at 503 before closing the listener (for a load balancer's probe interval)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg := server.Config{NATSURL: *natsURL, NATSListen: *natsListen, SyncAlways: *syncAlways, Replicas: *replicas,
		MaxDepth: *depth, MaxConnections: *conns, Rate: *rate, Burst: *burst, MaxAge: *maxAge, Logger: log,
		BlobMaxAge: *blobAge, BlobMaxSize: *blobSize, StallTimeout: *stall}
	if *natsURL == "" {
		if err := os.MkdirAll(*data, 0o700); err != nil {
			return err
		}
		cfg.DataDir = *data
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	relay, err := server.New(startCtx, cfg)
	cancel()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		relay.Close()
		return err
	}
	srv := &http.Server{Handler: relay.Handler(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("relay listening", "addr", ln.Addr().String())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down", "drain_timeout", drainTimeout.String())
	}
	if derr := drain(relay, srv, *drainDelay, *drainTimeout, log); derr != nil && err == nil {
		err = derr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// drain stops the relay gracefully, within timeout:
//
//  1. relay.StartDrain: /readyz answers 503 (a load balancer stops
//     sending), new mailbox WebSockets are refused with 503, and every
//     answer carries Connection: close;
//  2. for delay, requests are still served (the load balancer's probe
//     interval: what it still sends is not refused);
//  3. srv.Shutdown closes the listener and idle connections and waits for
//     the requests in flight (a POST answers 202 only once JetStream has
//     stored the envelope); at the deadline, srv.Close cuts what is left;
//  4. relay.Shutdown closes every mailbox WebSocket with going away
//     (1001), deletes their consumers, drains the NATS connection and
//     stops the embedded NATS server, which writes its files out.
func drain(relay *server.Relay, srv *http.Server, delay, timeout time.Duration, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	relay.StartDrain()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	var cut error
	if err := srv.Shutdown(ctx); err != nil {
		cut = fmt.Errorf("requests still in flight at the drain deadline: %w", err)
		log.Warn("closing the requests still in flight", "err", err)
		if cerr := srv.Close(); cerr != nil {
			log.Warn("closing the listener", "err", cerr)
		}
	}
	err := errors.Join(cut, relay.Shutdown(ctx))
	if err != nil {
		log.Warn("drain incomplete", "err", err)
	} else {
		log.Info("drained")
	}
	return err
}

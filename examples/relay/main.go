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
	replicas := fs.Int("replicas", 1, "JetStream replicas of the streams (3 on a three-node cluster)")
	depth := fs.Int("max-depth", server.DefaultMaxDepth, "envelopes per mailbox")
	conns := fs.Int("max-connections", server.DefaultMaxConnections, "mailbox connections open at once on all relays of the NATS")
	rate := fs.Float64("rate", server.DefaultRate, "requests per second per client IP (negative: no limit)")
	burst := fs.Int("burst", server.DefaultBurst, "request burst per client IP")
	maxAge := fs.Duration("max-age", server.DefaultMaxAge, "drop envelopes not fetched for this long (negative: never)")
	blobAge := fs.Duration("blob-max-age", server.DefaultBlobMaxAge, "how long a blob is kept")
	blobSize := fs.Int64("blob-max-size", server.DefaultBlobMaxSize, "the largest blob accepted, in bytes")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg := server.Config{NATSURL: *natsURL, NATSListen: *natsListen, Replicas: *replicas,
		MaxDepth: *depth, MaxConnections: *conns, Rate: *rate, Burst: *burst, MaxAge: *maxAge, Logger: log,
		BlobMaxAge: *blobAge, BlobMaxSize: *blobSize}
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
		log.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if cerr := relay.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// Command chat is a terminal sealpost client on a relay (examples/relay).
//
//	chat -relay http://127.0.0.1:8080 -me alice -store alice.db
//
// Type /help for the commands: /add a contact by fetching its bundle from
// the relay, /msg to send, /history to see the ticks (✓ sent, ✓✓
// delivered, ✓✓✓ read), /send to send a file and /save to keep one
// received, /read to send read receipts, /safety to compare safety numbers,
// /findings to list what the transcript noticed (gaps, drops, forks, a
// changed identity) and /rotate to give every conversation a new reply
// mailbox (mailboxes.go). Incoming messages show the time they arrived; the
// client says when it loses the relay and when it is back. The device's
// keys and sessions and the chat history live in one bbolt file (-store):
// the Device's records through boltstore, the history, contacts and the
// pointers of files (each with its file key) in buckets of their own.
//
// A file goes to the relay's blob store as an envelope/attach blob, padded
// and encrypted under a fresh key; the message carries its pointer. /save
// writes it to a temporary file beside the path and gives it the path only once
// every chunk and the digest checked out (see files.go).
//
// An incoming message is written to the history before the device is told
// it is handled (Done) and before the relay is told to delete it, and an
// outgoing envelope stays in the Device's outbox until the relay took it
// (Sent), so a crash loses neither.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/examples/boltstore"
	"github.com/sealpost/sealpost/examples/relay/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "chat:", err)
		}
		os.Exit(2)
	}
}

// clock is the time of the chat and its Device: time.Now, except in a
// test that moves it (a replaced reply mailbox expires after two weeks).
var clock = time.Now

// run is the whole program: it returns on /quit, at the end of in, or when
// ctx ends.
func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	relayURL := fs.String("relay", "http://127.0.0.1:8080", "relay base URL")
	me := fs.String("me", "", "your user name")
	device := fs.Uint("device", 1, "your device number")
	storePath := fs.String("store", "", "state file (bbolt); default <me>.db")
	rmin := fs.Duration("receipt-min", sealpost.DefaultReceiptDelayMin, "shortest random delay of a receipt")
	rmax := fs.Duration("receipt-max", sealpost.DefaultReceiptDelayMax, "longest random delay of a receipt")
	flushEvery := fs.Duration("flush", time.Second, "how often to send receipts that are due")
	oneTime := fs.Int("one-time", 10, "one-time prekeys to publish on the first start")
	maxFile := fs.Int64("max-file", defaultMaxFile, "the largest file /send uploads, in bytes")
	link := fs.Bool("link", false, "make no account: this device waits to be linked to yours (/link); the default for -device other than 1")
	rotate := fs.Duration("rotate", sealpost.DefaultMailboxRotation, "how long a conversation's reply mailbox is used before it is replaced")
	name := fs.String("name", "", "this device's name on your account's device list; default \"device <n>\"")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *me == "" {
		return errors.New("-me is required")
	}
	if *device > math.MaxUint32 {
		return errors.New("-device must fit in 32 bits")
	}
	if *name == "" {
		*name = fmt.Sprintf("device %d", *device)
	}
	if *storePath == "" {
		*storePath = *me + ".db"
	}
	store, err := boltstore.Open(*storePath)
	if err != nil {
		return err
	}
	defer store.Close()
	self := sealpost.Address{User: *me, Device: uint32(*device)}
	dev, err := sealpost.Open(ctx, store, self, sealpost.WithReceiptDelay(*rmin, *rmax), sealpost.WithReplyMailboxes(*rotate), sealpost.WithClock(clock))
	if err != nil {
		return err
	}
	h, err := openHistory(store.DB())
	if err != nil {
		return err
	}
	relay := client.New(*relayURL)
	a := &app{dev: dev, self: self, relay: relay, blobs: relay.Blobs(), maxFile: *maxFile, relayURL: *relayURL, hist: h,
		out: &printer{w: out}, kick: make(chan struct{}, 1), flushEvery: *flushEvery, now: clock,
		link: *link || *device != 1, deviceName: *name}
	return a.run(ctx, in, *oneTime)
}

package main

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/transcript"
)

// Reply mailboxes (docs/SPEC.md §15.13). The Device is opened with
// WithReplyMailboxes, so each conversation has a mailbox of ours with an
// owner key of its own, and after the first contact nothing of it goes to
// either side's published mailbox. The chat reads every mailbox
// Device.Mailboxes lists: one reader per mailbox (a WebSocket each: the
// relay has no way to read several over one), all feeding one receive
// loop, so the envelopes of every mailbox are one stream of Incoming.
//
// A mailbox is registered with the relay under its owner key before
// anything naming it is posted: the outbox loop syncs the set (registers
// and starts readers for new mailboxes, stops the ones that expired) after
// taking the outbox and before posting it, since a Send, SendUser, Flush
// or a receipt of a Receive may have made a reply mailbox that the
// envelopes carry. /rotate (RotateMailboxes) replaces them all; the
// replaced ones are read until their grace period ends. The relay is
// reported lost when a reader loses its connection (once) and back when
// every reader has one again.

// mailboxSet is the mailboxes being read, and whether the relay is lost.
type mailboxSet struct {
	syncing sync.Mutex // one sync at a time (the outbox loop, /rotate)
	mu      sync.Mutex
	readers map[string]*mailboxReader
	refused map[string]bool // registered with another key (409): not read
	down    map[string]bool // readers without a connection
	lost    bool            // "relay connection lost" is on screen
	wg      sync.WaitGroup  // the readers' goroutines
}

// mailboxReader reads one mailbox from the relay.
type mailboxReader struct {
	id        []byte
	key       *client.Key
	published bool
	cancel    context.CancelFunc
}

// burst is a delivery burst of one mailbox, handed to the receive loop;
// handled is closed once it is in the history, so the reader acknowledges.
type burst struct {
	ds      []client.Delivery
	handled chan struct{}
}

// registeredName is the meta key noting that mailbox is registered.
func registeredName(mailbox []byte, published bool) string {
	if published {
		return "registered.relay.owner." + hex.EncodeToString(mailbox)
	}
	return "registered.reply." + hex.EncodeToString(mailbox)
}

// registerMailbox registers key as the owner of mailbox at the relay
// (again, if it was: the relay accepts the same key) and notes that it did.
func (a *app) registerMailbox(ctx context.Context, mailbox []byte, key *client.Key, published bool) error {
	if err := a.relay.RegisterMailbox(ctx, mailbox, key); err != nil {
		return fmt.Errorf("registering the mailbox at the relay: %w", err)
	}
	return a.hist.setMeta(registeredName(mailbox, published), time.Now().UTC().Format(time.RFC3339))
}

// ownerKey is the relay key of one of the device's mailboxes.
func (a *app) ownerKey(m sealpost.Mailbox) (*client.Key, error) {
	if m.Owner == nil {
		return a.owner, nil
	}
	return client.ParseKey(m.Owner.Seed())
}

// syncMailboxes makes the mailboxes read the ones the Device lists: it
// registers each new one (unless it is noted as registered) and starts its
// reader, and stops the readers of mailboxes no longer listed (a replaced
// one past its grace period), deleting what waits in them. An error means
// a new mailbox is not registered: the caller posts nothing that may name
// it, and tries again later.
func (a *app) syncMailboxes(ctx context.Context) error {
	s := &a.boxes
	s.syncing.Lock()
	defer s.syncing.Unlock()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	want := make(map[string]bool)
	var failed error
	for _, m := range a.dev.Mailboxes() {
		want[string(m.ID)] = true
		s.mu.Lock()
		_, reading := s.readers[string(m.ID)]
		refused := s.refused[string(m.ID)]
		s.mu.Unlock()
		if reading || refused {
			continue
		}
		key, err := a.ownerKey(m)
		if err != nil {
			failed = cmp.Or(failed, err)
			continue
		}
		published := m.Owner == nil
		if a.hist.meta(registeredName(m.ID, published)) == "" {
			err := a.registerMailbox(ctx, m.ID, key, published)
			if client.IsStatus(err, http.StatusConflict) && !published {
				// Somebody registered this random id first: only the
				// relay could. Nothing of ours is read there; /rotate
				// gives the conversation another.
				a.out.printf("! the relay has mailbox %x registered to another key: it is not read; /rotate to replace it", m.ID[:4])
				s.mu.Lock()
				s.refused[string(m.ID)] = true
				s.mu.Unlock()
				continue
			}
			if err != nil {
				failed = cmp.Or(failed, err) // the others are read meanwhile
				continue
			}
		}
		rctx, cancel := context.WithCancel(ctx)
		r := &mailboxReader{id: m.ID, key: key, published: published, cancel: cancel}
		s.mu.Lock()
		s.readers[string(m.ID)] = r
		s.mu.Unlock()
		s.wg.Go(func() { a.readMailbox(rctx, r) })
	}
	var gone []*mailboxReader
	s.mu.Lock()
	for id, r := range s.readers {
		if !want[id] {
			gone = append(gone, r)
			delete(s.readers, id)
			delete(s.down, id)
		}
	}
	for id := range s.refused {
		if !want[id] {
			delete(s.refused, id)
		}
	}
	a.backIfUp()
	s.mu.Unlock()
	for _, r := range gone {
		r.cancel()
		// The Device refuses what is left there now: let the relay drop
		// it. Best effort: the relay's age limit removes it otherwise.
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = a.relay.DeleteMailbox(dctx, r.id, r.key) // best effort, as said
		cancel()
		if err := a.hist.deleteMeta(registeredName(r.id, r.published)); err != nil {
			a.out.printf("! %v", err)
		}
	}
	return failed
}

// forgetExpired removes the registration notes of reply mailboxes the
// Device no longer lists (they expired while the chat was not running).
func (a *app) forgetExpired() {
	listed := make(map[string]bool)
	for _, m := range a.dev.Mailboxes() {
		listed[registeredName(m.ID, m.Owner == nil)] = true
	}
	for _, k := range a.hist.metaKeys(registeredName(nil, false)) {
		if !listed[k] {
			if err := a.hist.deleteMeta(k); err != nil {
				a.out.printf("! %v", err)
			}
		}
	}
}

// stopReaders waits for every reader to end (their context ended).
func (a *app) stopReaders() {
	a.boxes.wg.Wait()
}

// readMailbox reads one mailbox from the relay, reconnecting with backoff,
// and hands each burst of deliveries to the receive loop; it acknowledges
// them once they are handled.
func (a *app) readMailbox(ctx context.Context, r *mailboxReader) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sub, err := a.relay.Subscribe(ctx, r.id, r.key)
		if client.IsStatus(err, http.StatusNotFound) {
			// The relay lost its records (a new data folder): register
			// the mailbox again (first use wins) and retry.
			if rerr := a.registerMailbox(ctx, r.id, r.key, r.published); rerr != nil {
				err = rerr
			}
		}
		if err != nil {
			// Over the relay's request rate (many mailboxes opening at
			// once, at a start): try again later; the relay is there.
			if !client.IsStatus(err, http.StatusTooManyRequests) {
				a.mailboxDown(ctx, r, fmt.Errorf("%s: %w", a.relayURL, err))
			}
			sleep(ctx, backoff+rand.N(backoff)) // the readers not in step

			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		a.mailboxUp(r)
		backoff = 100 * time.Millisecond
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case d, ok := <-sub.C():
				if !ok {
					break loop
				}
				// A backlog (after being offline) is received as one
				// batch: one store commit for all of it.
				batch := []client.Delivery{d}
			drain:
				for len(batch) < maxReceiveBatch {
					select {
					case d, ok := <-sub.C():
						if !ok {
							break drain
						}
						batch = append(batch, d)
					default:
						break drain
					}
				}
				b := burst{ds: batch, handled: make(chan struct{})}
				select {
				case a.bursts <- b:
				case <-ctx.Done():
					break loop
				}
				select {
				case <-b.handled:
				case <-ctx.Done():
					break loop
				}
				for _, d := range batch {
					if err := sub.Ack(ctx, d.ID); err != nil {
						break loop
					}
				}
			}
		}
		if ctx.Err() == nil {
			if err := sub.Err(); err != nil {
				a.mailboxDown(ctx, r, err)
			} else {
				a.mailboxDown(ctx, r, errors.New("the relay closed the mailbox"))
			}
		}
		_ = sub.Close() // reconnecting or stopping either way
	}
}

// mailboxDown notes that r has no connection, and says the relay is lost
// unless it said so already.
func (a *app) mailboxDown(ctx context.Context, r *mailboxReader, err error) {
	s := &a.boxes
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers[string(r.id)] != r || ctx.Err() != nil {
		return // stopped
	}
	s.down[string(r.id)] = true
	if !s.lost {
		a.out.printf("! relay connection lost (%v): reconnecting; messages wait in the outbox", err)
		s.lost = true
	}
}

// mailboxUp notes that r is connected; once every reader is, the relay is
// back.
func (a *app) mailboxUp(r *mailboxReader) {
	s := &a.boxes
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.down, string(r.id))
	a.backIfUp()
}

// backIfUp says the relay is back when it was lost and no reader is down;
// with a.boxes.mu held.
func (a *app) backIfUp() {
	if s := &a.boxes; s.lost && len(s.down) == 0 {
		a.out.printf("relay connection back")
		s.lost = false
	}
}

// receiveLoop receives the bursts of every mailbox reader, one at a time:
// one stream of Incoming, whatever mailbox an envelope came to.
func (a *app) receiveLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case b := <-a.bursts:
			if ctx.Err() != nil {
				return // not acknowledged: the relay delivers it again
			}
			a.handleAll(ctx, b.ds)
			close(b.handled)
			a.wake() // a receipt to send; the outbox loop syncs the mailboxes
		}
	}
}

// rotateCommand is /rotate: every conversation gets a new reply mailbox,
// registered and read at once; the peers learn it with the next content.
func (a *app) rotateCommand(ctx context.Context) {
	if err := a.dev.RotateMailboxes(ctx); err != nil {
		a.out.printf("! rotating the mailboxes: %v", err)
		return
	}
	if err := a.syncMailboxes(ctx); err != nil {
		a.out.printf("! %v (the outbox loop tries again before it posts)", err)
	}
	n, grace := 0, 0
	for _, m := range a.dev.Mailboxes() {
		switch {
		case m.Owner == nil:
		case m.Expires.IsZero():
			n++
		default:
			grace++
		}
	}
	a.out.printf("rotated the reply mailboxes: %d new, %d replaced one(s) still read for %d days", n, grace, sealpost.MailboxGrace/(24*time.Hour))
	a.wake()
}

// findingSettle is how long a gap or drop finding may take to close by
// itself before the chat shows it. Envelopes of one conversation arrive
// over several mailboxes around a rotation (the relay reads each over a
// connection of its own), so one sent later can come first: the gap it
// opens closes when the other arrives, and the peer's report of it (a
// drop) with the peer's next receipt.
const findingSettle = 5 * time.Second

// settling is a finding waiting to be shown.
type settling struct {
	peer sealpost.Address
	f    transcript.Finding
	due  time.Time
}

// settleLater shows f about peer in findingSettle if it is still open.
func (a *app) settleLater(peer sealpost.Address, f transcript.Finding) {
	a.settleMu.Lock()
	a.settling = append(a.settling, settling{peer: peer, f: f, due: time.Now().Add(findingSettle)})
	a.settleMu.Unlock()
}

// showSettled shows the gaps and drops due that are still open: those of
// the same kind and side whose range meets the one reported, once each.
func (a *app) showSettled() {
	now := time.Now()
	a.settleMu.Lock()
	var due []settling
	keep := a.settling[:0]
	for _, s := range a.settling {
		if now.Before(s.due) {
			keep = append(keep, s)
		} else {
			due = append(due, s)
		}
	}
	a.settling = keep
	a.settleMu.Unlock()
	shown := map[string]bool{}
	for _, s := range due {
		for _, f := range a.dev.Findings(s.peer) {
			key := fmt.Sprint(s.peer, f.Kind, f.Outgoing, f.Seq, f.ToSeq)
			if f.Kind == s.f.Kind && f.Outgoing == s.f.Outgoing && f.Seq <= s.f.ToSeq && s.f.Seq <= f.ToSeq && !shown[key] {
				shown[key] = true
				a.out.printf("! transcript finding with %s: %v", s.peer, f)
			}
		}
	}
}

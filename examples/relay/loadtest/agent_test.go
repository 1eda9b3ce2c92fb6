package loadtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

// Receipt timing of the honest devices: receipts leave 10 to 100 ms after
// the message arrived (instead of the default 1 to 30 s), so that every
// message's receipts come back within the test, and Flush runs every
// 100 ms.
const (
	receiptMin    = 10 * time.Millisecond
	receiptMax    = 100 * time.Millisecond
	flushInterval = 100 * time.Millisecond
	// maxFiller bounds the random filler after a message's 12-byte
	// header (send time and sequence number): short chat messages.
	maxFiller = 200
)

// localClient returns a relay client whose connections come from ip, a
// loopback address of its own: the relay rate-limits per client IP, and
// each simulated device is a separate client.
func localClient(baseURL string, ip net.IP) *client.Client {
	return client.NewWithHTTPClient(baseURL, localHTTP(ip))
}

func localHTTP(ip net.IP) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// deviceIP is the loopback address of honest device i: 127.1.x.y.
func deviceIP(i int) net.IP { return net.IPv4(127, 1, byte((i+1)>>8), byte(i+1)) }

// agent is one honest device: it sends paced messages to its peer,
// receives its mailbox, acknowledges each message as read, flushes
// receipts, and keeps what the checks need.
type agent struct {
	r    *run
	idx  int
	name string
	dev  *sealpost.Device
	c    *client.Client
	peer *agent
	// owner reads the device's mailbox; upload signs its bundle uploads.
	owner, upload *client.Key

	mu        sync.Mutex
	seq       uint32                       // messages sent so far
	sent      map[sealpost.MessageID]int64 // message id -> scheduled send time, ns after t0
	got       map[sealpost.MessageID]bool  // messages from the peer handed to the app
	gotSeq    map[uint32]bool              // their sequence numbers
	maxSeq    int64                        // highest sequence number received, -1 for none
	delivered map[sealpost.MessageID]bool  // own messages with a delivery receipt
	read      map[sealpost.MessageID]bool  // own messages with a read receipt
	latency   []int64                      // send to receive of each message received, ns
	receiptRT []int64                      // send to read receipt of each own message, ns
	online    chan struct{}                // closed while the mailbox may be connected
	sub       *client.Subscription         // the current mailbox connection
	refused   map[int]int64                // own posts refused, by status
	ready     chan struct{}                // closed once the device can send
	readyOnce sync.Once
}

func newAgent(r *run, idx int, dev *sealpost.Device, c *client.Client) *agent {
	on := make(chan struct{})
	close(on)
	return &agent{r: r, idx: idx, name: dev.Address().User, dev: dev, c: c, maxSeq: -1,
		sent: map[sealpost.MessageID]int64{}, got: map[sealpost.MessageID]bool{},
		gotSeq: map[uint32]bool{}, delivered: map[sealpost.MessageID]bool{},
		read: map[sealpost.MessageID]bool{}, online: on, refused: map[int]int64{},
		ready: make(chan struct{})}
}

func (a *agent) markReady() { a.readyOnce.Do(func() { close(a.ready) }) }

// publish uploads the device's bundle: one one-time blob and the last resort.
func (a *agent) publish(ctx context.Context) error {
	b, err := a.dev.NewBundle(ctx, 1)
	if err != nil {
		return err
	}
	var blobs [][]byte
	for _, part := range b.Split() {
		raw, err := part.MarshalBinary()
		if err != nil {
			return err
		}
		blobs = append(blobs, raw)
	}
	if a.owner == nil {
		if a.owner, err = client.NewKey(); err != nil {
			return err
		}
		if a.upload, err = client.NewKey(); err != nil {
			return err
		}
	}
	// The mailbox is registered before the bundle naming it is out.
	if err := a.c.RegisterMailbox(ctx, a.dev.Mailbox(), a.owner); err != nil {
		return err
	}
	addr := a.dev.Address()
	return a.c.PutBundle(ctx, a.upload, addr.User, addr.Device, blobs[:len(blobs)-1], blobs[len(blobs)-1])
}

// startSession fetches the peer's bundle from the relay and starts a session.
func startSession(ctx context.Context, c *client.Client, dev *sealpost.Device, peer sealpost.Address) error {
	blob, _, err := c.FetchBundle(ctx, peer.User, peer.Device)
	if err != nil {
		return err
	}
	b, err := keys.ParseBundle(blob)
	if err != nil {
		return err
	}
	return dev.StartSession(ctx, peer, b)
}

// post hands an honest envelope to the relay until it answers 202. It
// rides out relay restarts (connection errors, 503), the rate limit (429)
// and a full mailbox (507) with backoff; any other refusal is a failure.
// isMessage tells the counters whether this is a message or receipts.
func (a *agent) post(env []byte, isMessage bool) error {
	a.r.markHonest(env)
	ctx := a.r.ctx
	backoff := 10 * time.Millisecond
	for {
		err := a.c.Post(ctx, env)
		var se *client.StatusError
		wait := backoff
		switch {
		case err == nil:
			if isMessage {
				a.r.acceptedMsgs.Add(1)
			} else {
				a.r.acceptedReceipts.Add(1)
			}
			a.r.honestBytes.Add(int64(len(env)))
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &se):
			label := fmt.Sprint(se.Code)
			if se.Code == http.StatusInsufficientStorage && a.r.victim == a.peer {
				label += " (to the flooded mailbox)"
			}
			a.r.honestRefused.add(label, 1)
			a.mu.Lock()
			a.refused[se.Code]++
			a.mu.Unlock()
			switch se.Code {
			case http.StatusTooManyRequests:
				wait = max(wait, min(se.RetryAfter, time.Second))
			case http.StatusServiceUnavailable, http.StatusInsufficientStorage:
			default:
				a.r.fail("%s: the relay refused an honest envelope: %v", a.name, err)
				return err
			}
		default:
			a.r.honestRefused.add("connection error", 1)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// sendLoop sends messages to the peer at rate per second on average
// (exponential gaps, so the load is an open arrival process) until stop
// is closed. A message carries its scheduled send time: a sender that
// falls behind its schedule counts the lag in the latency.
func (a *agent) sendLoop(stop <-chan struct{}, rate float64, seed uint64) {
	ctx := a.r.ctx
	select {
	case <-a.ready:
	case <-stop:
		return
	case <-ctx.Done():
		return
	}
	rng := rand.New(rand.NewPCG(seed, uint64(a.idx)))
	next := time.Now() // the first message at once: it starts the peer's session
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		if a.sendOne(next, rng) != nil {
			return
		}
		next = next.Add(time.Duration(rng.ExpFloat64() / rate * float64(time.Second)))
	}
}

// sendOne sends one message scheduled at sched and posts it. It may run
// alongside sendLoop: each message gets its own sequence number.
func (a *agent) sendOne(sched time.Time, rng *rand.Rand) error {
	body := make([]byte, 12+rng.IntN(maxFiller+1))
	at := sched.Sub(a.r.t0).Nanoseconds()
	binary.BigEndian.PutUint64(body, uint64(at))
	a.mu.Lock()
	seq := a.seq
	a.seq++
	a.mu.Unlock()
	binary.BigEndian.PutUint32(body[8:], seq)
	o, err := a.dev.Send(a.r.ctx, a.peer.dev.Address(), body)
	if err != nil {
		a.r.fail("%s: Send: %v", a.name, err)
		return err
	}
	a.mu.Lock()
	a.sent[o.ID] = at
	a.mu.Unlock()
	if err := a.post(o.Envelope, true); err != nil {
		return err
	}
	return a.dev.Sent(a.r.ctx, o)
}

// flushLoop posts due receipts every flushInterval until ctx ends.
func (a *agent) flushLoop() {
	ctx := a.r.ctx
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		outs, err := a.dev.Flush(ctx)
		if err != nil {
			a.r.fail("%s: Flush: %v", a.name, err)
			return
		}
		for _, o := range outs {
			if a.post(o.Envelope, false) != nil {
				return
			}
		}
		if err := a.dev.Sent(ctx, outs...); err != nil {
			a.r.fail("%s: Sent: %v", a.name, err)
			return
		}
	}
}

// setOnline(false) takes the mailbox connection down and keeps it down
// (the device is offline); setOnline(true) lets it connect again.
func (a *agent) setOnline(on bool) {
	a.mu.Lock()
	var sub *client.Subscription
	if on {
		select {
		case <-a.online:
		default:
			close(a.online)
		}
	} else {
		a.online = make(chan struct{})
		sub, a.sub = a.sub, nil
	}
	a.mu.Unlock()
	if sub != nil {
		sub.Close()
	}
}

// receiveLoop keeps the mailbox connected while the device is online,
// handles each delivery and acknowledges it once handled. A connection
// that ends (a relay restart) is opened again.
func (a *agent) receiveLoop() {
	ctx := a.r.ctx
	backoff := 10 * time.Millisecond
	for ctx.Err() == nil {
		a.mu.Lock()
		on := a.online
		a.mu.Unlock()
		select {
		case <-on:
		case <-ctx.Done():
			return
		}
		sub, err := a.c.Subscribe(ctx, a.dev.Mailbox(), a.owner)
		if err != nil {
			a.r.subscribeErrors.Add(1)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		backoff = 10 * time.Millisecond
		a.mu.Lock()
		stillOn := a.online == on
		if stillOn {
			a.sub = sub
		}
		a.mu.Unlock()
		if !stillOn {
			sub.Close()
			continue
		}
		a.r.connections.Add(1)
	loop:
		for {
			select {
			case <-ctx.Done():
				break loop
			case d, ok := <-sub.C():
				if !ok || !a.handle(d.Envelope) {
					break loop
				}
				if sub.Ack(ctx, d.ID) != nil {
					break loop // not acknowledged: delivered again, ErrDuplicate then
				}
			}
		}
		sub.Close()
	}
}

// handle receives one delivery; false means a failure was reported. An
// envelope no honest device posted must be the bad client's: Receive must
// refuse it with a typed error (it is then dropped, as an app would).
func (a *agent) handle(env []byte) bool {
	ctx := a.r.ctx
	k := keyOf(env)
	honest := a.r.isHonest(k)
	a.r.deliveries.Add(1)
	in, err := a.dev.Receive(ctx, env)
	now := time.Since(a.r.t0).Nanoseconds()
	switch {
	case ctx.Err() != nil:
		return false
	case !honest:
		return a.r.badDelivery(a, k, err)
	case errors.Is(err, sealpost.ErrDuplicate):
		a.r.relayRepeats.Add(1) // handled before: the relay redelivered it
		return true
	case err != nil:
		a.r.fail("%s: Receive refused an honest envelope: %v", a.name, err)
		return false
	case in.Redelivered:
		a.r.appDuplicates.Add(1)
		a.r.fail("%s: %v %x handed to the app again (Redelivered)", a.name, in.Kind, in.ID)
		return false
	case in.From != a.peer.dev.Address():
		a.r.fail("%s: an envelope from %v, not from its peer", a.name, in.From)
		return false
	}
	for _, f := range in.Findings {
		// Gaps are open while envelopes arrive out of order (a resend
		// after a restart); anything else means the relay broke the
		// conversation.
		if f.Kind != transcript.Gap && f.Kind != transcript.Drop {
			a.r.fail("%s: transcript finding %v", a.name, f)
			return false
		}
	}
	a.mu.Lock()
	for _, id := range in.Delivered {
		a.delivered[id] = true
	}
	for _, id := range in.Read {
		if sched, ok := a.sent[id]; ok && !a.read[id] {
			a.receiptRT = append(a.receiptRT, now-sched)
		}
		a.read[id] = true
	}
	var dup string
	if in.Kind == sealpost.KindMessage {
		switch {
		case len(in.Body) < 12:
			dup = fmt.Sprintf("a message of %d bytes", len(in.Body))
		case a.got[in.ID]:
			dup = fmt.Sprintf("message %x handed to the app twice", in.ID)
		default:
			seq := binary.BigEndian.Uint32(in.Body[8:])
			if a.gotSeq[seq] {
				dup = fmt.Sprintf("message number %d handed to the app twice", seq)
			}
			a.got[in.ID] = true
			a.gotSeq[seq] = true
			a.maxSeq = max(a.maxSeq, int64(seq))
			a.latency = append(a.latency, now-int64(binary.BigEndian.Uint64(in.Body)))
		}
	}
	a.mu.Unlock()
	if dup != "" {
		a.r.appDuplicates.Add(1)
		a.r.fail("%s: %s", a.name, dup)
		return false
	}
	if in.Kind == sealpost.KindMessage {
		a.markReady() // a responder can send once it has heard from its peer
		if err := a.dev.Acknowledge(ctx, a.peer.dev.Address(), sealpost.KindRead, in.ID); err != nil {
			a.r.fail("%s: Acknowledge: %v", a.name, err)
			return false
		}
	}
	if err := a.dev.Done(ctx, in.ID); err != nil {
		a.r.fail("%s: Done: %v", a.name, err)
		return false
	}
	return true
}

// progress returns how many of the peer's messages arrived, how many of
// its own it sent, and of those how many have a delivery (or read) and a
// read receipt.
func (a *agent) progress() (got, sent, delivered, read int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id := range a.sent {
		if a.delivered[id] || a.read[id] {
			delivered++
		}
		if a.read[id] {
			read++
		}
	}
	return len(a.got), len(a.sent), delivered, read
}

// lost returns the own messages the peer never handed to its app.
func (a *agent) lost() int {
	a.mu.Lock()
	ids := make([]sealpost.MessageID, 0, len(a.sent))
	for id := range a.sent {
		ids = append(ids, id)
	}
	a.mu.Unlock()
	a.peer.mu.Lock()
	defer a.peer.mu.Unlock()
	n := 0
	for _, id := range ids {
		if !a.peer.got[id] {
			n++
		}
	}
	return n
}

func (a *agent) receivedSince(seq uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxSeq >= int64(seq)
}

func (a *agent) isReady() bool {
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

func (a *agent) sentCount() uint32 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seq
}

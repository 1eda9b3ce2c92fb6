package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sealpost/sealpost/envelope"
)

// Delivery framing on the WebSocket.
const (
	// DeliveryIDSize is the size of the delivery id before each envelope
	// and of each id in an acknowledgement.
	DeliveryIDSize = 8
	// MaxAckFrame bounds an acknowledgement message.
	MaxAckFrame = maxInflight * DeliveryIDSize
	// readAhead bounds the bytes of each pull of envelopes JetStream
	// sends a connection before pump has written them (at most
	// maxInflight envelopes a pull too): by count alone a client that
	// stopped reading held 256 envelopes, up to 64 MiB, in the relay. A
	// byte limit alone (PullMaxBytes) is no better: nats.go then asks
	// for a million messages and sizes the connection's buffer for them,
	// 8 MB each (TestConnectionMemory). It must exceed the stream's
	// MaxMsgSize, or a largest envelope would never be sent.
	readAhead = 1 << 20
)

// jsStoreFailed is JetStream's error code for a refused store, which a
// full mailbox (DiscardNewPerSubject) gives.
const jsStoreFailed = 10077

// postEnvelope stores an envelope in its mailbox and answers 202 once
// JetStream has stored it.
func (r *Relay) postEnvelope(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength > envelope.MaxSize {
		httpError(w, http.StatusRequestEntityTooLarge, "envelope over envelope.MaxSize")
		return
	}
	readDeadline(w)
	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, envelope.MaxSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "envelope over envelope.MaxSize")
		} else {
			httpError(w, http.StatusBadRequest, "reading the envelope failed")
		}
		return
	}
	h, err := envelope.Parse(raw)
	switch {
	case errors.Is(err, envelope.ErrTooLarge):
		httpError(w, http.StatusRequestEntityTooLarge, "envelope over envelope.MaxSize")
		return
	case errors.Is(err, envelope.ErrUnsupportedVersion):
		httpError(w, http.StatusBadRequest, "unsupported envelope version")
		return
	case err != nil:
		httpError(w, http.StatusBadRequest, "malformed envelope")
		return
	}
	if code, msg, why := r.storeEnvelope(req.Context(), h.Mailbox, raw); code != 0 {
		if code == http.StatusInsufficientStorage {
			w.Header().Set("Retry-After", "60")
		}
		refuse(w, why)
		httpError(w, code, msg)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// storeEnvelope publishes raw to its mailbox and returns once JetStream
// has stored it: code 0, or the status and message of a refusal (507 for
// a full mailbox or relay, 503 for NATS unavailable) and its reason,
// which it logs.
func (r *Relay) storeEnvelope(ctx context.Context, mailbox, raw []byte) (code int, msg string, why reason) {
	// The message id lets JetStream drop a retried POST of the same bytes
	// within its duplicate window.
	sum := sha256.Sum256(raw)
	start := time.Now()
	ack, err := r.js.Publish(ctx, mailboxPrefix+hex.EncodeToString(mailbox), raw,
		jetstream.WithMsgID(hex.EncodeToString(sum[:16])))
	r.metrics.publishLatency.observeSince(start)
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jsStoreFailed:
		r.log.Info("mailbox refused an envelope", "mailbox", short(mailbox), "reason", apiErr.Description)
		msg, why := "relay storage full", reasonStorageFull
		if strings.Contains(apiErr.Description, "per subject") {
			msg, why = "mailbox full", reasonMailboxFull
		}
		return http.StatusInsufficientStorage, msg, why
	case err != nil:
		r.log.Warn("storing an envelope", "err", err)
		return http.StatusServiceUnavailable, "storage unavailable", reasonNATSUnavailable
	}
	if !ack.Duplicate { // a retry JetStream dropped: stored once, counted once
		r.metrics.accepted.Add(1)
		r.metrics.bytesIn.Add(uint64(len(raw)))
	}
	return 0, "", reasonNone
}

// Batch limits: a fan-out to every device of a few accounts (8 devices
// each, keys.MaxDevices) fits in one batch.
const (
	// MaxBatchEnvelopes bounds the envelopes of one batch.
	MaxBatchEnvelopes = 64
	// MaxBatchSize bounds a batch's body: MaxBatchEnvelopes of the
	// largest envelope.
	MaxBatchSize = MaxBatchEnvelopes * envelope.MaxSize
)

// BatchRefusal is the JSON answer to a batch not wholly stored: the error
// and the indexes (from 0, in body order) of the envelopes not stored.
// The others were, and a retry of the whole batch within JetStream's
// duplicate window (2 minutes) stores none of them twice.
type BatchRefusal struct {
	Error   string `json:"error"`
	Refused []int  `json:"refused"`
}

// postBatch stores envelopes sent back to back (envelope.Next), each in
// its own mailbox, as postEnvelope stores one. The door is all or nothing:
// the whole body is read and every envelope parsed before any is stored
// (400 if one is damaged, naming it; 413 for a body over MaxBatchSize,
// more than MaxBatchEnvelopes or an envelope over envelope.MaxSize), and
// the batch takes one token of the client's rate limit per envelope
// (429 if the bucket holds fewer; limited took the first). Then each is
// published in turn: 202 once all are stored; a mailbox that is full
// refuses only its own envelopes, and the answer is then 507 with a
// BatchRefusal, or 503 if NATS failed (that envelope and every later one
// are refused).
func (r *Relay) postBatch(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength > MaxBatchSize {
		httpError(w, http.StatusRequestEntityTooLarge, "batch over "+strconv.Itoa(MaxBatchSize)+" bytes")
		return
	}
	readDeadline(w)
	raw, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBatchSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "batch over "+strconv.Itoa(MaxBatchSize)+" bytes")
		} else {
			httpError(w, http.StatusBadRequest, "reading the batch failed")
		}
		return
	}
	if len(raw) == 0 {
		httpError(w, http.StatusBadRequest, "empty batch")
		return
	}
	type item struct{ mailbox, raw []byte }
	var items []item
	for rest := raw; len(rest) > 0; {
		if len(items) == MaxBatchEnvelopes {
			httpError(w, http.StatusRequestEntityTooLarge, "batch of more than "+strconv.Itoa(MaxBatchEnvelopes)+" envelopes")
			return
		}
		h, _, next, err := envelope.Next(rest)
		i := strconv.Itoa(len(items))
		switch {
		case errors.Is(err, envelope.ErrTooLarge):
			httpError(w, http.StatusRequestEntityTooLarge, "envelope "+i+" over envelope.MaxSize")
			return
		case errors.Is(err, envelope.ErrUnsupportedVersion):
			httpError(w, http.StatusBadRequest, "envelope "+i+": unsupported envelope version")
			return
		case err != nil:
			httpError(w, http.StatusBadRequest, "envelope "+i+": malformed envelope")
			return
		}
		items = append(items, item{h.Mailbox, rest[:len(rest)-len(next)]})
		rest = next
	}
	if more := len(items) - 1; more > 0 && r.cfg.Rate >= 0 {
		if len(items) > r.cfg.Burst {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("batch of %d envelopes over the rate limit's burst of %d",
				len(items), r.cfg.Burst))
			return
		}
		if ok, retry := r.limiter.allowN(clientIP(req), time.Now(), more); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds()+1)))
			httpError(w, http.StatusTooManyRequests, "rate limit")
			return
		}
	}
	var refused []int
	code, msg, why := 0, "", reasonNone
	for i, it := range items {
		if code == http.StatusServiceUnavailable {
			refused = append(refused, i) // NATS failed: do not go on trying
			continue
		}
		c, m, y := r.storeEnvelope(req.Context(), it.mailbox, it.raw)
		if c == 0 {
			continue
		}
		refused = append(refused, i)
		if code == 0 || c == http.StatusServiceUnavailable {
			code, msg, why = c, m, y
		}
	}
	if code == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if code == http.StatusInsufficientStorage {
		w.Header().Set("Retry-After", "60")
	}
	refuse(w, why)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(BatchRefusal{Error: msg, Refused: refused}) // the client went away: nothing more to tell
}

// deleteMailbox removes every envelope of the mailbox, signed by its
// owner (a device retiring a mailbox). The owner record stays, so nobody
// else can register the id again.
func (r *Relay) deleteMailbox(w http.ResponseWriter, req *http.Request) {
	mailbox, ok := mailboxFromPath(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "mailbox must be 1 to 64 bytes in hex")
		return
	}
	if err := r.authorizeMailbox(req.Context(), req, mailbox, nil); err != nil {
		r.answer(w, "authorizing a mailbox delete", err)
		return
	}
	err := r.mailbox.Purge(req.Context(), jetstream.WithPurgeSubject(mailboxPrefix+hex.EncodeToString(mailbox)))
	if err != nil {
		r.storeError(w, "purging a mailbox", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subscribe upgrades to a WebSocket and delivers the mailbox's envelopes.
func (r *Relay) subscribe(w http.ResponseWriter, req *http.Request) {
	mailbox, ok := mailboxFromPath(req)
	if !ok {
		httpError(w, http.StatusBadRequest, "mailbox must be 1 to 64 bytes in hex")
		return
	}
	if r.draining.Load() {
		// Before the signature is checked: a retry elsewhere signs anew.
		refuse(w, reasonDraining)
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "relay draining: connect again")
		return
	}
	// Reading (and so acknowledging, which deletes) needs the owner's
	// signature of this GET; the upgrade is refused before anything is read.
	if err := r.authorizeMailbox(req.Context(), req, mailbox, nil); err != nil {
		r.answer(w, "authorizing a mailbox read", err)
		return
	}
	// Counted from here, so that Close waits for the consumer's deletion
	// too and drains NATS only after it.
	if !r.track() {
		refuse(w, reasonDraining)
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "relay shutting down")
		return
	}
	defer r.conns.Done()
	// An ordered consumer keeps no acknowledgement state: it reads what
	// the mailbox holds now and what arrives later. An envelope leaves the
	// mailbox only when the client acknowledges it (DeleteMsg), so what a
	// connection, a relay or NATS lost on the way is simply read again by
	// the next connection.
	// Not cancelled with the request: a creation cut short may still
	// create the consumer, with no name to delete it by.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), consumerTimeout)
	cons, err := r.mailbox.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{mailboxPrefix + hex.EncodeToString(mailbox)},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: consumerIdle,
	})
	cancel()
	if errors.Is(err, jetstream.ErrMaximumConsumersLimit) {
		r.log.Warn("mailbox connections at the limit", "max", r.cfg.MaxConnections)
		w.Header().Set("Retry-After", "10")
		refuse(w, reasonTooManyConnections)
		httpError(w, http.StatusServiceUnavailable, "too many mailbox connections open")
		return
	}
	if err != nil {
		r.storeError(w, "creating a mailbox consumer", err)
		return
	}
	// The consumer goes with the connection, whichever way it ends: the
	// stream allows MaxConnections consumers, and leaving each to its idle
	// expiry filled that with connections long gone, refusing clients that
	// reconnect often (examples/relay/README.md, Reconnects). The expiry
	// stays as the backstop for a relay that crashed.
	// The delivery may replace the consumer (a stalled one): the current
	// one is deleted.
	d := &delivery{relay: r, cons: cons, mailbox: short(mailbox), subject: mailboxPrefix + hex.EncodeToString(mailbox),
		inflight: map[uint64]uint64{}, slots: make(chan struct{}, maxInflight)}
	defer func() { r.deleteConsumer(d.cons) }()
	// A client that asks for ack confirmations (ConfirmQuery) is told the
	// relay sends them (ConfirmHeader): an older relay does not answer it,
	// and an older client does not ask, so neither sees a frame it does
	// not know.
	if req.URL.Query().Get(ConfirmQuery) == "1" {
		d.confirm = true
		w.Header().Set(ConfirmHeader, "1")
	}
	conn, err := websocket.Accept(w, req, nil)
	if err != nil {
		return // Accept has answered
	}
	d.conn = conn
	conn.SetReadLimit(MaxAckFrame)
	// The depth when the mailbox is opened: the new consumer's pending
	// count, which its creation answered already (no request more).
	if info := cons.CachedInfo(); info != nil {
		r.metrics.depth.observe(float64(info.NumPending))
	}
	r.metrics.subscriptions.Add(1)
	defer r.metrics.subscriptions.Add(-1)
	d.run(req.Context())
}

// deleteConsumer removes the connection's consumer from JetStream once
// nothing reads it any more (after pump stopped its iterator). An ordered
// consumer replaces its JetStream consumer when it resets, deleting the old
// one itself; CachedInfo names the current one. A failure is logged only:
// consumerIdle removes the consumer later.
func (r *Relay) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || !r.nc.IsConnected() {
		return // a request now would only wait for its timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), consumerTimeout)
	defer cancel()
	err := r.js.DeleteConsumer(ctx, MailboxStream, info.Name)
	if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.log.Warn("deleting a mailbox consumer failed", "err", err)
	}
}

// delivery is one WebSocket connection reading one mailbox.
type delivery struct {
	relay   *Relay
	conn    *websocket.Conn
	cons    jetstream.Consumer // replaced by pump when it stalls
	mailbox string             // shortened, for logs
	subject string
	confirm bool   // the client asked for ack confirmations
	lastSeq uint64 // stream sequence of the last envelope delivered (pump's)

	slots    chan struct{} // one per envelope sent and not yet acknowledged
	mu       sync.Mutex
	lastID   uint64            // the last delivery id given
	inflight map[uint64]uint64 // delivery id to stream sequence
	acked    int
}

func (d *delivery) run(reqCtx context.Context) {
	ctx, cancel := context.WithCancel(d.relay.ctx)
	defer cancel()
	stop := context.AfterFunc(reqCtx, cancel)
	defer stop()
	log := d.relay.log.With("mailbox", d.mailbox)
	log.Debug("subscriber connected")

	// The reader has a context of its own, ended only after the close
	// handshake: a Read whose context ends closes the connection at once
	// (coder/websocket), and the client would see the TCP connection drop
	// instead of the close status, going away (1001) when the relay stops.
	readCtx, stopRead := context.WithCancel(context.Background())
	defer stopRead()
	readDone := make(chan error, 1)
	go func() {
		readDone <- d.readAcks(readCtx)
		cancel()
	}()
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		d.keepAlive(ctx)
	}()
	sent, err := d.pump(ctx)
	cancel()
	<-pingDone

	// Going away (1001) when the relay stops: the client reconnects, and
	// the load balancer, which readyz has told, sends it to another relay.
	status, why := websocket.StatusNormalClosure, ""
	if d.relay.ctx.Err() != nil {
		status, why = websocket.StatusGoingAway, "relay stopping: reconnect"
	}
	d.conn.Close(status, why) // waits for the client's answer, at most 5 s
	stopRead()
	rerr := <-readDone
	d.mu.Lock()
	acked, pending := d.acked, len(d.inflight)
	d.mu.Unlock()
	log.Debug("subscriber gone", "sent", sent, "acked", acked, "unacked", pending,
		"send_err", errString(err), "read_err", errString(rerr))
}

func errString(err error) string {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		return ""
	}
	return err.Error()
}

// pump writes the mailbox's envelopes, at most maxInflight unacknowledged,
// until ctx ends or a write fails.
func (d *delivery) pump(ctx context.Context) (int, error) {
	it, err := d.cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(maxInflight, readAhead))
	if err != nil {
		return 0, err
	}
	defer func() { it.Stop() }() // the current iterator: next may replace it
	// lost (tests only) makes this iterator a stalled one: whatever it
	// yields is dropped, until the stall check replaces it.
	lost := d.relay.testStall.Swap(false)
	progress := time.Now() // of the last delivery or the last stall check
	sent := 0
	// Grown by append to the largest envelope sent: a buffer of
	// envelope.MaxSize up front cost every open connection 256 KiB.
	var frame []byte
	for {
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			return sent, ctx.Err()
		}
		m, err := d.next(ctx, &it, &progress, &lost)
		if err != nil {
			return sent, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return sent, err
		}
		d.mu.Lock()
		d.lastID++
		id := d.lastID
		d.inflight[id] = meta.Sequence.Stream
		d.mu.Unlock()
		d.lastSeq = meta.Sequence.Stream
		frame = binary.BigEndian.AppendUint64(frame[:0], id)
		frame = append(frame, m.Data()...)
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = d.conn.Write(wctx, websocket.MessageBinary, frame)
		cancel()
		if err != nil {
			return sent, err
		}
		progress = time.Now()
		d.relay.metrics.delivered.Add(1)
		d.relay.metrics.bytesOut.Add(uint64(len(m.Data())))
		sent++
	}
}

// next returns the consumer's next envelope. While it waits it checks,
// every min(StallTimeout/2, 2 s), for a stalled delivery: nothing
// delivered (and no check made) for StallTimeout while the mailbox holds
// an envelope past the last one delivered. It then replaces the
// consumer by one that starts after the last envelope delivered, so that
// none in flight is sent twice, and counts the stall. The check is one
// request (the subject's last message) a StallTimeout per idle
// connection.
func (d *delivery) next(ctx context.Context, it *jetstream.MessagesContext, progress *time.Time, lost *bool) (jetstream.Msg, error) {
	stall := d.relay.cfg.StallTimeout
	if stall < 0 {
		return (*it).Next(jetstream.NextContext(ctx))
	}
	every := max(min(stall/2, maxStallCheck), 10*time.Millisecond) // a tiny timeout must not spin
	for {
		nctx, cancel := context.WithTimeout(ctx, every)
		m, err := (*it).Next(jetstream.NextContext(nctx))
		cancel()
		if err == nil {
			if *lost {
				continue
			}
			return m, nil
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return nil, err
		}
		if time.Since(*progress) < stall {
			continue
		}
		behind, err := d.behind(ctx)
		if err != nil {
			d.relay.log.Debug("checking a mailbox delivery for a stall", "mailbox", d.mailbox, "err", err)
			continue // NATS unavailable: the next check tries again
		}
		*progress = time.Now()
		if !behind {
			continue
		}
		d.relay.metrics.stalls.Add(1)
		d.relay.log.Warn("mailbox delivery stalled: replacing its consumer", "mailbox", d.mailbox,
			"idle", stall.String(), "after_seq", d.lastSeq)
		if err := d.replace(ctx, it); err != nil {
			return nil, err // the connection closes: the client reconnects
		}
		*lost = false
	}
}

// behind reports whether the mailbox holds an envelope stored after the
// last one this connection delivered.
func (d *delivery) behind(ctx context.Context) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, consumerTimeout)
	defer cancel()
	m, err := d.relay.mailbox.GetLastMsgForSubject(cctx, d.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return m.Sequence > d.lastSeq, nil
}

// replace deletes the connection's consumer and reads on from a new one
// that starts after the last envelope delivered. The old one goes first:
// the stream's consumer limit may have no room for both.
func (d *delivery) replace(ctx context.Context, it *jetstream.MessagesContext) error {
	(*it).Stop()
	d.relay.deleteConsumer(d.cons)
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{d.subject},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: consumerIdle,
	}
	if d.lastSeq > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, d.lastSeq+1
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), consumerTimeout)
	cons, err := d.relay.mailbox.OrderedConsumer(cctx, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("replacing a stalled consumer: %w", err)
	}
	d.cons = cons
	next, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(maxInflight, readAhead))
	if err != nil {
		return fmt.Errorf("replacing a stalled consumer: %w", err)
	}
	*it = next
	return nil
}

// AckConfirmation is the text frame by which the relay confirms, to a
// client that asked (ConfirmQuery), that the envelopes of these delivery
// ids are deleted from the mailbox for good: DeleteMsg returned, or the
// envelope was gone already.
type AckConfirmation struct {
	Confirmed []uint64 `json:"confirmed"`
}

// Ack confirmations, negotiated on the WebSocket upgrade.
const (
	// ConfirmQuery, set to 1 on the mailbox URL's query, asks for
	// AckConfirmation frames.
	ConfirmQuery = "confirm"
	// ConfirmHeader, 1 on the upgrade's answer, says they will come.
	ConfirmHeader = "Sealpost-Ack-Confirm"
)

// readAcks reads acknowledgement frames and deletes the acknowledged
// envelopes from the mailbox. Ids this connection did not send are
// ignored, so a client can only remove what it was given. An envelope
// whose deletion failed stays in flight, for the client to acknowledge
// again (and is delivered again on the next connection).
func (d *delivery) readAcks(ctx context.Context) error {
	var done []uint64
	for {
		typ, data, err := d.conn.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageBinary || len(data) == 0 || len(data)%DeliveryIDSize != 0 {
			d.conn.Close(websocket.StatusPolicyViolation, "acknowledgements are binary 8-byte ids")
			return errors.New("bad acknowledgement frame")
		}
		done = done[:0]
		for ; len(data) > 0; data = data[DeliveryIDSize:] {
			id := binary.BigEndian.Uint64(data)
			d.mu.Lock()
			seq, ok := d.inflight[id]
			delete(d.inflight, id)
			given := id != 0 && id <= d.lastID
			d.mu.Unlock()
			if !ok {
				// Unknown, or acknowledged twice. An id this connection
				// gave that is no longer in flight was deleted by an
				// earlier acknowledgement (acks are handled in order, and
				// a failed delete puts the id back): confirmed again, for
				// a client whose first confirmation crossed its re-send.
				if given {
					done = append(done, id)
				}
				continue
			}
			// DeleteMsg returns once JetStream has removed it. It fails
			// when the envelope is already gone (another connection of the
			// same mailbox acknowledged it): nothing to do then.
			start := time.Now()
			var err error
			if d.relay.failDeletes.Load() {
				err = errors.New("test: DeleteMsg fails")
			} else {
				err = d.relay.mailbox.DeleteMsg(ctx, seq)
			}
			d.relay.metrics.ackLatency.observeSince(start)
			if err != nil && !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
				if ctx.Err() != nil {
					return err
				}
				d.relay.metrics.deleteFailures.Add(1)
				d.relay.log.Warn("deleting an acknowledged envelope failed", "mailbox", d.mailbox, "err", err)
				d.mu.Lock()
				d.inflight[id] = seq // not confirmed: the client acknowledges it again
				d.mu.Unlock()
				continue
			}
			if err == nil {
				d.relay.metrics.acked.Add(1)
			}
			done = append(done, id)
			<-d.slots
			d.mu.Lock()
			d.acked++
			d.mu.Unlock()
		}
		if d.confirm && len(done) > 0 {
			frame, _ := json.Marshal(AckConfirmation{Confirmed: done}) // []uint64 always marshals
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := d.conn.Write(wctx, websocket.MessageText, frame)
			cancel()
			if err != nil {
				return err
			}
		}
	}
}

// keepAlive pings the client so a dead connection is noticed and its
// envelopes offered again.
func (d *delivery) keepAlive(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			err := d.conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				d.conn.CloseNow()
				return
			}
		}
	}
}

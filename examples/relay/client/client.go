// Package client talks to a sealpost relay (examples/relay): it uploads and
// fetches bundle blobs and device lists, posts envelopes (one or a batch)
// and receives a mailbox over WebSocket. It handles opaque bytes only and imports no sealpost package
// but envelope, so it is as safe to link as the relay.
package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/auth"
)

// Wire constants, the same as the relay's.
const (
	deliveryIDSize = 8
	bundleHeader   = "Sealpost-Bundle"
	maxDeviceList  = 2048                   // server.MaxDeviceListSize
	confirmQuery   = "confirm"              // server.ConfirmQuery
	confirmHeader  = "Sealpost-Ack-Confirm" // server.ConfirmHeader
	// DefaultAckRetry is how long a subscription waits for the relay to
	// confirm an acknowledgement before it sends it again.
	DefaultAckRetry = 3 * time.Second
	// maxAckTries bounds the sends of one acknowledgement: an id the
	// relay never confirms (one it did not deliver) is given up.
	maxAckTries = 10
	maxAckIDs   = 256 // ids in one acknowledgement frame (server.MaxAckFrame / 8)
)

// ErrUnconfirmed is AckSync's answer when the relay did not confirm an
// acknowledgement: it does not confirm any (an older relay), or it did
// not confirm this one after maxAckTries sends.
var ErrUnconfirmed = errors.New("relay: acknowledgement not confirmed")

// Client is a relay client. It is safe for concurrent use.
type Client struct {
	base string
	hc   *http.Client
	ws   *http.Client // dials WebSockets; nil: http.DefaultClient

	// AckRetry is how long a subscription waits for the relay's
	// confirmation of an acknowledgement before sending it again
	// (DefaultAckRetry when 0). Set it before Subscribe.
	AckRetry time.Duration
}

// New returns a client of the relay at baseURL (http://host:port).
func New(baseURL string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: &http.Client{Timeout: 30 * time.Second}}
}

// NewWithHTTPClient is New with the app's own HTTP client, used for every
// request and to dial mailbox WebSockets: for example one whose transport
// binds a local address, sets TLS options or goes through a proxy. Its
// Timeout bounds each request and each WebSocket handshake, not a
// subscription's lifetime.
func NewWithHTTPClient(baseURL string, hc *http.Client) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, ws: hc}
}

// StatusError is a refusal by the relay: the HTTP status and its message.
type StatusError struct {
	Code       int
	Message    string
	RetryAfter time.Duration // from Retry-After, for 429 and 507
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("relay: %d %s: %s", e.Code, http.StatusText(e.Code), e.Message)
}

// IsStatus reports whether err is a StatusError with code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}

func statusError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return statusErrorOf(resp, raw)
}

// statusErrorOf is the StatusError of resp, whose body is raw.
func statusErrorOf(resp *http.Response, raw []byte) *StatusError {
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &body) != nil {
		body.Error = strings.TrimSpace(string(raw))
	}
	se := &StatusError{Code: resp.StatusCode, Message: body.Error}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		se.RetryAfter = time.Duration(s) * time.Second
	}
	return se
}

func (c *Client) do(ctx context.Context, method, path, ctype string, body []byte, want int, hdr ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

func bundlePath(user string, device uint32) string {
	return "/v1/bundles/" + url.PathEscape(user) + "/" + strconv.FormatUint(uint64(device), 10)
}

// PutBundle replaces the device's blobs: oneTime are handed out once
// each, lastResort to everybody after. The request is signed with key, the
// device's upload key: the relay keeps the key of the first upload and
// refuses (403) any later one signed by another.
func (c *Client) PutBundle(ctx context.Context, key *Key, user string, device uint32, oneTime [][]byte, lastResort []byte) error {
	return c.uploadBundle(ctx, http.MethodPut, key, user, device, oneTime, lastResort)
}

// AddBundle adds one-time blobs and, when lastResort is not nil, replaces
// the last resort; signed with key as PutBundle.
func (c *Client) AddBundle(ctx context.Context, key *Key, user string, device uint32, oneTime [][]byte, lastResort []byte) error {
	return c.uploadBundle(ctx, http.MethodPost, key, user, device, oneTime, lastResort)
}

func (c *Client) uploadBundle(ctx context.Context, method string, key *Key, user string, device uint32, oneTime [][]byte, lastResort []byte) error {
	if len(user) > auth.MaxUser {
		return &StatusError{Code: http.StatusBadRequest, Message: "user name too long"}
	}
	body, err := json.Marshal(struct {
		OneTime    [][]byte `json:"one_time,omitempty"`
		LastResort []byte   `json:"last_resort,omitempty"`
	}{oneTime, lastResort})
	if err != nil {
		return err
	}
	sig := auth.Sign(key.priv, method, auth.BundleResource(user, device), body, time.Now())
	resp, err := c.do(ctx, method, bundlePath(user, device), "application/json", body, http.StatusNoContent,
		auth.Header, sig, auth.KeyHeader, auth.EncodeKey(key.Public()))
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// RegisterMailbox registers owner as the key of mailbox, signed by it.
// The first registration wins: registering the same key again is fine,
// another key is a StatusError with code 409. Register a mailbox before
// anyone learns its id (before publishing the bundle that names it).
func (c *Client) RegisterMailbox(ctx context.Context, mailbox []byte, owner *Key) error {
	if len(mailbox) == 0 || len(mailbox) > auth.MaxMailbox {
		return errors.New("relay: mailbox must be 1 to 64 bytes")
	}
	pub := owner.Public()
	sig := auth.Sign(owner.priv, http.MethodPut, auth.MailboxResource(mailbox), pub, time.Now())
	path := "/v1/mailboxes/" + hex.EncodeToString(mailbox) + "/owner"
	resp, err := c.do(ctx, http.MethodPut, path, "application/octet-stream", pub, http.StatusCreated, auth.Header, sig)
	if IsStatus(err, http.StatusNoContent) {
		return nil
	}
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// FetchBundle takes one blob of the device: a one-time one while any is
// left (oneTime true), the last resort after. A device with no bundle is
// a StatusError with code 404.
func (c *Client) FetchBundle(ctx context.Context, user string, device uint32) (blob []byte, oneTime bool, err error) {
	resp, err := c.do(ctx, http.MethodGet, bundlePath(user, device), "", nil, http.StatusOK)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	blob, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return blob, resp.Header.Get(bundleHeader) == "one-time", err
}

// Post hands an envelope to the relay; it returns once the relay has
// stored it. A refusal is a StatusError: 400 (malformed), 413 (too
// large), 429 (rate), 507 (mailbox full).
func (c *Client) Post(ctx context.Context, env []byte) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/envelopes", "application/octet-stream", env, http.StatusAccepted)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// BatchError is the relay's answer to a batch it did not wholly store
// (507: a full mailbox, 503: NATS failed): the status, and Refused, the
// indexes in the batch of the envelopes it did not store. The others are
// stored; posting the whole batch again within two minutes stores none of
// them twice (the relay drops repeats), so a retry need not pick them out.
type BatchError struct {
	StatusError
	Refused []int
}

// Unwrap returns the StatusError, so that IsStatus and errors.As see it.
func (e *BatchError) Unwrap() error { return &e.StatusError }

// PostBatch hands several envelopes to the relay in one request, for a
// fan-out: one message to every device of a recipient (and of the
// sender's other devices) is one envelope per device, and one request
// instead of one each saves a round trip per device. The relay reads and
// parses the whole batch before it stores anything, so a damaged envelope
// refuses the whole batch (a StatusError with code 400, naming it) and
// nothing is delivered; as are more than 64 envelopes or 16 MiB (413) and
// a batch the client's rate limit cannot take, one token per envelope
// (429). It returns once every envelope is stored, or a *BatchError
// naming the ones that are not.
func (c *Client) PostBatch(ctx context.Context, envs [][]byte) error {
	if len(envs) == 0 {
		return nil
	}
	var body []byte
	for _, e := range envs {
		body = append(body, e...)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/envelopes/batch", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		return nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	se := statusErrorOf(resp, raw)
	var refusal struct {
		Refused []int `json:"refused"`
	}
	if json.Unmarshal(raw, &refusal) == nil && len(refusal.Refused) > 0 {
		return &BatchError{StatusError: *se, Refused: refusal.Refused}
	}
	return se
}

func accountPath(user string) string { return "/v1/accounts/" + url.PathEscape(user) + "/devices" }

// PutDeviceList publishes list, an account's signed device list
// (keys.DeviceList.Bytes), as the newest of user's account. It needs no
// key of the client's: the list's own signature by the account key is
// what the relay checks. The account's first list pins its account key
// on the relay; after that a list is stored only if that key signed it
// (otherwise a StatusError with code 403) and its version is above the
// stored one's (409, which is also the answer to publishing the same list
// twice); bytes that are not a list signed by the key they name are 400.
// Peers verify the list themselves: the relay only keeps it, in order.
func (c *Client) PutDeviceList(ctx context.Context, user string, list []byte) error {
	if user == "" || len(user) > auth.MaxUser {
		return &StatusError{Code: http.StatusBadRequest, Message: "user name empty or too long"}
	}
	resp, err := c.do(ctx, http.MethodPut, accountPath(user), "application/octet-stream", list, http.StatusNoContent)
	if IsStatus(err, http.StatusCreated) {
		return nil
	}
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// FetchDeviceList returns the newest device list stored for user's
// account, unverified: check it with keys.ParseDeviceList and against the
// list pinned for the account (keys.DeviceList.Follows) before trusting a
// device on it, since the relay may serve an old or a forged one. An
// account with no list is a StatusError with code 404.
func (c *Client) FetchDeviceList(ctx context.Context, user string) ([]byte, error) {
	if user == "" || len(user) > auth.MaxUser {
		return nil, &StatusError{Code: http.StatusBadRequest, Message: "user name empty or too long"}
	}
	resp, err := c.do(ctx, http.MethodGet, accountPath(user), "", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, maxDeviceList+1))
}

// DeleteMailbox removes every envelope waiting in mailbox, signed with its
// owner key; the relay keeps the registration, so the id stays the
// owner's.
func (c *Client) DeleteMailbox(ctx context.Context, mailbox []byte, owner *Key) error {
	if len(mailbox) == 0 || len(mailbox) > auth.MaxMailbox {
		return errors.New("relay: mailbox must be 1 to 64 bytes")
	}
	sig := auth.Sign(owner.priv, http.MethodDelete, auth.MailboxResource(mailbox), nil, time.Now())
	resp, err := c.do(ctx, http.MethodDelete, "/v1/mailboxes/"+hex.EncodeToString(mailbox), "", nil, http.StatusNoContent, auth.Header, sig)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// Delivery is one envelope from a mailbox. Ack it once handled.
type Delivery struct {
	ID       uint64
	Envelope []byte
}

// Subscription receives one mailbox.
type Subscription struct {
	conn     *websocket.Conn
	c        chan Delivery
	cancel   context.CancelFunc
	done     chan struct{}
	confirms bool // the relay confirms acknowledgements
	retry    time.Duration
	mu       sync.Mutex
	err      error
	pending  map[uint64]*pendingAck // acknowledged, not yet confirmed
}

// pendingAck is an acknowledgement the relay has not confirmed yet.
type pendingAck struct {
	sent  time.Time
	tries int
	done  chan struct{} // closed when confirmed or given up
	ok    bool
}

// Subscribe opens the mailbox's WebSocket, signing the request with the
// mailbox's owner key (see RegisterMailbox). Deliveries arrive on C until
// the connection ends; Err then says why. A key that is not the owner's is
// a StatusError with code 403, a mailbox never registered 404.
//
// The subscription asks the relay to confirm acknowledgements (the relay
// README's protocol, confirm=1): Ack sends again, every AckRetry, those
// not confirmed, and AckSync waits for the confirmation. A relay that does
// not confirm (an older one) is read as before, and AckSync answers
// ErrUnconfirmed.
func (c *Client) Subscribe(ctx context.Context, mailbox []byte, owner *Key) (*Subscription, error) {
	if len(mailbox) == 0 || len(mailbox) > auth.MaxMailbox {
		return nil, errors.New("relay: mailbox must be 1 to 64 bytes")
	}
	u := c.base + "/v1/mailboxes/" + hex.EncodeToString(mailbox) + "?" + confirmQuery + "=1"
	switch {
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	}
	opts := &websocket.DialOptions{HTTPClient: c.ws, HTTPHeader: http.Header{}}
	opts.HTTPHeader.Set(auth.Header, auth.Sign(owner.priv, http.MethodGet, auth.MailboxResource(mailbox), nil, time.Now()))
	conn, resp, err := websocket.Dial(ctx, u, opts)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, statusError(resp)
		}
		return nil, err
	}
	conn.SetReadLimit(deliveryIDSize + envelope.MaxSize)
	sctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{conn: conn, c: make(chan Delivery, 64), cancel: cancel, done: make(chan struct{}),
		confirms: resp.Header.Get(confirmHeader) == "1", retry: c.AckRetry, pending: map[uint64]*pendingAck{}}
	if s.retry <= 0 {
		s.retry = DefaultAckRetry
	}
	go s.read(sctx)
	if s.confirms {
		go s.resend(sctx)
	}
	return s, nil
}

func (s *Subscription) read(ctx context.Context) {
	defer close(s.done)
	defer close(s.c)
	for {
		typ, data, err := s.conn.Read(ctx)
		if err == nil && typ == websocket.MessageText && s.confirms {
			err = s.confirmed(data)
			if err == nil {
				continue
			}
		}
		if err == nil && (typ != websocket.MessageBinary || len(data) < deliveryIDSize) {
			err = errors.New("relay: bad delivery frame")
		}
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		d := Delivery{ID: binary.BigEndian.Uint64(data), Envelope: data[deliveryIDSize:]}
		select {
		case s.c <- d:
		case <-ctx.Done():
			return
		}
	}
}

// confirmed reads a confirmation frame: {"confirmed": [ids]}.
func (s *Subscription) confirmed(data []byte) error {
	var f struct {
		Confirmed []uint64 `json:"confirmed"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return errors.New("relay: bad confirmation frame")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range f.Confirmed {
		if p, ok := s.pending[id]; ok {
			p.ok = true
			close(p.done)
			delete(s.pending, id)
		}
	}
	return nil
}

// resend sends again the acknowledgements not confirmed within retry.
func (s *Subscription) resend(ctx context.Context) {
	t := time.NewTicker(s.retry / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case now := <-t.C:
			var ids []uint64
			s.mu.Lock()
			for id, p := range s.pending {
				if now.Sub(p.sent) < s.retry {
					continue
				}
				if p.tries >= maxAckTries {
					close(p.done) // given up: AckSync answers ErrUnconfirmed
					delete(s.pending, id)
					continue
				}
				p.sent, p.tries = now, p.tries+1
				ids = append(ids, id)
			}
			s.mu.Unlock()
			if len(ids) > 0 {
				wctx, cancel := context.WithTimeout(ctx, s.retry)
				_ = s.write(wctx, ids) // the connection failed: read ends the subscription
				cancel()
			}
		}
	}
}

// C delivers envelopes; it is closed when the subscription ends.
func (s *Subscription) C() <-chan Delivery { return s.c }

// Err returns why the subscription ended (nil while it runs or after Close).
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Ack acknowledges deliveries; the relay then removes them. When the
// relay confirms acknowledgements, those it has not confirmed within
// AckRetry are sent again while the subscription lasts (ids name
// deliveries of this connection only: the next subscription's are others).
func (s *Subscription) Ack(ctx context.Context, ids ...uint64) error {
	_, err := s.ack(ctx, ids)
	return err
}

// AckSync acknowledges deliveries and returns once the relay has confirmed
// that each is deleted for good: none is delivered again, even after the
// relay or a NATS node restarts. It answers ErrUnconfirmed if the relay
// does not confirm (an older relay, or an id it never delivered), and an
// error when ctx ends or the subscription does first; the envelopes not
// confirmed then may be delivered again.
func (s *Subscription) AckSync(ctx context.Context, ids ...uint64) error {
	waits, err := s.ack(ctx, ids)
	if err != nil {
		return err
	}
	if !s.confirms {
		return ErrUnconfirmed
	}
	for _, p := range waits {
		select {
		case <-p.done:
			if !p.ok {
				return ErrUnconfirmed
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			select {
			case <-p.done:
				if p.ok {
					continue
				}
			default:
			}
			if err := s.Err(); err != nil {
				return err
			}
			return errors.New("relay: subscription closed before the confirmation")
		}
	}
	return nil
}

// ack sends ids and, when the relay confirms, tracks each until it does.
func (s *Subscription) ack(ctx context.Context, ids []uint64) ([]*pendingAck, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var waits []*pendingAck
	if s.confirms {
		now := time.Now()
		s.mu.Lock()
		for _, id := range ids {
			p, ok := s.pending[id]
			if !ok {
				p = &pendingAck{done: make(chan struct{})}
				s.pending[id] = p
			}
			p.sent, p.tries = now, p.tries+1
			waits = append(waits, p)
		}
		s.mu.Unlock()
	}
	return waits, s.write(ctx, ids)
}

// write sends ids in frames of at most maxAckIDs (the relay's
// MaxAckFrame).
func (s *Subscription) write(ctx context.Context, ids []uint64) error {
	for len(ids) > 0 {
		n := min(len(ids), maxAckIDs)
		buf := make([]byte, 0, n*deliveryIDSize)
		for _, id := range ids[:n] {
			buf = binary.BigEndian.AppendUint64(buf, id)
		}
		if err := s.conn.Write(ctx, websocket.MessageBinary, buf); err != nil {
			return err
		}
		ids = ids[n:]
	}
	return nil
}

// Close ends the subscription; deliveries not acknowledged are delivered
// again on the next one.
func (s *Subscription) Close() error {
	s.conn.Close(websocket.StatusNormalClosure, "")
	s.cancel()
	<-s.done
	return nil
}

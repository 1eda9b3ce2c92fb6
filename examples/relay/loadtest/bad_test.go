package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/examples/relay/client"
	"github.com/sealpost/sealpost/examples/relay/server"
)

// What the bad client sends, and which answers from the relay are right.
// "Refused" means the relay answered with one of the documented error
// statuses and stored nothing: a refused envelope is never delivered to
// anybody (checked), and the answer is one of the kind's allowed ones.
// A truncated body is refused at the door too: the routing header's body
// length says the envelope is shorter than it should be (routing header
// version 2). Envelopes whose header is intact and whose length fits
// (tampered bodies, the flood) are the relay's to accept, since it cannot
// open them: those must then reach the victim, whose Device refuses each
// with a typed error and changes nothing.
const (
	kindGarbage      = "garbage"            // random bytes that envelope.Parse refuses
	kindVersion      = "wrong version"      // a header of another version
	kindEmpty        = "empty"              // no bytes at all
	kindCutHeader    = "truncated header"   // a real envelope cut in its header or before MinBody
	kindOversized    = "oversized"          // over envelope.MaxSize, with Content-Length
	kindOversizedTE  = "oversized, chunked" // over envelope.MaxSize, no length up front
	kindCutBody      = "truncated body"     // a real envelope cut in its sealed body: shorter than its header says
	kindTampered     = "tampered"           // a real envelope with one byte flipped after the mailbox
	kindFlood        = "flood"              // well-formed junk for the victim's mailbox
	statusConnClosed = 0                    // no HTTP answer: the relay closed the connection
)

// badKinds lists each kind's allowed answers and the answers of which at
// least one must be seen. 429 is always allowed: the rate limit comes
// first.
var badKinds = map[string]struct{ allowed, needOne []int }{
	kindGarbage:     {[]int{400, 429}, []int{400}},
	kindVersion:     {[]int{400, 429}, []int{400}},
	kindEmpty:       {[]int{400, 429}, []int{400}},
	kindCutHeader:   {[]int{400, 429}, []int{400}},
	kindOversized:   {[]int{413, 429, statusConnClosed}, []int{413}},
	kindOversizedTE: {[]int{413, 429, statusConnClosed}, []int{413}},
	kindCutBody:     {[]int{400, 429}, []int{400}},
	kindTampered:    {[]int{202, 429, 507}, []int{202, 507}},
	kindFlood:       {[]int{202, 429, 507}, []int{507}},
}

// The malformed kinds in the order the bad client cycles through them.
var malformedKinds = []string{kindGarbage, kindVersion, kindEmpty, kindCutHeader,
	kindOversized, kindOversizedTE, kindCutBody, kindTampered}

const (
	// floodIPs is how many loopback addresses the flood comes from. The
	// relay's burst of 100 requests per address makes 4 enough to fill a
	// mailbox of badDepth at once; from one address the rate limit alone
	// would hold the flood to 20 envelopes/s.
	floodIPs = 4
	// badDepth is the relay's mailbox depth in the bad-client scenario,
	// small enough for the flood to fill it.
	badDepth = 256
	// malformedBurst is how many malformed envelopes the bad client posts
	// at once when it starts, twice the relay's burst per address: the
	// rate limit answers 429 to some of them however slow the relay is.
	// After that one worker posts them in turn every malformedPace, at
	// the rate the relay allows, so every kind gets answers other than
	// 429 too.
	malformedBurst = 2 * server.DefaultBurst
	malformedPace  = 50 * time.Millisecond
	// floodPace spaces each flood worker's requests once the mailbox is
	// full: 20/s per address, the allowed rate. (Refusing costs the relay
	// CPU too; this test is about what the relay refuses, not how many
	// refusals a second two cores can afford.)
	floodPace = 50 * time.Millisecond
)

// badEnv is one distinct envelope the bad client posted.
type badEnv struct {
	kind      string
	answers   []int // the relay's answers to each post of it
	delivered int   // times delivered to the victim
}

// badClient is the hostile client of the bad-client scenario. It posts
// from its own loopback addresses: 127.2.0.1 for the malformed kinds,
// 127.3.0.1 to 127.3.0.<floodIPs> for the flood.
type badClient struct {
	r       *run
	url     string
	mailbox []byte   // the victim's
	real    [][]byte // genuine envelopes from Mallory to the victim, never posted whole
	hdrLen  []int    // their routing header lengths
	answers map[string]*counts

	filled atomic.Bool // the flood saw 507
	saw429 atomic.Bool // the malformed worker saw 429
	stop   chan struct{}
	wg     sync.WaitGroup
}

// newBadClient opens Mallory's device, has it start a session with the
// victim from the bundle the relay hands anyone, and keeps 16 genuine
// first-contact envelopes to cut and tamper with.
func newBadClient(ctx context.Context, r *run, victim *agent) (*badClient, error) {
	b := &badClient{r: r, url: r.relay.url(), mailbox: victim.dev.Mailbox(),
		answers: map[string]*counts{}, stop: make(chan struct{})}
	for k := range badKinds {
		b.answers[k] = &counts{}
	}
	mallory, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), sealpost.Address{User: "mallory", Device: 1})
	if err != nil {
		return nil, err
	}
	c := localClient(b.url, net.IPv4(127, 2, 0, 2))
	if err := startSession(ctx, c, mallory, victim.dev.Address()); err != nil {
		return nil, err
	}
	// Mallory knows the victim's mailbox id and address, but neither
	// reads the mailbox nor replaces the bundle with a key of its own.
	key, err := client.NewKey()
	if err != nil {
		return nil, err
	}
	if sub, err := c.Subscribe(ctx, victim.dev.Mailbox(), key); !client.IsStatus(err, http.StatusForbidden) {
		if sub != nil {
			sub.Close()
		}
		return nil, fmt.Errorf("reading the victim's mailbox with another key: %v, want 403", err)
	}
	va := victim.dev.Address()
	if err := c.PutBundle(ctx, key, va.User, va.Device, nil, []byte("mallory's")); !client.IsStatus(err, http.StatusForbidden) {
		return nil, fmt.Errorf("replacing the victim's bundle: %v, want 403", err)
	}
	for i := range 16 {
		o, err := mallory.Send(ctx, victim.dev.Address(), fmt.Appendf(nil, "not for you %d", i))
		if err != nil {
			return nil, err
		}
		h, err := envelope.Parse(o.Envelope)
		if err != nil {
			return nil, err
		}
		b.real = append(b.real, o.Envelope)
		b.hdrLen = append(b.hdrLen, 2+len(h.Mailbox)+envelope.TagSize+3) // version, length, mailbox, tag, body length
	}
	return b, nil
}

func (b *badClient) start(seed uint64) {
	hc := localHTTP(net.IPv4(127, 2, 0, 1))
	var next atomic.Uint64
	for i := range malformedBurst {
		b.wg.Go(func() { b.malformedOne(hc, &next, rand.New(rand.NewPCG(seed, 1000+uint64(i)))) })
	}
	b.wg.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 100))
		for !b.stopped() {
			b.malformedOne(hc, &next, rng)
			b.pause(malformedPace)
		}
	})
	for i := range floodIPs {
		b.wg.Go(func() { b.flood(localHTTP(net.IPv4(127, 3, 0, byte(i+1))), rand.New(rand.NewPCG(seed, 200+uint64(i)))) })
	}
}

func (b *badClient) halt() {
	close(b.stop)
	b.wg.Wait()
}

func (b *badClient) stopped() bool {
	select {
	case <-b.stop:
		return true
	default:
		return b.r.ctx.Err() != nil
	}
}

func (b *badClient) pause(d time.Duration) {
	select {
	case <-b.stop:
	case <-b.r.ctx.Done():
	case <-time.After(d):
	}
}

// malformedOne posts one envelope of the next malformed kind (next counts
// the malformed posts) from the bad client's address.
func (b *badClient) malformedOne(hc *http.Client, next *atomic.Uint64, rng *rand.Rand) {
	kind := malformedKinds[(next.Add(1)-1)%uint64(len(malformedKinds))]
	if code := b.post(hc, kind, b.make(kind, rng), kind == kindOversizedTE); code == http.StatusTooManyRequests {
		b.saw429.Store(true)
	}
}

// answered reports whether every kind has had one of the answers it
// needs (badKinds) and the rate limit has answered 429.
func (b *badClient) answered() bool {
	if !b.saw429.Load() {
		return false
	}
	for kind, k := range badKinds {
		seen := false
		for _, code := range k.needOne {
			seen = seen || b.answers[kind].get(statusLabel(code)) > 0
		}
		if !seen {
			return false
		}
	}
	return true
}

// flood posts junk to the victim's mailbox as fast as the relay answers
// until the mailbox is full, then at floodPace.
func (b *badClient) flood(hc *http.Client, rng *rand.Rand) {
	for !b.stopped() {
		if b.post(hc, kindFlood, b.make(kindFlood, rng), false) == http.StatusInsufficientStorage {
			b.filled.Store(true)
		}
		if b.filled.Load() {
			b.pause(floodPace)
		}
	}
}

// make builds one envelope of kind.
func (b *badClient) make(kind string, rng *rand.Rand) []byte {
	i := rng.IntN(len(b.real))
	real, hdr := b.real[i], b.hdrLen[i]
	switch kind {
	case kindGarbage:
		for {
			g := make([]byte, 1+rng.IntN(2000))
			for j := range g {
				g[j] = byte(rng.Uint32())
			}
			if _, err := envelope.Parse(g); err != nil {
				return g
			}
		}
	case kindVersion:
		v := byte(rng.IntN(255))
		if v >= envelope.Version {
			v++
		}
		env := fakeEnvelope(b.mailbox, rng, 300)
		env[0] = v
		return env
	case kindEmpty:
		return []byte{}
	case kindCutHeader: // 16 is the sealed body's minimum (an AEAD tag)
		return slices.Clone(real[:1+rng.IntN(hdr+16-1)])
	case kindOversized, kindOversizedTE:
		return fakeEnvelope(b.mailbox, rng, envelope.MaxSize+1+rng.IntN(64<<10))
	case kindCutBody:
		return slices.Clone(real[:hdr+16+rng.IntN(len(real)-hdr-16)])
	case kindTampered: // a byte of the tag or the sealed body (not the length, which Parse checks)
		env := slices.Clone(real)
		tag := 2 + len(b.mailbox)
		at := tag + rng.IntN(envelope.TagSize+len(env)-hdr)
		if at >= tag+envelope.TagSize {
			at += hdr - tag - envelope.TagSize
		}
		env[at] ^= byte(1 + rng.IntN(255))
		return env
	case kindFlood:
		return fakeEnvelope(b.mailbox, rng, 200+rng.IntN(800))
	}
	panic("unknown kind " + kind)
}

// fakeEnvelope is a well-formed routing header for mailbox and random
// bytes after it, n bytes in all (n is at least the header and 16), the
// header's body length saying so.
func fakeEnvelope(mailbox []byte, rng *rand.Rand, n int) []byte {
	hdr := 2 + len(mailbox) + envelope.TagSize + 3
	env := make([]byte, max(n, hdr+16))
	env[0], env[1] = envelope.Version, byte(len(mailbox))
	copy(env[2:], mailbox)
	for j := 2 + len(mailbox); j < len(env); j++ {
		env[j] = byte(rng.Uint32())
	}
	body := len(env) - hdr
	env[hdr-3], env[hdr-2], env[hdr-1] = byte(body>>16), byte(body>>8), byte(body)
	return env
}

// post sends one bad envelope, records the answer and checks it is one
// the kind allows. It returns the status (statusConnClosed without one).
func (b *badClient) post(hc *http.Client, kind string, env []byte, chunked bool) int {
	k := keyOf(env)
	b.r.envMu.Lock()
	be := b.r.bad[k]
	if be == nil {
		be = &badEnv{kind: kind}
		b.r.bad[k] = be
	}
	b.r.envMu.Unlock()

	var body io.Reader = bytes.NewReader(env)
	if chunked {
		body = struct{ io.Reader }{body} // hides the length: chunked encoding
	}
	code := statusConnClosed
	req, err := http.NewRequestWithContext(b.r.ctx, http.MethodPost, b.url+"/v1/envelopes", body)
	if err != nil {
		b.r.fail("bad client: %v", err)
		return code
	}
	resp, err := hc.Do(req)
	if err == nil {
		code = resp.StatusCode
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
	} else if b.r.ctx.Err() != nil {
		return code
	}
	b.r.envMu.Lock()
	be.answers = append(be.answers, code)
	b.r.envMu.Unlock()
	b.answers[kind].add(statusLabel(code), 1)
	if !slices.Contains(badKinds[kind].allowed, code) {
		b.r.fail("bad client: the relay answered %s to a %s envelope of %d bytes (%v)", statusLabel(code), kind, len(env), err)
	}
	return code
}

func statusLabel(code int) string {
	if code == statusConnClosed {
		return "connection closed"
	}
	return fmt.Sprint(code)
}

// badDelivery handles an envelope delivered to an honest device that no
// honest device posted: it must be the bad client's, for the victim, and
// Receive must have refused it with a typed error.
func (r *run) badDelivery(a *agent, k envKey, err error) bool {
	r.envMu.Lock()
	be := r.bad[k]
	if be != nil {
		be.delivered++
	}
	r.envMu.Unlock()
	r.badDelivered.Add(1)
	switch {
	case be == nil:
		r.fail("%s: the relay delivered an envelope nobody posted", a.name)
		return false
	case a != r.victim:
		r.fail("%s: the bad client's %s envelope reached a mailbox it was not sent to", a.name, be.kind)
		return false
	case err == nil:
		r.fail("%s: Receive accepted the bad client's %s envelope", a.name, be.kind)
		return false
	}
	name := sentinelName(err)
	if name == "" {
		r.fail("%s: Receive refused a %s envelope with an untyped error: %v", a.name, be.kind, err)
		return false
	}
	r.deviceRefused.add(be.kind+" → "+name, 1)
	return true
}

// sentinelName names the sentinel err matches, or "" for none.
func sentinelName(err error) string {
	for _, s := range []struct {
		name string
		err  error
	}{
		{"ErrMalformed", sealpost.ErrMalformed}, {"ErrTooLarge", sealpost.ErrTooLarge},
		{"ErrUnsupportedVersion", sealpost.ErrUnsupportedVersion}, {"ErrBadSignature", sealpost.ErrBadSignature},
		{"ErrUnknownPrekey", sealpost.ErrUnknownPrekey}, {"ErrDecrypt", sealpost.ErrDecrypt},
		{"ErrLowOrderPoint", sealpost.ErrLowOrderPoint}, {"ErrDuplicate", sealpost.ErrDuplicate},
		{"ErrTooManySkipped", sealpost.ErrTooManySkipped}, {"ErrExpiredKey", sealpost.ErrExpiredKey},
	} {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return ""
}

// check verifies, after the scenario, that every kind got a refusal it
// needs, that no refused envelope was delivered and that every accepted
// one was (and was refused by the victim's device, which badDelivery
// checked as it happened).
func (b *badClient) check() {
	for _, kind := range append(slices.Clone(malformedKinds), kindFlood) {
		c := b.answers[kind]
		seen := false
		for _, code := range badKinds[kind].needOne {
			seen = seen || c.get(statusLabel(code)) > 0
		}
		if !seen {
			b.r.t.Errorf("bad client: no %s envelope got any of %v (answers: %v)", kind, badKinds[kind].needOne, c)
		}
	}
	if !b.saw429.Load() {
		b.r.t.Errorf("bad client: the rate limit never answered 429")
	}
	b.r.envMu.Lock()
	defer b.r.envMu.Unlock()
	var refusedDelivered, acceptedLost int
	for _, be := range b.r.bad {
		accepted := slices.Contains(be.answers, http.StatusAccepted)
		switch {
		case !accepted && be.delivered > 0:
			refusedDelivered++
		case accepted && be.delivered == 0:
			acceptedLost++
		}
	}
	if refusedDelivered > 0 {
		b.r.t.Errorf("bad client: %d envelopes the relay refused were delivered", refusedDelivered)
	}
	if acceptedLost > 0 {
		b.r.t.Errorf("bad client: %d envelopes the relay accepted (202) were never delivered", acceptedLost)
	}
}

// summary returns the relay's answers per kind.
func (b *badClient) summary() string {
	var s bytes.Buffer
	for _, kind := range append(slices.Clone(malformedKinds), kindFlood) {
		fmt.Fprintf(&s, "\n    %-20s %v", kind+":", b.answers[kind])
	}
	return s.String()
}

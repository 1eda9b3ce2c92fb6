package sealpost_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/pad"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// This file is the kit of the Device-level adversarial tests
// (session_start_attacks_test.go, negative_cases_test.go, archive_test.go,
// simultaneous_test.go, relaysize_test.go): a peer built by hand from the
// public packages, so a test can change any part of what a Device would
// send, and an error tracker that checks every error string a test sees
// for key material (TESTING.md item 46). Nothing here reads the Device's
// store layout: stores are compared whole (dmCapture, dmUnchanged) and the
// only secret taken from a store is found by what it is, not where it is.

// akPeer is a peer device made by hand: the steps of Device.StartSession
// and Device.Send done with keys, ratchet, transcript and envelope/seal, so
// that a test can tamper with the session start, the content or the
// envelope, or claim another identity or address.
type akPeer struct {
	id      *keys.IdentityPrivateKey
	addr    sealpost.Address
	mailbox []byte
}

func akNewPeer(user string) *akPeer {
	mb := make([]byte, 16)
	rand.Read(mb)
	return &akPeer{id: keys.GenerateIdentity(), addr: sealpost.Address{User: user, Device: 1}, mailbox: mb}
}

// akSession is one session the hand-made peer started.
type akSession struct {
	t         testing.TB
	p         *akPeer
	bundle    *keys.Bundle
	start     *keys.SessionStart
	sk        *keys.SessionKeys
	r         *ratchet.Session
	conv      *transcript.Conversation
	confirmed bool // the responder has replied
}

// start runs the initiator's side of a session start against b, as
// Device.StartSession does.
func (p *akPeer) start(t testing.TB, b *keys.Bundle) *akSession {
	t.Helper()
	start, sk, err := keys.Initiate(p.id, p.addr, b)
	if err != nil {
		t.Fatalf("%s Initiate: %v", p.addr, err)
	}
	r, err := ratchet.NewInitiator(sk.Secret(), sk.AssociatedData(), sk.PeerRatchetKey())
	if err != nil {
		t.Fatal(err)
	}
	return &akSession{t: t, p: p, bundle: b, start: start, sk: sk, r: r, conv: transcript.New()}
}

// content returns a padded content as Device.Send would seal it, edited
// by edit (nil: none). A receipt kind gets one receipt id and a random
// receipt hash. Nothing is recorded in the transcript: record does that
// for contents that are meant to arrive.
func (s *akSession) content(kind sealpost.Kind, body []byte, edit func(*sealedpb.Content)) (sealpost.MessageID, []byte, transcript.Fields) {
	s.t.Helper()
	var id sealpost.MessageID
	rand.Read(id[:])
	c := &sealedpb.Content{Version: 1, Id: id[:], Kind: uint32(kind), Body: body}
	switch kind {
	case sealpost.KindDelivered:
		c.Delivered = [][]byte{bytes.Repeat([]byte{7}, 16)}
	case sealpost.KindRead:
		c.Read = [][]byte{bytes.Repeat([]byte{7}, 16)}
	}
	if len(c.Delivered)+len(c.Read) > 0 {
		c.ReceiptHash = make([]byte, 32)
		rand.Read(c.ReceiptHash)
	}
	f := s.conv.Next()
	c.Seq, c.Prev, c.AckCount, c.AckHash, c.AckAbove = f.Seq, f.Prev[:], f.AckCount, f.AckHash[:], f.AckAbove
	if !s.confirmed {
		c.SenderMailbox = s.p.mailbox
	}
	if edit != nil {
		edit(c)
	}
	raw, err := pbstrict.Marshal(c)
	if err != nil {
		s.t.Fatal(err)
	}
	return id, pad.Append(nil, raw), f
}

// encrypt runs the ratchet on a padded content.
func (s *akSession) encrypt(padded []byte) ([16]byte, []byte) {
	s.t.Helper()
	tag, msg, err := s.r.Encrypt(padded)
	if err != nil {
		s.t.Fatal(err)
	}
	return tag, msg
}

// startRaw returns the encoded session start carrying a ratchet message,
// as Device.Send frames it: the routing tag, then the message.
func (s *akSession) startRaw(tag [16]byte, msg []byte) []byte {
	s.t.Helper()
	s.start.Payload = append(tag[:], msg...)
	raw, err := s.start.MarshalBinary()
	s.start.Payload = nil
	if err != nil {
		s.t.Fatal(err)
	}
	return raw
}

// sealStart seals an encoded (possibly tampered) session start to the
// responder's mailbox key: a first-contact envelope.
func (s *akSession) sealStart(raw []byte) []byte {
	s.t.Helper()
	return akSeal(s.t, s.bundle, raw)
}

func akSeal(t testing.TB, b *keys.Bundle, raw []byte) []byte {
	t.Helper()
	env, err := seal.FirstContact(b, raw)
	if err != nil {
		t.Fatalf("sealing a first contact: %v", err)
	}
	return env
}

// akDecodeStart decodes an encoded session start.
func akDecodeStart(t testing.TB, raw []byte) *sealedpb.SessionStart {
	t.Helper()
	m := new(sealedpb.SessionStart)
	if err := pbstrict.Unmarshal(raw, m); err != nil {
		t.Fatal(err)
	}
	return m
}

// akEditStart decodes an encoded session start, applies edit and encodes
// it again: a session start changed in one field, everything else as the
// initiator made it.
func akEditStart(t testing.TB, raw []byte, edit func(*sealedpb.SessionStart)) []byte {
	t.Helper()
	m := akDecodeStart(t, raw)
	edit(m)
	out, err := pbstrict.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// frame wraps a ratchet message as Device.Send does: a first contact until
// the responder has replied, a session envelope after.
func (s *akSession) frame(tag [16]byte, msg []byte) []byte {
	if s.confirmed {
		return seal.Session(nil, s.bundle.Mailbox, tag, msg)
	}
	return s.sealStart(s.startRaw(tag, msg))
}

// send returns a genuine message envelope and its id, recorded in the
// transcript.
func (s *akSession) send(body string) ([]byte, sealpost.MessageID) {
	s.t.Helper()
	env, id, _ := s.sendRaw(body)
	return env, id
}

// sendRaw is send that also returns the encoded session start inside a
// first contact (nil for a session envelope), for tests that tamper with
// it and then deliver the original.
func (s *akSession) sendRaw(body string) ([]byte, sealpost.MessageID, []byte) {
	s.t.Helper()
	id, padded, f := s.content(sealpost.KindMessage, []byte(body), nil)
	plain, err := pad.Unpad(padded)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.conv.Sent(f, id, plain); err != nil {
		s.t.Fatal(err)
	}
	tag, msg := s.encrypt(padded)
	if s.confirmed {
		return seal.Session(nil, s.bundle.Mailbox, tag, msg), id, nil
	}
	raw := s.startRaw(tag, msg)
	return s.sealStart(raw), id, raw
}

// receive decrypts an envelope the responder sent on this session and
// returns its content; the session is confirmed from then on.
func (s *akSession) receive(env []byte) *sealedpb.Content {
	s.t.Helper()
	h, body, err := seal.Split(env)
	if err != nil {
		s.t.Fatal(err)
	}
	if !bytes.Equal(h.Mailbox, s.p.mailbox) {
		s.t.Fatalf("an envelope for mailbox %x reached %s", h.Mailbox, s.p.addr)
	}
	padded, err := s.r.Decrypt(h.Tag, body)
	if err != nil {
		s.t.Fatalf("%s: decrypting the responder's envelope: %v", s.p.addr, err)
	}
	plain, err := pad.Unpad(padded)
	if err != nil {
		s.t.Fatal(err)
	}
	c := new(sealedpb.Content)
	if err := pbstrict.Unmarshal(plain, c); err != nil {
		s.t.Fatal(err)
	}
	f := transcript.Fields{Seq: c.Seq, AckCount: c.AckCount, AckAbove: c.AckAbove, Prev: [32]byte(c.Prev), AckHash: [32]byte(c.AckHash)}
	if _, err := s.conv.Received(f, [16]byte(c.Id), plain); err != nil {
		s.t.Fatal(err)
	}
	s.confirmed = true
	return c
}

// akBundles returns the blobs of p's split bundle with n one-time prekeys
// (n blobs with one-time prekeys, then the last resort), each marshalled
// and parsed as a relay would serve it.
func akBundles(t testing.TB, p *party, n int) []*keys.Bundle {
	t.Helper()
	var out []*keys.Bundle
	b, err := p.NewBundle(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range b.Split() {
		raw, err := blob.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := keys.ParseBundle(raw, testBundleClock)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, parsed)
	}
	return out
}

// akPartyAt opens a device at addr on a faultyStore (Apply counted), with
// no receipt delay.
func akPartyAt(t testing.TB, addr sealpost.Address, c *clock, opts ...sealpost.Option) (*party, *faultyStore) {
	t.Helper()
	fs := &faultyStore{MemoryStore: sealpost.NewMemoryStore()}
	opts = append([]sealpost.Option{sealpost.WithClock(c.now), sealpost.WithReceiptDelay(0, 0)}, opts...)
	d, err := sealpost.Open(ctx, fs, addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &party{Device: d, addr: addr, store: fs.MemoryStore}, fs
}

// akErrs collects the secrets a test can reach and the text of every error
// it checks; at cleanup it fails the test if any error text shows a
// 16-byte window of a secret, raw, in hex or in Base64 (TESTING.md item 46).
type akErrs struct {
	t       testing.TB
	mu      sync.Mutex
	secrets map[string][]byte
	texts   []string
	errs    int
}

// akTrack returns the tracker of t.
func akTrack(t testing.TB) *akErrs {
	h := &akErrs{t: t, secrets: map[string][]byte{}}
	t.Cleanup(h.check)
	return h
}

// secret adds a secret to look for.
func (h *akErrs) secret(name string, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.secrets[name] = bytes.Clone(b)
}

// peer adds a hand-made peer's identity seed and, for each session, the
// session secret.
func (h *akErrs) peer(p *akPeer, sessions ...*akSession) {
	h.secret(p.addr.String()+" identity seed", p.id.Bytes())
	for i, s := range sessions {
		h.secret(fmt.Sprintf("%s session %d secret", p.addr, i), s.sk.Secret())
	}
}

// device adds the identity seed of a Device, found in its store by what it
// is (the 32 bytes that rebuild the device's public identity), wherever
// and however the store keeps it.
func (h *akErrs) device(p *party) {
	h.t.Helper()
	seed := akFindSeed(p.store.Snapshot(), p.Identity())
	if seed == nil {
		h.t.Fatalf("%s: no identity seed in the store (the hygiene check needs it)", p.addr)
	}
	h.secret(p.addr.String()+" identity seed", seed)
}

// akFindSeed returns the 32-byte window of a store value that rebuilds id.
// Length-prefixed candidates (a protobuf bytes field of 32) are tried
// first; then every window.
func akFindSeed(snap map[string][]byte, id keys.PublicIdentity) []byte {
	try := func(w []byte) bool {
		k, err := keys.NewIdentityFromSeed(w)
		return err == nil && k.Public().Equal(id)
	}
	for _, pass := range []bool{true, false} {
		for _, v := range snap {
			for i := 1; i+keys.IdentitySeedSize <= len(v); i++ {
				if pass && v[i-1] != keys.IdentitySeedSize {
					continue
				}
				if w := v[i : i+keys.IdentitySeedSize]; try(w) {
					return bytes.Clone(w)
				}
			}
		}
	}
	return nil
}

// fails checks that err is an error matching one of want (errors.Is), or
// any sentinel when want is empty, and records its text for the hygiene
// check.
func (h *akErrs) fails(t testing.TB, what string, err error, want ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	h.record(err)
	if len(want) == 0 {
		if !dmTyped(err) {
			t.Fatalf("%s: untyped error %v", what, err)
		}
		return
	}
	for _, w := range want {
		if errors.Is(err, w) {
			return
		}
	}
	t.Fatalf("%s: %v, want one of %v", what, err, want)
}

// record keeps an error's text in the forms an app might log it.
func (h *akErrs) record(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs++
	h.texts = append(h.texts, err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%x", err.Error()))
}

// check is the cleanup: no recorded error text shows a secret.
func (h *akErrs) check() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.errs == 0 || h.t.Failed() {
		return
	}
	if len(h.secrets) == 0 {
		h.t.Errorf("hygiene: %d errors checked against no secrets", h.errs)
		return
	}
	if name := akLeak(h.secrets, h.texts); name != "" {
		h.t.Errorf("hygiene: %s appears in an error string", name)
	}
	h.t.Logf("hygiene: %d errors checked against %d secrets", h.errs, len(h.secrets))
}

// akLeak reports the name of a secret some 16-byte window of which is in
// one of the texts, raw, in hex (either case), as a Go byte list, or in
// standard or URL Base64 at any alignment; "" if none is.
func akLeak(secrets map[string][]byte, texts []string) string {
	forms := map[string]string{}
	for name, secret := range secrets {
		for i := 0; i+16 <= len(secret); i++ {
			w := secret[i : i+16]
			for _, f := range []string{string(w), hex.EncodeToString(w), strings.ToUpper(hex.EncodeToString(w)), strings.Trim(fmt.Sprint(w), "[]")} {
				forms[f] = name
			}
			if i+18 <= len(secret) {
				// Characters 4..20 of the encoding of 18 bytes depend only
				// on those bytes, so they appear in any longer encoding
				// with the same alignment; the three offsets of i cover
				// every alignment.
				for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
					forms[enc.EncodeToString(secret[i : i+18])[4:20]] = name
				}
			}
		}
	}
	for _, text := range texts {
		for f, name := range forms {
			if strings.Contains(text, f) {
				return name
			}
		}
	}
	return ""
}

// TestAKLeakFinder checks the hygiene check itself: a planted secret in
// each encoding is found, and the error texts of a clean run are not
// flagged.
func TestAKLeakFinder(t *testing.T) {
	seed := keys.GenerateIdentity().Bytes()
	secrets := map[string][]byte{"seed": seed}
	for name, text := range map[string]string{
		"hex":            "x " + hex.EncodeToString(seed),
		"HEX":            fmt.Sprintf("%X", seed[3:25]),
		"base64":         base64.StdEncoding.EncodeToString(append([]byte{1}, seed...)),
		"base64 offset2": base64.URLEncoding.EncodeToString(append([]byte{1, 2}, seed...)),
		"raw base64":     base64.RawStdEncoding.EncodeToString(seed),
		"byte list":      fmt.Sprint(seed),
		"raw":            "x" + string(seed[5:21]),
	} {
		if akLeak(secrets, []string{text}) == "" {
			t.Errorf("%s: the planted seed is not found", name)
		}
	}
	if got := akLeak(secrets, []string{"sealpost: decryption failed", hex.EncodeToString(seed[:15])}); got != "" {
		t.Errorf("false alarm: %s", got)
	}
	// A Device's seed is found in its store.
	c := newClock()
	p := newParty(t, "seedfinder", c)
	if akFindSeed(p.store.Snapshot(), p.Identity()) == nil {
		t.Fatal("no identity seed found in a new device's store")
	}
}

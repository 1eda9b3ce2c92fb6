package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ratchet"
)

// RatchetMsg is a bare ratchet message: the routing tag (which travels in
// the envelope's routing header) and the message.
type RatchetMsg struct {
	Tag [ratchet.TagSize]byte
	Msg []byte
}

// RatchetPair is two bare ratchet sessions started from a random secret
// and the responder's X25519 key, as package keys would hand them over.
type RatchetPair struct{ s [2]*ratchet.Session }

// NewRatchetPair starts a bare ratchet conversation from a real session
// start (keys.Initiate and keys.Respond, not timed), so that the sessions
// carry the associated data a real session has. Bob cannot send until he
// has received; Warm makes both sides ready.
func NewRatchetPair() (*RatchetPair, error) {
	a, b, err := sessionKeys()
	if err != nil {
		return nil, err
	}
	alice, err := ratchet.NewInitiator(a.Secret(), a.AssociatedData(), a.PeerRatchetKey())
	if err != nil {
		return nil, err
	}
	bob, err := ratchet.NewResponder(b.Secret(), b.AssociatedData(), b.RatchetKey())
	if err != nil {
		return nil, err
	}
	return &RatchetPair{s: [2]*ratchet.Session{alice, bob}}, nil
}

// sessionKeys runs one sealpost session start and returns both sides'
// keys.
func sessionKeys() (alice, bob *keys.SessionKeys, err error) {
	e, err := NewRatchetEstablish()
	if err != nil {
		return nil, nil, err
	}
	return e.(*ratchetEstablish).keys()
}

func (p *RatchetPair) Seal(from int, pt []byte) (RatchetMsg, error) {
	tag, msg, err := p.s[from].Encrypt(pt)
	return RatchetMsg{tag, msg}, err
}

func (p *RatchetPair) Open(to int, m RatchetMsg) ([]byte, error) {
	return p.s[to].Decrypt(m.Tag, m.Msg)
}

// Wire counts the routing tag with the message: the recipient needs both.
func (p *RatchetPair) Wire(m RatchetMsg) int { return len(m.Tag) + len(m.Msg) }

var ctx = context.Background()

// DevicePair is two sealpost Devices on memory stores with a session
// between them (Alice started it from Bob's bundle).
type DevicePair struct {
	d    [2]*sealpost.Device
	addr [2]sealpost.Address
}

// NewDevicePair opens two devices with default options and starts a
// session from Alice to Bob (a split bundle with one one-time prekey of
// each kind). Warm completes the start.
func NewDevicePair() (*DevicePair, error) {
	p := &DevicePair{addr: [2]sealpost.Address{{User: "alice", Device: 1}, {User: "bob", Device: 1}}}
	for i := range p.d {
		d, err := sealpost.Open(ctx, sealpost.NewMemoryStore(), p.addr[i])
		if err != nil {
			return nil, err
		}
		p.d[i] = d
	}
	raw, err := publishDeviceBundle(p.d[Bob])
	if err != nil {
		return nil, err
	}
	b, err := keys.ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	if err := p.d[Alice].StartSession(ctx, p.addr[Bob], b); err != nil {
		return nil, err
	}
	return p, nil
}

// publishDeviceBundle returns what the relay hands out: the first blob of
// the device's split bundle with one one-time prekey of each kind.
func publishDeviceBundle(d *sealpost.Device) ([]byte, error) {
	b, err := d.NewBundle(ctx, 1)
	if err != nil {
		return nil, err
	}
	return b.Split()[0].MarshalBinary()
}

func (p *DevicePair) Seal(from int, pt []byte) ([]byte, error) {
	out, err := p.d[from].Send(ctx, p.addr[1-from], pt)
	if err != nil {
		return nil, err
	}
	// The app reports the post accepted, as it must for the outbox.
	if err := p.d[from].Sent(ctx, out); err != nil {
		return nil, err
	}
	return out.Envelope, nil
}

// Open receives the envelope and tells the device the result was handled
// (Done), as an app does once it has stored the message.
func (p *DevicePair) Open(to int, env []byte) ([]byte, error) {
	in, err := p.d[to].Receive(ctx, env)
	if err != nil {
		return nil, err
	}
	if err := p.d[to].Done(ctx, in.ID); err != nil {
		return nil, err
	}
	return in.Body, nil
}

func (p *DevicePair) Wire(env []byte) int { return len(env) }

// ratchetEstablish is the sealpost session start without the Device:
// ParseBundle (structure and five signatures), Initiate (four X25519, an
// ML-KEM-1024 encapsulation), the first ratchet message, the encoded
// session start; then ParseSessionStart, Respond (four X25519, a
// decapsulation, the key confirmation), the responder's ratchet and the
// first decrypt. The start is not sealed to the mailbox key (the Device
// line does that).
type ratchetEstablish struct {
	raw                []byte // Bob's published bundle
	alice, bob         *keys.IdentityPrivateKey
	aliceAddr, bobAddr keys.Address
	spk                *keys.SignedPrekey
	pq                 *keys.PQPrekey // the one-time PQ prekey in the bundle
	otp                *keys.OneTimePrekey
}

// NewRatchetEstablish makes Bob's keys and publishes his bundle with one
// one-time prekey of each kind (what Device.NewBundle(ctx, 1).Split()[0]
// carries). Respond consumes nothing, so Reset has nothing to do.
func NewRatchetEstablish() (Establisher, error) {
	e := &ratchetEstablish{
		alice: keys.GenerateIdentity(), bob: keys.GenerateIdentity(),
		aliceAddr: keys.Address{User: "alice", Device: 1}, bobAddr: keys.Address{User: "bob", Device: 1},
	}
	expires := time.Now().Add(sealpost.PrekeyLifetime)
	var err error
	if e.spk, err = keys.GenerateSignedPrekey(1, expires, e.bob); err != nil {
		return nil, err
	}
	last := keys.GeneratePQPrekey(2, true, e.bob)
	e.otp = keys.GenerateOneTimePrekey(3)
	e.pq = keys.GeneratePQPrekey(4, false, e.bob)
	mailbox := []byte("mailbox of bob")
	mk, err := keys.GenerateMailboxKey(5, e.bobAddr, mailbox, expires, e.bob)
	if err != nil {
		return nil, err
	}
	b := &keys.Bundle{
		Address: e.bobAddr, Mailbox: mailbox, Identity: e.bob.Public(),
		SignedPrekey: e.spk.Public(), PQPrekey: last.Public(),
		OneTimePrekeys:   []keys.PublicOneTimePrekey{e.otp.Public()},
		OneTimePQPrekeys: []keys.PublicPQPrekey{e.pq.Public()},
		MailboxKey:       mk.Public(),
	}
	if e.raw, err = b.MarshalBinary(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *ratchetEstablish) Reset() error { return nil }

// keys runs the key agreement alone.
func (e *ratchetEstablish) keys() (alice, bob *keys.SessionKeys, err error) {
	b, err := keys.ParseBundle(e.raw)
	if err != nil {
		return nil, nil, err
	}
	start, alice, err := keys.Initiate(e.alice, e.aliceAddr, b)
	if err != nil {
		return nil, nil, err
	}
	bob, err = keys.Respond(e.bob, e.bobAddr, start, e.spk, e.pq, e.otp)
	return alice, bob, err
}

func (e *ratchetEstablish) Establish(pt []byte) ([]byte, int, error) {
	// Alice: from the published bytes to the encoded start.
	b, err := keys.ParseBundle(e.raw)
	if err != nil {
		return nil, 0, err
	}
	start, sk, err := keys.Initiate(e.alice, e.aliceAddr, b)
	if err != nil {
		return nil, 0, err
	}
	a, err := ratchet.NewInitiator(sk.Secret(), sk.AssociatedData(), sk.PeerRatchetKey())
	if err != nil {
		return nil, 0, err
	}
	tag, msg, err := a.Encrypt(pt)
	if err != nil {
		return nil, 0, err
	}
	start.Payload = append(tag[:], msg...)
	raw, err := start.MarshalBinary()
	if err != nil {
		return nil, 0, err
	}
	// Bob: from the bytes to the first plaintext.
	m, err := keys.ParseSessionStart(raw)
	if err != nil {
		return nil, 0, err
	}
	if m.SignedPrekeyID != e.spk.ID() || m.PQPrekeyID != e.pq.ID() || !m.HasOneTimePrekey || m.OneTimePrekeyID != e.otp.ID() {
		return nil, 0, errors.New("session start names other prekeys")
	}
	bk, err := keys.Respond(e.bob, e.bobAddr, m, e.spk, e.pq, e.otp)
	if err != nil {
		return nil, 0, err
	}
	r, err := ratchet.NewResponder(bk.Secret(), bk.AssociatedData(), bk.RatchetKey())
	if err != nil {
		return nil, 0, err
	}
	if len(m.Payload) < ratchet.TagSize {
		return nil, 0, errors.New("short payload")
	}
	got, err := r.Decrypt([ratchet.TagSize]byte(m.Payload), m.Payload[ratchet.TagSize:])
	return got, len(raw), err
}

// deviceEstablish is the whole Device path of a first contact: the
// published bundle parsed, StartSession, Send (the session start and first
// message sealed to Bob's X-Wing mailbox key), Receive and Done. Both
// devices are new for every start (Reset, not timed), so that no state
// accumulates across iterations.
type deviceEstablish struct {
	alice, bob *sealpost.Device
	bobAddr    sealpost.Address
	raw        []byte
}

// NewDeviceEstablish returns the Device session-start workload.
func NewDeviceEstablish() (Establisher, error) {
	return &deviceEstablish{bobAddr: sealpost.Address{User: "bob", Device: 1}}, nil
}

func (e *deviceEstablish) Reset() error {
	var err error
	if e.alice, err = sealpost.Open(ctx, sealpost.NewMemoryStore(), sealpost.Address{User: "alice", Device: 1}); err != nil {
		return err
	}
	if e.bob, err = sealpost.Open(ctx, sealpost.NewMemoryStore(), e.bobAddr); err != nil {
		return err
	}
	e.raw, err = publishDeviceBundle(e.bob)
	return err
}

func (e *deviceEstablish) Establish(pt []byte) ([]byte, int, error) {
	b, err := keys.ParseBundle(e.raw)
	if err != nil {
		return nil, 0, err
	}
	if err := e.alice.StartSession(ctx, e.bobAddr, b); err != nil {
		return nil, 0, err
	}
	out, err := e.alice.Send(ctx, e.bobAddr, pt)
	if err != nil {
		return nil, 0, err
	}
	if err := e.alice.Sent(ctx, out); err != nil {
		return nil, 0, err
	}
	in, err := e.bob.Receive(ctx, out.Envelope)
	if err != nil {
		return nil, 0, err
	}
	if err := e.bob.Done(ctx, in.ID); err != nil {
		return nil, 0, err
	}
	if in.Kind != sealpost.KindMessage {
		return nil, 0, fmt.Errorf("received kind %v", in.Kind)
	}
	return in.Body, len(out.Envelope), nil
}

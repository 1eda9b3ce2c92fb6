package sealpost

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/statepb"
)

// sealScratch is where Send encodes and pads a content before encrypting
// it, reused by every send: the buffer grows to the largest content sent.
type sealScratch struct {
	buf       []byte
	prev, ack [32]byte
}

// newBatch returns an empty batch, reusing the last one committed: a
// message's batch carries its first operations inline, and allocating it
// for every commit was a fifth of the bytes a message pair allocated.
func (d *Device) newBatch() *Batch {
	if b := d.spare; b != nil {
		d.spare = nil
		return b
	}
	return new(Batch)
}

// recycle keeps b for the next newBatch once its Apply has returned. The
// store keeps no reference to b (Store's contract); its values now belong
// to the store, so b forgets them.
func (d *Device) recycle(b *Batch) {
	clear(b.ops)
	b.ops = b.ops[:0]
	d.spare = b
}

// deviceVersion is the version of the saved device and peer records. Any
// other is ErrUnsupportedVersion; a later version will migrate this one.
// Version 4 (store layout 4) holds ratchet state version 3 (ratchet
// message version 3); layouts 2 and 3 are refused.
const deviceVersion = 4

// Store keys. Every record a Device writes lives under one of these.
const (
	keyDevice     = "device"
	keyPeerPrefix = "peer/"
	keyKeptPrefix = "kept/"
	keySeenPrefix = "seen/"
	// keyKeptIndexPrefix holds each peer's list of kept results.
	keyKeptIndexPrefix = "keptidx/"
	// A session's records: the session itself, its ratchet state, its
	// pending start, its transcript log blocks and its queued-receipt
	// blocks.
	keySessionPrefix = "sess/"
	keyRatchetPrefix = "rat/"
	keyStartPrefix   = "start/"
	keyLogPrefix     = "tlog/"
	keyQueuePrefix   = "rq/"
)

// Device is one device's identity, prekeys, sessions, transcripts and
// receipt queues behind one small API (DESIGN section 4). It is safe for
// concurrent use; operations are serialised. Every change of state is
// written to the Store before the operation returns (one Apply per envelope
// sent or received, one per Done), so a crash never loses an accepted
// message nor reuses a key.
type Device struct {
	mu    sync.Mutex
	store Store
	self  Address
	opts  options

	id  *keys.IdentityPrivateKey
	rec *statepb.Device // as last committed, prekeys excluded
	pre *prekeys

	peers   map[Address]*peer
	tags    map[[16]byte]*peer
	kept    map[MessageID]*peer
	keptEnv map[[32]byte]*peer // envelope id (envelopeID) of every kept result
	// active lists the most recently used sessions, newest first, at most
	// maxSlowPath: those an envelope with an unknown tag is tried on.
	active     []activeSession
	slowTrials int    // sessions tried on the slow path, for tests
	spare      *Batch // a batch whose Apply returned, for the next commit
	sealing    sealScratch
	// gone and fresh are buffers for diffTags, reused.
	gone, fresh [][16]byte
}

// Open loads the device for self from the store, or creates it (a new
// identity, signed prekey, last-resort PQ prekey and mailbox key) when the
// store holds none. It returns ErrUnsupportedVersion or ErrMalformed for a
// stored device it cannot read, and the store's error if it fails.
func Open(ctx context.Context, s Store, self Address, opts ...Option) (*Device, error) {
	if s == nil {
		panic("sealpost: Open with a nil Store")
	}
	d := &Device{store: s, self: self, opts: defaultOptions(),
		peers: map[Address]*peer{}, tags: map[[16]byte]*peer{}, kept: map[MessageID]*peer{},
		keptEnv: map[[32]byte]*peer{}}
	for _, o := range opts {
		o(&d.opts)
	}
	raw, err := getRecord(ctx, s, keyDevice)
	switch {
	case errors.Is(err, ErrNotFound):
		return d, d.create(ctx)
	case err != nil:
		return nil, err
	}
	if err := d.load(ctx, raw); err != nil {
		return nil, err
	}
	return d, nil
}

// create makes and saves a new device.
func (d *Device) create(ctx context.Context) error {
	if err := validAddress(d.self); err != nil {
		return err
	}
	mailbox := d.opts.mailbox
	if mailbox == nil {
		mailbox = make([]byte, 16)
		rand.Read(mailbox)
	}
	d.id = keys.GenerateIdentity()
	d.rec = &statepb.Device{Version: deviceVersion, User: d.self.User, Device: d.self.Device,
		IdentitySeed: d.id.Bytes(), Identity: d.id.Public().Bytes(), Mailbox: mailbox}
	pre, err := (&prekeys{}).rotated(d.nextID, d.id, d.self, mailbox)
	if err != nil {
		return err
	}
	return d.commitDevice(ctx, pre)
}

// load decodes a saved device and all its peers.
func (d *Device) load(ctx context.Context, raw []byte) error {
	rec := new(statepb.Device)
	if err := decodeVersioned(raw, rec, func() uint32 { return rec.Version }, "saved device"); err != nil {
		return err
	}
	if rec.User != d.self.User || rec.Device != d.self.Device {
		return fmt.Errorf("%w: the store holds device %s", ErrMalformed, Address{User: rec.User, Device: rec.Device})
	}
	id, err := keys.NewIdentityFromSeed(rec.IdentitySeed)
	if err != nil {
		return err
	}
	if !ct.Equal(id.Public().Bytes(), rec.Identity) {
		return fmt.Errorf("%w: saved identity seed does not match the saved identity", ErrMalformed)
	}
	pre, err := decodePrekeys(rec, id, d.self)
	if err != nil {
		return err
	}
	d.id, d.pre, d.rec = id, pre, rec
	var all []activeSession
	for _, key := range rec.Peers {
		p, err := d.loadPeer(ctx, key)
		if err != nil {
			return err
		}
		for _, s := range p.sessions {
			all = append(all, activeSession{p, s})
		}
		d.peers[p.addr] = p
		d.index(p)
	}
	// The sessions that received last are taken as the most recently used.
	slices.SortStableFunc(all, func(a, b activeSession) int {
		return cmp.Compare(b.s.meta.LastReceivedUnixNano, a.s.meta.LastReceivedUnixNano)
	})
	d.active = all[:min(len(all), maxSlowPath)]
	return nil
}

// nextID hands out prekey ids; the counter is saved with the device.
func (d *Device) nextID() uint32 {
	d.rec.NextPrekeyId++
	return d.rec.NextPrekeyId
}

// putDevice adds the device record with the given prekeys, and the store
// keys of any new peers, to b.
func (d *Device) putDevice(b *Batch, pre *prekeys, newPeers ...string) error {
	rec := cloneDevice(d.rec)
	rec.Peers = append(rec.Peers, newPeers...)
	pre.encode(rec)
	raw, err := pbstrict.Marshal(rec)
	if err != nil {
		return err
	}
	putRecord(b, keyDevice, raw)
	return nil
}

func cloneDevice(r *statepb.Device) *statepb.Device {
	return &statepb.Device{Version: r.Version, User: r.User, Device: r.Device,
		IdentitySeed: r.IdentitySeed, Identity: r.Identity, Mailbox: r.Mailbox, NextPrekeyId: r.NextPrekeyId,
		Peers: append([]string(nil), r.Peers...)}
}

// Identity returns this device's public identity.
func (d *Device) Identity() keys.PublicIdentity { return d.id.Public() }

// Mailbox returns this device's mailbox id: what the relay routes on. The
// app registers it with its relay.
func (d *Device) Mailbox() []byte { return append([]byte(nil), d.rec.Mailbox...) }

// Address returns the address the device was opened for.
func (d *Device) Address() Address { return d.self }

func validAddress(a Address) error {
	if a.User == "" || len(a.User) > keys.MaxUserLength {
		return fmt.Errorf("%w: address", ErrMalformed)
	}
	return nil
}

// String prints the device's address only: a Device holds private keys.
func (d *Device) String() string { return "sealpost.Device{" + d.self.String() + "}" }

// GoString prints the device's address only.
func (d *Device) GoString() string { return d.String() }

// Format prints the device's address only, whatever the verb.
func (d *Device) Format(f fmt.State, _ rune) { fmt.Fprint(f, d.String()) }

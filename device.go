package sealpost

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/sealpost/sealpost/internal/blocklist"
	"github.com/sealpost/sealpost/internal/ct"
	"github.com/sealpost/sealpost/internal/outbox"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/internal/seen"
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

// Device is one device's identity, prekeys, sessions, transcripts and
// receipt queues behind one small API (docs/SPEC.md §15). It is safe for
// concurrent use; operations are serialised. Every change of state is
// written to the Store before the operation returns (one Apply per envelope
// sent or received, one per Done), so a crash never loses an accepted
// message nor reuses a key.
//
// Methods that may read or write the Store take a context; called with one
// already cancelled, they return its error and change nothing. The others
// (Address, Identity, Mailbox, Created, Peers, PeerIdentity,
// UnconfirmedIdentities, Findings, KEMProgress, SafetyNumber) only read
// what the Device holds in memory and never block on the Store.
type Device struct {
	mu    sync.Mutex
	store Store
	self  Address
	opts  options

	id  *keys.IdentityPrivateKey
	rec *statepb.Device // as last committed, prekeys excluded
	pre *prekeys

	// peers holds the pinned peer of each address, others the unconfirmed
	// identities at an address (identity.go), dir every peer by directory
	// slot and pending the pending ones, oldest first (peerdir.go).
	peers   map[Address]*peer
	others  map[Address][]*peer
	dir     []*peer
	pending []*peer
	seen    map[uint32]*seen.Starts // accepted starts by signed prekey, read on first use
	blocked blocklist.List
	box     *outbox.Box // the envelopes not yet reported Sent (outbox.go)
	created bool        // Open made a new identity
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
	// batching is set during a ReceiveBatch, and keptDirty lists the peers
	// whose kept index it writes at its end.
	batching  bool
	keptDirty []*peer
	// accounts holds the pinned accounts read so far (account.go), ours
	// included; a nil entry: the store holds none for the user.
	accounts map[string]*account
	// replies finds the peer a reply mailbox of ours is for (mailboxes.go).
	replies map[string]*peer
}

// Open loads the device for self from the store, or creates it (a new
// identity, signed prekey, last-resort PQ prekey and mailbox key) when the
// store holds none; Created reports which, and WithExisting refuses to
// create. It returns ErrUnsupportedVersion or ErrMalformed for a
// stored device it cannot read, and the store's error if it fails.
func Open(ctx context.Context, s Store, self Address, opts ...Option) (*Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s == nil {
		panic("sealpost: Open with a nil Store")
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	d := newDevice(s, self, o)
	raw, err := getRecord(ctx, s, record.KeyDevice)
	switch {
	case errors.Is(err, ErrNotFound) && d.opts.existing:
		return nil, fmt.Errorf("%w: the store holds no device (WithExisting)", ErrNotFound)
	case errors.Is(err, ErrNotFound):
		if err := d.create(ctx); err != nil {
			return nil, err
		}
		d.created = true
		return d, nil
	case err != nil:
		return nil, err
	}
	if err := d.load(ctx, raw); err != nil {
		return nil, err
	}
	return d, nil
}

// newDevice returns a device with nothing loaded.
func newDevice(s Store, self Address, o options) *Device {
	return &Device{store: s, self: self, opts: o,
		peers: map[Address]*peer{}, others: map[Address][]*peer{}, seen: map[uint32]*seen.Starts{},
		tags: map[[16]byte]*peer{}, kept: map[MessageID]*peer{}, keptEnv: map[[32]byte]*peer{},
		accounts: map[string]*account{}, replies: map[string]*peer{}}
}

// adoptState takes the loaded state of fresh, a device on the same store
// (reload); d keeps its lock, store, address and options.
func (d *Device) adoptState(fresh *Device) {
	d.id, d.rec, d.pre = fresh.id, fresh.rec, fresh.pre
	d.peers, d.others, d.dir, d.pending = fresh.peers, fresh.others, fresh.dir, fresh.pending
	d.seen, d.blocked, d.box = fresh.seen, fresh.blocked, fresh.box
	d.tags, d.kept, d.keptEnv, d.active = fresh.tags, fresh.kept, fresh.keptEnv, fresh.active
	d.spare, d.gone, d.fresh = nil, nil, nil
	d.accounts, d.replies = fresh.accounts, fresh.replies
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
	d.rec = &statepb.Device{Version: record.Layout, User: d.self.User, Device: d.self.Device,
		IdentitySeed: d.id.Bytes(), Identity: d.id.Public().Bytes(), Mailbox: mailbox}
	pre, err := (&prekeys{}).rotated(d.nextID, d.id, d.self, mailbox, d.opts.now())
	if err != nil {
		return err
	}
	if err := d.loadOutbox(ctx); err != nil { // empty, unless the store holds a stray outbox
		return err
	}
	return d.commitDevice(ctx, pre)
}

// load decodes a saved device and all its peers.
func (d *Device) load(ctx context.Context, raw []byte) error {
	rec := new(statepb.Device)
	err := record.DecodeVersioned(raw, rec, func() uint32 { return rec.Version }, "saved device")
	clear(raw) // it holds the private keys; rec and the keys decoded from it hold their own copies
	if err != nil {
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
	clearPrekeyRecords(rec) // the keys in pre hold them now
	if err != nil {
		return err
	}
	d.id, d.pre, d.rec = id, pre, rec
	if err := d.loadBlocklist(ctx); err != nil {
		return err
	}
	if err := d.loadOutbox(ctx); err != nil {
		return err
	}
	if err := d.loadPeers(ctx); err != nil {
		return err
	}
	if _, err := d.accountOf(ctx, d.self.User); err != nil {
		return err
	}
	var all []activeSession
	for _, p := range d.dir {
		for _, s := range p.sessions {
			all = append(all, activeSession{p, s})
		}
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

// putDevice adds the device record with the given prekeys to b. The
// prekeys' seeds are copied into the record only to be encoded, and
// cleared after.
func (d *Device) putDevice(b *Batch, pre *prekeys) error {
	rec := &statepb.Device{Version: d.rec.Version, User: d.rec.User, Device: d.rec.Device,
		IdentitySeed: d.rec.IdentitySeed, Identity: d.rec.Identity, Mailbox: d.rec.Mailbox,
		NextPrekeyId: d.rec.NextPrekeyId, AccountSeed: d.rec.AccountSeed, LinkSecret: d.rec.LinkSecret}
	pre.encode(rec)
	raw, err := pbstrict.Marshal(rec)
	clearPrekeyRecords(rec)
	if err != nil {
		return err
	}
	putRecord(b, record.KeyDevice, raw)
	return nil
}

// Created reports whether Open created this device (a new identity) rather
// than loading it. An app that expected to load one (it has opened this
// store before) should stop and tell the user rather than go on: peers
// would see a new identity, as after a reinstall. WithExisting makes Open
// refuse instead.
func (d *Device) Created() bool { return d.created }

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

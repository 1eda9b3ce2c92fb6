package sealpost

import (
	"context"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/contentwire"
	"github.com/sealpost/sealpost/internal/pad"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
	"github.com/sealpost/sealpost/proto/statepb"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// maxSessions bounds the sessions kept per peer: the current one and a few
// archived ones that may still receive late messages.
const maxSessions = 4

// Outgoing is an envelope ready for the relay.
type Outgoing struct {
	To       Address
	Mailbox  []byte    // what the relay routes on
	Envelope []byte    // the bytes to hand to the relay
	ID       MessageID // the message id, for matching receipts; zero for receipts

	slot uint64 // its outbox slot, valid when boxed
	key  string // the slot's store key, once put
	// boxed: it is in the outbox until Sent (every Outgoing a Device
	// returns is).
	boxed bool
}

// StartSession starts a session with the device at to from its bundle
// (keys.ParseBundle has verified it; StartSession verifies it again, with
// the device's clock). The new session becomes the current one; until the
// peer replies, every envelope sent on it carries the session start, so
// losing the first one loses nothing. It returns ErrMalformed when the
// bundle is for another address, ErrBadSignature for a bad bundle,
// ErrExpired for an expired one, and, in both identity modes,
// ErrIdentityChanged (an IdentityChangedError) when the bundle's identity
// is not the one pinned for to: nothing is sent to an identity the app has
// not accepted, so call Trust with it first.
func (d *Device) StartSession(ctx context.Context, to Address, b *keys.Bundle) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.Address != to {
		return fmt.Errorf("%w: bundle is for %s, not %s", ErrMalformed, b.Address, to)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := d.accountOf(ctx, to.User)
	if err != nil {
		return err
	}
	if err := a.vouch(to, b.Identity); err != nil {
		return err // whatever bundle the relay hands out
	}
	p, isNew, err := d.peerToStart(to, b.Identity)
	if err != nil {
		return err
	}
	s, err := d.initiate(p, b)
	if err != nil {
		return err
	}
	return d.commitPeer(ctx, p, isNew, nil, nil, s)
}

// initiate starts a session with p from its bundle b and makes it p's
// current session, in memory: the caller commits p.
func (d *Device) initiate(p *peer, b *keys.Bundle) (*session, error) {
	start, sk, err := keys.Initiate(d.id, d.self, b, keys.WithClock(d.opts.now))
	if err != nil {
		return nil, err
	}
	secret := sk.Secret()
	r, err := ratchet.NewInitiator(secret, sk.AssociatedData(), sk.PeerRatchetKey())
	clear(secret)
	sk.Erase()
	if err != nil {
		return nil, err
	}
	startRaw, err := start.MarshalBinary()
	if err != nil {
		return nil, err
	}
	bundleRaw, err := b.MarshalBinary()
	if err != nil {
		return nil, err
	}
	now := d.opts.now().UnixNano()
	s := newSession(p.name, r, &sessionMeta{
		BaseKey: start.BaseKey(), Initiator: true, CreatedUnixNano: now, LastReceivedUnixNano: now,
	})
	s.meta.Announce = p.hasStale() // a session after a restore says what the old ones hold
	s.pending = &statepb.PendingStart{SessionStart: startRaw, PeerBundle: bundleRaw}
	s.start, s.bundle = start, b
	// Starting a session answers the peer: pinned, no longer pending.
	p.rec.Unconfirmed, p.rec.PendingSinceUnixNano = false, 0
	p.rec.Mailbox = append([]byte(nil), b.Mailbox...)
	p.sessions = append([]*session{s}, p.sessions...)
	p.trimSessions()
	return s, nil
}

// trimSessions drops the oldest archived sessions beyond maxSessions.
func (p *peer) trimSessions() {
	if len(p.sessions) > maxSessions {
		p.sessions = p.sessions[:maxSessions]
	}
}

// Send encrypts body, with the pointers of any attachments (files already
// uploaded with attach.Upload; at most MaxAttachments), for the current
// session of the identity pinned for to (never an unconfirmed one: see
// Trust) and returns the envelope to hand to the relay, after the new
// state is saved; it stays in the outbox until Sent. Receipts queued for the peer
// ride along. Sending answers a pending peer: it is no longer evicted. It
// returns ErrNoSession when there is no session (StartSession first) or
// the session has received nothing for longer than the maximum age, and
// ErrTooLarge for a body over MaxBodySize or too many attachments, and
// ErrMalformed for an invalid attachment pointer. If the store fails, no envelope
// comes out and no key is ever reused.
func (d *Device) Send(ctx context.Context, to Address, body []byte, attachments ...*attach.Pointer) (*Outgoing, error) {
	return d.send(ctx, to, newMessageID(), body, attachments)
}

// Resend sends body and attachments again under the id of a message sent
// before, as Send does otherwise: for the ids of a PeerRestored finding,
// whose messages never reached the peer's restored state. A receiver that
// already holds id reports the message Repeated instead of new. It returns
// ErrMalformed for the zero id, and the errors of Send.
func (d *Device) Resend(ctx context.Context, to Address, id MessageID, body []byte, attachments ...*attach.Pointer) (*Outgoing, error) {
	if id == (MessageID{}) {
		return nil, fmt.Errorf("%w: resend of the zero message id", ErrMalformed)
	}
	return d.send(ctx, to, id, body, attachments)
}

func (d *Device) send(ctx context.Context, to Address, id MessageID, body []byte, attachments []*attach.Pointer) (*Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(body) > MaxBodySize {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrTooLarge, MaxBodySize)
	}
	ptrs, err := encodePointers(attachments)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[to]
	if p == nil || len(p.sessions) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoSession, to)
	}
	s := p.sessions[0]
	if s.meta.Stale {
		return nil, fmt.Errorf("%w: the sessions with %s predate a restore; start a new one from its current bundle", ErrNoSession, to)
	}
	if age := d.opts.now().UnixNano() - s.meta.LastReceivedUnixNano; age > d.opts.sessionMaxAge.Nanoseconds() {
		return nil, fmt.Errorf("%w: session with %s is past its maximum age", ErrNoSession, to)
	}
	p.rec.PendingSinceUnixNano = 0 // answered (rewound if the commit fails)
	c := &sealedpb.Content{Version: contentVersion, Id: id[:], Kind: uint32(KindMessage), Body: body, Attachments: ptrs}
	takeReceipts(s, c)
	return d.seal(ctx, p, s, c)
}

// takeReceipts moves the session's queued receipts into c: at most
// maxReceiptBatch, read receipts first.
func takeReceipts(s *session, c *sealedpb.Content) {
	q := s.meta.Receipts
	if q == nil || s.queued() == 0 {
		return
	}
	read := q.Read
	if len(read) > maxReceiptBatch {
		read, q.Read = read[:maxReceiptBatch], read[maxReceiptBatch:]
	} else {
		q.Read = nil
	}
	delivered := s.delivered.Take(maxReceiptBatch - len(read))
	if s.queued() == 0 {
		s.meta.Receipts = nil
	}
	hash, err := s.conv.ReceiptHash(toArrays(append(idsFrom(delivered), idsFrom(read)...)))
	if err != nil {
		// The transcript no longer knows some ids (they fell out of its
		// log); send the receipts without them rather than not at all.
		delivered, read = knownOnly(s.conv, delivered), knownOnly(s.conv, read)
		if hash, err = s.conv.ReceiptHash(toArrays(append(idsFrom(delivered), idsFrom(read)...))); err != nil {
			return
		}
	}
	c.Delivered, c.Read, c.ReceiptHash = delivered, read, hash[:]
}

func idsFrom(raw [][]byte) []MessageID {
	out := make([]MessageID, len(raw))
	for i := range raw {
		out[i] = MessageID(raw[i])
	}
	return out
}

// knownOnly keeps the ids the transcript can still hash.
func knownOnly(conv *transcript.Conversation, raw [][]byte) [][]byte {
	var out [][]byte
	for _, r := range raw {
		if _, err := conv.ReceiptHash([][16]byte{[16]byte(r)}); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// seal fills in c's transcript fields, encrypts it on s, frames the
// envelope and commits. On a failed commit the peer is restored, except
// that the ratchet keeps the key it spent, so no key is used twice.
func (d *Device) seal(ctx context.Context, p *peer, s *session, c *sealedpb.Content) (*Outgoing, error) {
	if err := d.accountFields(ctx, d.own(), p, c); err != nil {
		return nil, err
	}
	slot, err := d.box.Reserve(1) // before any key is spent
	if err != nil {
		return nil, err
	}
	b := d.newBatch()
	out, err := d.sealInto(b, p, s, c, slot)
	if err != nil {
		d.recycle(b)
		d.restore(p, s) // keeping the spent key spent
		return nil, err
	}
	if err := d.commitPeerKeeping(ctx, p, false, nil, b, nil, s, s); err != nil { // restores p
		return nil, err
	}
	d.box.AddKeyed(slot, out.key)
	return out, nil
}

// accountFields fills in c's account fields for p (docs/SPEC.md §22.4),
// with own as our account (the pinned one, or the one a link or removal
// is about to commit): the versions of our list and of p's account's list
// that we hold, and our whole list while p has not said it holds its
// version. It returns ErrUnlistedDevice for a device its account's pinned
// list does not name: nothing is encrypted to it.
func (d *Device) accountFields(ctx context.Context, own *account, p *peer, c *sealedpb.Content) error {
	pa := own
	if p.addr.User != d.self.User {
		var err error
		if pa, err = d.accountOf(ctx, p.addr.User); err != nil {
			return err
		}
	}
	if err := pa.vouch(p.addr, p.identity); err != nil {
		return err
	}
	c.OwnList, c.PeerList = own.version(), pa.version()
	if own != nil && own.list != nil && (p.rec.ListKnown < own.list.Version || c.Kind == uint32(KindAccount)) {
		c.DeviceList = own.list.Bytes()
	}
	return nil
}

// sealInto fills in c's transcript fields, encrypts it on s, frames the
// envelope and adds its records and its outbox entry (in slot) to b. On
// an error the caller restores p, keeping s's spent key spent.
func (d *Device) sealInto(b *Batch, p *peer, s *session, c *sealedpb.Content, slot uint64) (*Outgoing, error) {
	c.ReplyMailbox = d.replyFor(p)
	if !s.confirmed() {
		c.SenderMailbox = d.rec.Mailbox
		if d.opts.replies {
			c.SenderMailbox = p.rec.ReplyMailbox // replyFor made it
		}
	}
	if s.meta.Announce {
		c.Resume = p.resumePoints()
	}
	var env []byte
	f := s.conv.Next()
	// The content is encoded, padded and encrypted in the device's scratch
	// space (under d.mu), which nothing keeps past this call: Encrypt
	// writes a new message and the transcript keeps only a hash.
	sc := &d.sealing
	sc.prev, sc.ack = f.Prev, f.AckHash
	c.Seq, c.Prev, c.AckCount, c.AckHash, c.AckAbove = f.Seq, sc.prev[:], f.AckCount, sc.ack[:], f.AckAbove
	if size := pad.Size(contentwire.Size(c)); cap(sc.buf) < size {
		sc.buf = make([]byte, 0, size)
	}
	plain := contentwire.Append(sc.buf[:0], c)
	padded := pad.Pad(plain)
	defer clear(padded) // the plaintext does not outlive the call
	tag, msg, err := s.r.Encrypt(padded)
	if err == nil {
		env, err = frame(p, s, tag, msg)
	}
	if err == nil {
		err = s.conv.Sent(f, [16]byte(c.Id), plain)
	}
	if err != nil {
		return nil, err
	}
	out := &Outgoing{To: p.addr, Mailbox: append([]byte(nil), p.rec.Mailbox...), Envelope: env, slot: slot, boxed: true}
	if c.Kind == uint32(KindMessage) {
		out.ID = MessageID(c.Id)
	}
	if err := d.putOutgoing(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// frame builds the envelope: a first-contact envelope carrying the session
// start while the peer has not replied, a session envelope after.
func frame(p *peer, s *session, tag [16]byte, msg []byte) ([]byte, error) {
	if s.confirmed() {
		// Sized exactly: appending the header then the message to nil
		// would grow the buffer four times.
		dst := make([]byte, 0, wire.HeaderSize(len(p.rec.Mailbox))+len(msg))
		return seal.Session(dst, p.rec.Mailbox, tag, msg), nil
	}
	if s.start == nil || s.bundle == nil {
		// Parsed once per process: parsing verifies four signatures.
		start, err := keys.ParseSessionStart(s.pending.SessionStart)
		if err != nil {
			return nil, err
		}
		// The bundle was checked when the session started; it is read as
		// of then, since the start rides on every send until the reply,
		// also past the bundle's expiry.
		created := time.Unix(0, s.meta.CreatedUnixNano)
		b, err := keys.ParseBundle(s.pending.PeerBundle, keys.WithClock(func() time.Time { return created }))
		if err != nil {
			return nil, err
		}
		s.start, s.bundle = start, b
	}
	// The ratchet tag, then the message (a new slice: slicing tag itself
	// would move it to the heap on every call, the session path included).
	s.start.Payload = append(append(make([]byte, 0, len(tag)+len(msg)), tag[:]...), msg...)
	raw, err := s.start.MarshalBinary()
	s.start.Payload = nil
	if err != nil {
		return nil, err
	}
	return seal.FirstContact(s.bundle, raw)
}

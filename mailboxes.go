package sealpost

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/envelope"
)

// Reply mailboxes (docs/SPEC.md §15.13), with WithReplyMailboxes.
//
// Sealed sender hides who starts a conversation, but the replies would go
// to the starter's published mailbox, and a relay that sees which
// mailboxes answer which links them after a few messages (the statistical
// disclosure attack). So each side gives the other a fresh mailbox for
// their conversation inside the seal: the initiator in its session start
// (sender_mailbox), and both in every content (reply_mailbox, with a
// generation). After the first contact nothing of the conversation goes
// to either published mailbox. Each mailbox has an owner key of its own
// (Ed25519, unrelated to the identity), which the app registers with the
// relay so that only this device reads it; the relay cannot tell that two
// mailboxes belong to one device by their keys.
//
// A reply mailbox is replaced after the rotation period (and on
// RotateMailboxes); the one it replaced still receives for the grace
// period, so that envelopes in flight arrive, and then is refused.
//
// Decision: the mailbox and its owner key live in the peer record, so a
// new conversation writes no other record and nothing grows with the
// number of peers; the Device lists them all in memory (Mailboxes).
//
// Decision: off by default. An app that reads only its published mailbox
// would lose every reply; the option is for apps that read every mailbox
// Mailboxes lists (as examples/chat does).

// Reply-mailbox defaults.
const (
	// DefaultMailboxRotation is how long a reply mailbox is used before it
	// is replaced.
	DefaultMailboxRotation = 7 * 24 * time.Hour
	// MailboxGrace is how long a replaced reply mailbox still receives.
	MailboxGrace = 14 * 24 * time.Hour
	// replyMailboxSize is the size of a reply mailbox id we make.
	replyMailboxSize = 16
)

// Mailbox is one mailbox of this device: where envelopes for it arrive.
type Mailbox struct {
	ID []byte
	// Owner is the key the app registers with the relay as the mailbox's
	// owner and signs its reads with; nil for the published mailbox, whose
	// owner key the app keeps.
	Owner ed25519.PrivateKey
	// Expires is when a replaced reply mailbox stops receiving (zero: in
	// use).
	Expires time.Time
}

// WithReplyMailboxes turns on reply mailboxes: each conversation gets a
// fresh mailbox of ours, replaced after rotate (DefaultMailboxRotation when
// not positive). The app must then read every mailbox Mailboxes lists.
func WithReplyMailboxes(rotate time.Duration) Option {
	return func(o *options) {
		o.replies = true
		if rotate > 0 {
			o.mailboxRotation = rotate
		} else {
			o.mailboxRotation = DefaultMailboxRotation
		}
	}
}

// replyState is what of the reply-mailbox fields decides whether the peer
// record changed.
func (p *peer) replyState() replyState {
	return replyState{p.rec.ReplyGen, p.rec.PeerMailboxGen, p.rec.OldReplyExpiresUnixNano}
}

// replyState is the part of a peer's reply-mailbox fields that changes
// whenever any of them does.
type replyState struct {
	gen, peerGen uint64
	oldExpires   int64
}

// newReplyMailbox gives p a fresh reply mailbox of ours, keeping the
// current one for the grace period; in memory, committed with p.
func (d *Device) newReplyMailbox(p *peer, now time.Time) {
	id := make([]byte, replyMailboxSize)
	rand.Read(id)
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	if len(p.rec.ReplyMailbox) > 0 {
		p.rec.OldReplyMailbox, p.rec.OldReplyOwner = p.rec.ReplyMailbox, p.rec.ReplyOwner
		p.rec.OldReplyExpiresUnixNano = now.Add(MailboxGrace).UnixNano()
	}
	p.rec.ReplyMailbox, p.rec.ReplyOwner = id, seed
	p.rec.ReplyCreatedUnixNano, p.rec.ReplyGen = now.UnixNano(), p.rec.ReplyGen+1
}

// replyFor returns the reply mailbox field for a content to p, first
// making or rotating p's mailbox when due; nil without reply mailboxes.
func (d *Device) replyFor(p *peer) []byte {
	if !d.opts.replies {
		return nil
	}
	now := d.opts.now()
	if len(p.rec.ReplyMailbox) == 0 || now.Sub(time.Unix(0, p.rec.ReplyCreatedUnixNano)) >= d.opts.mailboxRotation {
		d.newReplyMailbox(p, now)
	}
	field := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(p.rec.ReplyMailbox)), p.rec.ReplyGen)
	return append(field, p.rec.ReplyMailbox...)
}

// takeReply applies a content's reply mailbox field: a higher generation
// than the one held switches where we send to p. It returns ErrMalformed
// for a field that is not a generation and a mailbox id.
func takeReply(p *peer, field []byte) error {
	if len(field) == 0 {
		return nil
	}
	if n := len(field) - 8; n < 1 || n > envelope.MaxMailboxLength {
		return fmt.Errorf("%w: reply mailbox", ErrMalformed)
	}
	if gen := binary.BigEndian.Uint64(field); gen > p.rec.PeerMailboxGen {
		p.rec.PeerMailboxGen, p.rec.Mailbox = gen, bytes.Clone(field[8:])
	}
	return nil
}

// ownsMailbox reports whether mailbox is ours and receiving now: the
// published one, or a reply mailbox in use or within its grace period.
func (d *Device) ownsMailbox(mailbox []byte) bool {
	if bytes.Equal(mailbox, d.rec.Mailbox) {
		return true
	}
	p := d.replies[string(mailbox)]
	if p == nil || p.gone {
		return false
	}
	if bytes.Equal(mailbox, p.rec.ReplyMailbox) {
		return true
	}
	return bytes.Equal(mailbox, p.rec.OldReplyMailbox) && d.opts.now().UnixNano() < p.rec.OldReplyExpiresUnixNano
}

// indexReplies registers p's committed reply mailboxes with the device,
// when they changed since it last did.
func (d *Device) indexReplies(p *peer) {
	if p.replyIndexed == p.rec.ReplyGen {
		return
	}
	p.replyIndexed = p.rec.ReplyGen
	d.unindexReplies(p)
	for _, m := range [][]byte{p.rec.ReplyMailbox, p.rec.OldReplyMailbox} {
		if len(m) > 0 {
			d.replies[string(m)] = p
			p.replyIn = append(p.replyIn, string(m))
		}
	}
}

// unindexReplies removes p's reply mailboxes from the device's index.
func (d *Device) unindexReplies(p *peer) {
	for _, m := range p.replyIn {
		if d.replies[m] == p {
			delete(d.replies, m)
		}
	}
	p.replyIn = p.replyIn[:0]
}

// Mailboxes returns every mailbox this device receives on: the published
// one first, then, with WithReplyMailboxes, each conversation's reply
// mailbox and those replaced ones still in their grace period, with their
// owner keys. The app registers each with the relay and reads them all;
// Receive takes envelopes from any of them.
func (d *Device) Mailboxes() []Mailbox {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []Mailbox{{ID: bytes.Clone(d.rec.Mailbox)}}
	now := d.opts.now().UnixNano()
	for _, p := range d.dir {
		if len(p.rec.ReplyMailbox) > 0 && len(p.rec.ReplyOwner) == ed25519.SeedSize {
			out = append(out, Mailbox{ID: bytes.Clone(p.rec.ReplyMailbox), Owner: ed25519.NewKeyFromSeed(p.rec.ReplyOwner)})
		}
		if len(p.rec.OldReplyMailbox) > 0 && len(p.rec.OldReplyOwner) == ed25519.SeedSize && now < p.rec.OldReplyExpiresUnixNano {
			out = append(out, Mailbox{ID: bytes.Clone(p.rec.OldReplyMailbox), Owner: ed25519.NewKeyFromSeed(p.rec.OldReplyOwner),
				Expires: time.Unix(0, p.rec.OldReplyExpiresUnixNano)})
		}
	}
	return out
}

// RotateMailboxes replaces the reply mailbox of every peer at once (the
// replaced ones receive for the grace period): on demand, for example
// when the user suspects the relay links them. The new mailboxes reach
// each peer with the next content sent to it. It does nothing without
// WithReplyMailboxes; if the Apply fails, nothing changed.
func (d *Device) RotateMailboxes(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.opts.replies {
		return nil
	}
	now := d.opts.now()
	var parts []fanPart
	for _, p := range d.dir {
		if len(p.rec.ReplyMailbox) > 0 {
			d.newReplyMailbox(p, now)
			parts = append(parts, fanPart{p: p})
		}
	}
	if len(parts) == 0 {
		return nil
	}
	b := d.newBatch()
	sts := make([]staged, len(parts))
	var err error
	for i, pt := range parts {
		if err = d.stage(b, pt.p, nil, &sts[i]); err != nil {
			break
		}
	}
	if err == nil {
		err = d.store.Apply(ctx, b)
	}
	d.recycle(b)
	if err != nil {
		for _, pt := range parts {
			d.restore(pt.p, nil)
		}
		return err
	}
	for i := range sts {
		d.adopt(&sts[i])
	}
	return nil
}

// validReplyFields checks the reply-mailbox fields of a saved peer record.
func validReplyFields(rec interface {
	GetReplyMailbox() []byte
	GetReplyOwner() []byte
	GetOldReplyMailbox() []byte
	GetOldReplyOwner() []byte
}) bool {
	ok := func(m, owner []byte) bool {
		return len(m) == 0 && len(owner) == 0 || len(m) >= 1 && len(m) <= envelope.MaxMailboxLength && len(owner) == ed25519.SeedSize
	}
	return ok(rec.GetReplyMailbox(), rec.GetReplyOwner()) && ok(rec.GetOldReplyMailbox(), rec.GetOldReplyOwner())
}

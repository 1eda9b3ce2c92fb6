package sealpost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/kept"
	"github.com/sealpost/sealpost/internal/pad"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// Incoming is what Receive decrypted.
type Incoming struct {
	// From is the address the sender claims. Identity is the identity it
	// came from; Unconfirmed reports that this is not the identity pinned
	// for From (another device claims the address: a reinstall, a new
	// phone, or an impostor). Such a message comes with an
	// IdentityChanged finding; nothing is sent to that identity until the
	// app accepts it with Trust (compare keys.SafetyNumber computed with
	// Identity first). A redelivered result reports the identity's status
	// now.
	From        Address
	Identity    keys.PublicIdentity
	Unconfirmed bool
	Kind        Kind
	ID          MessageID
	Body        []byte // KindMessage
	// Attachments are the files a message carries: fetch each from the
	// blob store with attach.Download (it checks the digest and decrypts).
	Attachments []*attach.Pointer
	// Delivered and Read are the ids of our messages this content
	// acknowledges as delivered and as read: those of a KindDelivered or
	// KindRead content, and receipts that rode along on any kind (a read
	// receipt may also carry delivery receipts).
	Delivered []MessageID
	Read      []MessageID
	// Findings lists what the transcript noticed while receiving this:
	// gaps, drops, forks, receipt mismatches, a changed identity.
	Findings []transcript.Finding
	// Redelivered reports that the same envelope was received before and
	// the app has not yet called Done for it.
	Redelivered bool
	// Repeated reports a message whose id this device already received
	// from the peer: the peer sent it again after restoring a backup
	// (docs/SPEC.md §15.10). The app already has it and should not show
	// it twice; a delivery receipt is still sent.
	Repeated bool
	// Sync reports a copy from one of our own other devices (From is that
	// device; docs/SPEC.md §22.5): of a message it sent to the user
	// SyncFor (KindMessage), or, for KindRead, that it read the messages
	// from SyncFor that Read names, so this device marks them read too.
	Sync    bool
	SyncFor string
	// Devices is what the device list this content carried changed in the
	// pinned list of the sender's account (a device added or removed, or
	// the list pinned first); nil when nothing changed. It is reported
	// once; AccountFindings keeps it.
	Devices *DeviceChange
	// Refresh names the users whose device list the app should fetch from
	// the relay and hand to UpdateDeviceList: this content says a newer
	// version of the sender's account list, or of ours, exists than the
	// one this device holds.
	Refresh []string
	// Provisioned is set on the content that linked this device to its
	// account (docs/SPEC.md §22.6).
	Provisioned *Provisioned
}

// received is the working result of one Receive before it commits.
type received struct {
	p            *peer
	s            *session
	isNew        bool     // the peer is new
	pre          *prekeys // prekeys after a session start consumed some, or nil
	batch        *Batch
	plain        []byte
	firstContact bool // the envelope carried a session start
	tx           *txn // with a session start: evictions, the start to remember
	// stale are other sessions of the peer that this content's resume
	// field (or a new start replacing them) made stale, committed with it.
	stale []*session
	// replaced are the peer's confirmed sessions that a new start from it
	// replaces: it lost them (docs/SPEC.md §15.10).
	replaced []*session
	// acct is the pinned account of the sender's user (nil: none);
	// accounts are the accounts this content changes, committed with it;
	// change is what its device list changed; refresh the users whose
	// lists to fetch.
	acct     *account
	accounts []*account
	change   *DeviceChange
	refresh  []string
	// provisioned: the content linked this device; seed is the account
	// key it brought (nil: none).
	provisioned *Provisioned
	seed        []byte
	pins        []*peer // peers a provisioning pins, new
}

// Receive decrypts an envelope from the relay and returns what it holds,
// after the new state (session, transcript, receipt queue, and the result
// itself) is saved with one Apply. If the Apply fails, Receive returns the
// error, releases nothing, and the same envelope can be received again.
//
// A result is kept until Done: receiving the same envelope again returns
// it with Redelivered set; after Done it is ErrDuplicate, or ErrDecrypt
// once its session has consumed more than ratchet.ReplayRecord messages
// since and no longer remembers it. Either way it is never handed out
// twice: an app that sees either error for an envelope it has handled
// drops it. Errors:
// ErrMalformed, ErrTooLarge and ErrUnsupportedVersion for bad input;
// ErrDecrypt when no session or mailbox key opens it (matching
// ErrNoSession too when no session expects its routing tag: garbage, an
// envelope for another device, or one for a session this device no longer
// holds; without ErrNoSession it names a session of ours but was forged or
// corrupted); ErrBlocked for a
// blocked sender (see Block); ErrDuplicate, ErrExpiredKey,
// ErrTooManySkipped from the ratchet; ErrUnknownPrekey for session starts,
// and ErrIdentityChanged (strict mode) for an identity other than the
// pinned one. On any error the device's state is unchanged. A first
// contact from a stranger may evict the oldest pending peer (see
// WithMaxPendingPeers) in the same Apply. ClassifyReceive says what to do
// with a refused envelope.
func (d *Device) Receive(ctx context.Context, raw []byte) (*Incoming, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.receive(ctx, raw)
}

// receive is Receive under d.mu.
func (d *Device) receive(ctx context.Context, raw []byte) (*Incoming, error) {
	// 1. The routing header must name our mailbox.
	h, body, err := seal.Split(raw)
	if err != nil {
		return nil, err
	}
	if !d.ownsMailbox(h.Mailbox) {
		return nil, fmt.Errorf("%w: envelope is for another mailbox", ErrMalformed)
	}
	// 2. A result kept from an earlier delivery of the same envelope. The
	// in-memory index says whether there is one, so a new envelope costs
	// no store read.
	env := kept.EnvelopeID(h.Tag, raw)
	if p := d.keptEnv[env]; p != nil {
		return d.keptResult(ctx, p, kept.Key(env))
	}
	// 3. Find the session and decrypt: by tag, as a first contact, or by
	// trying every session's header keys.
	rc, err := d.decrypt(ctx, h, body, raw)
	if err != nil {
		return nil, err
	}
	if rc.acct, err = d.accountOf(ctx, rc.p.addr.User); err != nil {
		d.restore(rc.p, nil)
		return nil, err
	}
	// 4. Decode the content and run the transcript.
	in, err := d.process(ctx, rc)
	if err != nil {
		d.restore(rc.p, nil)
		return nil, err
	}
	// 5. Answer on the session the peer used.
	rc.p.promote(rc.s)
	// 6. Keep the result until Done, and commit everything at once.
	if err := d.keep(rc, in, env); err != nil {
		d.restore(rc.p, nil)
		return nil, err
	}
	if err := d.stageAccounts(rc); err != nil {
		d.restore(rc.p, nil)
		return nil, err
	}
	err = d.commitPeerKeeping(ctx, rc.p, rc.isNew, rc.pre, rc.batch, rc.tx, nil, append(rc.stale, rc.s)...)
	d.adoptAccounts(rc, err == nil)
	if err != nil {
		return nil, err
	}
	rc.p.keptSaved = rc.p.kept
	return in, nil
}

// decrypt finds the session for an envelope and decrypts its ratchet
// message. Session state changes only in memory; callers restore on error.
func (d *Device) decrypt(ctx context.Context, h envelope.Header, body, raw []byte) (*received, error) {
	p := d.tags[h.Tag]
	if p != nil {
		if err := d.refuse(p); err != nil {
			return nil, err // before any decryption
		}
		for _, s := range p.sessions {
			plain, err := s.r.Decrypt(h.Tag, body)
			if err == nil {
				return &received{p: p, s: s, plain: plain, batch: d.newBatch()}, nil
			}
			if !errors.Is(err, ErrDecrypt) {
				return nil, err // a failed Decrypt changes nothing
			}
		}
	}
	if len(body) >= seal.FirstContactOverhead {
		start, err := d.openFirstContact(raw)
		if err == nil {
			return d.acceptStart(ctx, start)
		}
		if !errors.Is(err, ErrDecrypt) {
			return nil, err
		}
	}
	rc, err := d.slowPath(h.Tag, body)
	if err != nil && p != nil && errors.Is(err, ErrNoSession) {
		// A session expects the tag, so the envelope claims to be for it:
		// it was forged or corrupted on the way.
		return nil, fmt.Errorf("%w: a session expects the envelope's tag but it does not authenticate", ErrDecrypt)
	}
	return rc, err
}

// maxSlowPath bounds the sessions an envelope with an unknown tag is tried
// on: the most recently used ones. Such an envelope is either garbage (a
// flood must cost a bounded amount per envelope, whatever the number of
// sessions: TESTING.md item 24) or a message more than ratchet.TagWindow past
// what its session expects, which only happens after heavy loss; it is
// found if its session is among the maxSlowPath most recently used, and is
// otherwise ErrDecrypt.
const maxSlowPath = 32

// slowPath tries the envelope on the most recently used sessions, for
// messages whose tag ran ahead of the window. The ratchet bounds the trials
// per session (two header trial decryptions).
func (d *Device) slowPath(tag [16]byte, body []byte) (*received, error) {
	for _, a := range d.active {
		if a.p.gone || !slices.Contains(a.p.sessions, a.s) || d.refuse(a.p) != nil {
			continue // dropped since, or refused anyway
		}
		d.slowTrials++
		plain, err := a.s.r.Decrypt(tag, body)
		if err == nil {
			return &received{p: a.p, s: a.s, plain: plain, batch: d.newBatch()}, nil
		}
		if errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrMalformed) {
			// Refused before any key was tried, the same for every
			// session: with a tag no session expects, nothing says a peer
			// sent it (a forged version byte must not read as "update").
			break
		}
		if !errors.Is(err, ErrDecrypt) {
			return nil, err // a failed Decrypt changes nothing
		}
	}
	// With an unknown tag nothing tells garbage, an envelope for another
	// device, and one for a session this device no longer holds apart.
	return nil, fmt.Errorf("%w: %w: no session or mailbox key opens the envelope", ErrDecrypt, ErrNoSession)
}

// activeSession is an entry of Device.active.
type activeSession struct {
	p *peer
	s *session
}

// used moves s to the front of the most recently used sessions.
func (d *Device) used(p *peer, s *session) {
	i := slices.IndexFunc(d.active, func(a activeSession) bool { return a.s == s })
	switch {
	case i == 0:
		return
	case i > 0:
		d.active = slices.Delete(d.active, i, i+1)
	case len(d.active) == maxSlowPath:
		d.active = d.active[:maxSlowPath-1]
	}
	d.active = slices.Insert(d.active, 0, activeSession{p, s})
}

// openFirstContact tries each of our mailbox keys, newest first.
func (d *Device) openFirstContact(raw []byte) (*keys.SessionStart, error) {
	for _, k := range d.pre.mailbox {
		start, err := seal.OpenFirstContact(k, d.rec.Mailbox, raw)
		if !errors.Is(err, ErrDecrypt) {
			return start, err
		}
	}
	return nil, ErrDecrypt
}

// acceptStart handles a session start: the first envelope of a new session,
// or a later envelope of one we accepted, which also carries the start
// until we reply. The payload is the ratchet tag then the message.
func (d *Device) acceptStart(ctx context.Context, start *keys.SessionStart) (*received, error) {
	if len(start.Payload) < 16 {
		return nil, fmt.Errorf("%w: session start without a message", ErrMalformed)
	}
	tag, msg := [16]byte(start.Payload[:16]), start.Payload[16:]
	if fp := start.Identity.Fingerprint(); d.blocked.Blocks(start.Initiator, &fp) {
		// Refused on what the sealed start claims, before any key
		// agreement: a start that falsely claims a blocked sender would
		// have failed the agreement anyway.
		return nil, fmt.Errorf("%w: first contact from %s", ErrBlocked, start.Initiator)
	}
	p, isNew, err := d.peerFor(start.Initiator, start.Identity)
	if err != nil {
		return nil, err
	}
	if err := d.refuse(p); err != nil {
		return nil, err
	}
	rc := &received{p: p, isNew: isNew, batch: d.newBatch(), firstContact: true, tx: &txn{}}
	if isNew {
		rc.tx.evict = d.evictions(1, p) // the oldest pending peers beyond the bound
	}
	held := p.sessionByBaseKey(start.BaseKey())
	if held != nil {
		rc.s = held
	} else if err := d.respond(ctx, rc, start); err != nil {
		d.restore(p, nil)
		return nil, err
	}
	rc.plain, err = rc.s.r.Decrypt(tag, msg)
	if err != nil {
		d.restore(p, nil)
		if held != nil && errors.Is(err, ErrDecrypt) {
			// The start was accepted before, and only its holder (or a
			// clone of its state) can seal one: this is a replayed start
			// whose message is not one we can read (TESTING.md item 8).
			return nil, fmt.Errorf("%w: session start already accepted (%v)", ErrDuplicate, err)
		}
		return nil, err
	}
	return rc, nil
}

// respond runs the responder's side of a new session start and places the
// new session.
func (d *Device) respond(ctx context.Context, rc *received, start *keys.SessionStart) error {
	seen, err := d.seenFor(ctx, start.SignedPrekeyID)
	if err != nil {
		return err
	}
	baseSum := sha256.Sum256(start.BaseKey())
	if seen.Has([16]byte(baseSum[:16])) {
		return fmt.Errorf("%w: session start replayed", ErrDuplicate)
	}
	spk := d.pre.signedByID(start.SignedPrekeyID)
	pq := d.pre.pqByID(start.PQPrekeyID, start.PQOneTime)
	var otp *keys.OneTimePrekey
	if start.HasOneTimePrekey {
		if otp = d.pre.oneTimeByID(start.OneTimePrekeyID); otp == nil {
			return fmt.Errorf("%w: one-time prekey %d", ErrUnknownPrekey, start.OneTimePrekeyID)
		}
	}
	if spk == nil || pq == nil {
		return fmt.Errorf("%w: signed or pq prekey", ErrUnknownPrekey)
	}
	sk, err := keys.Respond(d.id, d.self, start, spk, pq, otp)
	if err != nil {
		return err
	}
	secret := sk.Secret()
	r, err := ratchet.NewResponder(secret, sk.AssociatedData(), sk.RatchetKey())
	clear(secret)
	sk.Erase()
	if err != nil {
		return err
	}
	now := d.opts.now().UnixNano()
	// A peer that starts a new session while we hold one it confirmed has
	// lost that one: a restore or a lost store it did not report (with the
	// same identity; a reinstall brings a new one, 15.6).
	for _, s := range rc.p.sessions {
		if s.confirmed() && !s.meta.Stale {
			rc.replaced = append(rc.replaced, s)
		}
	}
	rc.s = newSession(rc.p.name, r, &sessionMeta{
		BaseKey: start.BaseKey(), CreatedUnixNano: now, LastReceivedUnixNano: now, Announce: rc.p.hasStale()})
	rc.p.promote(rc.s)
	if otp != nil || start.PQOneTime {
		rc.pre = d.pre.without(otp, pq)
	}
	rc.tx.seen, rc.tx.seenAdd = seen, seen.Put(start.SignedPrekeyID, [16]byte(baseSum[:16]), func(k string, v []byte) { putRecord(rc.batch, k, v) })
	return nil
}

// promote makes s, a session that a message just arrived on (or a new
// session a peer's start created), the current one: the one Send uses.
// The peer sends on the session it holds current, so answering on that
// one brings both sides to one session after any exchange, whatever the
// order of late starts, lost messages and restores (libsignal does the
// same). The exception is a simultaneous start: when a new start from the
// peer meets a session we started that it has not confirmed, both sides
// keep the session whose base key sorts first, so that crossing starts
// settle at once; the new session is archived and still receives, and
// becomes current if a later message arrives on it.
//
// A stale session (one that predates a restore) is never promoted: it
// still receives, but answering on it would send from state the other side
// has moved past (docs/SPEC.md §15.10).
func (p *peer) promote(s *session) {
	i := slices.Index(p.sessions, s)
	if i == 0 || s.meta.Stale {
		return
	}
	if i > 0 {
		p.sessions = slices.Delete(p.sessions, i, i+1)
	}
	at := 0
	if i < 0 && len(p.sessions) > 0 {
		cur := p.sessions[0]
		if cur.meta.Initiator && !cur.confirmed() && bytes.Compare(cur.meta.BaseKey, s.meta.BaseKey) < 0 {
			at = 1
		}
	}
	p.sessions = slices.Insert(p.sessions, at, s)
	p.trimSessions()
}

// process decodes the content, runs the transcript and queues receipts.
func (d *Device) process(ctx context.Context, rc *received) (*Incoming, error) {
	plain, err := pad.Unpad(rc.plain)
	if err != nil {
		return nil, fmt.Errorf("%w: content padding", ErrMalformed)
	}
	c, err := decodeContent(plain)
	if err != nil {
		return nil, err
	}
	if err := d.checkAccount(ctx, rc, c); err != nil {
		return nil, err
	}
	if rc.firstContact {
		if c.kind != KindMessage && c.kind != KindAccount && len(c.readSync) == 0 {
			return nil, fmt.Errorf("%w: a receipt on the first-contact path", ErrMalformed)
		}
		if n := len(c.pb.SenderMailbox); n == 0 || n > envelope.MaxMailboxLength {
			return nil, fmt.Errorf("%w: session start without the sender's mailbox", ErrMalformed)
		}
		rc.p.rec.Mailbox = c.pb.SenderMailbox
	}
	if err := takeReply(rc.p, c.pb.ReplyMailbox); err != nil {
		return nil, err
	}
	f := transcript.Fields{Seq: c.pb.Seq, AckCount: c.pb.AckCount, AckAbove: c.pb.AckAbove,
		Prev: [32]byte(c.pb.Prev), AckHash: [32]byte(c.pb.AckHash)}
	// Resends follow a restore, which leaves stale sessions on both sides;
	// only then is it worth scanning the received logs for the id.
	repeated := c.kind == KindMessage && rc.p.hasStale() && rc.p.hasReceived(c.id)
	findings, err := rc.s.conv.Received(f, c.id, plain)
	if err != nil {
		return nil, err
	}
	findings = append(findings, d.resumed(rc, c.resume)...)
	findings = append(findings, d.replaced(rc)...)
	if rc.s.meta.Announce && f.AckCount > 0 {
		rc.s.meta.Announce = false // the peer holds a content that carried the resume field
	}
	if len(c.delivered)+len(c.read) > 0 {
		ids := toArrays(append(c.delivered, c.read...))
		mismatch := rc.s.conv.CheckReceipt(ids, [32]byte(c.receiptHash))
		if len(mismatch) > 0 && rc.s.conv.ReceiptTooOld(ids) {
			// The peer acknowledges contents older than our sent log: it
			// caught up late. Unverifiable, so nothing is acknowledged, but
			// nothing is wrong either.
			c.delivered, c.read, mismatch = nil, nil, nil
		}
		if len(mismatch) > 0 {
			// An unverified receipt acknowledges nothing: the finding
			// names it, and no id is reported delivered or read.
			c.delivered, c.read = nil, nil
			findings = append(findings, mismatch...)
		}
	}
	if rc.p.unconfirmed() {
		findings = append(findings, transcript.Finding{Kind: transcript.IdentityChanged})
	}
	now := d.opts.now()
	rc.s.pending, rc.s.start, rc.s.bundle = nil, nil, nil // confirmed
	rc.s.meta.LastReceivedUnixNano = now.UnixNano()
	if c.kind == KindMessage && d.opts.autoDelivered && !rc.p.unconfirmed() {
		// No receipt goes to an identity the app has not accepted.
		d.queueReceipt(rc.s, KindDelivered, []MessageID{c.id}, now)
	}
	in := incomingFrom(rc.p.addr, c, findings)
	in.Identity, in.Unconfirmed, in.Repeated = rc.p.identity, rc.p.unconfirmed(), repeated
	in.Devices, in.Refresh, in.Provisioned = rc.change, rc.refresh, rc.provisioned
	return in, nil
}

func incomingFrom(from Address, c *content, findings []transcript.Finding) *Incoming {
	in := &Incoming{From: from, Kind: c.kind, ID: c.id, Body: c.body, Attachments: c.attachments,
		Delivered: c.delivered, Read: c.read, Findings: findings, SyncFor: c.pb.SyncFor, Sync: c.pb.SyncFor != ""}
	if len(c.readSync) > 0 {
		in.Read = c.readSync // our other device read these
	}
	return in
}

func toArrays(ids []MessageID) [][16]byte {
	out := make([][16]byte, len(ids))
	for i := range ids {
		out[i] = ids[i]
	}
	return out
}

// keep adds the result to the peer's kept index and the batch, evicting
// the oldest beyond the count and age limits.
func (d *Device) keep(rc *received, in *Incoming, env [32]byte) error {
	raw, err := encodeKeptResult(in)
	if err != nil {
		return err
	}
	key := kept.Key(env)
	putRecord(rc.batch, key, raw)
	now := d.opts.now()
	entries := append(rc.p.kept, kept.NewEntry(env, in.ID, now.UnixNano(), key))
	cutoff := now.Add(-d.opts.keptAge).UnixNano()
	for len(entries) > 0 && (len(entries) > d.opts.maxKept || entries[0].Received < cutoff) {
		rc.batch.Delete(entries[0].StoreKey())
		entries = entries[1:]
	}
	rc.p.kept = entries
	if d.batching {
		// ReceiveBatch writes the index once, at its end: rewriting the
		// whole index for every result is what a backlog would cost most.
		if !rc.p.keptDirty {
			rc.p.keptDirty = true
			d.keptDirty = append(d.keptDirty, rc.p)
		}
		return nil
	}
	idx, err := rc.p.encodeKept()
	if err != nil {
		return err
	}
	putRecord(rc.batch, rc.p.keptIndexKey(), idx)
	return nil
}

// keptResult returns a result p keeps, marked Redelivered, or ErrNotFound.
func (d *Device) keptResult(ctx context.Context, p *peer, key string) (*Incoming, error) {
	raw, err := getRecord(ctx, d.store, key)
	if err != nil {
		return nil, err
	}
	in, err := decodeKeptResult(raw)
	if err != nil {
		return nil, err
	}
	in.Identity, in.Unconfirmed = p.identity, p.unconfirmed()
	return in, nil
}

// refuse returns the error an envelope from p gets before any decryption:
// ErrBlocked for a blocked sender, ErrIdentityChanged in strict mode for an
// unconfirmed identity; nil otherwise.
func (d *Device) refuse(p *peer) error {
	if d.blocked.Blocks(p.addr, &p.fp) {
		return fmt.Errorf("%w: envelope from %s", ErrBlocked, p.addr)
	}
	if d.opts.strictIdentity && p.unconfirmed() {
		pinned := keys.PublicIdentity{}
		if q := d.peers[p.addr]; q != nil {
			pinned = q.identity
		}
		return &IdentityChangedError{Peer: p.addr, Old: pinned, New: p.identity}
	}
	return nil
}

// queueReceipt adds ids to the session's receipt queue; a queue that was
// empty gets a random due time within the configured delay, and a queue
// that holds a full batch is due at once. Past maxQueuedReceipts the oldest
// delivery receipts are dropped: they are a courtesy, and the bound keeps a
// peer that floods us from growing our state.
func (d *Device) queueReceipt(s *session, kind Kind, ids []MessageID, now time.Time) {
	q := s.meta.Receipts
	if q == nil {
		q = &receiptQueue{}
		s.meta.Receipts = q
	}
	if s.queued() == 0 {
		q.DueUnixNano = now.Add(d.jitter()).UnixNano()
	}
	for _, id := range ids {
		if kind == KindRead {
			q.Read = append(q.Read, append([]byte(nil), id[:]...))
		} else {
			s.delivered.Push(id, maxQueuedReceipts)
		}
	}
	for s.delivered.Len() > 0 && s.queued() > maxQueuedReceipts {
		s.delivered.DropOldest()
	}
	if n := len(q.Read) - maxQueuedReceipts; n > 0 {
		q.Read = q.Read[n:]
	}
	if s.queued() >= maxReceiptBatch {
		q.DueUnixNano = min(q.DueUnixNano, now.UnixNano())
	}
}

// queued returns the number of receipts queued on the session.
func (s *session) queued() int {
	n := s.delivered.Len()
	if q := s.meta.Receipts; q != nil {
		n += len(q.Read)
	}
	return n
}

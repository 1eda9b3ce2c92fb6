package sealpost

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

// Fan-out to an account's devices (docs/SPEC.md §22.5). SendUser encrypts
// one message once per device in the recipient's pinned device list and
// once per own other device (a sync copy naming the recipient), and
// commits all of it with one Apply: after a crash either every device's
// envelope is in the outbox or none is, and no key is spent twice.
//
// Decision: SendUser refuses (MissingSessionsError) when a listed device
// has no usable session, rather than sending to the others: the message
// reaches exactly the devices listed at send time. The app fetches those
// devices' bundles (NeedSessions names them), starts sessions and sends
// again, as a Signal client does after the server's "mismatched devices".

// MissingSessionsError is SendUser's error when devices it must encrypt to
// have no usable session: start one with each from its bundle
// (StartSession), then send again. It matches ErrNoSession.
type MissingSessionsError struct {
	Devices []Address
}

func (e *MissingSessionsError) Error() string {
	names := make([]string, len(e.Devices))
	for i, a := range e.Devices {
		names[i] = a.String()
	}
	return fmt.Sprintf("%v: no usable session with %s", ErrNoSession, strings.Join(names, ", "))
}

// Unwrap returns ErrNoSession.
func (e *MissingSessionsError) Unwrap() error { return ErrNoSession }

// fanTarget is one device a fan-out encrypts to.
type fanTarget struct {
	p    *peer
	s    *session
	sync bool // one of our own devices: a sync copy
}

// fanPart is one content of a fan-out: c on p's session s.
type fanPart struct {
	p     *peer
	s     *session
	c     *sealedpb.Content
	isNew bool // p is new: its directory entry is written too
}

// usable returns the session Send would use with p if p holds identity
// id, or nil.
func (d *Device) usable(p *peer, id keys.PublicIdentity) *session {
	if p == nil || len(p.sessions) == 0 || !p.identity.Equal(id) {
		return nil
	}
	s := p.sessions[0]
	if s.meta.Stale || d.opts.now().UnixNano()-s.meta.LastReceivedUnixNano > d.opts.sessionMaxAge.Nanoseconds() {
		return nil
	}
	return s
}

// fanoutTargets returns the devices a message to user goes to, and those
// of them without a usable session. It returns ErrNoAccount when user has
// no pinned list, ErrExpired when it is past its expiry (fetch the newest),
// and ErrUnlistedDevice when our own list no longer names this device.
func (d *Device) fanoutTargets(ctx context.Context, user string) ([]fanTarget, []Address, error) {
	a, err := d.accountOf(ctx, user)
	if err != nil {
		return nil, nil, err
	}
	if a == nil || a.list == nil {
		return nil, nil, fmt.Errorf("%w: no device list pinned for %q (UpdateDeviceList)", ErrNoAccount, user)
	}
	if !d.opts.now().Before(a.list.Expires) {
		return nil, nil, fmt.Errorf("%w: the device list of %q expired; fetch the newest", ErrExpired, user)
	}
	own := d.own()
	if own != nil && !own.lists(d.self, d.id.Public()) {
		return nil, nil, fmt.Errorf("%w: this device was removed from its account", ErrUnlistedDevice)
	}
	targets, missing := d.listTargets(nil, nil, user, a.list, user == d.self.User, d.self)
	if own != nil && own.list != nil && user != d.self.User {
		targets, missing = d.listTargets(targets, missing, d.self.User, own.list, true, d.self)
	}
	return targets, missing, nil
}

// listTargets appends to targets each device of user's list l (but this
// device and skip) that has a usable session, and to missing those that
// have none.
func (d *Device) listTargets(targets []fanTarget, missing []Address, user string, l *keys.DeviceList, sync bool, skip Address) ([]fanTarget, []Address) {
	for _, dev := range l.Devices {
		addr := Address{User: user, Device: dev.ID}
		if addr == d.self || addr == skip {
			continue
		}
		if s := d.usable(d.peers[addr], dev.Identity); s != nil {
			targets = append(targets, fanTarget{p: d.peers[addr], s: s, sync: sync})
		} else {
			missing = append(missing, addr)
		}
	}
	return targets, missing
}

// NeedSessions returns the devices that a SendUser to user would encrypt
// to and that have no usable session: fetch each one's bundle from the
// relay and StartSession with it. The errors are SendUser's.
func (d *Device) NeedSessions(ctx context.Context, user string) ([]Address, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_, missing, err := d.fanoutTargets(ctx, user)
	return missing, err
}

// SendUser sends body, with any attachments, to every device of user's
// account as its pinned device list names them, and a sync copy to each of
// our own other devices, all under one message id and committed with one
// Apply; it returns every envelope (each in the outbox until Sent). It
// returns ErrNoAccount when no list is pinned for user, ErrExpired when
// the pinned list expired, a *MissingSessionsError (ErrNoSession) when a
// device has no usable session, and Send's other errors. If the store
// fails, no envelope comes out and no key is ever reused.
func (d *Device) SendUser(ctx context.Context, user string, body []byte, attachments ...*attach.Pointer) ([]*Outgoing, error) {
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
	targets, missing, err := d.fanoutTargets(ctx, user)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, &MissingSessionsError{Devices: missing}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%w: %q has no other device", ErrNoSession, user)
	}
	id := newMessageID()
	parts := make([]fanPart, len(targets))
	for i, t := range targets {
		c := &sealedpb.Content{Version: contentVersion, Id: id[:], Kind: uint32(KindMessage), Body: body, Attachments: ptrs}
		if t.sync {
			c.SyncFor = user
		}
		t.p.rec.PendingSinceUnixNano = 0 // answered (rewound if the commit fails)
		takeReceipts(t.s, c)
		parts[i] = fanPart{p: t.p, s: t.s, c: c}
	}
	return d.sealMany(ctx, d.own(), parts, nil, nil)
}

// MarkRead queues read receipts for messages received from the peer, as
// Acknowledge(ctx, from, KindRead, ids...) does, and tells our own other
// devices that they were read (read-sync: each receives them as a KindRead
// Incoming with Sync set), all in one Apply; it returns the read-sync
// envelopes (none without an account). A device of ours without a usable
// session is named in a *MissingSessionsError, with nothing changed. Its
// other errors are Acknowledge's.
func (d *Device) MarkRead(ctx context.Context, from Address, ids ...MessageID) ([]*Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids) > maxReceiptBatch {
		return nil, fmt.Errorf("%w: %d ids to mark read", ErrMalformed, len(ids))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[from]
	if p == nil {
		return nil, fmt.Errorf("%w: peer %s", ErrNotFound, from)
	}
	var targets []fanTarget
	var missing []Address
	if own := d.own(); own != nil && own.list != nil {
		targets, missing = d.listTargets(nil, nil, d.self.User, own.list, true, from)
	}
	if len(missing) > 0 {
		return nil, &MissingSessionsError{Devices: missing}
	}
	now := d.opts.now()
	for _, id := range ids {
		s := p.sessionThatReceived(id)
		if s == nil {
			d.restore(p, nil)
			return nil, fmt.Errorf("%w: message %s from %s", ErrNotFound, id, from)
		}
		d.queueReceipt(s, KindRead, []MessageID{id}, now)
	}
	if len(targets) == 0 {
		return nil, d.commitPeer(ctx, p, false, nil, nil, p.sessions...)
	}
	raw := make([][]byte, len(ids))
	for i := range ids {
		raw[i] = ids[i][:]
	}
	parts := make([]fanPart, len(targets))
	for i, t := range targets {
		id := newMessageID()
		// No receipts ride along: Incoming.Read of a read sync names what
		// was read.
		c := &sealedpb.Content{Version: contentVersion, Id: id[:], Kind: uint32(KindRead), SyncFor: from.User, ReadSync: raw}
		parts[i] = fanPart{p: t.p, s: t.s, c: c}
	}
	return d.sealMany(ctx, d.own(), parts, nil, p)
}

// DeliveryStatus summarises one message sent to an account: the devices
// it went to, and those whose transcript acknowledged it (each device's
// contents report how much of our chain they hold; docs/SPEC.md §13).
type DeliveryStatus struct {
	Sent, Delivered []Address
}

// Delivery returns where message id, sent to user with SendUser, went and
// which of those devices acknowledged it: "delivered to 3 of 4 devices".
// It reads the transcripts, so it knows the messages their logs still hold
// (the newest transcript.MaxLog per session). Whether the account read it
// is any device's read receipt (Incoming.Read): the others learn by
// read-sync and send none.
func (d *Device) Delivery(ctx context.Context, user string, id MessageID) (DeliveryStatus, error) {
	if err := ctx.Err(); err != nil {
		return DeliveryStatus{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := d.accountOf(ctx, user)
	if err != nil || a == nil || a.list == nil {
		return DeliveryStatus{}, err
	}
	var st DeliveryStatus
	for _, dev := range a.list.Devices {
		addr := Address{User: user, Device: dev.ID}
		p := d.peers[addr]
		if p == nil {
			continue
		}
		for _, s := range p.sessions {
			all, _ := s.conv.SentAfter(0)
			if !slices.Contains(all, [16]byte(id)) {
				continue
			}
			st.Sent = append(st.Sent, addr)
			if pending, _ := s.conv.SentAfter(acknowledged(s)); !slices.Contains(pending, [16]byte(id)) {
				st.Delivered = append(st.Delivered, addr)
			}
			break
		}
	}
	return st, nil
}

// sealMany seals every part (one per peer) and commits them, with extra's
// records and the changed sessions of also (a peer none of the parts is
// for), in one Apply. On any failure every peer is rewound to what it last
// committed, keeping the keys it spent spent.
func (d *Device) sealMany(ctx context.Context, own *account, parts []fanPart, extra func(*Batch) error, also *peer) ([]*Outgoing, error) {
	restore := func() {
		d.restoreParts(parts)
		if also != nil {
			d.restore(also, nil)
		}
	}
	for i := range parts {
		if err := d.accountFields(ctx, own, parts[i].p, parts[i].c); err != nil {
			restore()
			return nil, err
		}
	}
	slot, err := d.box.Reserve(len(parts)) // before any key is spent
	if err != nil {
		restore()
		return nil, err
	}
	b := d.newBatch()
	fail := func(err error) ([]*Outgoing, error) {
		d.recycle(b)
		restore()
		return nil, err
	}
	outs := make([]*Outgoing, len(parts))
	for i, pt := range parts {
		if outs[i], err = d.sealInto(b, pt.p, pt.s, pt.c, slot+uint64(i)); err != nil {
			return fail(err)
		}
	}
	if extra != nil {
		if err := extra(b); err != nil {
			return fail(err)
		}
	}
	sts := make([]staged, len(parts), len(parts)+1)
	var added []*peer
	for i, pt := range parts {
		if err := d.stage(b, pt.p, []*session{pt.s}, &sts[i]); err != nil {
			return fail(err)
		}
		if pt.isNew {
			added = append(added, pt.p)
		}
	}
	if also != nil {
		sts = append(sts, staged{})
		if err := d.stage(b, also, also.sessions, &sts[len(sts)-1]); err != nil {
			return fail(err)
		}
	}
	var tx *txn
	if len(added) > 0 {
		tx = &txn{}
		tx.dir, tx.dirN = d.planDir(nil, added)
		for _, op := range tx.dir {
			putRecord(b, dirKey(op.slot), encodeDirSlot(op.p.name))
		}
	}
	if err := d.store.Apply(ctx, b); err != nil {
		return fail(err)
	}
	d.recycle(b)
	d.adoptTxn(tx)
	for i := range sts {
		d.adopt(&sts[i])
	}
	for _, o := range outs {
		d.box.AddKeyed(o.slot, o.key)
	}
	return outs, nil
}

// restoreParts rewinds every peer of a failed fan-out, keeping each
// session's spent key spent.
func (d *Device) restoreParts(parts []fanPart) {
	for _, pt := range parts {
		d.restore(pt.p, pt.s)
	}
}

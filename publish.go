package sealpost

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/keys"
)

// NewBundle generates oneTime fresh one-time prekeys of each kind (0 to
// keys.MaxOneTimePrekeys), saves them, and returns a bundle carrying them
// with this device's current signed prekey, last-resort PQ prekey and
// mailbox key. Each call makes new keys, so call it when there is a bundle
// to upload, not to look at the current one. Upload it split
// (Bundle.Split): one blob per one-time prekey and the last resort, so the
// relay can hand each blob out once without parsing it. When the current
// prekeys are older than PrekeyRotation, NewBundle rotates them first (as
// RotatePrekeys), so a bundle it returns is valid for at least
// PrekeyLifetime minus PrekeyRotation (23 days by default).
func (d *Device) NewBundle(ctx context.Context, oneTime int) (*keys.Bundle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if oneTime < 0 || oneTime > keys.MaxOneTimePrekeys {
		return nil, fmt.Errorf("%w: one-time prekey count %d", ErrMalformed, oneTime)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	saved := d.rec.NextPrekeyId
	cur := d.pre
	if now := d.opts.now(); now.Sub(cur.created) >= PrekeyRotation {
		var err error
		if cur, err = cur.rotated(d.nextID, d.id, d.self, d.rec.Mailbox, now); err != nil {
			d.rec.NextPrekeyId = saved
			return nil, err
		}
	}
	pre := &prekeys{signed: cur.signed, mailbox: cur.mailbox, created: cur.created}
	pre.pq = append(pre.pq, cur.pq...)
	pre.oneTime = append(pre.oneTime, cur.oneTime...)
	b := d.publicBundle(pre)
	for range oneTime {
		otp := keys.GenerateOneTimePrekey(d.nextID())
		pq := keys.GeneratePQPrekey(d.nextID(), false, d.id)
		pre.oneTime = append(pre.oneTime, otp)
		pre.pq = append(pre.pq, pq)
		b.OneTimePrekeys = append(b.OneTimePrekeys, otp.Public())
		b.OneTimePQPrekeys = append(b.OneTimePQPrekeys, pq.Public())
	}
	pre.trimOneTime()
	if err := d.commitDevice(ctx, pre); err != nil {
		d.rec.NextPrekeyId = saved
		return nil, err
	}
	return b, nil
}

// RotatePrekeys replaces the signed prekey, the last-resort PQ prekey and
// the mailbox key with new ones, expiring PrekeyLifetime (30 days) from
// now, and keeps the old ones until a week past their expiry (at most 8
// rotations' worth), so that session starts already in flight still work.
// Call it every PrekeyRotation (weekly) and publish a new Bundle after; a
// bundle older than PrekeyLifetime is refused by initiators (ErrExpired).
// The accepted starts remembered for a dropped signed prekey are deleted
// with it.
func (d *Device) RotatePrekeys(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	saved := d.rec.NextPrekeyId
	pre, err := d.pre.rotated(d.nextID, d.id, d.self, d.rec.Mailbox, d.opts.now())
	if err == nil {
		err = d.commitDevice(ctx, pre)
	}
	if err != nil {
		d.rec.NextPrekeyId = saved
	}
	return err
}

// commitDevice saves the device record with pre, with the deletion of the
// accepted starts of every signed prekey pre no longer keeps, and adopts
// pre on success.
func (d *Device) commitDevice(ctx context.Context, pre *prekeys) error {
	b := new(Batch)
	if err := d.putDevice(b, pre); err != nil {
		return err
	}
	var dropped []uint32
	if d.pre != nil {
		for _, k := range d.pre.signed {
			if pre.signedByID(k.ID()) != nil {
				continue
			}
			s, err := d.seenFor(ctx, k.ID())
			if err != nil {
				return err
			}
			s.DeleteAll(k.ID(), b.Delete)
			dropped = append(dropped, k.ID())
		}
	}
	if err := d.store.Apply(ctx, b); err != nil {
		return err
	}
	d.pre = pre
	for _, id := range dropped {
		delete(d.seen, id)
	}
	return nil
}

// publicBundle is the device's bundle with pre's current keys, without
// one-time prekeys.
func (d *Device) publicBundle(pre *prekeys) *keys.Bundle {
	return &keys.Bundle{
		Address: d.self, Mailbox: d.Mailbox(), Identity: d.id.Public(),
		SignedPrekey: pre.signed[0].Public(), PQPrekey: pre.pq[0].Public(),
		MailboxKey: pre.mailbox[0].Public(),
	}
}

// trimOneTime drops the oldest unused one-time prekeys beyond maxOneTimeKept
// of each kind: a bundle blob that old has long been handed out or replaced.
func (p *prekeys) trimOneTime() {
	if n := len(p.oneTime) - maxOneTimeKept; n > 0 {
		p.oneTime = p.oneTime[n:]
	}
	lastResort, oneTime := p.splitPQ()
	if n := len(oneTime) - maxOneTimeKept; n > 0 {
		oneTime = oneTime[n:]
	}
	p.pq = append(lastResort, oneTime...)
}

// SafetyNumber returns the 60-digit safety number of this device and the
// peer, the same on both sides (keys.SafetyNumber). It returns ErrNoSession
// when the peer is unknown.
func (d *Device) SafetyNumber(peer Address) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[peer]
	if p == nil {
		return "", fmt.Errorf("%w: %s", ErrNoSession, peer)
	}
	return keys.SafetyNumber(d.id.Public(), d.self.User, p.identity, peer.User), nil
}

// AccountSafetyNumber returns the safety number of our account and user's
// account, computed over the account keys (keys.AccountSafetyNumber): the
// number to compare once both sides have accounts, which stays the same
// when either adds or removes a device. It returns ErrNoAccount when
// either side has none pinned.
func (d *Device) AccountSafetyNumber(ctx context.Context, user string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	a, err := d.accountOf(ctx, user)
	if err != nil {
		return "", err
	}
	own := d.own()
	if own == nil || a == nil || user == d.self.User {
		return "", fmt.Errorf("%w: both sides need an account", ErrNoAccount)
	}
	return keys.AccountSafetyNumber(own.key, d.self.User, a.key, user), nil
}

package sealpost

import (
	"context"
	"fmt"

	"github.com/sealpost/sealpost/keys"
)

// Bundle returns a bundle carrying this device's current signed prekey,
// last-resort PQ prekey and mailbox key, plus oneTime fresh one-time prekeys
// of each kind (0 to keys.MaxOneTimePrekeys), saved before it returns.
// Upload it split (Bundle.Split): one blob per one-time prekey and the last
// resort, so the relay can hand each blob out once without parsing it.
func (d *Device) Bundle(ctx context.Context, oneTime int) (*keys.Bundle, error) {
	if oneTime < 0 || oneTime > keys.MaxOneTimePrekeys {
		return nil, fmt.Errorf("%w: one-time prekey count %d", ErrMalformed, oneTime)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	saved := d.rec.NextPrekeyId
	pre := &prekeys{signed: d.pre.signed, mailbox: d.pre.mailbox}
	pre.pq = append(pre.pq, d.pre.pq...)
	pre.oneTime = append(pre.oneTime, d.pre.oneTime...)
	b := d.publicBundle()
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
// the mailbox key with new ones, keeping the last few old ones so that
// session starts already in flight still work. Call it on a schedule (for
// example weekly) and publish a new Bundle after.
func (d *Device) RotatePrekeys(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	saved := d.rec.NextPrekeyId
	pre, err := d.pre.rotated(d.nextID, d.id, d.self, d.rec.Mailbox)
	if err == nil {
		err = d.commitDevice(ctx, pre)
	}
	if err != nil {
		d.rec.NextPrekeyId = saved
	}
	return err
}

// commitDevice saves the device record with pre and adopts pre on success.
func (d *Device) commitDevice(ctx context.Context, pre *prekeys) error {
	b := new(Batch)
	if err := d.putDevice(b, pre); err != nil {
		return err
	}
	if d.pre != nil {
		forgetSeen(b, d.pre, pre)
	}
	if err := d.store.Apply(ctx, b); err != nil {
		return err
	}
	d.pre = pre
	return nil
}

// publicBundle is the bundle without one-time prekeys.
func (d *Device) publicBundle() *keys.Bundle {
	return &keys.Bundle{
		Address: d.self, Mailbox: d.Mailbox(), Identity: d.id.Public(),
		SignedPrekey: d.pre.signed[0].Public(), PQPrekey: d.pre.pq[0].Public(),
		MailboxKey: d.pre.mailbox[0].Public(),
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
func (d *Device) SafetyNumber(ctx context.Context, peer Address) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[peer]
	if p == nil {
		return "", fmt.Errorf("%w: %s", ErrNoSession, peer)
	}
	return keys.SafetyNumber(d.id.Public(), d.self.User, p.identity, peer.User), nil
}

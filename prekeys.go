package sealpost

import (
	"fmt"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/statepb"
)

// Key kinds in saved PrivateKey records (the public key's type byte).
const (
	kindSigned     = 0x01
	kindOneTime    = 0x11 // X25519 one-time (distinct from signed in storage)
	kindPQ         = 0x04
	kindMailbox    = 0x05
	maxOneTimeKept = 2 * keys.MaxOneTimePrekeys // unused one-time prekeys kept
)

// prekeys is the device's private prekey material, decoded. The signed
// prekeys, the last-resort PQ prekeys and the mailbox keys are made
// together by each rotation and kept together: index i of each list is
// from the same rotation.
type prekeys struct {
	signed  []*keys.SignedPrekey // current first
	pq      []*keys.PQPrekey     // last-resort ones (current first), then one-time ones
	oneTime []*keys.OneTimePrekey
	mailbox []*keys.MailboxKey // current first
	created time.Time          // when the current ones were made
}

func (p *prekeys) signedByID(id uint32) *keys.SignedPrekey {
	for _, k := range p.signed {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

func (p *prekeys) pqByID(id uint32, oneTime bool) *keys.PQPrekey {
	for _, k := range p.pq {
		if k.ID() == id && k.LastResort() != oneTime {
			return k
		}
	}
	return nil
}

func (p *prekeys) oneTimeByID(id uint32) *keys.OneTimePrekey {
	for _, k := range p.oneTime {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

// without returns a copy of p without the one-time keys a session start
// consumed.
func (p *prekeys) without(otp *keys.OneTimePrekey, pq *keys.PQPrekey) *prekeys {
	out := &prekeys{signed: p.signed, mailbox: p.mailbox, created: p.created}
	for _, k := range p.oneTime {
		if k != otp {
			out.oneTime = append(out.oneTime, k)
		}
	}
	for _, k := range p.pq {
		if k != pq || k.LastResort() {
			out.pq = append(out.pq, k)
		}
	}
	return out
}

// encode writes the prekeys into a device record.
func (p *prekeys) encode(rec *statepb.Device) {
	rec.SignedPrekeys, rec.PqPrekeys, rec.OneTimePrekeys, rec.MailboxKeys = nil, nil, nil, nil
	for _, k := range p.signed {
		rec.SignedPrekeys = append(rec.SignedPrekeys, privRecord(kindSigned, k.ID(), k.Bytes(), false, k.Public().Expires))
	}
	for _, k := range p.pq {
		rec.PqPrekeys = append(rec.PqPrekeys, privRecord(kindPQ, k.ID(), k.Bytes(), k.LastResort(), time.Time{}))
	}
	for _, k := range p.oneTime {
		rec.OneTimePrekeys = append(rec.OneTimePrekeys, privRecord(kindOneTime, k.ID(), k.Bytes(), false, time.Time{}))
	}
	for _, k := range p.mailbox {
		rec.MailboxKeys = append(rec.MailboxKeys, privRecord(kindMailbox, k.ID(), k.Bytes(), false, k.Public().Expires))
	}
}

// privateKeyVersion is the version of saved PrivateKey records (2: with
// the expiry of signed prekeys and mailbox keys).
const privateKeyVersion = 2

func privRecord(kind, id uint32, seed []byte, lastResort bool, expires time.Time) *statepb.PrivateKey {
	r := &statepb.PrivateKey{Version: privateKeyVersion, Kind: kind, Id: id, Seed: seed, LastResort: lastResort}
	if !expires.IsZero() {
		r.ExpiresUnix = expires.Unix()
	}
	return r
}

// clearPrekeyRecords overwrites the seeds in a device record's prekey
// lists and drops the lists: once encoded or decoded they are not needed.
func clearPrekeyRecords(rec *statepb.Device) {
	for _, list := range [][]*statepb.PrivateKey{rec.SignedPrekeys, rec.PqPrekeys, rec.OneTimePrekeys, rec.MailboxKeys} {
		for _, r := range list {
			clear(r.Seed)
		}
	}
	rec.SignedPrekeys, rec.PqPrekeys, rec.OneTimePrekeys, rec.MailboxKeys = nil, nil, nil, nil
}

// decodePrekeys rebuilds the prekeys from a device record.
func decodePrekeys(rec *statepb.Device, id *keys.IdentityPrivateKey, self Address) (*prekeys, error) {
	for _, list := range [][]*statepb.PrivateKey{rec.SignedPrekeys, rec.PqPrekeys, rec.OneTimePrekeys, rec.MailboxKeys} {
		for _, r := range list {
			if r.Version != privateKeyVersion {
				return nil, fmt.Errorf("%w: saved private key version %d", ErrUnsupportedVersion, r.Version)
			}
		}
	}
	p := &prekeys{}
	for _, r := range rec.SignedPrekeys {
		k, err := keys.NewSignedPrekey(r.Id, r.Seed, time.Unix(r.ExpiresUnix, 0), id)
		if err != nil || r.Kind != kindSigned {
			return nil, fmt.Errorf("%w: saved signed prekey", ErrMalformed)
		}
		p.signed = append(p.signed, k)
	}
	for _, r := range rec.PqPrekeys {
		k, err := keys.NewPQPrekey(r.Id, r.LastResort, r.Seed, id)
		if err != nil || r.Kind != kindPQ {
			return nil, fmt.Errorf("%w: saved pq prekey", ErrMalformed)
		}
		p.pq = append(p.pq, k)
	}
	for _, r := range rec.OneTimePrekeys {
		k, err := keys.NewOneTimePrekey(r.Id, r.Seed)
		if err != nil || r.Kind != kindOneTime {
			return nil, fmt.Errorf("%w: saved one-time prekey", ErrMalformed)
		}
		p.oneTime = append(p.oneTime, k)
	}
	for _, r := range rec.MailboxKeys {
		k, err := keys.NewMailboxKey(r.Id, self, rec.Mailbox, r.Seed, time.Unix(r.ExpiresUnix, 0), id)
		if err != nil || r.Kind != kindMailbox {
			return nil, fmt.Errorf("%w: saved mailbox key", ErrMalformed)
		}
		p.mailbox = append(p.mailbox, k)
	}
	lastResort, _ := p.splitPQ()
	if len(p.signed) == 0 || len(p.signed) != len(p.mailbox) || len(p.signed) != len(lastResort) || !p.pq[0].LastResort() {
		return nil, fmt.Errorf("%w: saved device lacks prekeys", ErrMalformed)
	}
	p.created = p.signed[0].Public().Expires.Add(-PrekeyLifetime)
	return p, nil
}

// rotated returns p with a new current signed prekey, last-resort PQ prekey
// and mailbox key, made at now and expiring PrekeyLifetime later. The old
// ones are kept while a session start made from a bundle carrying them can
// still arrive: until prekeyGrace past their expiry, at most maxOldKeys of
// them (a bundle past its expiry is refused by initiators, so a start
// naming a dropped key can only come from a bundle expired for longer than
// the grace, or from an app that rotates more often than maxOldKeys times
// in a lifetime).
func (p *prekeys) rotated(next func() uint32, id *keys.IdentityPrivateKey, self Address, mailbox []byte, now time.Time) (*prekeys, error) {
	expires := now.Add(PrekeyLifetime)
	mk, err := keys.GenerateMailboxKey(next(), self, mailbox, expires, id)
	if err != nil {
		return nil, err
	}
	spk, err := keys.GenerateSignedPrekey(next(), expires, id)
	if err != nil {
		return nil, err
	}
	keep := 0
	for keep < len(p.signed) && keep < maxOldKeys && now.Before(p.signed[keep].Public().Expires.Add(prekeyGrace)) {
		keep++
	}
	lastResort, oneTime := p.splitPQ()
	out := &prekeys{oneTime: p.oneTime, created: now}
	out.signed = append([]*keys.SignedPrekey{spk}, p.signed[:keep]...)
	out.mailbox = append([]*keys.MailboxKey{mk}, p.mailbox[:min(keep, len(p.mailbox))]...)
	out.pq = append([]*keys.PQPrekey{keys.GeneratePQPrekey(next(), true, id)}, lastResort[:min(keep, len(lastResort))]...)
	out.pq = append(out.pq, oneTime...)
	return out, nil
}

// splitPQ returns the last-resort PQ prekeys (current first) and the
// one-time ones, each in stored order.
func (p *prekeys) splitPQ() (lastResort, oneTime []*keys.PQPrekey) {
	for _, k := range p.pq {
		if k.LastResort() {
			lastResort = append(lastResort, k)
		} else {
			oneTime = append(oneTime, k)
		}
	}
	return lastResort, oneTime
}

package sealpost

import (
	"fmt"

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

// prekeys is the device's private prekey material, decoded.
type prekeys struct {
	signed  []*keys.SignedPrekey // current first
	pq      []*keys.PQPrekey     // last-resort ones (current first), then one-time ones
	oneTime []*keys.OneTimePrekey
	mailbox []*keys.MailboxKey // current first
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
	out := &prekeys{signed: p.signed, mailbox: p.mailbox}
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
		rec.SignedPrekeys = append(rec.SignedPrekeys, privRecord(kindSigned, k.ID(), k.Bytes(), false))
	}
	for _, k := range p.pq {
		rec.PqPrekeys = append(rec.PqPrekeys, privRecord(kindPQ, k.ID(), k.Bytes(), k.LastResort()))
	}
	for _, k := range p.oneTime {
		rec.OneTimePrekeys = append(rec.OneTimePrekeys, privRecord(kindOneTime, k.ID(), k.Bytes(), false))
	}
	for _, k := range p.mailbox {
		rec.MailboxKeys = append(rec.MailboxKeys, privRecord(kindMailbox, k.ID(), k.Bytes(), false))
	}
}

func privRecord(kind, id uint32, seed []byte, lastResort bool) *statepb.PrivateKey {
	return &statepb.PrivateKey{Version: 1, Kind: kind, Id: id, Seed: seed, LastResort: lastResort}
}

// decodePrekeys rebuilds the prekeys from a device record.
func decodePrekeys(rec *statepb.Device, id *keys.IdentityPrivateKey, self Address) (*prekeys, error) {
	for _, list := range [][]*statepb.PrivateKey{rec.SignedPrekeys, rec.PqPrekeys, rec.OneTimePrekeys, rec.MailboxKeys} {
		for _, r := range list {
			if r.Version != 1 {
				return nil, fmt.Errorf("%w: saved private key version %d", ErrUnsupportedVersion, r.Version)
			}
		}
	}
	p := &prekeys{}
	for _, r := range rec.SignedPrekeys {
		k, err := keys.NewSignedPrekey(r.Id, r.Seed, id)
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
		k, err := keys.NewMailboxKey(r.Id, self, rec.Mailbox, r.Seed, id)
		if err != nil || r.Kind != kindMailbox {
			return nil, fmt.Errorf("%w: saved mailbox key", ErrMalformed)
		}
		p.mailbox = append(p.mailbox, k)
	}
	if len(p.signed) == 0 || len(p.mailbox) == 0 || len(p.pq) == 0 || !p.pq[0].LastResort() {
		return nil, fmt.Errorf("%w: saved device lacks prekeys", ErrMalformed)
	}
	return p, nil
}

// rotated returns p with a new current signed prekey, last-resort PQ prekey
// and mailbox key, keeping defaultOldKeys older ones of each for session
// starts still in flight.
func (p *prekeys) rotated(next func() uint32, id *keys.IdentityPrivateKey, self Address, mailbox []byte) (*prekeys, error) {
	mk, err := keys.GenerateMailboxKey(next(), self, mailbox, id)
	if err != nil {
		return nil, err
	}
	out := &prekeys{oneTime: p.oneTime}
	out.signed = keepNewest(append([]*keys.SignedPrekey{keys.GenerateSignedPrekey(next(), id)}, p.signed...))
	out.mailbox = keepNewest(append([]*keys.MailboxKey{mk}, p.mailbox...))
	lastResort, oneTime := p.splitPQ()
	lastResort = keepNewest(append([]*keys.PQPrekey{keys.GeneratePQPrekey(next(), true, id)}, lastResort...))
	out.pq = append(lastResort, oneTime...)
	return out, nil
}

func keepNewest[T any](s []T) []T {
	if len(s) > 1+defaultOldKeys {
		return s[:1+defaultOldKeys]
	}
	return s
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

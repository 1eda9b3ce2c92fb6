package sealpost

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/sealpost/sealpost/proto/sealedpb"
)

// jitter returns a uniformly random delay in [receiptMin, receiptMax].
func (d *Device) jitter() time.Duration {
	span := d.opts.receiptMax - d.opts.receiptMin
	if span <= 0 {
		return d.opts.receiptMin
	}
	var b [8]byte
	rand.Read(b[:])
	return d.opts.receiptMin + time.Duration(binary.LittleEndian.Uint64(b[:])%uint64(span+1))
}

// Acknowledge queues receipts of kind (KindRead, or KindDelivered for apps
// that turned automatic delivery receipts off) for messages received from
// the peer. They leave with the next Send to that peer or from Flush once
// their random delay has passed. It returns ErrMalformed for another kind
// and ErrNotFound when an id is not a message received from the peer that
// the transcript still knows.
func (d *Device) Acknowledge(ctx context.Context, from Address, kind Kind, ids ...MessageID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if kind != KindRead && kind != KindDelivered {
		return fmt.Errorf("%w: receipt kind %v", ErrMalformed, kind)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[from]
	if p == nil {
		return fmt.Errorf("%w: peer %s", ErrNotFound, from)
	}
	now := d.opts.now()
	for _, id := range ids {
		s := p.sessionThatReceived(id)
		if s == nil {
			d.restore(p, nil)
			return fmt.Errorf("%w: message %s from %s", ErrNotFound, id, from)
		}
		d.queueReceipt(s, kind, []MessageID{id}, now)
	}
	return d.commitPeer(ctx, p, false, nil, nil, p.sessions...)
}

// sessionThatReceived returns the session whose transcript holds id.
func (p *peer) sessionThatReceived(id MessageID) *session {
	for _, s := range p.sessions {
		if _, err := s.conv.ReceiptHash([][16]byte{id}); err == nil {
			return s
		}
	}
	return nil
}

// Flush returns envelopes carrying every queued receipt whose random delay
// has passed, one per session with receipts due (batched per peer), each
// saved before it is returned. Call it on a timer, for example every few
// seconds. If the store fails, Flush returns the envelopes made so far and
// the error; the rest stay queued.
func (d *Device) Flush(ctx context.Context) ([]*Outgoing, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.now().UnixNano()
	var out []*Outgoing
	for _, p := range d.peers {
		for i := 0; i < len(p.sessions); i++ {
			s := p.sessions[i]
			if q := s.meta.Receipts; q == nil || s.queued() == 0 || q.DueUnixNano > now || s.meta.Stale {
				continue
			}
			a, err := d.accountOf(ctx, p.addr.User)
			if err != nil {
				return out, err
			}
			if a.vouch(p.addr, p.identity) != nil {
				break // a device its account's list does not name learns nothing, receipts neither
			}
			o, err := d.sendReceipts(ctx, p, s)
			if err != nil {
				return out, err
			}
			if o != nil {
				out = append(out, o)
			}
			p = d.peers[p.addr] // commit may have replaced it
		}
	}
	return out, nil
}

// sendReceipts seals the session's queued receipts as one content.
func (d *Device) sendReceipts(ctx context.Context, p *peer, s *session) (*Outgoing, error) {
	id := newMessageID()
	c := &sealedpb.Content{Version: contentVersion, Id: id[:]}
	takeReceipts(s, c)
	switch {
	case len(c.Read) > 0:
		c.Kind = uint32(KindRead) // Delivered still names the others
	case len(c.Delivered) > 0:
		c.Kind = uint32(KindDelivered)
	default:
		return nil, d.commitPeer(ctx, p, false, nil, nil, s)
	}
	return d.seal(ctx, p, s, c)
}

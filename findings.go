package sealpost

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/transcript"
)

// Findings have a lifecycle (docs/SPEC.md §15.11). Gaps and drops close
// by themselves when what was missing arrives; forks and lost ranges stay
// in the transcript for good, since they are evidence. The app marks a
// finding it has shown the user with Dismiss, and Findings stops returning
// it. An identity-changed finding is settled by Trust (the user accepted
// an identity) or by Dismiss; a new identity claiming the address raises
// it again.

// Bounds of the dismissed findings a peer record keeps.
const (
	maxDismissed  = 64
	dismissedSize = 1 + 1 + 8 + 8
)

// dismissedKey is the saved form of a dismissed finding: what identifies
// it among the peer's findings (not its ids, which a gap lacks).
func dismissedKey(f transcript.Finding) []byte {
	b := make([]byte, 0, dismissedSize)
	out := byte(0)
	if f.Outgoing {
		out = 1
	}
	b = append(b, byte(f.Kind), out)
	b = binary.BigEndian.AppendUint64(b, f.Seq)
	return binary.BigEndian.AppendUint64(b, f.ToSeq)
}

// Findings returns the open findings about the peer that the app has not
// dismissed: the transcript findings of every session with the identity
// pinned for it (gaps not yet closed, drops, forks, lost ranges), and an
// identity-changed finding while another identity claims the address and
// the app has not settled it (Trust or Dismiss; UnconfirmedIdentities
// lists the claimants), and an unanswered finding when the current session
// has gone unacknowledged past the limits of WithUnanswered (the peer may
// have lost it: start a new session from its current bundle and Resend the
// messages it names).
func (d *Device) Findings(peerAddr Address) []transcript.Finding {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.findings(peerAddr)
}

func (d *Device) findings(peerAddr Address) []transcript.Finding {
	return d.findingsOf(peerAddr, false)
}

// findingsOf returns the findings about the peer, with those the app
// dismissed when all is set.
func (d *Device) findingsOf(peerAddr Address, all bool) []transcript.Finding {
	var out []transcript.Finding
	if slices.ContainsFunc(d.others[peerAddr], func(o *peer) bool { return !o.rec.IdentitySeen }) {
		out = append(out, transcript.Finding{Kind: transcript.IdentityChanged})
	}
	p := d.peers[peerAddr]
	if p == nil {
		return out
	}
	// An identity Trust replaced (a reinstall, a new phone) never
	// acknowledged what we sent it last: the new one needs it again.
	for _, o := range d.others[peerAddr] {
		if f, ok := lostWith(o); ok && (all || !p.dismissed(f)) {
			out = append(out, f)
		}
	}
	for _, f := range p.sessionFindings() {
		if all || !p.dismissed(f) {
			out = append(out, f)
		}
	}
	if f, ok := d.unanswered(p); ok && (all || !p.dismissed(f)) {
		out = append(out, f)
	}
	return out
}

// dismissed reports whether the app dismissed f.
func (p *peer) dismissed(f transcript.Finding) bool {
	k := string(dismissedKey(f))
	return slices.ContainsFunc(p.rec.Dismissed, func(d []byte) bool { return string(d) == k })
}

// lostAfter returns a finding of kind naming our contents on s after the
// first held of them, or false when the peer holds them all.
func lostAfter(s *session, kind transcript.Kind, held uint64) (transcript.Finding, bool) {
	sent := s.conv.Next().Seq - 1
	if held >= sent {
		return transcript.Finding{}, false
	}
	ids, _ := s.conv.SentAfter(held)
	return transcript.Finding{Kind: kind, Outgoing: true, Seq: held + 1, ToSeq: sent, IDs: ids}, true
}

// acknowledged is how many of our contents on s the peer's newest report
// says it holds in sequence.
func acknowledged(s *session) uint64 {
	from, _ := s.conv.Unacknowledged()
	return from - 1
}

// lostWith returns a PeerRestored finding for what we sent on the current
// session of o, an identity the app replaced with Trust, that it never
// acknowledged. Only a replaced identity has any: nothing is ever sent to
// an unconfirmed one.
func lostWith(o *peer) (transcript.Finding, bool) {
	if len(o.sessions) == 0 {
		return transcript.Finding{}, false
	}
	return lostAfter(o.sessions[0], transcript.PeerRestored, acknowledged(o.sessions[0]))
}

// unanswered returns the Unanswered finding of the peer's current session
// if its limits are reached (WithUnanswered).
func (d *Device) unanswered(p *peer) (transcript.Finding, bool) {
	if len(p.sessions) == 0 || p.sessions[0].meta.Stale {
		return transcript.Finding{}, false
	}
	s := p.sessions[0]
	f, ok := lostAfter(s, transcript.Unanswered, acknowledged(s))
	idle := d.opts.now().UnixNano() - s.meta.LastReceivedUnixNano
	if !ok || f.ToSeq-f.Seq+1 < d.opts.unansweredCount || idle < d.opts.unansweredAge.Nanoseconds() {
		return transcript.Finding{}, false
	}
	return f, true
}

// Dismiss marks a finding Findings returned as seen by the user, so that
// Findings no longer returns it, after a restart too: an identity-changed
// finding is settled for every identity claiming the address now (a new
// claimant raises it again), any other is remembered by its kind, direction
// and range (a gap that grows is a new finding). It returns ErrNotFound
// for a finding the peer does not have open, and the store's error, with
// nothing changed, if the Apply fails.
func (d *Device) Dismiss(ctx context.Context, peerAddr Address, f transcript.Finding) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	key := dismissedKey(f)
	open := map[string]bool{} // the keys of every finding open now, dismissed or not
	for _, g := range d.findingsOf(peerAddr, true) {
		open[string(dismissedKey(g))] = true
	}
	p := d.peers[peerAddr]
	if !open[string(key)] || (f.Kind != transcript.IdentityChanged && p.dismissed(f)) {
		return fmt.Errorf("%w: no such open finding about %s", ErrNotFound, peerAddr)
	}
	if f.Kind == transcript.IdentityChanged {
		return d.settleIdentities(ctx, peerAddr)
	}
	// Keep only the dismissed findings still open, then add this one.
	var kept [][]byte
	for _, k := range p.rec.Dismissed {
		if open[string(k)] {
			kept = append(kept, k)
		}
	}
	if len(kept) == maxDismissed {
		kept = kept[1:]
	}
	p.rec.Dismissed = append(kept, key)
	return d.commitPeer(ctx, p, false, nil, nil)
}

// sessionFindings returns the transcript findings of the peer's sessions.
func (p *peer) sessionFindings() []transcript.Finding {
	var out []transcript.Finding
	for _, s := range p.sessions {
		out = append(out, s.conv.Findings()...)
	}
	return out
}

// settleIdentities marks every identity claiming peerAddr as seen, in one
// Apply.
func (d *Device) settleIdentities(ctx context.Context, peerAddr Address) error {
	b := d.newBatch()
	var st []staged
	var touched []*peer
	for _, o := range d.others[peerAddr] {
		if o.rec.IdentitySeen {
			continue
		}
		o.rec.IdentitySeen = true
		touched = append(touched, o)
	}
	for _, o := range touched {
		st = append(st, staged{})
		if err := d.stage(b, o, nil, &st[len(st)-1]); err != nil {
			d.recycle(b)
			for _, o := range touched {
				d.restore(o, nil)
			}
			return err
		}
	}
	err := d.store.Apply(ctx, b)
	d.recycle(b)
	if err != nil {
		for _, o := range touched {
			d.restore(o, nil)
		}
		return err
	}
	for i := range st {
		d.adopt(&st[i])
	}
	return nil
}

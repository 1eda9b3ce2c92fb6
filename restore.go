package sealpost

import (
	"context"
	"slices"

	"github.com/sealpost/sealpost/transcript"
)

// Restores from a backup (docs/SPEC.md §15.10). A device whose store was
// restored from a backup holds sessions the peers have moved past: sending
// on them reuses chain positions the peers already consumed, and what the
// peers sent since cannot be read. So the app says so (Restored); every
// session then becomes stale: it still receives, but it is never current
// again and sends nothing, and Send returns ErrNoSession until a new
// session exists (StartSession with the peer's current bundle, or a new
// start from the peer). Our contents on that new session carry, for each
// stale session, how many of the peer's contents the restored state
// holds, until the peer acknowledges one; the peer marks those sessions
// stale too and reports what it sent after that (a PeerRestored finding),
// which the app sends again with Resend under the same ids. A receiver that
// already holds an id reports the message Repeated.

// Restored marks every session of every peer stale, in one Apply: call it
// once, after the store was restored from a backup and before anything is
// sent. Then start a new session with each peer from its current bundle
// (StartSession); until one exists, Send to that peer returns
// ErrNoSession. Messages still arriving on the stale sessions are received
// as before. If the Apply fails, nothing changed.
func (d *Device) Restored(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var all []*peer
	for _, p := range d.peers {
		all = append(all, p)
	}
	for _, list := range d.others {
		all = append(all, list...)
	}
	b := d.newBatch()
	defer d.recycle(b)
	st := make([]staged, 0, len(all))
	var err error
	for _, p := range all {
		var touched []*session
		for _, s := range p.sessions {
			if !s.meta.Stale {
				s.meta.Stale, s.meta.Announce = true, false
				touched = append(touched, s)
			}
		}
		if len(touched) == 0 {
			continue
		}
		st = append(st, staged{})
		if err = d.stage(b, p, touched, &st[len(st)-1]); err != nil {
			break
		}
	}
	if err == nil {
		err = d.store.Apply(ctx, b)
	}
	if err != nil {
		for _, p := range all {
			d.restore(p, nil)
		}
		return err
	}
	for i := range st {
		d.adopt(&st[i])
	}
	return nil
}

// resumed handles a content's resume field: the peer restored a backup
// whose state held our contents on session pt.session only up to pt.held.
// That session becomes stale on our side too (it is never current again:
// the peer abandoned it), and a PeerRestored finding names what we sent
// on it after that, for the app to send again under the same ids.
func (d *Device) resumed(rc *received, resume []resumePoint) []transcript.Finding {
	var out []transcript.Finding
	for _, pt := range resume {
		i := slices.IndexFunc(rc.p.sessions, func(s *session) bool { return s.id == pt.session })
		if i < 0 || rc.p.sessions[i] == rc.s {
			continue // a session we no longer hold, or this one
		}
		s := rc.p.sessions[i]
		if !s.meta.Stale {
			s.meta.Stale = true
			rc.stale = append(rc.stale, s)
		}
		if f, ok := lostAfter(s, transcript.PeerRestored, pt.held); ok {
			out = append(out, f)
		}
	}
	return out
}

// replaced handles the sessions a new start from the peer replaces: each
// becomes stale, and what we sent on it that the peer never acknowledged
// is reported as a PeerRestored finding, for the app to send again.
func (d *Device) replaced(rc *received) []transcript.Finding {
	var out []transcript.Finding
	for _, s := range rc.replaced {
		if s.meta.Stale {
			continue // the content's resume field named it: reported there
		}
		s.meta.Stale = true
		rc.stale = append(rc.stale, s)
		// We may be the side that lost state without knowing it (a
		// restore nobody reported): say on the new session what the old
		// one holds, so that the peer sends again what we no longer have.
		rc.s.meta.Announce = true
		if f, ok := lostAfter(s, transcript.PeerRestored, acknowledged(s)); ok {
			out = append(out, f)
		}
	}
	return out
}

// hasStale reports whether any of the peer's sessions is stale.
func (p *peer) hasStale() bool {
	return slices.ContainsFunc(p.sessions, func(s *session) bool { return s.meta.Stale })
}

// hasReceived reports whether a content with id from the peer was received
// on any of its sessions (within each transcript's received log).
func (p *peer) hasReceived(id MessageID) bool {
	return slices.ContainsFunc(p.sessions, func(s *session) bool { return s.conv.HasReceived(id) })
}

// resumePoints returns the resume field of a content to the peer: each
// stale session with how many of the peer's contents it holds.
func (p *peer) resumePoints() [][]byte {
	var out [][]byte
	for _, s := range p.sessions {
		if s.meta.Stale {
			out = append(out, resumePoint{session: s.id, held: s.conv.Next().AckCount}.encode())
		}
	}
	return out
}

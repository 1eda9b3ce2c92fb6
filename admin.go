package sealpost

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/ratchet"
)

// IdentityChangedError reports, in strict mode, a peer whose identity is
// not the pinned one. It matches ErrIdentityChanged with errors.Is. Call
// Trust with New to accept it.
type IdentityChangedError struct {
	Peer     Address
	Old, New keys.PublicIdentity
}

// Error names the peer and both fingerprints' starts.
func (e *IdentityChangedError) Error() string {
	return fmt.Sprintf("%v: %s: pinned %v, presented %v", ErrIdentityChanged, e.Peer, e.Old, e.New)
}

// Unwrap returns ErrIdentityChanged.
func (e *IdentityChangedError) Unwrap() error { return ErrIdentityChanged }

// Done tells the device the app has safely handled the results with these
// ids (stored the message, shown the receipt). Their kept copies are
// deleted; receiving the same envelopes again is then ErrDuplicate. Unknown
// ids are ignored.
func (d *Device) Done(ctx context.Context, ids ...MessageID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.newBatch()
	var touched []*peer
	for _, id := range ids {
		p := d.kept[id]
		if p == nil {
			continue
		}
		if !slices.Contains(touched, p) {
			touched = append(touched, p)
		}
		for i, k := range p.kept {
			if MessageID(k.ID) == id {
				b.Delete(k.StoreKey())
				// keptSaved, the committed list, shares the array and
				// must not change: the oldest is resliced off, any other
				// removal makes a new slice.
				switch {
				case len(p.kept) == 1:
					// Empty, keeping the array for the next result: the
					// committed list is this one until the Apply below
					// succeeds, and nothing is appended before.
					p.kept = p.kept[:0]
				case i == 0:
					p.kept = p.kept[1:]
				default:
					p.kept = slices.Concat(p.kept[:i], p.kept[i+1:])
				}
				break
			}
		}
	}
	if len(touched) == 0 {
		return nil
	}
	// One Apply for every peer touched: all are done, or none.
	idx := make([][]byte, len(touched))
	var err error
	for i, p := range touched {
		if idx[i], err = p.encodeKept(); err != nil {
			break
		}
		putRecord(b, p.keptIndexKey(), idx[i])
	}
	if err == nil {
		err = d.store.Apply(ctx, b)
		d.recycle(b)
	}
	for _, p := range touched {
		if err != nil {
			p.kept = p.keptSaved
		} else {
			p.keptSaved = p.kept
		}
		d.indexKept(p)
	}
	return err
}

// PeerIdentity returns the identity pinned for the peer and when it last
// changed (the zero time if never). It returns ErrNoSession for an unknown
// peer.
func (d *Device) PeerIdentity(peerAddr Address) (keys.PublicIdentity, time.Time, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[peerAddr]
	if p == nil {
		return keys.PublicIdentity{}, time.Time{}, fmt.Errorf("%w: %s", ErrNoSession, peerAddr)
	}
	var changed time.Time
	if n := p.rec.IdentityChangedUnixNano; n != 0 {
		changed = time.Unix(0, n)
	}
	return p.identity, changed, nil
}

// KEMProgress returns how many post-quantum epochs the current session
// with the peer has mixed into its ratchet in each lane: Own counts the
// epochs of this device's KEM keys, Peer those of the peer's
// (ratchet.Session.KEMProgress). Both grow by one about every 75 messages
// each way in a two-way conversation (TestKEMProgress: 4 epochs in 300); a lane that stays still while
// messages flow both ways is a stalled lane (docs/SPEC.md §11), which an
// app can report. It returns ErrNoSession when there is no session.
func (d *Device) KEMProgress(peerAddr Address) (ratchet.KEMProgress, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.peers[peerAddr]
	if p == nil || len(p.sessions) == 0 {
		return ratchet.KEMProgress{}, fmt.Errorf("%w: %s", ErrNoSession, peerAddr)
	}
	return p.sessions[0].r.KEMProgress(), nil
}

// PeerInfo describes one peer a Device holds: its address, the identity
// pinned for it, whether it is pending (it contacted us and we have neither
// answered nor trusted it: such peers are evicted oldest first past
// WithMaxPendingPeers), how many other identities claim its address
// (UnconfirmedIdentities), its sessions, and when one of them last
// received a message or was made (Send refuses a session idle longer than
// the maximum age: WithSessionMaxAge).
type PeerInfo struct {
	Address     Address
	Identity    keys.PublicIdentity
	Pending     bool
	Unconfirmed int
	Sessions    int
	LastActive  time.Time
}

// Peers lists the peers the device holds, by address, with the pinned
// identity's state; an address claimed only by unconfirmed identities is
// listed with a zero Identity.
func (d *Device) Peers() []PeerInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	byAddr := map[Address]*PeerInfo{}
	info := func(a Address) *PeerInfo {
		if i := byAddr[a]; i != nil {
			return i
		}
		i := &PeerInfo{Address: a}
		byAddr[a] = i
		return i
	}
	for a, p := range d.peers {
		i := info(a)
		i.Identity, i.Pending, i.Sessions = p.identity, p.pending(), len(p.sessions)
		for _, s := range p.sessions {
			if n := s.meta.LastReceivedUnixNano; n != 0 && time.Unix(0, n).After(i.LastActive) {
				i.LastActive = time.Unix(0, n)
			}
		}
	}
	for a, others := range d.others {
		info(a).Unconfirmed = len(others)
	}
	out := make([]PeerInfo, 0, len(byAddr))
	for _, i := range byAddr {
		out = append(out, *i)
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		return cmp.Or(strings.Compare(a.Address.User, b.Address.User), cmp.Compare(a.Address.Device, b.Address.Device))
	})
	return out
}

package sealpost

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/statepb"
)

// Identities at an address (docs/SPEC.md §15.6).
// Until accounts and a key directory bind addresses to keys, an address is
// only a claim: anyone holding a public bundle can start a session
// presenting any address and a new identity. So an identity change never
// destroys or redirects anything. The first identity seen at an address is
// pinned (trust on first use); a session start from another identity at
// that address becomes a separate, unconfirmed peer whose messages are
// delivered marked Unconfirmed, while Send, Flush and Acknowledge keep
// using the pinned one. Trust switches over (see Trust).

// peerName returns the store name of a peer: its address, or with second
// set (another peer at the address holds that name) the address, "#" and
// the first 16 bytes of the identity's fingerprint in hex.
func peerName(addr Address, id keys.PublicIdentity, second bool) string {
	if !second {
		return addr.String()
	}
	fp := id.Fingerprint()
	return addr.String() + "#" + hex.EncodeToString(fp[:16])
}

// newPeerObject returns the in-memory peer for a record.
func newPeerObject(addr Address, name string, id keys.PublicIdentity, rec *statepb.Peer) *peer {
	return &peer{addr: addr, name: name, key: record.KeyPeerPrefix + name, identity: id, fp: id.Fingerprint(), rec: rec, slot: -1}
}

// newPeer returns a peer not yet committed: unconfirmed or pinned, and
// pending from now or not.
func (d *Device) newPeer(addr Address, id keys.PublicIdentity, unconfirmed, pending bool) (*peer, error) {
	if err := validAddress(addr); err != nil {
		return nil, err
	}
	name := peerName(addr, id, false)
	if d.nameTaken(addr, name) {
		if name = peerName(addr, id, true); d.nameTaken(addr, name) {
			return nil, fmt.Errorf("%w: two identities at %s share a fingerprint prefix", ErrMalformed, addr)
		}
	}
	rec := &statepb.Peer{Unconfirmed: unconfirmed}
	if pending {
		rec.PendingSinceUnixNano = max(d.opts.now().UnixNano(), 1)
	}
	return newPeerObject(addr, name, id, rec), nil
}

// nameTaken reports whether a peer at addr has the store name name.
func (d *Device) nameTaken(addr Address, name string) bool {
	if p := d.peers[addr]; p != nil && p.name == name {
		return true
	}
	return slices.ContainsFunc(d.others[addr], func(o *peer) bool { return o.name == name })
}

// other returns the unconfirmed peer at addr with identity id, or nil.
func (d *Device) other(addr Address, id keys.PublicIdentity) *peer {
	for _, o := range d.others[addr] {
		if o.identity.Equal(id) {
			return o
		}
	}
	return nil
}

// place puts a committed peer where its record says: pinned or unconfirmed.
func (d *Device) place(p *peer) {
	if p.unconfirmed() {
		if d.peers[p.addr] == p {
			delete(d.peers, p.addr)
		}
		if !slices.Contains(d.others[p.addr], p) {
			d.others[p.addr] = append(d.others[p.addr], p)
		}
		return
	}
	d.peers[p.addr] = p
	d.removeOther(p)
}

// unplace removes p from the device's maps of peers.
func (d *Device) unplace(p *peer) {
	if d.peers[p.addr] == p {
		delete(d.peers, p.addr)
	}
	d.removeOther(p)
}

func (d *Device) removeOther(p *peer) {
	list := d.others[p.addr]
	if i := slices.Index(list, p); i >= 0 {
		if list = slices.Delete(list, i, i+1); len(list) == 0 {
			delete(d.others, p.addr)
		} else {
			d.others[p.addr] = list
		}
	}
}

// peerFor returns the peer a session start from addr presenting identity
// id belongs to, and whether it is new: the pinned peer if id is pinned,
// the unconfirmed peer with id if there is one, else a new pending peer,
// pinned when the address has no pinned peer (trust on first use) and
// unconfirmed otherwise. In strict mode an identity other than the pinned
// one is ErrIdentityChanged instead (IdentityChangedError), until Trust.
func (d *Device) peerFor(addr Address, id keys.PublicIdentity) (p *peer, isNew bool, err error) {
	pinned := d.peers[addr]
	if pinned != nil && pinned.identity.Equal(id) {
		return pinned, false, nil
	}
	if pinned != nil && d.opts.strictIdentity {
		return nil, false, &IdentityChangedError{Peer: addr, Old: pinned.identity, New: id}
	}
	if o := d.other(addr, id); o != nil {
		return o, false, nil
	}
	p, err = d.newPeer(addr, id, pinned != nil, true)
	return p, err == nil, err
}

// peerToStart returns the peer a session we start with addr from a bundle
// presenting id belongs to, and whether it is new: the pinned peer, or
// when the address has none, the unconfirmed peer with id or a new one.
// A bundle whose identity is not the pinned one is ErrIdentityChanged in
// both modes: we never send to an identity the app has not accepted (Trust
// it first).
func (d *Device) peerToStart(addr Address, id keys.PublicIdentity) (*peer, bool, error) {
	p := d.peers[addr]
	switch {
	case p != nil && !p.identity.Equal(id):
		return nil, false, &IdentityChangedError{Peer: addr, Old: p.identity, New: id}
	case p != nil:
		return p, false, nil
	}
	if p = d.other(addr, id); p != nil { // the address lost its pinned peer (Forget, eviction)
		return p, false, nil
	}
	p, err := d.newPeer(addr, id, false, false)
	return p, err == nil, err
}

// Trust pins identity for the peer address: the app accepts it, after the
// user compared safety numbers (keys.SafetyNumber with Incoming.Identity)
// or otherwise decided.
//
// If identity is already pinned, Trust only marks the peer as accepted (no
// longer pending, so never evicted). Otherwise identity becomes the pinned
// one: its unconfirmed peer (the sessions it started, if any) becomes the
// peer Send, Flush and Acknowledge use, so replies go to the mailbox it
// gave; the previously pinned identity is archived as an unconfirmed peer:
// its sessions still receive, its messages are delivered marked
// Unconfirmed, nothing is sent to it, and it counts as pending (evicted
// after newer first contacts, or accepted again with Trust). When identity
// has not contacted us yet (strict mode after ErrIdentityChanged, or before
// StartSession with a bundle carrying it), the new pinned peer has no
// session until its start arrives or we start one. PeerIdentity reports
// the time of the switch. It returns ErrMalformed for a zero identity or a
// bad address, and the store's error, with nothing changed, if the Apply
// fails.
func (d *Device) Trust(ctx context.Context, peerAddr Address, identity keys.PublicIdentity) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if identity.IsZero() {
		return fmt.Errorf("%w: Trust with no identity", ErrMalformed)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	pinned := d.peers[peerAddr]
	if pinned != nil && pinned.identity.Equal(identity) {
		// The user keeps the pinned identity: the claimants are settled.
		if pinned.pending() {
			pinned.rec.PendingSinceUnixNano = 0
			if err := d.commitPeer(ctx, pinned, false, nil, nil); err != nil {
				return err
			}
		}
		return d.settleIdentities(ctx, peerAddr)
	}
	u, isNew := d.other(peerAddr, identity), false
	if u == nil {
		var err error
		if u, err = d.newPeer(peerAddr, identity, false, false); err != nil {
			return err
		}
		isNew = true
	}
	delta := 0
	if u.inPending {
		delta--
	}
	now := d.opts.now().UnixNano()
	u.rec.Unconfirmed, u.rec.PendingSinceUnixNano, u.rec.IdentitySeen = false, 0, false
	b, tx := d.newBatch(), &txn{}
	// Trust settles every identity claiming the address now, the one it
	// replaces included (docs/SPEC.md §15.11).
	for _, o := range d.others[peerAddr] {
		if o == u || o.rec.IdentitySeen {
			continue
		}
		o.rec.IdentitySeen = true
		var st staged
		if err := d.stage(b, o, nil, &st); err != nil {
			d.recycle(b)
			d.restoreTxn(tx)
			d.restore(o, nil)
			d.restore(u, nil)
			return err
		}
		tx.also = append(tx.also, st)
	}
	if pinned != nil {
		pinned.rec.IdentitySeen = true
		u.rec.IdentityChangedUnixNano = now
		if !pinned.pending() {
			pinned.rec.PendingSinceUnixNano = max(now, 1)
			delta++
		}
		pinned.rec.Unconfirmed = true
		var st staged
		if err := d.stage(b, pinned, nil, &st); err != nil {
			d.recycle(b)
			d.restoreTxn(tx)
			d.restore(pinned, nil)
			d.restore(u, nil)
			return err
		}
		tx.also = append(tx.also, st)
	}
	tx.evict = d.evictions(delta, u, pinned)
	return d.commitPeerKeeping(ctx, u, isNew, nil, b, tx, nil)
}

// UnconfirmedIdentities returns the identities other than the pinned one
// that have started sessions with us presenting peerAddr (their messages
// arrived with Incoming.Unconfirmed set), oldest first; Trust accepts one.
// It returns nil when there are none.
func (d *Device) UnconfirmedIdentities(peerAddr Address) []keys.PublicIdentity {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []keys.PublicIdentity
	for _, o := range d.others[peerAddr] {
		out = append(out, o.identity)
	}
	return out
}

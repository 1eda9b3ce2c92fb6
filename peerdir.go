package sealpost

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/internal/seen"
)

// The peer directory and the bound on pending peers (issue 14, defect 3).
//
// The Device lists its peers one per record, "peers/<slot>" holding the
// peer's store name, in slots 0..n-1 with no holes: adding a peer writes
// one small record, removing one moves the last entry into its slot. So
// the bytes a first contact writes do not grow with the number of peers
// (the device record used to list every peer and was rewritten whole with
// each new one).
//
// A peer that contacted us and that we have neither answered (Send,
// StartSession) nor trusted (Trust) is pending; so is every unconfirmed
// identity. Anyone holding our public last-resort bundle can create
// pending peers, and sealed sender keeps the relay from rate-limiting
// them, so at most WithMaxPendingPeers of them are kept: a first contact
// beyond that evicts the oldest pending peer in the same Apply, deleting
// its records as Forget does. Peers we answered are never evicted.

// maxPeerName bounds a stored peer name: the longest address, "#" and 32
// hex digits.
const maxPeerName = 256 + 11 + 1 + 32

func dirKey(slot int) string { return record.KeyDirPrefix + strconv.Itoa(slot) }

// encodeDirSlot returns a directory record: version (record.Layout), then
// the peer's store name (1..maxPeerName bytes, UTF-8). Nothing follows.
func encodeDirSlot(name string) []byte {
	b := make([]byte, 0, 1+len(name)+record.ChecksumSize)
	return append(append(b, record.Layout), name...)
}

// decodeDirSlot decodes a directory record (layout on encodeDirSlot). It
// returns ErrUnsupportedVersion for another version and ErrMalformed for
// an empty, overlong or non-UTF-8 name.
func decodeDirSlot(raw []byte) (string, error) {
	if len(raw) == 0 {
		return "", fmt.Errorf("%w: empty peer directory record", ErrMalformed)
	}
	if raw[0] != record.Layout {
		return "", fmt.Errorf("%w: peer directory record version %d", ErrUnsupportedVersion, raw[0])
	}
	name := raw[1:]
	if len(name) == 0 || len(name) > maxPeerName || !utf8.Valid(name) {
		return "", fmt.Errorf("%w: peer directory record", ErrMalformed)
	}
	return string(name), nil
}

// loadPeers reads the peer directory and every peer in it.
func (d *Device) loadPeers(ctx context.Context) error {
	names := map[string]bool{}
	for slot := 0; ; slot++ {
		raw, err := getRecord(ctx, d.store, dirKey(slot))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		name, err := decodeDirSlot(raw)
		if err != nil {
			return err
		}
		if names[name] {
			return fmt.Errorf("%w: peer %q listed twice", ErrMalformed, name)
		}
		names[name] = true
		p, err := d.loadPeer(ctx, name, slot)
		if err != nil {
			return err
		}
		if !p.unconfirmed() && d.peers[p.addr] != nil {
			return fmt.Errorf("%w: two pinned identities at %s", ErrMalformed, p.addr)
		}
		d.dir = append(d.dir, p)
		d.place(p)
		d.index(p)
		d.indexReplies(p)
		if p.pending() {
			d.pending = append(d.pending, p)
			p.inPending = true
		}
	}
	slices.SortStableFunc(d.pending, func(a, b *peer) int {
		return cmp.Or(cmp.Compare(a.rec.PendingSinceUnixNano, b.rec.PendingSinceUnixNano), cmp.Compare(a.name, b.name))
	})
	return nil
}

// txn is what a commit does beyond the records of the peer it commits:
// other peers staged in the same Apply (Trust), peers deleted by it
// (evicted or forgotten), the directory entries that change, and an
// accepted session start to remember. Nothing in it touches memory before
// the Apply succeeds.
type txn struct {
	also    []staged
	adds    []*peer // peers of also that are new: their directory entries
	evict   []*peer
	dir     []dirOp
	dirN    int
	seen    *seen.Starts // with seenAdd, the start to add once committed
	seenAdd seen.Add
}

// dirOp sets a directory slot to a peer, or deletes it (p nil).
type dirOp struct {
	slot int
	p    *peer
}

// stageTxn adds to b the deletion of every evicted peer and the directory
// changes: p's entry when it is new, and the evicted peers' removal.
func (d *Device) stageTxn(b *Batch, p *peer, isNew bool, tx *txn) {
	var add []*peer
	if isNew {
		add = []*peer{p}
	}
	add = append(add, tx.adds...)
	for _, v := range tx.evict {
		d.deletePeer(b, v)
	}
	tx.dir, tx.dirN = d.planDir(tx.evict, add)
	for _, op := range tx.dir {
		if op.p == nil {
			b.Delete(dirKey(op.slot))
		} else {
			putRecord(b, dirKey(op.slot), encodeDirSlot(op.p.name))
		}
	}
}

// planDir returns the directory changes that remove some peers and add
// others, and the new number of slots: an added peer takes a removed one's
// slot, or a new one at the end; a slot left free gets the last entry.
func (d *Device) planDir(remove, add []*peer) ([]dirOp, int) {
	n := len(d.dir)
	at := map[int]*peer{}
	get := func(i int) *peer {
		if q, ok := at[i]; ok {
			return q
		}
		return d.dir[i]
	}
	var free []int
	for _, p := range remove {
		if p.slot >= 0 {
			free = append(free, p.slot)
		}
	}
	slices.Sort(free)
	for _, p := range add {
		if len(free) > 0 {
			at[free[0]], free = p, free[1:]
		} else {
			at[n], n = p, n+1
		}
	}
	for i := len(free) - 1; i >= 0; i-- { // highest first: the last entry is never a freed slot
		last := n - 1
		if free[i] != last {
			at[free[i]] = get(last)
		}
		at[last], n = nil, n-1
	}
	ops := make([]dirOp, 0, len(at))
	for slot, p := range at {
		ops = append(ops, dirOp{slot, p})
	}
	slices.SortFunc(ops, func(a, b dirOp) int { return cmp.Compare(a.slot, b.slot) })
	return ops, n
}

// adoptTxn applies a committed txn to memory.
func (d *Device) adoptTxn(tx *txn) {
	if tx == nil {
		return
	}
	for _, v := range tx.evict {
		d.forgetPeer(v)
	}
	if tx.dir != nil || tx.dirN != len(d.dir) {
		for len(d.dir) < tx.dirN {
			d.dir = append(d.dir, nil)
		}
		for _, op := range tx.dir {
			if op.slot < len(d.dir) {
				d.dir[op.slot] = op.p
			}
			if op.p != nil {
				op.p.slot = op.slot
			}
		}
		clear(d.dir[tx.dirN:])
		d.dir = d.dir[:tx.dirN]
	}
	for i := range tx.also {
		d.adopt(&tx.also[i])
	}
	if tx.seen != nil {
		tx.seen.Adopt(tx.seenAdd)
	}
}

// restoreTxn rewinds the other peers a failed txn staged.
func (d *Device) restoreTxn(tx *txn) {
	if tx == nil {
		return
	}
	for _, st := range tx.also {
		d.restore(st.p, nil)
	}
}

// deletePeer adds to b the deletion of every committed record of p.
func (d *Device) deletePeer(b *Batch, p *peer) {
	b.Delete(p.key)
	b.Delete(p.keptIndexKey())
	for i := range p.kept {
		b.Delete(p.kept[i].StoreKey())
	}
	for _, s := range p.saved {
		s.deleteAll(b)
	}
}

// forgetPeer drops a deleted peer from memory.
func (d *Device) forgetPeer(p *peer) {
	d.unindex(p)
	d.unindexReplies(p)
	d.unplace(p)
	p.rec.PendingSinceUnixNano = 0
	d.syncPending(p)
	d.active = slices.DeleteFunc(d.active, func(a activeSession) bool { return a.p == p })
	p.gone, p.slot = true, -1
}

// syncPending keeps Device.pending, the pending peers oldest first, in
// step with p's committed record.
func (d *Device) syncPending(p *peer) {
	if p.pending() == p.inPending {
		return
	}
	if p.inPending = p.pending(); p.inPending {
		d.pending = append(d.pending, p)
	} else if i := slices.Index(d.pending, p); i >= 0 {
		d.pending = slices.Delete(d.pending, i, i+1)
	}
}

// evictions returns the oldest pending peers, none of keep, to evict so
// that delta more pending peers stay within the bound.
func (d *Device) evictions(delta int, keep ...*peer) []*peer {
	over := len(d.pending) + delta - d.opts.maxPending
	var out []*peer
	for _, q := range d.pending {
		if over <= 0 {
			break
		}
		if !slices.Contains(keep, q) {
			out = append(out, q)
			over--
		}
	}
	return out
}

// Forget deletes everything the device holds about the peer address: the
// pinned identity and every unconfirmed one, their sessions, transcripts,
// queued receipts and kept results, in one Apply. Accepted session starts
// stay remembered (a replayed start is still ErrDuplicate). A later first
// contact from the address is a new peer (trusted on first use again), and
// Send returns ErrNoSession until a session exists. Forgetting an unknown
// address does nothing. If the Apply fails, it returns the error and
// nothing changed.
func (d *Device) Forget(ctx context.Context, peerAddr Address) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	tx := &txn{evict: slices.Clone(d.others[peerAddr])}
	if p := d.peers[peerAddr]; p != nil {
		tx.evict = append(tx.evict, p)
	}
	if len(tx.evict) == 0 {
		return nil
	}
	b := d.newBatch()
	d.stageTxn(b, nil, false, tx)
	err := d.store.Apply(ctx, b)
	d.recycle(b)
	if err != nil {
		return err
	}
	d.adoptTxn(tx)
	return nil
}

package transcript

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/sealpost/sealpost/internal/kdf"
)

// indexAbove is the receipt size from which a lookup builds a map of the
// log instead of scanning it once per id.
const indexAbove = 16

// ReceiptHash returns the hash that a receipt naming the peer's contents
// ids carries, ids in the order the receipt lists them. It is SHA-256 of
// LabelTranscriptReceipt followed, for each id, by the id, the content's
// seq (8 bytes, big-endian) and the hash of its exact bytes. The peer's
// CheckReceipt recomputes it from its own log, so a receipt that verifies
// says "received exactly these bytes as these contents".
//
// Every id must be a peer content in the received log (the newest MaxLog);
// otherwise ReceiptHash returns ErrNotFound. No ids is ErrMalformed. It
// changes nothing.
func (c *Conversation) ReceiptHash(ids [][16]byte) ([32]byte, error) {
	if len(ids) == 0 {
		return [32]byte{}, fmt.Errorf("%w: transcript: receipt without ids", ErrMalformed)
	}
	found, unknown := lookup(ids, c.in.log.len(), func(i int) receivedEntry { return *c.in.log.at(i) })
	if len(unknown) > 0 {
		return [32]byte{}, fmt.Errorf("%w: transcript: %d receipt ids are not received contents", ErrNotFound, len(unknown))
	}
	return receiptDigest(found), nil
}

// ReceiptTooOld reports whether a receipt naming ids cannot be checked
// because the sent log no longer holds some of them while it has dropped
// our oldest contents: a peer that catches up after more than MaxLog of our
// contents acknowledges ones we no longer remember. Such a receipt
// acknowledges nothing, and is not a mismatch: an honest peer offline for
// long sends it. (While the log holds everything we ever sent, an unknown
// id was never ours, and CheckReceipt reports it.) It changes nothing.
func (c *Conversation) ReceiptTooOld(ids [][16]byte) bool {
	o := &c.out
	if o.first() <= 1 || len(ids) == 0 {
		return false
	}
	_, unknown := lookup(ids, o.log.len(), func(i int) receivedEntry {
		e := o.log.at(i)
		return receivedEntry{seq: o.first() + uint64(i), id: e.id, hash: e.hash}
	})
	return len(unknown) > 0
}

// CheckReceipt verifies a receipt from the peer that names our contents ids
// and carries hash. It returns nil when every id is one of our contents in
// the sent log (the newest MaxLog) and hash is their ReceiptHash. Otherwise
// it returns one ReceiptMismatch finding: with the ids that are not ours
// (never sent, or older than the log), or, when all are ours and the hash
// differs, with all ids and Seq..ToSeq their lowest and highest seq. A
// receipt without ids is a mismatch too. It changes nothing; the caller
// must mark none of the ids delivered or read unless it returns nil.
func (c *Conversation) CheckReceipt(ids [][16]byte, hash [32]byte) []Finding {
	mismatch := Finding{Kind: ReceiptMismatch, Outgoing: true}
	if len(ids) == 0 {
		return []Finding{mismatch}
	}
	o := &c.out
	found, unknown := lookup(ids, o.log.len(), func(i int) receivedEntry {
		e := o.log.at(i)
		return receivedEntry{seq: o.first() + uint64(i), id: e.id, hash: e.hash}
	})
	if len(unknown) > 0 {
		mismatch.IDs = unknown
		return []Finding{mismatch}
	}
	if receiptDigest(found) == hash {
		return nil
	}
	mismatch.Seq, mismatch.ToSeq = found[0].seq, found[0].seq
	for _, e := range found {
		mismatch.Seq, mismatch.ToSeq = min(mismatch.Seq, e.seq), max(mismatch.ToSeq, e.seq)
		mismatch.IDs = append(mismatch.IDs, e.id)
	}
	return []Finding{mismatch}
}

// lookup finds each id in a log of n entries, preferring the newest entry
// with that id. The zero id is never found: it names no content.
func lookup(ids [][16]byte, n int, at func(int) receivedEntry) (found []receivedEntry, unknown [][16]byte) {
	var index map[[16]byte]receivedEntry
	if len(ids) > indexAbove {
		index = make(map[[16]byte]receivedEntry, n)
		for i := range n {
			e := at(i)
			index[e.id] = e
		}
	}
	found = make([]receivedEntry, 0, len(ids))
	for _, id := range ids {
		e, ok := find(id, n, at, index)
		if !ok || id == ([16]byte{}) {
			unknown = append(unknown, id)
			continue
		}
		found = append(found, e)
	}
	return found, unknown
}

// find returns the newest entry with id, from index if there is one.
func find(id [16]byte, n int, at func(int) receivedEntry, index map[[16]byte]receivedEntry) (receivedEntry, bool) {
	if index != nil {
		e, ok := index[id]
		return e, ok
	}
	for i := n - 1; i >= 0; i-- {
		if e := at(i); e.id == id {
			return e, true
		}
	}
	return receivedEntry{}, false
}

// receiptDigest is the receipt hash over entries (see ReceiptHash).
func receiptDigest(entries []receivedEntry) [32]byte {
	h := sha256.New()
	h.Write([]byte(kdf.LabelTranscriptReceipt))
	var buf [8]byte
	for _, e := range entries {
		h.Write(e.id[:])
		binary.BigEndian.PutUint64(buf[:], e.seq)
		h.Write(buf[:])
		h.Write(e.hash[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

package sealpost

import (
	"encoding/binary"
	"fmt"

	"github.com/sealpost/sealpost/internal/record"
)

// The delivery receipts queued on a session are saved like the
// transcript's logs: 16 ids per block, each block under its own slot, so
// that queueing one receipt per received message writes one small block
// and not the whole queue.
const (
	queueBlockSize = 16
	queueBlocks    = maxQueuedReceipts/queueBlockSize + 1
	// queueSlots is one block more than the queue can hold, so the newest
	// push never overwrites an id still queued before it (a failed save
	// restores the old bounds only).
	queueSlots = queueBlocks * queueBlockSize
	// queueBlockFixed is a block's size without its ids; maxQueueBlock
	// bounds a saved block.
	queueBlockFixed = 1 + 8
	maxQueueBlock   = queueBlockFixed + queueBlockSize*16
)

// idQueue is a session's queued delivery receipts: ids with absolute index
// from up to to, the id with index a in slot a mod queueSlots.
type idQueue struct {
	buf      [][16]byte // nil until the first push, then queueSlots long
	from, to uint64
}

func (q *idQueue) len() int { return int(q.to - q.from) }

// push queues id, dropping the oldest when max are queued.
func (q *idQueue) push(id [16]byte, max int) {
	if q.buf == nil {
		q.buf = make([][16]byte, queueSlots)
	}
	q.buf[q.to%queueSlots] = id
	q.to++
	for q.len() > max {
		q.from++
	}
}

// dropOldest drops the oldest queued id.
func (q *idQueue) dropOldest() {
	if q.from < q.to {
		q.from++
	}
}

// take removes and returns the oldest n queued ids (all when fewer).
func (q *idQueue) take(n int) [][]byte {
	n = min(n, q.len())
	if n == 0 {
		return nil
	}
	out, flat := make([][]byte, n), make([]byte, 16*n)
	for i := range out {
		out[i] = flat[16*i : 16*i+16 : 16*i+16]
		copy(out[i], q.buf[(q.from+uint64(i))%queueSlots][:])
	}
	q.from += uint64(n)
	return out
}

// changedBlocks calls fn with every block holding an id queued after
// index since (the bound last saved), each in a buffer of exactly its size
// plus room for the checksum putRecord appends. A block, "rq/<address>/
// <session id in hex>/<slot>" with slot k mod queueBlocks for block k,
// has the layout (integers big-endian):
//
//	version  1   record.Layout
//	first    8   absolute index of its first id still queued when saved:
//	             within block k (k*16 to k*16+15)
//	ids      16 each, from first to the end of the queue or of the block
func (q *idQueue) changedBlocks(since uint64, fn func(slot int, block []byte)) {
	since = max(since, q.from)
	if since >= q.to {
		return
	}
	for k := since / queueBlockSize; k <= (q.to-1)/queueBlockSize; k++ {
		from, to := max(k*queueBlockSize, q.from), min(q.to, (k+1)*queueBlockSize)
		b := make([]byte, 0, queueBlockFixed+(to-from)*16+record.ChecksumSize)
		b = append(b, record.Layout)
		b = binary.BigEndian.AppendUint64(b, from)
		for a := from; a < to; a++ {
			b = append(b, q.buf[a%queueSlots][:]...)
		}
		fn(int(k%queueBlocks), b)
	}
}

// load replaces q with the saved queue from..to, whose blocks block(slot)
// returns. A block of another version is ErrUnsupportedVersion; one that
// is truncated, too long, not whole ids, or does not cover what the
// bounds say is queued is ErrMalformed.
func (q *idQueue) load(from, to uint64, block func(slot int) ([]byte, error)) error {
	if to < from || to-from > maxQueuedReceipts {
		return fmt.Errorf("%w: saved receipt queue bounds", ErrMalformed)
	}
	next := idQueue{from: from, to: to}
	if from == to {
		*q = next
		return nil
	}
	next.buf = make([][16]byte, queueSlots)
	for k := from / queueBlockSize; k <= (to-1)/queueBlockSize; k++ {
		b, err := block(int(k % queueBlocks))
		if err != nil {
			return err
		}
		// A block starts at its first id still queued when it was saved,
		// which may be later than the block's start, never later than
		// what is queued now.
		if len(b) > 0 && b[0] != record.Layout {
			return fmt.Errorf("%w: saved receipt block version %d", ErrUnsupportedVersion, b[0])
		}
		if len(b) < queueBlockFixed || len(b) > maxQueueBlock || (len(b)-queueBlockFixed)%16 != 0 {
			return fmt.Errorf("%w: saved receipt block", ErrMalformed)
		}
		first := binary.BigEndian.Uint64(b[1:])
		end := first + uint64(len(b)-queueBlockFixed)/16
		if first/queueBlockSize != k || first > max(from, k*queueBlockSize) || end < min(to, (k+1)*queueBlockSize) ||
			end > (k+1)*queueBlockSize {
			return fmt.Errorf("%w: saved receipt block %d", ErrMalformed, k)
		}
		for a := first; a < end; a++ {
			next.buf[a%queueSlots] = [16]byte(b[queueBlockFixed+(a-first)*16:])
		}
	}
	*q = next
	return nil
}

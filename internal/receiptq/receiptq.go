// Package receiptq is a session's queue of delivery receipts not yet sent
// and its saved form. The ids are saved like the transcript's logs: 16 ids
// per block, each block under its own slot, so that queueing one receipt
// per received message writes one small block and not the whole queue.
package receiptq

import (
	"encoding/binary"
	"fmt"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
)

const (
	// Capacity is how many ids a queue holds at most: one receipt
	// content's worth (Push drops the oldest past its max, which callers
	// keep at or below Capacity).
	Capacity = 256
	// BlockSize is the ids in a saved block, Blocks the slots blocks are
	// saved under.
	BlockSize = 16
	Blocks    = Capacity/BlockSize + 1
	// queueSlots is one block more than the queue can hold, so the newest
	// Push never overwrites an id still queued before it (a failed save
	// restores the old bounds only).
	queueSlots = Blocks * BlockSize
	// BlockFixed is a block's size without its ids; maxBlock
	// bounds a saved block.
	BlockFixed = 1 + 8
	maxBlock   = BlockFixed + BlockSize*16
)

// Queue is a session's queued delivery receipts: ids with absolute index
// From up to To, the id with index a in slot a mod queueSlots. A caller
// whose save failed sets From and To back to the bounds it last saved:
// the ids between them are still held, since a push never overwrites an
// id queued before it in the same save.
type Queue struct {
	buf      [][16]byte // nil until the first push, then queueSlots long
	From, To uint64
}

func (q *Queue) Len() int { return int(q.To - q.From) }

// Push queues id, dropping the oldest when max are queued.
func (q *Queue) Push(id [16]byte, max int) {
	if q.buf == nil {
		q.buf = make([][16]byte, queueSlots)
	}
	q.buf[q.To%queueSlots] = id
	q.To++
	for q.Len() > max {
		q.From++
	}
}

// DropOldest drops the oldest queued id.
func (q *Queue) DropOldest() {
	if q.From < q.To {
		q.From++
	}
}

// Take removes and returns the oldest n queued ids (all when fewer).
func (q *Queue) Take(n int) [][]byte {
	n = min(n, q.Len())
	if n == 0 {
		return nil
	}
	out, flat := make([][]byte, n), make([]byte, 16*n)
	for i := range out {
		out[i] = flat[16*i : 16*i+16 : 16*i+16]
		copy(out[i], q.buf[(q.From+uint64(i))%queueSlots][:])
	}
	q.From += uint64(n)
	return out
}

// ChangedBlocks calls fn with every block holding an id queued after
// index since (the bound last saved), each in a buffer of exactly its size
// plus room for the checksum putRecord appends. A block, "rq/<address>/
// <session id in hex>/<slot>" with slot k mod Blocks for block k,
// has the layout (integers big-endian):
//
//	version  1   record.Layout
//	first    8   absolute index of its first id still queued when saved:
//	             within block k (k*16 to k*16+15)
//	ids      16 each, from first to the end of the queue or of the block
func (q *Queue) ChangedBlocks(since uint64, fn func(slot int, block []byte)) {
	since = max(since, q.From)
	if since >= q.To {
		return
	}
	for k := since / BlockSize; k <= (q.To-1)/BlockSize; k++ {
		from, to := max(k*BlockSize, q.From), min(q.To, (k+1)*BlockSize)
		b := make([]byte, 0, BlockFixed+(to-from)*16+record.ChecksumSize)
		b = append(b, record.Layout)
		b = binary.BigEndian.AppendUint64(b, from)
		for a := from; a < to; a++ {
			b = append(b, q.buf[a%queueSlots][:]...)
		}
		fn(int(k%Blocks), b)
	}
}

// Load replaces q with the saved queue from..to, whose blocks block(slot)
// returns. A block of another version is errs.ErrUnsupportedVersion; one that
// is truncated, too long, not whole ids, or does not cover what the
// bounds say is queued is errs.ErrMalformed.
func (q *Queue) Load(from, to uint64, block func(slot int) ([]byte, error)) error {
	if to < from || to-from > Capacity {
		return fmt.Errorf("%w: saved receipt queue bounds", errs.ErrMalformed)
	}
	next := Queue{From: from, To: to}
	if from == to {
		*q = next
		return nil
	}
	next.buf = make([][16]byte, queueSlots)
	for k := from / BlockSize; k <= (to-1)/BlockSize; k++ {
		b, err := block(int(k % Blocks))
		if err != nil {
			return err
		}
		// A block starts at its first id still queued when it was saved,
		// which may be later than the block's start, never later than
		// what is queued now.
		if len(b) > 0 && b[0] != record.Layout {
			return fmt.Errorf("%w: saved receipt block version %d", errs.ErrUnsupportedVersion, b[0])
		}
		if len(b) < BlockFixed || len(b) > maxBlock || (len(b)-BlockFixed)%16 != 0 {
			return fmt.Errorf("%w: saved receipt block", errs.ErrMalformed)
		}
		first := binary.BigEndian.Uint64(b[1:])
		end := first + uint64(len(b)-BlockFixed)/16
		if first/BlockSize != k || first > max(from, k*BlockSize) || end < min(to, (k+1)*BlockSize) ||
			end > (k+1)*BlockSize {
			return fmt.Errorf("%w: saved receipt block %d", errs.ErrMalformed, k)
		}
		for a := first; a < end; a++ {
			next.buf[a%queueSlots] = [16]byte(b[BlockFixed+(a-first)*16:])
		}
	}
	*q = next
	return nil
}

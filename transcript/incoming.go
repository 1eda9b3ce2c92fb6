package transcript

import (
	"fmt"
	"slices"
)

// receivedEntry is one peer content in the received log.
type receivedEntry struct {
	seq  uint64
	id   [16]byte
	hash [32]byte
}

// segment is a run of consecutive peer contents from..to that arrived
// above a gap: prev is the Prev that content from carries, head the hash of
// content to.
type segment struct {
	from, to   uint64
	prev, head [32]byte
}

// incoming is the peer's chain as we received it.
type incoming struct {
	count   uint64   // every seq up to count arrived or was given up
	head    [32]byte // hash of content count (zero when count is 0)
	highest uint64   // the highest seq that arrived
	segs    []segment
	log     ring[receivedEntry]
}

// admit checks that peer content seq may be added (step 1 of Received),
// before anything changes.
func (in *incoming) admit(seq uint64, sticky []Finding) error {
	switch {
	case seq <= in.count:
		for i := range sticky {
			if f := &sticky[i]; f.Kind == Lost && seq >= f.Seq && seq <= f.ToSeq {
				return fmt.Errorf("%w: transcript seq %d was given up", ErrExpiredKey, seq)
			}
		}
		return fmt.Errorf("%w: transcript seq %d", ErrDuplicate, seq)
	case seq > in.highest:
		if seq-in.highest-1 > MaxMissing {
			return fmt.Errorf("%w: transcript seq %d is more than %d past %d", ErrTooManySkipped, seq, MaxMissing, in.highest)
		}
		return nil
	}
	if i := in.segIndex(seq); i > 0 && in.segs[i-1].to >= seq {
		return fmt.Errorf("%w: transcript seq %d", ErrDuplicate, seq)
	}
	return nil
}

// segIndex returns the index of the first segment that starts after seq.
func (in *incoming) segIndex(seq uint64) int {
	lo, hi := 0, len(in.segs)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if in.segs[mid].from > seq {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// add links peer content cur, which carries prev, into the chain (step 4
// of Received): onto the prefix, or into the runs that wait above a gap.
// It appends a Fork for every link that does not hold and a Gap when cur
// opens one.
func (in *incoming) add(cur receivedEntry, prev [32]byte, found []Finding) []Finding {
	oldHighest := in.highest
	if cur.seq == in.count+1 {
		found = in.link(in.count, in.head, prev, cur, found)
		in.count, in.head = cur.seq, cur.hash
		if len(in.segs) > 0 && in.segs[0].from == cur.seq+1 {
			s := in.segs[0]
			found = in.link(cur.seq, cur.hash, s.prev, cur, found)
			in.count, in.head = s.to, s.head
			in.segs = slices.Delete(in.segs, 0, 1)
		}
	} else {
		found = in.insert(cur, prev, found)
	}
	if cur.seq > oldHighest {
		in.highest = cur.seq
		if cur.seq-oldHighest > 1 {
			found = append(found, Finding{Kind: Gap, Seq: oldHighest + 1, ToSeq: cur.seq - 1})
		}
	}
	return found
}

// insert adds cur above a gap: it extends the run before it, the run after
// it, joins both, or starts a run of its own.
func (in *incoming) insert(cur receivedEntry, prev [32]byte, found []Finding) []Finding {
	i := in.segIndex(cur.seq)
	left := i > 0 && in.segs[i-1].to+1 == cur.seq
	right := i < len(in.segs) && in.segs[i].from == cur.seq+1
	if left {
		found = in.link(in.segs[i-1].to, in.segs[i-1].head, prev, cur, found)
	}
	if right {
		found = in.link(cur.seq, cur.hash, in.segs[i].prev, cur, found)
	}
	switch {
	case left && right:
		in.segs[i-1].to, in.segs[i-1].head = in.segs[i].to, in.segs[i].head
		in.segs = slices.Delete(in.segs, i, i+1)
	case left:
		in.segs[i-1].to, in.segs[i-1].head = cur.seq, cur.hash
	case right:
		in.segs[i].from, in.segs[i].prev = cur.seq, prev
	default:
		in.segs = slices.Insert(in.segs, i, segment{from: cur.seq, to: cur.seq, prev: prev, head: cur.hash})
	}
	return found
}

// link checks that content a+1, which carries prev, follows content a,
// whose hash is ha. If not, it appends a Fork naming both contents.
func (in *incoming) link(a uint64, ha, prev [32]byte, cur receivedEntry, found []Finding) []Finding {
	if ha == prev {
		return found
	}
	f := Finding{Kind: Fork, Seq: a, ToSeq: a + 1}
	for _, s := range [2]uint64{a, a + 1} {
		if s == cur.seq {
			f.IDs = append(f.IDs, cur.id)
		} else if e, ok := in.lookupSeq(s); ok {
			f.IDs = append(f.IDs, e.id)
		}
	}
	return append(found, f)
}

// lookupSeq returns the logged peer content seq (used only to name forks).
func (in *incoming) lookupSeq(seq uint64) (*receivedEntry, bool) {
	for i := in.log.len() - 1; i >= 0; i-- {
		if e := in.log.at(i); e.seq == seq {
			return e, true
		}
	}
	return nil, false
}

// missing returns how many peer seqs below highest have not arrived.
func (in *incoming) missing() uint64 {
	m := in.highest - in.count
	for i := range in.segs {
		m -= in.segs[i].to - in.segs[i].from + 1
	}
	return m
}

// giveUp keeps memory bounded (step 5 of Received): while more than
// MaxMissing seqs are missing, it gives up the oldest gap as Lost and moves
// the prefix to the end of the run after it. That run's first link cannot
// be checked. A content never opens a gap over MaxMissing (admit), so the
// gap it opened is never given up by the same call.
func (in *incoming) giveUp(found []Finding) []Finding {
	missing, n := in.missing(), 0
	for ; missing > MaxMissing && n < len(in.segs); n++ {
		s := &in.segs[n]
		found = append(found, Finding{Kind: Lost, Seq: in.count + 1, ToSeq: s.from - 1})
		missing -= s.from - 1 - in.count
		in.count, in.head = s.to, s.head
	}
	in.segs = slices.Delete(in.segs, 0, n)
	return found
}

// gaps appends one open Gap finding per missing range.
func (in *incoming) gaps(out []Finding) []Finding {
	prev := in.count
	for i := range in.segs {
		out = append(out, Finding{Kind: Gap, Seq: prev + 1, ToSeq: in.segs[i].from - 1})
		prev = in.segs[i].to
	}
	return out
}

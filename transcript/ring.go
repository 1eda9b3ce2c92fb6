package transcript

// ringSlots is the physical size of a log: one more than MaxLog, so that
// the newest push can be undone (RestoreHead) without losing the entry it
// overwrote.
const ringSlots = MaxLog + 1

// ring keeps the newest MaxLog entries of a log in arrival order, by their
// absolute index (0 for the first entry ever pushed). Entry a lives in slot
// a mod ringSlots, so a push moves no memory and an entry's slot never
// changes, which is what lets the log be saved block by block.
type ring[T any] struct {
	// buf holds the slots: either exactly min(total, ringSlots) entries
	// pushed in order from index 0, or all ringSlots slots.
	buf   []T
	total uint64 // entries ever pushed
	base  uint64 // entries below this index were never held (a shorter saved log)
}

// len returns the number of entries held: the newest MaxLog at most.
func (r *ring[T]) len() int { return int(min(r.total-r.base, MaxLog)) }

// first returns the absolute index of the oldest entry held.
func (r *ring[T]) first() uint64 { return r.total - uint64(r.len()) }

// at returns the i-th oldest entry, 0 <= i < len.
func (r *ring[T]) at(i int) *T { return r.abs(r.first() + uint64(i)) }

// abs returns the entry with absolute index a; it must be held.
func (r *ring[T]) abs(a uint64) *T { return &r.buf[a%ringSlots] }

// push appends v; past MaxLog entries the oldest is no longer held.
func (r *ring[T]) push(v T) {
	if len(r.buf) < ringSlots {
		r.buf = append(r.buf, v)
	} else {
		r.buf[r.total%ringSlots] = v
	}
	r.total++
}

// canRewind reports whether the log as it was at total n (n <= r.total)
// is still wholly held.
func (r *ring[T]) canRewind(n uint64) bool {
	if n > r.total || n < r.base {
		return false
	}
	if len(r.buf) < ringSlots {
		return true // nothing was ever overwritten
	}
	// Entries below r.total-ringSlots are overwritten; the log at n needs
	// those from n-min(n-base, MaxLog).
	return n-min(n-r.base, MaxLog)+ringSlots >= r.total
}

// load replaces r with entries (oldest first), the newest of which has
// absolute index total-1.
func (r *ring[T]) load(entries []T, total uint64) {
	r.base = total - uint64(len(entries))
	if r.base == 0 {
		r.buf = append(make([]T, 0, min(ringSlots, len(entries)+16)), entries...)
		r.total = total
		return
	}
	r.buf = make([]T, ringSlots)
	r.total = total
	for i := range entries {
		*r.abs(total - uint64(len(entries)) + uint64(i)) = entries[i]
	}
}

// clone copies r.
func (r *ring[T]) clone() ring[T] {
	if len(r.buf) == 0 {
		return ring[T]{total: r.total, base: r.base}
	}
	out := make([]T, len(r.buf), max(len(r.buf), min(ringSlots, len(r.buf)+16)))
	copy(out, r.buf)
	return ring[T]{buf: out, total: r.total, base: r.base}
}

package transcript

// ring keeps the newest MaxLog entries in arrival order. Once full, a push
// overwrites the oldest, so the per-message path moves no memory.
type ring[T any] struct {
	buf   []T
	start int // index in buf of the oldest entry
}

// len returns the number of entries held.
func (r *ring[T]) len() int { return len(r.buf) }

// at returns the i-th oldest entry, 0 <= i < len.
func (r *ring[T]) at(i int) *T {
	j := r.start + i
	if j >= len(r.buf) {
		j -= len(r.buf)
	}
	return &r.buf[j]
}

// push appends v, dropping the oldest entry when MaxLog are held.
func (r *ring[T]) push(v T) {
	if len(r.buf) < MaxLog {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.start] = v
	if r.start++; r.start == len(r.buf) {
		r.start = 0
	}
}

// clone copies r in order, with room for a few pushes so that a clone
// followed by Sent or Received does not reallocate.
func (r *ring[T]) clone() ring[T] {
	if len(r.buf) == 0 {
		return ring[T]{}
	}
	out := make([]T, 0, min(MaxLog, len(r.buf)+16))
	for i := range r.buf {
		out = append(out, *r.at(i))
	}
	return ring[T]{buf: out}
}

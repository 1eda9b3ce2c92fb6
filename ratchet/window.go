package ratchet

import "math"

// window holds the routing tags a receiving chain expects next: those of
// messages base, base+1, ... up to size of them (fewer where the message
// numbers would pass 2^32-1). Tags are computed lazily, the first ones first,
// so an in-order message costs one HMAC whatever the window size.
type window struct {
	hk   *headerKeys
	base uint32
	size int
	tags [][TagSize]byte // tags[i] is the tag of message base+i
}

func newWindow(hk *headerKeys, base uint32, size uint32) *window {
	return &window{hk: hk, base: base, size: int(size)}
}

// limit is how many message numbers the window covers.
func (w *window) limit() int {
	return int(min(uint64(w.size), uint64(math.MaxUint32)-uint64(w.base)+1))
}

// at returns the tag of message base+i, computing the window up to i.
func (w *window) at(i int) [TagSize]byte {
	if w.tags == nil {
		w.tags = make([][TagSize]byte, 0, w.limit())
	}
	for len(w.tags) <= i {
		w.tags = append(w.tags, w.hk.tag(w.base+uint32(len(w.tags))))
	}
	return w.tags[i]
}

// find returns the message number whose tag is t, if it is in the window.
func (w *window) find(t *[TagSize]byte) (uint32, bool) {
	for i := range w.limit() {
		if w.at(i) == *t {
			return w.base + uint32(i), true
		}
	}
	return 0, false
}

// tagOf returns the tag of message n, from the window when it holds it.
func (w *window) tagOf(n uint32) [TagSize]byte {
	if n >= w.base && uint64(n-w.base) < uint64(len(w.tags)) {
		return w.tags[n-w.base]
	}
	return w.hk.tag(n)
}

// advance moves the window to start at base (base >= w.base), keeping the
// tags already computed that are still in it.
func (w *window) advance(base uint32) {
	d := uint64(base - w.base)
	if d >= uint64(len(w.tags)) {
		w.tags = w.tags[:0]
	} else {
		k := copy(w.tags, w.tags[d:])
		w.tags = w.tags[:k]
	}
	w.base = base
}

// fill computes every tag of the window.
func (w *window) fill() {
	if n := w.limit(); n > 0 {
		w.at(n - 1)
	}
}

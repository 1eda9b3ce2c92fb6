package ratchet

// The replay record and the record of evicted keys (doc.go, decisions 9 and
// 10): bounded rings of routing tags, oldest first.

// ring is a bounded record, oldest first; pushing onto a full ring drops the
// oldest entry.
type ring[T comparable] struct {
	buf   []T
	head  int // index of the oldest entry
	max   int
	total uint64 // entries ever pushed: the newest has absolute index total-1
}

func (r *ring[T]) len() int { return len(r.buf) }

// at returns the i-th oldest entry.
func (r *ring[T]) at(i int) T { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring[T]) push(v T) {
	r.total++
	if len(r.buf) < r.max {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.head] = v
	r.head = (r.head + 1) % len(r.buf)
}

// contains reports whether v is in the record.
func (r *ring[T]) contains(v T) bool {
	for i := range r.buf {
		if r.buf[i] == v {
			return true
		}
	}
	return false
}

// consumed is one entry of the replay record: a consumed message's routing
// tag and the last 16 bytes of its body (its Poly1305 authenticator, unique
// per message).
type consumed struct {
	tag [TagSize]byte
	mac [16]byte
}

// replayed looks the tag up in the replay record: the same body
// authenticator (the last 16 bytes, a MAC under a one-time key) is a replay;
// any other body under a consumed tag is a forgery, since the one genuine
// message with that tag was consumed.
func (s *Session) replayed(t *[TagSize]byte, body []byte) (where, bool) {
	mac := [16]byte(body[len(body)-16:])
	for i := range s.consumed.len() {
		if e := s.consumed.at(i); e.tag == *t {
			if e.mac == mac {
				return atDuplicate, true
			}
			return atForged, true
		}
	}
	return atUnknown, false
}

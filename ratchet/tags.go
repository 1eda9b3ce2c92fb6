package ratchet

import "iter"

// TagGeneration changes whenever the set ExpectedTags yields may have
// changed: it counts the messages this Session decrypted. Only Decrypt
// changes the set; Encrypt never does. A caller that indexes tags can skip
// a session whose generation is the one it indexed (for the same Session
// value: a reloaded session starts again from zero).
func (s *Session) TagGeneration() uint64 { return s.tagGen }

// ExpectedTags yields every routing tag this session can place without
// trial decryption: TagWindow tags of the receiving chain from Nr, TagWindow
// tags of the next receiving chain from 0, the tags of the skipped keys, and
// the tags of the replay and eviction records (so that a replay or a message
// whose key was evicted also reaches this session at once and gets
// ErrDuplicate or ErrExpiredKey).
//
// A caller that holds many sessions (the Device) keeps a map from tag to
// session and rebuilds a session's entries after each Decrypt; a tag absent
// from every session's set may still belong to one, further ahead, and is
// then found by calling Decrypt on each session (at most two header trial
// decryptions each).
//
// The tags are computed once and cached: the first call after a DH step
// costs TagWindow HMACs, later ones none. The session must not be used
// while the sequence is being iterated.
func (s *Session) ExpectedTags() iter.Seq[[TagSize]byte] {
	return func(yield func([TagSize]byte) bool) {
		if s.dhs == nil {
			return
		}
		for _, w := range [2]*window{s.windowOf(atCurrent), s.next} {
			if w == nil {
				continue
			}
			w.fill()
			for _, t := range w.tags {
				if !yield(t) {
					return
				}
			}
		}
		for _, c := range s.skipped.chains {
			for i := range c.keys {
				if !yield(c.keys[i].tag) {
					return
				}
			}
		}
		for i := range s.consumed.len() {
			if !yield(s.consumed.at(i).tag) {
				return
			}
		}
		for i := range s.expired.len() {
			if !yield(s.expired.at(i)) {
				return
			}
		}
	}
}

// AppendExpectedTags appends to dst the tags ExpectedTags yields, in the
// same order, and returns the extended slice: the same set for a caller
// that rebuilds its index after every message, without an iterator call
// per tag.
func (s *Session) AppendExpectedTags(dst [][TagSize]byte) [][TagSize]byte {
	if s.dhs == nil {
		return dst
	}
	for _, w := range [2]*window{s.windowOf(atCurrent), s.next} {
		if w != nil {
			w.fill()
			dst = append(dst, w.tags...)
		}
	}
	for _, c := range s.skipped.chains {
		for i := range c.keys {
			dst = append(dst, c.keys[i].tag)
		}
	}
	for i := range s.consumed.len() {
		dst = append(dst, s.consumed.at(i).tag)
	}
	for i := range s.expired.len() {
		dst = append(dst, s.expired.at(i))
	}
	return dst
}

package ratchet

import (
	"iter"
	"math"
	"slices"
)

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
// session and updates a session's entries after each Decrypt
// (StepExpectedTags for the usual in-order message, AppendExpectedTags for
// a full rebuild); a tag absent from every session's set may still belong
// to one, further ahead, and is then found by calling Decrypt on each
// session (at most two header trial decryptions each).
//
// The tags are computed once and cached: the first call after a DH step
// costs TagWindow HMACs, later ones none. ExpectedTags lists them with
// AppendExpectedTags (one allocation per call).
func (s *Session) ExpectedTags() iter.Seq[[TagSize]byte] {
	return func(yield func([TagSize]byte) bool) {
		for _, t := range s.AppendExpectedTags(nil) {
			if !yield(t) {
				return
			}
		}
	}
}

// AppendExpectedTags appends to dst the tags ExpectedTags yields, in this
// order: the receiving window, the next chain's window, the skipped keys
// (oldest chain first), the replay record and the record of evicted keys
// (oldest first). StepExpectedTags relies on the order.
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

// tagStep records how the last Decrypt changed the expected tags when it
// opened the next message of the current receiving chain: the window
// slid by one (its first tag, the message's, left; a new last one came)
// and the replay record took the message's tag, dropping its oldest when
// it was full. Nothing else changes with such a message.
type tagStep struct {
	ok      bool
	gen     uint64        // TagGeneration after that Decrypt
	tag     [TagSize]byte // the message's tag
	dropped bool          // the replay record was full
	oldest  [TagSize]byte // and dropped this tag
}

// StepExpectedTags updates list, the tags AppendExpectedTags gave at
// generation gen, to the tags it would give now, when exactly one message
// was decrypted since and it was the next one of the current receiving
// chain (the usual case): one tag leaves the window and one comes, one
// moves into the replay record and the record's oldest may go. It returns
// the updated list (list's memory, grown by one while the replay record
// fills), the tag no longer expected (hasGone false when none) and the new
// one. ok is false, and list unchanged, in every other case (a DH step,
// skipped keys taken or added, an older generation, a list that is not
// what it should be): the caller rebuilds with AppendExpectedTags. This
// lets a caller that indexes tags update two entries per message instead
// of comparing every tag.
func (s *Session) StepExpectedTags(list [][TagSize]byte, gen uint64) (out [][TagSize]byte, gone [TagSize]byte, hasGone bool, fresh [TagSize]byte, ok bool) {
	st := s.step
	if !st.ok || st.gen != s.tagGen || gen+1 != st.gen || s.recv == nil {
		return list, gone, false, fresh, false
	}
	w := s.recv.win
	if uint64(w.base)+uint64(w.size) > math.MaxUint32 || w.size == 0 {
		return list, gone, false, fresh, false // near the end of the chain the window shrinks
	}
	w.fill()
	s.next.fill()
	win, next, skipped, kept, expired := len(w.tags), len(s.next.tags), s.skipped.count, s.consumed.len(), s.expired.len()
	before := kept // replay-record entries in list
	if !st.dropped {
		before--
	}
	off := win + next + skipped // where the replay record starts in list
	if win != w.size || len(list) != off+before+expired || list[0] != st.tag || (st.dropped && list[off] != st.oldest) {
		return list, gone, false, fresh, false
	}
	copy(list[:win-1], list[1:win])
	fresh = w.tags[win-1]
	list[win-1] = fresh
	if st.dropped {
		copy(list[off:off+kept-1], list[off+1:off+kept])
		list[off+kept-1] = st.tag
		return list, st.oldest, true, fresh, true
	}
	return slices.Insert(list, off+before, st.tag), gone, false, fresh, true
}

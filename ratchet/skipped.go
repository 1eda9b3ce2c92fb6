package ratchet

// skippedKey is the stored key of a message that has not arrived yet
// (MKSKIPPED in Signal's specification, section 3.2), with its routing tag.
type skippedKey struct {
	n   uint32
	mk  [keySize]byte
	tag [TagSize]byte
}

// skippedChain holds the skipped keys of one receiving chain, in increasing
// message number. Its header key opens the headers of those messages.
type skippedChain struct {
	hk   *headerKeys
	keys []skippedKey
}

// skippedStore holds every skipped key of a session. Keys are only ever
// added to the newest chain (the current receiving chain), and within a
// chain in increasing order, so the chains in order and the keys of each in
// order are oldest first: eviction takes the first key of the first chain.
type skippedStore struct {
	chains []*skippedChain
	count  int
}

// find returns the position of the key whose message has routing tag t.
func (s *skippedStore) find(t *[TagSize]byte) (ci, ki int, ok bool) {
	for ci, c := range s.chains {
		for ki := range c.keys {
			if c.keys[ki].tag == *t {
				return ci, ki, true
			}
		}
	}
	return 0, 0, false
}

// take removes the key at (ci, ki) and clears it. It drops a chain left
// empty, with its header key.
func (s *skippedStore) take(ci, ki int) {
	c := s.chains[ci]
	last := len(c.keys) - 1
	copy(c.keys[ki:], c.keys[ki+1:])
	c.keys[last] = skippedKey{}
	c.keys = c.keys[:last]
	s.count--
	if len(c.keys) == 0 {
		copy(s.chains[ci:], s.chains[ci+1:])
		s.chains[len(s.chains)-1] = nil
		s.chains = s.chains[:len(s.chains)-1]
	}
}

// add appends keys (in increasing order, all newer than any held) for the
// chain of hk.
func (s *skippedStore) add(hk *headerKeys, keys []skippedKey) {
	if len(keys) == 0 {
		return
	}
	if n := len(s.chains); n > 0 && s.chains[n-1].hk.hk == hk.hk {
		s.chains[n-1].keys = append(s.chains[n-1].keys, keys...)
	} else {
		s.chains = append(s.chains, &skippedChain{hk: hk, keys: append([]skippedKey(nil), keys...)})
	}
	s.count += len(keys)
}

// evictOldest removes the oldest key, clears it and returns its tag.
func (s *skippedStore) evictOldest() [TagSize]byte {
	t := s.chains[0].keys[0].tag
	s.take(0, 0)
	return t
}

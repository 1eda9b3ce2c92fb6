package ratchet

import "crypto/ecdh"

// plan is the state change one received message makes, computed in locals
// (step 5) and applied by commit only after the body authenticated. Nothing
// in the Session changes before commit.
type plan struct {
	loc location
	mk  [keySize]byte

	// atCurrent and atNext: the receiving chain after this message, and
	// the keys skipped on the way (old: the previous chain up to PN; own:
	// this chain up to N).
	ck       [keySize]byte
	old, own []skippedKey

	// atNext: the DH step (DHRatchetHE). rk is the root key after the
	// receiving half; finish adds the sending half.
	rk     [keySize]byte
	nhkr   [keySize]byte
	dhr    [pubSize]byte
	dhs    *ecdh.PrivateKey
	send   *sendChain
	nhks   [keySize]byte
	rkSend [keySize]byte

	// The KEM lanes after this message (kemratchet.go).
	kem kemPlan
}

// clear erases every key the plan holds (on success commit has copied
// what it keeps).
func (p *plan) clear() {
	clear(p.mk[:])
	clear(p.ck[:])
	clear(p.rk[:])
	clear(p.nhkr[:])
	clear(p.nhks[:])
	clear(p.rkSend[:])
	clear(p.old)
	clear(p.own)
	p.kem.clear()
}

// plan is step 5.
func (s *Session) plan(p *plan, loc location, h *header) error {
	p.loc = loc
	if err := h.kem.check(); err != nil {
		return err
	}
	p.kem.own, p.kem.peer = s.own, s.peer
	switch loc.at {
	case atSkipped:
		// An older chain's root step is long done: its mixed value is
		// not checked again (its header authenticated under that chain's
		// key), only its chunk is used.
		p.mk = s.skipped.chains[loc.ci].keys[loc.ki].mk
		return nil
	case atCurrent:
		if err := s.checkBounds(0, gap(s.recv.n, h.n), h.n); err != nil {
			return err
		}
		if h.kem.mixed != s.peer.declared {
			return errorf(ErrMalformed, "KEM epoch changed inside a chain")
		}
		p.ck = s.recv.ck
		p.own = skipKeys(&p.ck, s.recv.win, s.recv.n, h.n)
		stepChain(&p.ck, &p.mk)
		return nil
	}
	return s.planStep(p, h)
}

// planStep plans a message of the next chain: skip the current chain to PN,
// the receiving half of the DH step, skip the new chain to N.
func (s *Session) planStep(p *plan, h *header) error {
	var old uint64
	if s.recv != nil {
		old = gap(s.recv.n, h.pn)
	}
	if err := s.checkBounds(old, uint64(h.n), h.n); err != nil {
		return err
	}
	if err := s.declared(&p.kem, h.kem.mixed); err != nil {
		return err
	}
	dh, err := exchange(s.dhs, &h.dh)
	if err != nil {
		return err
	}
	if s.recv != nil {
		p.ck = s.recv.ck
		p.old = skipKeys(&p.ck, s.recv.win, s.recv.n, h.pn)
	}
	kdfRoot(&p.rk, &p.ck, &p.nhkr, &s.rk, dh, s.peerID(), h.kem.mixed, &p.kem.recvMix)
	p.dhr = h.dh
	p.own = skipKeys(&p.ck, s.next, 0, h.n)
	stepChain(&p.ck, &p.mk)
	return nil
}

// skipKeys steps ck from message from up to (not including) to and returns
// the message keys with their tags (SkipMessageKeysHE). The caller has
// checked the count.
func skipKeys(ck *[keySize]byte, w *window, from, to uint32) []skippedKey {
	if to <= from {
		return nil
	}
	keys := make([]skippedKey, to-from)
	for i := range keys {
		k := &keys[i]
		k.n = from + uint32(i)
		stepChain(ck, &k.mk)
		k.tag = w.tagOf(k.n)
	}
	return keys
}

// finish is the first half of step 7: for a DH step, the sending half
// (a new ratchet key pair, the new sending chain, and the own KEM lane's
// ready epoch declared and mixed, with the next epoch's key pair); then the
// message's KEM chunk. It runs only after the body authenticated, so a
// forged body costs no key generation, encapsulation or decapsulation.
func (s *Session) finish(p *plan, h *header) error {
	if p.loc.at == atNext {
		if err := s.sendingHalf(p, h); err != nil {
			return err
		}
	}
	return s.planChunk(&p.kem, &h.kem)
}

// sendingHalf is the sending half of a DH step (DHRatchetHE).
func (s *Session) sendingHalf(p *plan, h *header) error {
	dhs, err := s.generate()
	if err != nil {
		return err
	}
	dh, err := exchange(dhs, &h.dh)
	if err != nil {
		return err
	}
	s.declare(&p.kem)
	var cks [keySize]byte
	kdfRoot(&p.rkSend, &cks, &p.nhks, &p.rk, dh, s.ownID(), p.kem.own.declared, &p.kem.sendMix)
	p.dhs = dhs
	p.send = &sendChain{ck: cks, hk: newHeaderKeys(&s.nhks)}
	clear(cks[:])
	return nil
}

// commit is the rest of step 7: the planned state becomes the session's.
func (s *Session) commit(p *plan, t *[TagSize]byte, body []byte) {
	// The next message of the current chain changes the expected tags in
	// one known way (StepExpectedTags).
	step := tagStep{ok: p.loc.at == atCurrent && p.loc.n == s.recv.n && len(p.own) == 0, tag: *t}
	if step.ok && s.consumed.len() == s.consumed.max {
		step.dropped, step.oldest = true, s.consumed.at(0).tag
	}
	switch p.loc.at {
	case atSkipped:
		s.skipped.take(p.loc.ci, p.loc.ki)
	case atCurrent:
		s.skipped.add(s.recv.win.hk, p.own)
		s.recv.ck = p.ck
		s.recv.n = p.loc.n + 1
		s.recv.win.advance(s.recv.n)
	case atNext:
		s.commitStep(p)
	}
	s.commitKEM(&p.kem)
	for s.skipped.count > int(s.cfg.maxSkipped) {
		s.expired.push(s.skipped.evictOldest())
	}
	s.consumed.push(consumed{tag: *t, mac: [16]byte(body[len(body)-16:])})
	s.tagGen++
	step.gen = s.tagGen
	s.step = step
}

// commitStep applies a DH step (DHRatchetHE): PN = Ns, HKs = NHKs,
// HKr = NHKr, and the chains, root key and ratchet keys from the plan.
func (s *Session) commitStep(p *plan) {
	if s.recv != nil {
		s.skipped.add(s.recv.win.hk, p.old)
		clear(s.recv.ck[:])
	}
	s.skipped.add(s.next.hk, p.own)
	s.pn = 0
	if s.send != nil {
		s.pn = s.send.n
		clear(s.send.ck[:])
	}
	s.recv = &recvChain{ck: p.ck, n: p.loc.n + 1, win: s.next}
	s.recv.win.advance(s.recv.n)
	s.next = newWindow(newHeaderKeys(&p.nhkr), 0, s.cfg.tagWindow)
	s.send = p.send
	s.nhks = p.nhks
	s.rk = p.rkSend
	s.dhr = p.dhr
	s.hasDHr = true
	s.setDHs(p.dhs)
}

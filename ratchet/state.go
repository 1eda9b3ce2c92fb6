package ratchet

import (
	"crypto/ecdh"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/statepb"
)

// StateVersion is the version of the saved state this build writes and
// reads (statepb.RatchetSession.version). Version 2 added the KEM
// ratchet's lanes; version 3 goes with message version 3 (one synthetic
// nonce per message, derived encapsulation randomness) and lets the key's
// decoder hold all its k chunks while it waits for the one that confirms
// them. This build refuses any other version with ErrUnsupportedVersion
// rather than half-read it: a version-1 session has no KEM lanes and could
// only go on without them, a silent downgrade; a version-2 session speaks
// version-2 messages, which this build refuses.
const StateVersion = 3

// MarshalBinary saves the whole session, keys included, as a versioned
// protobuf (statepb.RatchetSession), encoded deterministically: the same
// state always gives the same bytes. The result must be kept secret. A
// caller that saves after every message uses SaveSplit instead.
func (s *Session) MarshalBinary() ([]byte, error) {
	if s.dhs == nil {
		return nil, errorf(ErrNoSession, "zero session")
	}
	m := &statepb.RatchetSession{
		Version:                StateVersion,
		AssociatedData:         s.ad,
		RootKey:                s.rk[:],
		OwnRatchetKey:          s.dhsPriv[:],
		NextSendingHeaderKey:   s.nhks[:],
		NextReceivingHeaderKey: s.next.hk.hk[:],
		PreviousSendingCount:   s.pn,
		MaxSkip:                s.cfg.maxSkip,
		MaxSkippedKeys:         s.cfg.maxSkipped,
		TagWindow:              s.cfg.tagWindow,
	}
	if s.hasDHr {
		m.PeerRatchetKey = s.dhr[:]
	}
	if c := s.send; c != nil {
		m.Sending = &statepb.RatchetChain{ChainKey: c.ck[:], HeaderKey: c.hk.hk[:], Count: c.n}
	}
	if c := s.recv; c != nil {
		m.Receiving = &statepb.RatchetChain{ChainKey: c.ck[:], HeaderKey: c.win.hk.hk[:], Count: c.n}
	}
	for _, c := range s.skipped.chains {
		m.Skipped = append(m.Skipped, marshalSkipped(c))
	}
	s.marshalKEM(m)
	m.Consumed = marshalConsumed(&s.consumed)
	for i := range s.expired.len() {
		t := s.expired.at(i)
		m.Expired = append(m.Expired, t[:]...)
	}
	return pbstrict.Marshal(m)
}

func marshalSkipped(c *skippedChain) *statepb.RatchetSkippedChain {
	sc := &statepb.RatchetSkippedChain{HeaderKey: c.hk.hk[:]}
	sc.Numbers = make([]uint32, len(c.keys))
	sc.MessageKeys = make([]byte, 0, len(c.keys)*keySize)
	for i := range c.keys {
		sc.Numbers[i] = c.keys[i].n
		sc.MessageKeys = append(sc.MessageKeys, c.keys[i].mk[:]...)
	}
	return sc
}

func marshalConsumed(r *ring[consumed]) []byte {
	out := make([]byte, 0, r.len()*2*TagSize)
	for i := range r.len() {
		e := r.at(i)
		out = append(append(out, e.tag[:]...), e.mac[:]...)
	}
	return out
}

// UnmarshalBinary loads a session saved by MarshalBinary, replacing s only
// if the whole state is valid. It returns ErrUnsupportedVersion for another
// version and ErrMalformed for anything that does not decode or is out of
// range (wrong key sizes, unknown fields, bounds past their limits). It
// never panics on bad input.
func (s *Session) UnmarshalBinary(data []byte) error {
	m := new(statepb.RatchetSession)
	if err := pbstrict.Unmarshal(data, m); err != nil {
		return errorf(ErrMalformed, "state: %v", err)
	}
	switch m.Version {
	case StateVersion:
	case 0:
		return errorf(ErrMalformed, "state has no version")
	default:
		return errorf(ErrUnsupportedVersion, "state version %d", m.Version)
	}
	t, err := loadSession(m)
	if err != nil {
		return err
	}
	t.hooks = s.hooks
	*s = *t
	return nil
}

// loadSession checks m field by field and builds the session.
func loadSession(m *statepb.RatchetSession) (*Session, error) {
	t := &Session{
		cfg: config{maxSkip: m.MaxSkip, maxSkipped: m.MaxSkippedKeys, tagWindow: m.TagWindow},
		ad:  append([]byte(nil), m.AssociatedData...),
		pn:  m.PreviousSendingCount,
	}
	if !t.cfg.valid() {
		return nil, errorf(ErrMalformed, "state bounds out of range")
	}
	t.initRecords()
	if err := t.loadKeys(m); err != nil {
		return nil, err
	}
	if err := t.loadSkipped(m.Skipped); err != nil {
		return nil, err
	}
	if err := t.loadRecords(m.Consumed, m.Expired); err != nil {
		return nil, err
	}
	if err := t.loadKEM(m); err != nil {
		return nil, err
	}
	return t, nil
}

// key32 copies a field that must be exactly 32 bytes.
func key32(dst *[keySize]byte, b []byte, field string) error {
	if len(b) != keySize {
		return errorf(ErrMalformed, "state %s of %d bytes", field, len(b))
	}
	copy(dst[:], b)
	return nil
}

// loadKeys loads the root key, ratchet keys and chains.
func (t *Session) loadKeys(m *statepb.RatchetSession) error {
	var own, nhkr [keySize]byte
	err := firstErr(
		key32(&t.rk, m.RootKey, "root key"),
		key32(&own, m.OwnRatchetKey, "own ratchet key"),
		key32(&t.nhks, m.NextSendingHeaderKey, "next sending header key"),
		key32(&nhkr, m.NextReceivingHeaderKey, "next receiving header key"),
	)
	if err != nil {
		return err
	}
	dhs, err := ecdh.X25519().NewPrivateKey(own[:])
	if err != nil {
		return errorf(ErrMalformed, "state own ratchet key")
	}
	clear(own[:])
	t.setDHs(dhs)
	t.next = newWindow(newHeaderKeys(&nhkr), 0, t.cfg.tagWindow)
	clear(nhkr[:])
	if len(m.PeerRatchetKey) > 0 {
		if err := key32(&t.dhr, m.PeerRatchetKey, "peer ratchet key"); err != nil {
			return err
		}
		t.hasDHr = true
	}
	return t.loadChains(m.Sending, m.Receiving)
}

// loadChains loads the sending and receiving chains. A session sends once
// it knows the peer's ratchet key, and receives only once it can send.
func (t *Session) loadChains(send, recv *statepb.RatchetChain) error {
	if (send != nil) != t.hasDHr || (recv != nil && send == nil) {
		return errorf(ErrMalformed, "state chains inconsistent")
	}
	var ck, hk [keySize]byte
	defer clear(ck[:])
	defer clear(hk[:])
	if send != nil {
		if err := firstErr(key32(&ck, send.ChainKey, "sending chain key"), key32(&hk, send.HeaderKey, "sending header key")); err != nil {
			return err
		}
		t.send = &sendChain{ck: ck, n: send.Count, hk: newHeaderKeys(&hk)}
	}
	if recv != nil {
		if err := firstErr(key32(&ck, recv.ChainKey, "receiving chain key"), key32(&hk, recv.HeaderKey, "receiving header key")); err != nil {
			return err
		}
		t.recv = &recvChain{ck: ck, n: recv.Count, win: newWindow(newHeaderKeys(&hk), recv.Count, t.cfg.tagWindow)}
	}
	return nil
}

// loadSkipped loads the skipped keys and recomputes their tags.
func (t *Session) loadSkipped(chains []*statepb.RatchetSkippedChain) error {
	for _, c := range chains {
		if len(c.Numbers) == 0 || len(c.MessageKeys) != len(c.Numbers)*keySize {
			return errorf(ErrMalformed, "state skipped chain sizes")
		}
		if t.skipped.count+len(c.Numbers) > int(t.cfg.maxSkipped) {
			return errorf(ErrMalformed, "state holds more skipped keys than its cap")
		}
		var hk [keySize]byte
		if err := key32(&hk, c.HeaderKey, "skipped header key"); err != nil {
			return err
		}
		sc := &skippedChain{hk: newHeaderKeys(&hk), keys: make([]skippedKey, len(c.Numbers))}
		clear(hk[:])
		for i, n := range c.Numbers {
			if i > 0 && n <= c.Numbers[i-1] {
				return errorf(ErrMalformed, "state skipped numbers not increasing")
			}
			k := &sc.keys[i]
			k.n = n
			copy(k.mk[:], c.MessageKeys[i*keySize:])
			k.tag = sc.hk.tag(n)
		}
		t.skipped.chains = append(t.skipped.chains, sc)
		t.skipped.count += len(sc.keys)
	}
	return nil
}

// loadRecords loads the replay and eviction records.
func (t *Session) loadRecords(cons, exp []byte) error {
	const entry = 2 * TagSize
	if len(cons)%entry != 0 || len(cons) > ReplayRecord*entry ||
		len(exp)%TagSize != 0 || len(exp) > ExpiredRecord*TagSize {
		return errorf(ErrMalformed, "state records sizes")
	}
	for b := cons; len(b) > 0; b = b[entry:] {
		t.consumed.push(consumed{tag: [TagSize]byte(b), mac: [16]byte(b[TagSize:])})
	}
	for b := exp; len(b) > 0; b = b[TagSize:] {
		t.expired.push([TagSize]byte(b))
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

package ratchet

import (
	"github.com/sealpost/sealpost/internal/erasure"
	"github.com/sealpost/sealpost/proto/statepb"
)

// Saving the KEM lanes. A decapsulation key is saved as its 64-byte seed
// (the encapsulation key is derived again when chunks of it are needed); a
// decoder as its points and chunks (never more than k-1 of them: the chunk
// that completes the answer's decoder replaces it by its result, and the
// key's decoder holds at most k while it waits for the one further chunk
// that confirms them); an answer as its 1104 bytes. The whole KEM state is at most about 2.4 KB, whatever the
// peer sends.

func (s *Session) marshalKEM(m *statepb.RatchetSession) {
	m.Initiator = s.initiator
	m.Sent = s.sent
	o := &statepb.RatchetKemOwnLane{Declared: s.own.declared, Seed: s.own.seed[:], EkSent: s.own.ekSent}
	if s.own.ready {
		o.Secret, o.Transcript = s.own.secret[:], s.own.th[:]
	} else {
		o.CtPoints, o.CtChunks = marshalDecoder(s.own.answer)
	}
	p := &statepb.RatchetKemPeerLane{Declared: s.peer.declared, CtSent: s.peer.ctSent}
	if s.peer.answered() {
		p.Ciphertext, p.Secret, p.Transcript = s.peer.answer, s.peer.secret[:], s.peer.th[:]
	} else {
		// Before the answer, the secret field holds the epoch's
		// encapsulation secret (state version 3, decision 16).
		p.Secret = s.peer.seed[:]
		p.EkPoints, p.EkChunks = marshalDecoder(s.peer.key)
	}
	m.OwnLane, m.PeerLane = o, p
}

func marshalDecoder(d *erasure.Decoder) (points, chunks []byte) {
	if d == nil || d.Received() == 0 {
		return nil, nil
	}
	n := d.Received()
	points, chunks = make([]byte, 0, n), make([]byte, 0, n*kemChunkSize)
	for i, c := range d.All() {
		points = append(points, byte(i))
		chunks = append(chunks, c...)
	}
	return points, chunks
}

// loadKEM loads and checks the lanes: exact sizes, a secret only with its
// transcript and only in the state that holds one, decoders with fewer
// than k distinct, valid chunks.
func (t *Session) loadKEM(m *statepb.RatchetSession) error {
	o, p := m.OwnLane, m.PeerLane
	if o == nil || p == nil {
		return errorf(ErrMalformed, "state has no KEM lanes")
	}
	t.initiator, t.sent = m.Initiator, m.Sent
	if err := t.loadOwnLane(o); err != nil {
		return err
	}
	return t.loadPeerLane(p)
}

func (t *Session) loadOwnLane(o *statepb.RatchetKemOwnLane) error {
	if len(o.Seed) != kemSeedSize || o.Declared == ^uint32(0) {
		return errorf(ErrMalformed, "state KEM seed or epoch")
	}
	l := ownLane{declared: o.Declared, seed: [kemSeedSize]byte(o.Seed), ekSent: o.EkSent}
	if len(o.Secret) > 0 || len(o.Transcript) > 0 {
		if len(o.CtPoints) > 0 || len(o.CtChunks) > 0 {
			return errorf(ErrMalformed, "state KEM lane both ready and decoding")
		}
		if err := firstErr(key32(&l.secret, o.Secret, "KEM secret"), key32(&l.th, o.Transcript, "KEM transcript")); err != nil {
			return err
		}
		l.ready = true
	} else {
		var err error
		if l.answer, err = loadDecoder(answerSize, o.CtPoints, o.CtChunks, false); err != nil {
			return err
		}
	}
	t.own = l
	return nil
}

// loadPeerLane loads the peer's lane. The secret field is always set: the
// shared secret once answered (with the ciphertext and transcript), the
// epoch's encapsulation secret before (state version 3).
func (t *Session) loadPeerLane(p *statepb.RatchetKemPeerLane) error {
	if p.Declared == ^uint32(0) {
		return errorf(ErrMalformed, "state KEM epoch")
	}
	l := peerLane{declared: p.Declared, ctSent: p.CtSent}
	if len(p.Ciphertext) > 0 || len(p.Transcript) > 0 {
		if len(p.EkPoints) > 0 || len(p.EkChunks) > 0 || len(p.Ciphertext) != answerSize {
			return errorf(ErrMalformed, "state KEM answer")
		}
		if err := firstErr(key32(&l.secret, p.Secret, "KEM secret"), key32(&l.th, p.Transcript, "KEM transcript")); err != nil {
			return err
		}
		l.answer = append([]byte(nil), p.Ciphertext...)
	} else {
		if p.CtSent != 0 {
			return errorf(ErrMalformed, "state KEM answer count without an answer")
		}
		if err := key32(&l.seed, p.Secret, "KEM encapsulation secret"); err != nil {
			return err
		}
		var err error
		if l.key, err = loadDecoder(ekSize, p.EkPoints, p.EkChunks, true); err != nil {
			return err
		}
	}
	t.peer = l
	return nil
}

// loadDecoder rebuilds a decoder from saved points and chunks (the inverse
// of marshalDecoder): each point once, fewer than k (at most k for a key,
// whose decoder waits for one chunk more, decision 17), every chunk valid.
func loadDecoder(size int, points, chunks []byte, key bool) (*erasure.Decoder, error) {
	if len(points) == 0 && len(chunks) == 0 {
		return nil, nil
	}
	d := newDecoder(size)
	most := d.DataChunks() - 1
	if key {
		most++
	}
	if len(chunks) != len(points)*kemChunkSize || len(points) > most {
		return nil, errorf(ErrMalformed, "state KEM decoder sizes")
	}
	for i, pt := range points {
		fresh, err := d.Check(uint32(pt), chunks[i*kemChunkSize:(i+1)*kemChunkSize])
		if err != nil || !fresh {
			return nil, errorf(ErrMalformed, "state KEM decoder chunk")
		}
		d.Add(uint32(pt), chunks[i*kemChunkSize:(i+1)*kemChunkSize])
	}
	return d, nil
}

// KEMProgress is how far the two lanes of a session's KEM ratchet have
// come: how many ML-KEM-768 epochs of each lane have been mixed into the
// root chain. Own counts this party's lane (its key pairs, declared in its
// sending chains), Peer the peer's lane (declared in the chains it
// received). In a conversation that goes both ways both grow, about one
// epoch per lane every 190 messages (doc.go, The KEM ratchet); a count
// that stops while messages flow both ways is a stalled lane, which an
// app may surface (post-quantum healing has stopped for that lane; the
// classical ratchet goes on).
type KEMProgress struct {
	Own  uint32
	Peer uint32
}

// KEMProgress returns the epochs mixed in each lane. It reads only
// counters; the zero Session has none.
func (s *Session) KEMProgress() KEMProgress {
	return KEMProgress{Own: s.own.declared, Peer: s.peer.declared}
}

package ratchet

import (
	"bytes"
	"crypto/hmac"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"

	"github.com/sealpost/sealpost/internal/erasure"
	"github.com/sealpost/sealpost/internal/kdf"
)

// The KEM ratchet (doc.go, "The KEM ratchet"): two lanes of ML-KEM-768
// epochs, one owned by each party, whose keys and ciphertexts travel as
// erasure-coded 32-byte chunks in the KEM field of every header, and whose
// shared secrets are mixed into the root KDF.
const (
	kemChunkSize = 32
	kemFieldSize = 4 + 1 + 4 + 1 + kemChunkSize // mixed, kind, epoch, index, chunk
	kemSeedSize  = mlkem.SeedSize               // a decapsulation key, stored as its seed
	ekSize       = mlkem.EncapsulationKeySize768
	ctSize       = mlkem.CiphertextSize768
	confSize     = 16
	answerSize   = ctSize + confSize // what the encapsulating side streams
)

// Kinds of KEM field.
const (
	kindFiller = 0 // nothing to send: epoch, index and chunk are zero
	kindEK     = 1 // a chunk of the sender's own lane's encapsulation key
	kindCT     = 2 // a chunk of the answer (ciphertext || confirmation) to the receiver's key
)

// Lane numbers, bound into every root step and transcript: the initiator
// owns lane 0, the responder lane 1.
const (
	laneInitiator = 0
	laneResponder = 1
)

// kemField is the KEM field of one header.
type kemField struct {
	mixed uint32 // the newest epoch of the sender's lane its chain's root step mixed
	kind  uint8
	epoch uint32
	index uint8 // the erasure point
	chunk [kemChunkSize]byte
}

func (f *kemField) put(b []byte) {
	binary.BigEndian.PutUint32(b, f.mixed)
	b[4] = f.kind
	binary.BigEndian.PutUint32(b[5:], f.epoch)
	b[9] = f.index
	copy(b[10:], f.chunk[:])
}

func (f *kemField) parse(b []byte) {
	f.mixed = binary.BigEndian.Uint32(b)
	f.kind = b[4]
	f.epoch = binary.BigEndian.Uint32(b[5:])
	f.index = b[9]
	copy(f.chunk[:], b[10:])
}

// check is the syntax of a received field, after its header authenticated:
// a known kind, a filler all zero, a chunk of a real epoch.
func (f *kemField) check() error {
	switch f.kind {
	case kindFiller:
		if f.epoch != 0 || f.index != 0 || f.chunk != [kemChunkSize]byte{} {
			return errorf(ErrMalformed, "KEM filler with nonzero bytes")
		}
	case kindEK, kindCT:
		if f.epoch == 0 {
			return errorf(ErrMalformed, "KEM chunk of epoch 0")
		}
	default:
		return errorf(ErrMalformed, "KEM field of kind %d", f.kind)
	}
	return nil
}

// ownLane is the lane this party owns: it generates the key pair of epoch
// declared+1, streams its encapsulation key, collects the peer's answer and
// decapsulates. At most one epoch is in flight.
type ownLane struct {
	declared uint32                    // newest epoch mixed (in our sending chains)
	seed     [kemSeedSize]byte         // secret: the epoch's decapsulation key
	ekSent   uint32                    // encapsulation key chunks sent
	answer   *erasure.Decoder          // the peer's answer; nil before its first chunk and once ready
	ready    bool                      // decapsulated and confirmed, not yet mixed
	secret   [mlkem.SharedKeySize]byte // secret, once ready
	th       [keySize]byte             // the epoch's transcript, once ready

	enc *erasure.Encoder // cache of the encapsulation key's chunks, not saved
}

func (l *ownLane) epoch() uint32 { return l.declared + 1 }

// sendsKey reports whether the lane still streams its encapsulation key:
// until the answer completes and is confirmed. A chunk of the answer
// proves that the peer had the key, not that it still has it: a peer
// restored from a backup may have lost it, or a bad chunk may have made
// it reset its decoder (decision 17 in doc.go).
func (l *ownLane) sendsKey() bool { return !l.ready }

// keyFirst reports whether the key is due at full rate: no chunk of the
// answer has arrived yet. Once one has, the key only takes the places that
// would otherwise carry filler.
func (l *ownLane) keyFirst() bool { return !l.ready && l.received() == 0 }

// received is how many distinct chunks of the answer the lane holds.
func (l *ownLane) received() int {
	if l.answer == nil {
		return 0
	}
	return l.answer.Received()
}

// peerLane is the lane the peer owns: this party collects the encapsulation
// key of epoch declared+1, encapsulates, and streams the answer until the
// peer declares the epoch.
type peerLane struct {
	declared uint32           // newest epoch the peer declared
	seed     [keySize]byte    // secret: the epoch's encapsulation secret, until answered (decision 16)
	key      *erasure.Decoder // the peer's encapsulation key; nil before its first chunk and once answered
	answer   []byte           // ciphertext || confirmation, once answered
	ctSent   uint32           // answer chunks sent
	secret   [mlkem.SharedKeySize]byte
	th       [keySize]byte

	enc *erasure.Encoder // cache of the answer's chunks, not saved
}

func (l *peerLane) answered() bool { return l.answer != nil }

// received is how many distinct chunks of the key the lane holds.
func (l *peerLane) received() int {
	if l.key == nil {
		return 0
	}
	return l.key.Received()
}

// newOwnLane and newPeerLane start an epoch. Decoders are allocated with
// the first chunk, so that an idle session holds no chunk buffers.
func newOwnLane(declared uint32, seed *[kemSeedSize]byte) ownLane {
	return ownLane{declared: declared, seed: *seed}
}

func newPeerLane(declared uint32, seed *[keySize]byte) peerLane {
	return peerLane{declared: declared, seed: *seed}
}

func newDecoder(size int) *erasure.Decoder {
	d, err := erasure.NewDecoder(size, kemChunkSize)
	if err != nil {
		panic("sealpost/ratchet: " + err.Error())
	}
	return d
}

// clear erases the lane's secrets.
func (l *ownLane) clear() {
	clear(l.seed[:])
	clear(l.secret[:])
}

func (l *peerLane) clear() {
	clear(l.seed[:])
	clear(l.secret[:])
}

// kemMix is one KEM secret consumed by a root step, with its transcript.
type kemMix struct {
	ok bool
	ss [mlkem.SharedKeySize]byte
	th [keySize]byte
}

func (m *kemMix) clear() { clear(m.ss[:]) }

// ownID and peerID are the lane numbers of the two lanes.
func (s *Session) ownID() uint8 {
	if s.initiator {
		return laneInitiator
	}
	return laneResponder
}

func (s *Session) peerID() uint8 { return 1 - s.ownID() }

// newSeed draws the seed of a new ML-KEM-768 key pair (crypto/rand, or the
// test hook).
func (s *Session) newSeed() (seed [kemSeedSize]byte) {
	if s.kemSeed != nil {
		return s.kemSeed()
	}
	rand.Read(seed[:])
	return seed
}

// newEncapsSecret draws the encapsulation secret of a new epoch of the
// peer's lane (crypto/rand, or the test hook).
func (s *Session) newEncapsSecret() (secret [keySize]byte) {
	if s.encSecret != nil {
		return s.encSecret()
	}
	rand.Read(secret[:])
	return secret
}

// encapsulate answers the peer's key of the given epoch: ML-KEM-768
// encapsulation (circl's EncapsulateTo, FIPS 203 ML-KEM.Encaps_internal)
// with the randomness m derived from the epoch's encapsulation secret, the
// peer's lane, the epoch and SHA-256 of the key (encapsSeed). So the same
// state answers the same key with the same ciphertext, and a session
// restored from a backup repeats the answer its peer may already hold
// chunks of (decision 16 in doc.go). ss and ct are written to the
// caller's buffers.
func encapsulate(pk *mlkem768.PublicKey, seed *[keySize]byte, lane uint8, epoch uint32, ek []byte, ss, ct []byte) {
	m := encapsSeed(seed, lane, epoch, ek)
	pk.EncapsulateTo(ct, ss, m[:])
	clear(m[:])
}

// encapsSeed is m = HKDF-SHA-256(ikm = the epoch's encapsulation secret,
// info = label || lane || epoch || SHA-256(ek)), 32 bytes. It is secret
// (a function of a secret drawn for the epoch and never sent), it differs
// for every (lane, epoch, key) under one secret and between secrets (HKDF
// is a PRF), and no m is ever used for another key, since the key's hash
// is in the info.
func encapsSeed(seed *[keySize]byte, lane uint8, epoch uint32, ek []byte) (m [mlkem768.EncapsulationSeedSize]byte) {
	var ctx [5 + sha256.Size]byte
	ctx[0] = lane
	binary.BigEndian.PutUint32(ctx[1:], epoch)
	h := sha256.Sum256(ek)
	copy(ctx[5:], h[:])
	// A copy, because HKDF keeps its input: the caller's seed (in the
	// receive plan) must not move to the heap with it.
	ikm := *seed
	okm := kdf.Key(ikm[:], nil, kdf.LabelRatchetKEMEncapsSeed, ctx[:], len(m))
	copy(m[:], okm)
	clear(okm)
	clear(ikm[:])
	return m
}

// kemOut chooses the KEM field of the next message (section "The KEM
// ratchet", schedule) without changing the session; kemSent then counts
// it. When both lanes have a chunk due, the parity of the messages sent
// alternates between them; a lane with nothing due yields to the other,
// and filler goes only when neither has anything.
func (s *Session) kemOut(f *kemField) error {
	*f = kemField{mixed: s.own.declared}
	if s.classical {
		return nil
	}
	key, answer := s.own.sendsKey(), s.peer.answered()
	switch {
	case s.own.keyFirst() && (!answer || s.sent%2 == 0), key && !answer:
		enc, err := s.own.encoder()
		if err != nil {
			return err
		}
		f.kind, f.epoch, f.index = kindEK, s.own.epoch(), uint8(s.own.ekSent)
		enc.Chunk(s.own.ekSent, f.chunk[:0])
	case answer:
		enc, err := s.peer.encoder()
		if err != nil {
			return err
		}
		f.kind, f.epoch, f.index = kindCT, s.peer.declared+1, uint8(s.peer.ctSent)
		enc.Chunk(s.peer.ctSent, f.chunk[:0])
	}
	return nil
}

// kemSent counts the field f, sent.
func (s *Session) kemSent(f *kemField) {
	s.sent++
	switch f.kind {
	case kindEK:
		s.own.ekSent++
	case kindCT:
		s.peer.ctSent++
	}
}

// encoder returns the chunks of the lane's encapsulation key, derived from
// the seed on first use after a key generation or a load.
func (l *ownLane) encoder() (*erasure.Encoder, error) {
	if l.enc == nil {
		dk, err := mlkem.NewDecapsulationKey768(l.seed[:])
		if err != nil {
			return nil, errorf(ErrMalformed, "KEM seed")
		}
		if l.enc, err = erasure.NewEncoder(dk.EncapsulationKey().Bytes(), kemChunkSize); err != nil {
			return nil, errorf(ErrMalformed, "KEM encapsulation key")
		}
	}
	return l.enc, nil
}

func (l *peerLane) encoder() (*erasure.Encoder, error) {
	if l.enc == nil {
		var err error
		if l.enc, err = erasure.NewEncoder(l.answer, kemChunkSize); err != nil {
			return nil, errorf(ErrMalformed, "KEM answer")
		}
	}
	return l.enc, nil
}

// kemPlan is what one received message does to the KEM lanes, computed on
// copies and applied by commit. Decoders are shared with the session and
// never changed before commit: a chunk that does not complete its decoder
// is added at commit (add), one that completes it is added to a clone
// whose result is checked first.
type kemPlan struct {
	own      ownLane
	peer     peerLane
	recvMix  kemMix // the receiving half's secret (the peer declared an epoch)
	sendMix  kemMix // the sending half's secret (we declare an epoch)
	add      *erasure.Decoder
	addIndex uint8
	addChunk [kemChunkSize]byte
}

func (k *kemPlan) clear() {
	k.own.clear()
	k.peer.clear()
	k.recvMix.clear()
	k.sendMix.clear()
}

// declared is the peer lane's part of a receiving half: the header's mixed
// value is the lane's last declared epoch (nothing to mix) or the next one,
// whose secret this party holds since it encapsulated (the owner can only
// decapsulate after that), and the lane starts the next epoch with a new
// encapsulation secret. Anything else is ErrMalformed: only a broken peer,
// or one holding its keys, can send it, and its header authenticated.
//
// One case needs the answer now: a party restored from a backup taken
// when it held all 37 chunks of the key but not yet the 38th that confirms
// them (decision 17) may see the epoch declared before that chunk comes,
// since the owner stops streaming its key once its answer is confirmed.
// Its answer is derived (decision 16), so answering the 37 now gives the
// secret the owner confirmed. Had one of them been bad, the secret differs
// from the owner's, and the body of the declaring chain's message, whose
// key comes from the root step, fails to open: ErrDecrypt, nothing
// changed, no wrong secret mixed. This runs in the plan, after the header
// authenticated and before the body: once per epoch at most.
func (s *Session) declared(k *kemPlan, mixed uint32) error {
	l := &k.peer
	switch {
	case mixed == l.declared:
		return nil
	case mixed == l.declared+1 && !l.answered() && l.key != nil && l.key.Done():
		if !s.answerKey(k, mixed, nil) {
			break
		}
		fallthrough
	case mixed == l.declared+1 && l.answered():
		k.recvMix = kemMix{ok: true, ss: l.secret, th: l.th}
		seed := s.newEncapsSecret()
		l.clear()
		*l = newPeerLane(mixed, &seed)
		clear(seed[:])
		return nil
	}
	return errorf(ErrMalformed, "KEM epoch %d declared after %d", mixed, l.declared)
}

// declare is the own lane's part of a sending half: a ready epoch is mixed
// and declared, and the next epoch's key pair is generated.
func (s *Session) declare(k *kemPlan) {
	l := &k.own
	if !l.ready {
		return
	}
	k.sendMix = kemMix{ok: true, ss: l.secret, th: l.th}
	seed := s.newSeed()
	l.clear()
	*l = newOwnLane(l.declared+1, &seed)
	clear(seed[:])
}

// planChunk is what the chunk of f does, judged against the lanes after
// this message's root steps. A chunk of a finished epoch, or one already
// held, is ignored; one of a future epoch is ErrMalformed (an honest peer
// never sends it). A chunk whose content is bad (a padding error, a
// conflict with a chunk held at its point, a rebuilt key that is invalid
// or disagrees with a further chunk, an answer that fails its key
// confirmation) resets the decoder instead: the message itself
// authenticated and is delivered (decision 17 in doc.go).
func (s *Session) planChunk(k *kemPlan, f *kemField) error {
	if s.blind {
		return nil
	}
	switch f.kind {
	case kindEK:
		l := &k.peer
		if f.epoch > l.declared+1 {
			return errorf(ErrMalformed, "KEM key chunk of a future epoch")
		}
		if f.epoch <= l.declared || l.answered() {
			return nil
		}
		s.planKeyChunk(k, f)
	case kindCT:
		l := &k.own
		if f.epoch > l.epoch() {
			return errorf(ErrMalformed, "KEM answer chunk of a future epoch")
		}
		if f.epoch < l.epoch() || l.ready {
			return nil
		}
		return s.planAnswerChunk(k, f)
	}
	return nil
}

// chunkStep is what a chunk does to a decoder.
type chunkStep uint8

const (
	chunkIgnored  chunkStep = iota // already held: nothing to do
	chunkAdded                     // recorded in the plan, added at commit
	chunkComplete                  // completes the decoder: the caller checks the result
	chunkBad                       // inconsistent with the decoder: reset it
)

// step judges f's chunk against d. A decoder completes with need chunks:
// its k data chunks for the answer, one more for the key (which then
// holds k and waits for a further point). A chunk that does not bring d to
// need is recorded for commit; the one that does is for the caller.
func (k *kemPlan) step(d *erasure.Decoder, f *kemField, need int) chunkStep {
	fresh, err := d.Check(uint32(f.index), f.chunk[:])
	if err != nil {
		return chunkBad
	}
	if !fresh {
		switch p, c := heldAt(d, f.index); {
		case !p:
			return chunkComplete // d is done and this is a new point
		case !bytes.Equal(c, f.chunk[:]):
			return chunkBad // two chunks for one point: not both genuine
		}
		return chunkIgnored
	}
	if d.Received()+1 < need {
		k.add, k.addIndex, k.addChunk = d, f.index, f.chunk
		return chunkAdded
	}
	return chunkComplete
}

// heldAt returns the chunk d holds at the point of index, if any.
func heldAt(d *erasure.Decoder, index uint8) (bool, []byte) {
	for p, c := range d.All() {
		if uint8(p) == index {
			return true, c
		}
	}
	return false, nil
}

// planKeyChunk adds a chunk of the peer's encapsulation key. The key
// completes with one chunk more than it needs (38 of its 37): the decoder
// rebuilds the key from 37 and the 38th must agree with it, so that one
// bad chunk is caught before this party encapsulates, even one chosen to
// rebuild a valid but wrong key, which only the peer's key confirmation
// could otherwise catch, too late (this party would stream a wrong answer
// for the rest of the epoch). The key is then checked (FIPS 203 section
// 7.2, by circl's Unpack), encapsulated to, and the answer prepared.
// Anything inconsistent or invalid resets the decoder.
func (s *Session) planKeyChunk(k *kemPlan, f *kemField) {
	l := &k.peer
	if l.key == nil {
		l.key = newDecoder(ekSize) // reachable from the session only on commit
	}
	if st := k.step(l.key, f, l.key.DataChunks()+1); st != chunkComplete {
		if st == chunkBad {
			l.key = nil
		}
		return
	}
	s.answerKey(k, f.epoch, f)
}

// answerKey rebuilds the key from the peer lane's complete decoder,
// checks f's chunk against it (when f is not nil: the 38th chunk),
// validates it (FIPS 203 section 7.2, by circl's Unpack), encapsulates and
// makes the lane answered. It reports whether it did; if not, the decoder
// is reset.
func (s *Session) answerKey(k *kemPlan, epoch uint32, f *kemField) bool {
	l := &k.peer
	key, ok := checkedKey(l.key, f)
	var pk mlkem768.PublicKey
	if !ok || pk.Unpack(key) != nil {
		l.key = nil
		return false
	}
	var ss [mlkem768.SharedKeySize]byte
	ct := make([]byte, ctSize, answerSize)
	encapsulate(&pk, &l.seed, s.peerID(), epoch, key, ss[:], ct)
	th := kemTranscript(s.peerID(), epoch, key, ct)
	conf := kemConfirm(ss[:], &th)
	l.clear()
	*l = peerLane{declared: l.declared, answer: append(ct, conf[:confSize]...), th: th, secret: ss}
	clear(ss[:])
	clear(conf[:])
	return true
}

// checkedKey rebuilds the key from the complete decoder d (on a clone, so
// that d is unchanged) and reports whether f's chunk, at a point d does
// not hold, is that key's chunk (any key, when f is nil).
func checkedKey(d *erasure.Decoder, f *kemField) ([]byte, bool) {
	key, err := d.Clone().Message()
	if err != nil {
		return nil, false
	}
	if f == nil {
		return key, true
	}
	enc, err := erasure.NewEncoder(key, kemChunkSize)
	if err != nil {
		return nil, false
	}
	var want [kemChunkSize]byte
	enc.Chunk(uint32(f.index), want[:0])
	return key, want == f.chunk
}

// planAnswerChunk adds a chunk of the answer to our key; the one that
// completes it is decapsulated and its key confirmation checked. A wrong
// confirmation (a corrupted or substituted ciphertext or key, or chunks of
// two different answers: ML-KEM decapsulation never fails, it returns a
// pseudorandom key) resets the decoder, and the secret is never used. The
// peer streams its answer until it sees the epoch declared, so the
// decoder fills again.
func (s *Session) planAnswerChunk(k *kemPlan, f *kemField) error {
	l := &k.own
	if l.answer == nil {
		l.answer = newDecoder(answerSize) // reachable from the session only on commit
	}
	if st := k.step(l.answer, f, l.answer.DataChunks()); st != chunkComplete {
		if st == chunkBad {
			l.answer = nil
		}
		return nil
	}
	c := l.answer.Clone()
	c.Add(uint32(f.index), f.chunk[:])
	answer, err := c.Message()
	if err != nil {
		l.answer = nil
		return nil
	}
	dk, err := mlkem.NewDecapsulationKey768(l.seed[:])
	if err != nil {
		return errorf(ErrMalformed, "KEM seed")
	}
	ct := answer[:ctSize]
	ss, err := dk.Decapsulate(ct)
	if err != nil {
		return errorf(ErrMalformed, "KEM ciphertext")
	}
	defer clear(ss)
	th := kemTranscript(s.ownID(), f.epoch, dk.EncapsulationKey().Bytes(), ct)
	conf := kemConfirm(ss, &th)
	defer clear(conf[:])
	if !hmac.Equal(conf[:confSize], answer[ctSize:]) {
		l.answer = nil
		return nil
	}
	*l = ownLane{declared: l.declared, seed: l.seed, ekSent: l.ekSent, ready: true, th: th}
	copy(l.secret[:], ss)
	return nil
}

// kemTranscript hashes one epoch's exchange: lane, epoch, encapsulation key
// and ciphertext. The root step binds it, as the session start binds its
// KEM ciphertext, so a secret cannot be re-bound to another exchange.
func kemTranscript(lane uint8, epoch uint32, ek, ct []byte) [keySize]byte {
	var le [5]byte
	le[0] = lane
	binary.BigEndian.PutUint32(le[1:], epoch)
	return kdf.Hash(kdf.LabelRatchetKEMTranscript, le[:], ek, ct)
}

// kemConfirm is the key confirmation of an epoch: HMAC-SHA-256 under the
// shared secret of the transcript (first confSize bytes are sent).
func kemConfirm(ss []byte, th *[keySize]byte) [32]byte {
	return kdf.MAC(ss, kdf.LabelRatchetKEMConfirm, th[:])
}

// commitKEM applies the plan's lanes.
func (s *Session) commitKEM(k *kemPlan) {
	if k.add != nil {
		k.add.Add(uint32(k.addIndex), k.addChunk[:]) // checked in the plan
	}
	s.own = k.own
	s.peer = k.peer
}

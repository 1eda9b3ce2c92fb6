package ratchet

import (
	"bytes"
	"crypto/mlkem"
	"fmt"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/internal/erasure"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/statepb"
)

// Tests of the KEM ratchet's mechanics and of checklist item 29 (TESTING.md).

// withField seals the next message of s with its KEM field rewritten by f
// (through the test hook): a validly sealed header and body around a field
// an honest sender would not send.
func withField(t testing.TB, s *Session, f func(*kemField)) sealed {
	t.Helper()
	testHookKEMField = func(_ *Session, k *kemField) { f(k) }
	defer func() { testHookKEMField = nil }()
	return send(t, s, "crafted field")
}

// fieldOf returns the KEM field Encrypt chose for the next message of s,
// and the message.
func fieldOf(t testing.TB, s *Session) (kemField, sealed) {
	t.Helper()
	var got kemField
	testHookKEMField = func(_ *Session, k *kemField) { got = *k }
	defer func() { testHookKEMField = nil }()
	m := send(t, s, "observed")
	return got, m
}

// converse exchanges turns of n messages, delivered in order, count times.
func converse(t testing.TB, alice, bob *Session, n, count int) {
	t.Helper()
	for i := range count {
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		for range n {
			recv(t, to, send(t, from, "x"))
		}
	}
}

// TestKEMFieldFlipIsDecryptError: every bit pattern flipped in the KEM
// field of a genuine message carrying a key chunk and one carrying an
// answer chunk fails the header AEAD (ErrDecrypt), state unchanged; the
// genuine message then decrypts.
func TestKEMFieldFlipIsDecryptError(t *testing.T) {
	alice, bob := pairFrom(t, "kem flip")
	f, m := fieldOf(t, alice)
	if f.kind != kindEK {
		t.Fatalf("first message carries kind %d, want a key chunk", f.kind)
	}
	const off = 1 + pubSize + 8 // the KEM field inside the encrypted header
	for i := off; i < off+kemFieldSize; i++ {
		for _, x := range []byte{0x01, 0x80} {
			b := bytes.Clone(m.msg)
			b[i] ^= x
			mustFail(t, bob, m.tag, b, ErrDecrypt)
		}
	}
	recv(t, bob, m)
	for !bob.peer.answered() {
		converse(t, alice, bob, 1, 2)
	}
	for {
		f, m = fieldOf(t, bob)
		if f.kind == kindCT {
			break
		}
		recv(t, alice, m)
	}
	for i := off; i < off+kemFieldSize; i++ {
		b := bytes.Clone(m.msg)
		b[i] ^= 0x10
		mustFail(t, alice, m.tag, b, ErrDecrypt)
	}
	recv(t, alice, m)
}

// TestKEMBadControlValues: authenticated fields an honest peer never sends
// are ErrMalformed with the state unchanged, and the conversation goes on;
// a chunk of a finished epoch is accepted and ignored.
func TestKEMBadControlValues(t *testing.T) {
	alice, bob := pairFrom(t, "kem control")
	converse(t, alice, bob, 1, 2) // both chains exist
	// Alice's next message is in her current chain, declaring 0.
	inChain := []struct {
		name string
		f    func(*kemField)
	}{
		{"unknown kind", func(k *kemField) { k.kind = 3 }},
		{"filler with a chunk", func(k *kemField) { *k = kemField{chunk: [kemChunkSize]byte{1}} }},
		{"filler with an epoch", func(k *kemField) { *k = kemField{epoch: 1} }},
		{"filler with an index", func(k *kemField) { *k = kemField{index: 1} }},
		{"key chunk of epoch 0", func(k *kemField) { k.kind, k.epoch = kindEK, 0 }},
		{"key chunk of a future epoch", func(k *kemField) { k.kind, k.epoch = kindEK, 2 }},
		{"answer chunk of a future epoch", func(k *kemField) { k.kind, k.epoch = kindCT, 2 }},
		{"mixed changes inside a chain", func(k *kemField) { k.mixed = 1 }},
	}
	for _, c := range inChain {
		m := withField(t, alice, c.f)
		t.Run(c.name, func(t *testing.T) { mustFail(t, bob, m.tag, m.msg, ErrMalformed) })
	}
	recv(t, bob, send(t, alice, "genuine"))
	// A new chain of Alice's: a declaration without a pending secret, or
	// one jumping by two.
	recv(t, alice, send(t, bob, "turn"))
	for _, c := range []struct {
		name  string
		mixed uint32
	}{{"declared without a secret", 1}, {"declared jumping by two", 2}} {
		m := withField(t, alice, func(k *kemField) { k.mixed = c.mixed })
		t.Run(c.name, func(t *testing.T) { mustFail(t, bob, m.tag, m.msg, ErrMalformed) })
	}
	recv(t, bob, send(t, alice, "genuine new chain"))
	// Run until each lane mixed an epoch; then a chunk of the finished
	// epoch 1 is ignored.
	for bob.peer.declared < 1 {
		converse(t, alice, bob, 2, 2)
	}
	before := bob.peer.received()
	m := withField(t, alice, func(k *kemField) { k.kind, k.epoch, k.index = kindEK, 1, 200 })
	recv(t, bob, m)
	if bob.peer.answered() || bob.peer.received() != before {
		t.Fatal("a chunk of a finished epoch changed the decoder")
	}
}

// badKeyStream makes every key chunk s sends a chunk of ek instead of its
// own key, through the hook; it returns a function that stops it.
func badKeyStream(from *Session, ek []byte) func() {
	enc, err := erasure.NewEncoder(ek, kemChunkSize)
	if err != nil {
		panic(err)
	}
	testHookKEMField = func(s *Session, k *kemField) {
		if s == from && k.kind == kindEK {
			enc.Chunk(uint32(k.index), k.chunk[:0])
		}
	}
	return func() { testHookKEMField = nil }
}

// TestKEMInvalidKeyStream is checklist item 29, corrupted encapsulation key,
// as a validly sealed chunk stream: chunks that rebuild a key failing the
// FIPS 203 check never get an answer. The message that would complete the
// key (its 38th chunk, decision 17) decrypts, and the decoder is reset
// instead of encapsulating; a copy of that message with a flipped body bit
// fails first and changes nothing. Once the stream is genuine again, the
// key completes and Bob answers: a bad stream never ends a session.
func TestKEMInvalidKeyStream(t *testing.T) {
	alice, bob := pairFrom(t, "kem bad key")
	stop := badKeyStream(alice, bytes.Repeat([]byte{0xff}, ekSize)) // coefficients >= q
	resets := 0
	for i := 0; i < 400 && resets < 3; i++ {
		m := send(t, alice, "a")
		held := bob.peer.received()
		bad := bytes.Clone(m.msg)
		bad[len(bad)-1] ^= 1
		mustFail(t, bob, m.tag, bad, ErrDecrypt)
		recv(t, bob, m)
		if held == ekChunks && bob.peer.received() == 0 {
			resets++
		}
		if bob.peer.answered() {
			t.Fatal("Bob answered an invalid key")
		}
		recv(t, alice, send(t, bob, "b"))
	}
	stop()
	if resets != 3 {
		t.Fatalf("%d resets", resets)
	}
	for i := 0; !bob.peer.answered(); i++ {
		if i > 200 {
			t.Fatal("the genuine key never completed after the resets")
		}
		recv(t, bob, send(t, alice, "a"))
		recv(t, alice, send(t, bob, "b"))
	}
}

// ekChunks and answerChunks are k for the key and the answer.
const (
	ekChunks     = (ekSize + kemChunkSize - 1) / kemChunkSize
	answerChunks = (answerSize + kemChunkSize - 1) / kemChunkSize
)

// TestKEMWrongKeyFailsConfirmation: a whole valid key that is not Alice's
// (a substituted stream, as only someone holding her keys and hiding her
// own stream can send) is answered by Bob, and Alice's message completing
// the answer fails key confirmation: the message decrypts, her decoder is
// reset, the lane is never ready and no secret is mixed. The lane stalls
// for as long as the wrong answer is all Bob has (doc.go, failure policy),
// visibly: KEMProgress does not move.
func TestKEMWrongKeyFailsConfirmation(t *testing.T) {
	alice, bob := pairFrom(t, "kem wrong key")
	other, err := mlkem.GenerateKey768()
	if err != nil {
		t.Fatal(err)
	}
	stop := badKeyStream(alice, other.EncapsulationKey().Bytes())
	defer stop()
	resets := 0
	for i := 0; i < 400 && resets < 2; i++ {
		recv(t, bob, send(t, alice, "a"))
		m := send(t, bob, "b")
		held := alice.own.received()
		recv(t, alice, m)
		if held == answerChunks-1 && alice.own.received() == 0 {
			resets++
		}
	}
	if resets != 2 || alice.own.ready || alice.KEMProgress().Own != 0 || bob.KEMProgress().Peer != 0 {
		t.Fatalf("resets %d, ready %t, progress %+v / %+v", resets, alice.own.ready, alice.KEMProgress(), bob.KEMProgress())
	}
}

// TestKEMCorruptAnswerStream is checklist item 29, corrupted ciphertext: Bob's
// answer chunks replaced by chunks of random bytes make Alice's completing
// message fail key confirmation: it decrypts, her decoder is reset, she is
// never ready, and a copy with a flipped body bit fails first with the
// state unchanged. Once Bob's chunks are genuine again, her decoder fills
// again and the lane mixes: a bad answer never ends a session.
func TestKEMCorruptAnswerStream(t *testing.T) {
	alice, bob := pairFrom(t, "kem bad answer")
	junk := make([]byte, answerSize)
	newShake("junk").Read(junk)
	enc, _ := erasure.NewEncoder(junk, kemChunkSize)
	testHookKEMField = func(s *Session, k *kemField) {
		if s == bob && k.kind == kindCT {
			enc.Chunk(uint32(k.index), k.chunk[:0])
		}
	}
	defer func() { testHookKEMField = nil }()
	resets := 0
	for i := 0; i < 400 && resets == 0; i++ {
		recv(t, bob, send(t, alice, "a"))
		m := send(t, bob, "b")
		held := alice.own.received()
		if held == answerChunks-1 {
			bad := bytes.Clone(m.msg)
			bad[len(bad)-1] ^= 1
			mustFail(t, alice, m.tag, bad, ErrDecrypt)
		}
		recv(t, alice, m)
		if held == answerChunks-1 && alice.own.received() == 0 {
			resets++
		}
		if alice.own.ready {
			t.Fatal("a junk answer was accepted")
		}
	}
	testHookKEMField = nil
	if resets != 1 {
		t.Fatalf("%d resets", resets)
	}
	for i := 0; alice.KEMProgress().Own == 0; i++ {
		if i > 400 {
			t.Fatal("the lane never mixed after the reset")
		}
		recv(t, bob, send(t, alice, "a"))
		recv(t, alice, send(t, bob, "b"))
	}
}

// mixLog records, per lane, the message counts at which epochs were mixed
// (seen as the owner's declaration being received by the peer).
type mixLog struct {
	at   [2][]int
	last [2]uint32
}

func (l *mixLog) observe(n int, alice, bob *Session) {
	for lane, d := range [2]uint32{bob.peer.declared, alice.peer.declared} {
		for l.last[lane] < d {
			l.last[lane]++
			l.at[lane] = append(l.at[lane], n)
		}
	}
}

// maxGap is the longest run of messages without a mixed epoch in a lane.
func (l *mixLog) maxGap(lane, total int) int {
	gap, prev := 0, 0
	for _, n := range append(append([]int(nil), l.at[lane]...), total) {
		gap = max(gap, n-prev)
		prev = n
	}
	return gap
}

// runTurns plays turns of 1 to maxA messages from Alice and 1 to maxB from
// Bob, dropping each message with probability loss (percent), and returns
// the mix log. It also checks that no message carries filler while one of
// the sender's lanes has a chunk due.
func runTurns(t *testing.T, label string, maxA, maxB, loss, total int) *mixLog {
	alice, bob := pairFrom(t, label)
	rnd := newShake(label)
	testHookKEMField = func(s *Session, k *kemField) {
		if k.kind == kindFiller && (s.own.sendsKey() || s.peer.answered()) {
			t.Fatal("filler sent while a chunk was due")
		}
	}
	defer func() { testHookKEMField = nil }()
	log := &mixLog{}
	type inFlight struct {
		m  sealed
		to *Session
	}
	var late []inFlight // delivered after the receiver's next turn (reordered)
	n := 0
	for turn := 0; n < total; turn++ {
		from, to, most := alice, bob, maxA
		if turn%2 == 1 {
			from, to, most = bob, alice, maxB
		}
		for i := 0; i < 1+rnd.intn(most) && from.send != nil; i++ {
			m := send(t, from, fmt.Sprint(n))
			n++
			switch r := rnd.intn(100); {
			case r < loss:
			case r < loss+5:
				late = append(late, inFlight{m, to})
				continue
			default:
				recv(t, to, m)
			}
			log.observe(n, alice, bob)
		}
		// The late messages to this turn's sender arrive after its turn
		// was sent: its replies overtook them.
		for _, l := range late {
			if l.to == from {
				recv(t, from, l.m)
			}
		}
		late = slices.DeleteFunc(late, func(l inFlight) bool { return l.to == from })
	}
	return log
}

// TestKEMCadence is checklist item 29's cadence: in turns of 1 to 5 messages
// without loss, each lane mixes an epoch at least every 400 messages (the
// schedule simulation gives a mean of 95 per secret, 190 per lane); with
// 30% loss and 80% loss, and lopsided (turns of 10 against 1), both lanes
// still mix (more slowly). The honest sender never sends filler while a
// chunk is due (runTurns checks every field).
func TestKEMCadence(t *testing.T) {
	cases := []struct {
		name              string
		maxA, maxB, loss  int
		total, bound, min int
	}{
		{"turns of 1-5", 5, 5, 0, 4000, 400, 15},
		{"30% loss", 5, 5, 30, 4000, 700, 8},
		{"80% loss", 5, 5, 80, 4000, 3000, 1},
		{"lopsided 10 vs 1", 10, 1, 0, 4000, 900, 5},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			log := runTurns(t, "cadence "+c.name, c.maxA, c.maxB, c.loss, c.total)
			for lane := range 2 {
				if len(log.at[lane]) < c.min || log.maxGap(lane, c.total) > c.bound {
					t.Fatalf("lane %d: %d epochs mixed in %d messages, longest gap %d (bound %d)",
						lane, len(log.at[lane]), c.total, log.maxGap(lane, c.total), c.bound)
				}
			}
			t.Logf("lanes mixed %d and %d epochs in %d messages; longest gaps %d and %d",
				len(log.at[0]), len(log.at[1]), c.total, log.maxGap(0, c.total), log.maxGap(1, c.total))
		})
	}
}

// TestKEMLostCompletingMessages: the message that would complete a decoder
// is dropped ten times over, for each decoder of each lane; a later chunk
// completes it and the round finishes.
func TestKEMLostCompletingMessages(t *testing.T) {
	alice, bob := pairFrom(t, "kem lost")
	completes := func(to *Session, m sealed) bool {
		var c Session
		if err := c.UnmarshalBinary(state(t, to)); err != nil {
			t.Fatal(err)
		}
		c.hooks = testHooks("probe")
		if _, err := c.Decrypt(m.tag, m.msg); err != nil {
			t.Fatal(err)
		}
		return c.peer.answered() != to.peer.answered() || c.own.ready != to.own.ready
	}
	dropped := 0
	for i := 0; alice.peer.declared < 1 || bob.peer.declared < 1; i++ {
		if i > 2000 {
			t.Fatalf("no round after %d messages (%d dropped)", i, dropped)
		}
		from, to := alice, bob
		if i%2 == 1 {
			from, to = bob, alice
		}
		m := send(t, from, "x")
		if dropped < 40 && completes(to, m) {
			dropped++
			continue
		}
		recv(t, to, m)
	}
	if dropped < 40 {
		t.Fatalf("only %d completing messages dropped", dropped)
	}
}

// TestKEMRandomSchedule is checklist item 13 with the KEM ratchet: the seeded
// send / deliver / drop / duplicate / reorder / reload schedule mixes
// epochs in both lanes, and everything still decrypts exactly once.
func TestKEMRandomSchedule(t *testing.T) {
	m := newSim(t, "kem schedule")
	m.reload = true
	for range 6000 {
		m.step()
	}
	a, b := m.p[0].s, m.p[1].s
	if a.own.declared < 2 || b.own.declared < 2 {
		t.Fatalf("epochs mixed: alice %d, bob %d", a.own.declared, b.own.declared)
	}
}

// TestKEMDeterministicEncrypt: Encrypt draws no randomness, so a reloaded
// session in the middle of a KEM round seals exactly the same bytes.
func TestKEMDeterministicEncrypt(t *testing.T) {
	alice, bob := pairFrom(t, "kem deterministic")
	converse(t, alice, bob, 3, 30)
	if !alice.peer.answered() && !alice.own.sendsKey() {
		t.Fatal("not mid-round")
	}
	var r Session
	if err := r.UnmarshalBinary(state(t, alice)); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		a, b := send(t, alice, "same"), send(t, &r, "same")
		if a.tag != b.tag || !bytes.Equal(a.msg, b.msg) {
			t.Fatal("a reloaded session seals differently")
		}
	}
}

// TestKEMStateRejects: saved KEM lanes with wrong sizes, too many or
// repeated points, a secret without its transcript, or parts of two phases
// at once are ErrMalformed, and the session is unchanged.
func TestKEMStateRejects(t *testing.T) {
	alice, bob := pairFrom(t, "kem state")
	for i := 0; alice.own.received() < 2 || !alice.peer.answered(); i++ {
		if i > 500 {
			t.Fatal("never mid-round in both lanes")
		}
		converse(t, alice, bob, 2, 2)
	}
	good := state(t, alice)
	mutate := func(f func(m *statepb.RatchetSession)) []byte {
		m := new(statepb.RatchetSession)
		if err := pbstrict.Unmarshal(good, m); err != nil {
			t.Fatal(err)
		}
		if len(m.OwnLane.CtPoints) < 2 || len(m.PeerLane.Ciphertext) != answerSize {
			t.Fatal("state does not exercise the lanes")
		}
		f(m)
		b, err := pbstrict.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type m = statepb.RatchetSession
	full := func(size int) ([]byte, []byte) {
		k := (size + kemChunkSize - 1) / kemChunkSize
		pts := make([]byte, k)
		for i := range pts {
			pts[i] = byte(100 + i)
		}
		return pts, make([]byte, k*kemChunkSize)
	}
	cases := map[string][]byte{
		"no own lane":      mutate(func(m *m) { m.OwnLane = nil }),
		"no peer lane":     mutate(func(m *m) { m.PeerLane = nil }),
		"seed size":        mutate(func(m *m) { m.OwnLane.Seed = m.OwnLane.Seed[:32] }),
		"repeated point":   mutate(func(m *m) { m.OwnLane.CtPoints[1] = m.OwnLane.CtPoints[0] }),
		"chunks size":      mutate(func(m *m) { m.OwnLane.CtChunks = m.OwnLane.CtChunks[1:] }),
		"complete decoder": mutate(func(m *m) { m.OwnLane.CtPoints, m.OwnLane.CtChunks = full(answerSize) }),
		"unanswered, no secret": mutate(func(m *m) {
			m.PeerLane.Ciphertext, m.PeerLane.Secret, m.PeerLane.Transcript, m.PeerLane.CtSent = nil, nil, nil, 0
		}),
		"overfull key decoder": mutate(func(m *m) {
			m.PeerLane.Ciphertext, m.PeerLane.Secret, m.PeerLane.Transcript, m.PeerLane.CtSent = nil, nil, nil, 0
			m.PeerLane.EkPoints, m.PeerLane.EkChunks = full(ekSize + kemChunkSize)
		}),
		"ready and decoding":   mutate(func(m *m) { m.OwnLane.Secret, m.OwnLane.Transcript = make([]byte, 32), make([]byte, 32) }),
		"secret no transcript": mutate(func(m *m) { m.PeerLane.Transcript = nil }),
		"ciphertext size":      mutate(func(m *m) { m.PeerLane.Ciphertext = m.PeerLane.Ciphertext[1:] }),
		"answer and decoding":  mutate(func(m *m) { m.PeerLane.EkPoints, m.PeerLane.EkChunks = []byte{1}, make([]byte, 32) }),
		"count without answer": mutate(func(m *m) {
			m.PeerLane.Ciphertext, m.PeerLane.Secret, m.PeerLane.Transcript, m.PeerLane.CtSent = nil, nil, nil, 3
		}),
		"epoch at the limit": mutate(func(m *m) { m.OwnLane.Declared = ^uint32(0) }),
		"bad padding":        mutate(func(m *m) { m.OwnLane.CtPoints, m.OwnLane.CtChunks = []byte{34}, bytes.Repeat([]byte{1}, 32) }),
	}
	for name, blob := range cases {
		if err := alice.UnmarshalBinary(blob); !errorsIs(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if !bytes.Equal(good, state(t, alice)) {
			t.Fatalf("%s: a failed load changed the session", name)
		}
	}
}

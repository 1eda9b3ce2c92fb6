package ratchet

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"maps"
	"testing"
)

// Restores from a backup (checklist items 35 and 51, issue 14 defects 1 and 2):
// a party whose state goes back to a saved copy re-derives keys it already
// used and receives again what it already received. No (key, nonce) pair
// may seal two plaintexts, no message may be lost to the KEM ratchet, and
// both KEM lanes must go on mixing.

// nonceLog records every (key, nonce) pair Encrypt seals under, header and
// body, through testHookNonce, and fails the test if one seals two
// different plaintexts.
type nonceLog struct {
	t          testing.TB
	seen       map[[1 + keySize + nonceSize]byte][sha256.Size]byte
	lastHeader []byte
}

func watchNonces(t testing.TB) *nonceLog {
	l := &nonceLog{t: t, seen: map[[1 + keySize + nonceSize]byte][sha256.Size]byte{}}
	testHookNonce = func(header bool, key [keySize]byte, nonce [nonceSize]byte, pt []byte) {
		var k [1 + keySize + nonceSize]byte
		if header {
			k[0] = 1
			l.lastHeader = bytes.Clone(pt)
		}
		copy(k[1:], key[:])
		copy(k[1+keySize:], nonce[:])
		h := sha256.Sum256(pt)
		if old, ok := l.seen[k]; ok && old != h {
			t.Errorf("a (key, nonce) pair sealed two different plaintexts (header %t)", header)
		}
		l.seen[k] = h
	}
	t.Cleanup(func() { testHookNonce = nil })
	return l
}

// wireHeader returns the header nonce and encrypted header of a message as
// they travel: version 2 took the nonce from the routing tag and put the
// header right after the version byte; version 3 sends the nonce first.
func wireHeader(tag [TagSize]byte, msg []byte) (nonce, hdr []byte) {
	if msg[0] == 2 {
		return tag[:12], msg[1 : 1+encHeaderSize]
	}
	return msg[1 : 1+nonceSize], msg[1+nonceSize : 1+nonceSize+encHeaderSize]
}

// restored loads a saved state into a new session with no test hooks: a
// restored device draws fresh randomness.
func restored(t testing.TB, snap []byte) *Session {
	t.Helper()
	s := new(Session)
	if err := s.UnmarshalBinary(snap); err != nil {
		t.Fatal(err)
	}
	return s
}

// progress is how many epochs each lane has mixed, as s sees it.
func progress(s *Session) KEMProgress { return s.KEMProgress() }

// TestRestoreHeaderNonceUnique is defect 1: Alice saves her state, sends,
// is restored, receives a message of Bob's current chain (which may change
// the KEM field she sends next) and sends again at the same chain
// position. Both messages have the same tag; their header nonces must
// differ unless the headers are byte-identical, and no (key, nonce) pair
// of header or body ever seals two plaintexts (nonceLog). The test also
// checks that the KEM field did change (three times at least), so that it
// is not vacuous, and that an unchanged header gives a byte-identical
// message.
func TestRestoreHeaderNonceUnique(t *testing.T) {
	log := watchNonces(t)
	alice, bob := pairFrom(t, "restore nonce")
	rnd := newShake("restore nonce")
	changed, same := 0, 0
	recv(t, bob, send(t, alice, "hello"))
	i := 0
	for ; i < 200 || changed < 3; i++ {
		if i == 3000 {
			t.Fatalf("the KEM field changed in only %d of %d probes", changed, i)
		}
		for range 1 + rnd.intn(8) {
			recv(t, alice, send(t, bob, "from bob"))
		}
		snap := state(t, alice)
		probe := fmt.Sprint("probe ", i)
		first := send(t, alice, probe)
		hdr1 := log.lastHeader
		alice = restored(t, snap)
		recv(t, alice, send(t, bob, "on the same chain"))
		second := send(t, alice, probe)
		hdr2 := log.lastHeader
		if first.tag != second.tag {
			t.Fatal("the restored session sent at another chain position")
		}
		n1, h1 := wireHeader(first.tag, first.msg)
		n2, h2 := wireHeader(second.tag, second.msg)
		if bytes.Equal(n1, n2) && !bytes.Equal(h1, h2) {
			t.Fatalf("probe %d: same tag and header nonce, different header ciphertext", i)
		}
		if bytes.Equal(hdr1, hdr2) {
			same++
			if !bytes.Equal(first.msg, second.msg) {
				t.Fatalf("probe %d: the same header and body gave different messages", i)
			}
		} else {
			changed++
		}
		recv(t, bob, second)
		for range rnd.intn(8) {
			recv(t, bob, send(t, alice, "from alice"))
		}
	}
	if same == 0 {
		t.Fatal("no probe left the header unchanged: the test needs both cases")
	}
	t.Logf("KEM field changed by the receive in %d of %d probes", changed, i)
}

// line is one party's session with the tags it consumed, so that a test
// knows which messages must fail because their chain position was used.
type line struct {
	s        *Session
	consumed map[[TagSize]byte]bool
	orphans  map[string]bool // messages of a peer's discarded line
	reused   int             // messages refused because their tag was consumed
}

func newLine(s *Session) *line {
	return &line{s: s, consumed: map[[TagSize]byte]bool{}, orphans: map[string]bool{}}
}

// deliver decrypts m: it must succeed, unless its tag was consumed (a
// restored sender re-used the chain position), when it must fail with a
// typed error and change nothing.
func (l *line) deliver(t testing.TB, m sealed) {
	t.Helper()
	if l.consumed[m.tag] {
		mustFail(t, l.s, m.tag, m.msg, nil)
		l.reused++
		return
	}
	if l.orphans[string(m.msg)] {
		// Sent by a line of the peer that a restore discarded: the
		// restored line may have ended that chain earlier (its PN) or
		// used the position, so it may fail, typed and changing nothing.
		before := state(t, l.s)
		if _, err := l.s.Decrypt(m.tag, m.msg); err != nil {
			if !anySentinel(err) || !bytes.Equal(before, state(t, l.s)) {
				t.Fatalf("orphan: %v, or state changed", err)
			}
			l.reused++
			return
		}
		l.consumed[m.tag] = true
		return
	}
	recv(t, l.s, m)
	l.consumed[m.tag] = true
}

// restoreSetup plays a conversation until Bob, who answers Alice's KEM
// lane, holds at least minChunks chunks of her key without having answered
// it, right after a turn of Alice (so Bob already follows her chain). It
// saves Bob there, then goes on: Alice sends until Bob has answered, Bob
// sends answers messages, all delivered, so that Alice holds chunks of
// Bob's answer. It returns the lines, Bob's saved state and consumed tags,
// and the messages Bob received after the save.
func restoreSetup(t *testing.T, label string, minChunks, answers int) (alice, bob *line, snap []byte, snapTags map[[TagSize]byte]bool, since []sealed) {
	a, b := pairFrom(t, label)
	alice, bob = newLine(a), newLine(b)
	for turn := 0; ; turn++ {
		if turn > 400 {
			t.Fatal("Bob never held enough of Alice's key")
		}
		from, to := alice, bob
		if turn%2 == 1 {
			from, to = bob, alice
		}
		for range 3 {
			to.deliver(t, send(t, from.s, "before"))
		}
		if to == bob && !b.peer.answered() && b.peer.received() >= minChunks {
			break
		}
	}
	snap, snapTags = state(t, b), maps.Clone(bob.consumed)
	for i := 0; !b.peer.answered(); i++ {
		if i > 80 {
			t.Fatal("Bob never answered")
		}
		m := send(t, a, "completes")
		bob.deliver(t, m)
		since = append(since, m)
	}
	for range answers {
		alice.deliver(t, send(t, b, "answer"))
	}
	if a.own.ready || a.own.received() == 0 {
		t.Fatalf("setup: Alice holds %d chunks of the answer, ready %t", a.own.received(), a.own.ready)
	}
	return alice, bob, snap, snapTags, since
}

// talk plays turns of 1 to 5 messages, each delivered at once, until total
// messages were sent, and returns the messages sent at which each lane
// mixed its epochs (as its peer sees it).
func talk(t *testing.T, alice, bob *line, rnd shake, total int) *mixLog {
	log := &mixLog{}
	log.last = [2]uint32{progress(bob.s).Peer, progress(alice.s).Peer}
	n := 0
	for turn := 0; n < total; turn++ {
		from, to := alice, bob
		if turn%2 == 1 {
			from, to = bob, alice
		}
		for range 1 + rnd.intn(5) {
			to.deliver(t, send(t, from.s, fmt.Sprint("m", n)))
			n++
			log.observe(n, alice.s, bob.s)
		}
	}
	return log
}

// TestRestoreRedeliveryKeepsKEM is defect 2 (a): Bob is restored to a state
// before he completed Alice's key, after his answer's first chunks reached
// Alice, and the relay delivers him again every message he had received
// since. He completes the key again and answers; the answer must be the
// one Alice holds chunks of (it is derived, not drawn), so that her
// decoder never mixes two answers. Then 300 messages: every message
// decrypts except Bob's re-sends at the chain positions Alice already
// consumed (refused with a typed error, nothing changed), and both lanes
// mix at least one more epoch.
func TestRestoreRedeliveryKeepsKEM(t *testing.T) {
	alice, _, snap, tags, since := restoreSetup(t, "restore redelivery", 20, 8)
	bob := &line{s: restored(t, snap), consumed: tags, orphans: map[string]bool{}}
	for _, m := range since {
		bob.deliver(t, m)
	}
	before := [2]KEMProgress{progress(alice.s), progress(bob.s)}
	talk(t, alice, bob, newShake("restore redelivery"), 300)
	after := [2]KEMProgress{progress(alice.s), progress(bob.s)}
	if after[0].Own <= before[0].Own || after[1].Own <= before[1].Own {
		t.Fatalf("lanes mixed %v then %v", before, after)
	}
	if alice.reused > 8 || bob.reused != 0 {
		t.Fatalf("%d and %d messages refused, want at most the 8 re-used positions", alice.reused, bob.reused)
	}
	t.Logf("progress %v -> %v; %d re-sent positions refused", before, after, alice.reused)
}

// TestRestoreHonestRelayKeepsRate is defect 2 (b): Bob is restored to a
// state a few chunks short of Alice's key, after his answer's first chunks
// reached Alice, and the relay (honest) never delivers anything twice.
// Alice must go on streaming her key until her answer completes, so that
// Bob completes it again; over the next 1,200 messages in turns of 1 to 5
// both lanes mix at the documented rate (TestKEMCadence: each lane at
// least every 400 messages, here with margin for the restore), and no
// message is lost but Bob's re-sends at consumed positions.
func TestRestoreHonestRelayKeepsRate(t *testing.T) {
	alice, _, snap, tags, _ := restoreSetup(t, "restore honest", 30, 8)
	bob := &line{s: restored(t, snap), consumed: tags, orphans: map[string]bool{}}
	const total = 1200
	log := talk(t, alice, bob, newShake("restore honest"), total)
	for lane := range 2 {
		if len(log.at[lane]) < 3 || log.maxGap(lane, total) > 500 {
			t.Fatalf("lane %d: %d epochs mixed in %d messages after the restore, longest gap %d",
				lane, len(log.at[lane]), total, log.maxGap(lane, total))
		}
	}
	if alice.reused > 8 || bob.reused != 0 {
		t.Fatalf("%d and %d messages refused, want at most the 8 re-used positions", alice.reused, bob.reused)
	}
	t.Logf("lanes mixed %d and %d epochs in %d messages; longest gaps %d and %d",
		len(log.at[0]), len(log.at[1]), total, log.maxGap(0, total), log.maxGap(1, total))
}

// TestForgedChunkRecovers: Eve holds a snapshot of Alice's whole state and
// sits on the wire. She replaces one of Alice's messages by her own
// sealing of the same plaintext with one bad chunk, which the Double
// Ratchet accepts (header and body are genuine). For a key chunk, the bad
// chunk is zero, so the rebuilt key is still a valid ML-KEM key, only the
// wrong one; for an answer chunk, one bit is flipped. Bob's decoder must
// reset and recover: no message is lost (every message delivered
// decrypts, Eve's included), a failed decrypt still changes nothing (a
// copy with a flipped body bit is tried before each message), and both
// lanes go on mixing.
func TestForgedChunkRecovers(t *testing.T) {
	for _, c := range []struct {
		name string
		kind uint8
		edit func(*kemField)
	}{
		{"key chunk", kindEK, func(f *kemField) { f.chunk = [kemChunkSize]byte{} }},
		{"answer chunk", kindCT, func(f *kemField) { f.chunk[7] ^= 1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := pairFrom(t, "forged "+c.name)
			alice, bob := newLine(a), newLine(b)
			// Alice's next field must be a fresh chunk of the wanted kind,
			// early in its epoch (a data chunk, for the key).
			for i := 0; ; i++ {
				var f kemField
				if err := a.kemOut(&f); err != nil {
					t.Fatal(err)
				}
				if f.kind == c.kind && (c.kind == kindEK && f.index < 30 || c.kind == kindCT && b.own.received() < 20) {
					break
				}
				if i > 400 {
					t.Fatal("no such field")
				}
				from, to := alice, bob
				if i%2 == 1 {
					from, to = bob, alice
				}
				to.deliver(t, send(t, from.s, "before"))
			}
			eve := restored(t, state(t, a))
			forged := withField(t, eve, c.edit)
			send(t, a, "crafted field") // Alice's own, which Eve drops
			bob.deliver(t, forged)
			before := [2]KEMProgress{progress(a), progress(b)}
			rnd := newShake("forged " + c.name)
			for n, turn := 0, 0; n < 800; turn++ {
				from, to := alice, bob
				if turn%2 == 1 {
					from, to = bob, alice
				}
				for range 1 + rnd.intn(5) {
					m := send(t, from.s, fmt.Sprint("m", n))
					bad := bytes.Clone(m.msg)
					bad[len(bad)-1] ^= 1
					mustFail(t, to.s, m.tag, bad, ErrDecrypt)
					to.deliver(t, m)
					n++
				}
			}
			after := [2]KEMProgress{progress(a), progress(b)}
			if after[0].Own < before[0].Own+2 || after[1].Own < before[1].Own+2 {
				t.Fatalf("lanes mixed %v then %v", before, after)
			}
			if alice.reused+bob.reused != 0 {
				t.Fatal("a message was refused")
			}
		})
	}
}

// restoreParty is one side of TestRestoreProperty.
type restoreParty struct {
	*line
	inbox    []sealed
	since    []sealed // received since the snapshot
	sent     []sealed // sent since the snapshot
	snap     []byte
	snapTags map[[TagSize]byte]bool
	snapDH   [pubSize]byte
	snapSend bool
	canSend  bool
}

// TestRestoreProperty: random schedules of sends, deliveries in random
// order, drops, snapshots and restores of either party, with the relay
// sometimes delivering again what a restored party had received since its
// snapshot. A party is restored only to a snapshot taken since its last DH
// step: across one, the Double Ratchet itself cannot follow (its new
// ratchet key is drawn again), which no KEM change can fix. Every
// delivered message decrypts exactly once per line of state, except one
// whose chain position the receiver already consumed (refused, typed,
// nothing changed), and both lanes mix epochs.
func TestRestoreProperty(t *testing.T) {
	for _, seed := range []string{"restore property 1", "restore property 2", "restore property 3"} {
		t.Run(seed, func(t *testing.T) {
			a, b := pairFrom(t, seed)
			p := [2]*restoreParty{{line: newLine(a), canSend: true}, {line: newLine(b)}}
			rnd := newShake(seed)
			restores, seq := 0, 0
			for range 4000 {
				me := rnd.intn(2)
				from, to := p[me], p[1-me]
				switch r := rnd.intn(100); {
				case r < 40 && from.canSend:
					seq++
					m := send(t, from.s, fmt.Sprint(seq))
					to.inbox = append(to.inbox, m)
					from.sent = append(from.sent, m)
				case r < 85 && len(to.inbox) > 0:
					i := rnd.intn(min(len(to.inbox), 1+rnd.intn(4)))
					m := to.inbox[i]
					to.inbox = append(to.inbox[:i], to.inbox[i+1:]...)
					to.deliver(t, m)
					to.since = append(to.since, m)
					to.canSend = true
				case r < 88 && len(to.inbox) > 0:
					i := rnd.intn(len(to.inbox))
					to.inbox = append(to.inbox[:i], to.inbox[i+1:]...)
				case r < 94:
					from.snap, from.snapTags, from.snapDH = state(t, from.s), maps.Clone(from.consumed), from.s.dhsPub
					from.snapSend, from.since, from.sent = from.canSend, nil, nil
				case from.snap != nil && from.snapDH == from.s.dhsPub:
					restores++
					from.line = &line{s: restored(t, from.snap), consumed: maps.Clone(from.snapTags), orphans: from.orphans, reused: from.reused}
					from.canSend = from.snapSend
					if rnd.intn(2) == 0 {
						from.inbox = append(from.inbox, from.since...)
					}
					for _, m := range from.sent {
						to.orphans[string(m.msg)] = true
					}
					from.since, from.sent = nil, nil
				}
			}
			pa, pb := progress(p[0].s), progress(p[1].s)
			if pa.Own < 3 || pb.Own < 3 || pa.Peer < 3 || pb.Peer < 3 {
				t.Fatalf("epochs mixed: alice %+v, bob %+v", pa, pb)
			}
			t.Logf("%d restores; alice %+v, bob %+v; %d and %d re-used positions refused", restores, pa, pb, p[0].reused, p[1].reused)
		})
	}
}

// TestRestoreBeforeConfirmingChunk: Bob is restored to a state holding all
// 37 chunks of Alice's key but not the 38th that confirms them (decision
// 17), after Alice has confirmed his answer. Alice, ready, no longer
// streams her key, and her next DH step declares the epoch. Bob must
// follow that chain: he answers the 37 chunks when the declaration comes,
// which gives the secret Alice confirmed, since the answer is derived
// (decision 16). Every message decrypts but Bob's re-sends at consumed
// positions, and both lanes go on mixing. (Version 2 answered at the 37th
// chunk, so it has no such state.)
func TestRestoreBeforeConfirmingChunk(t *testing.T) {
	a, b := pairFrom(t, "restore confirming")
	alice, bob := newLine(a), newLine(b)
	for i := 0; b.peer.answered() || b.peer.received() != ekChunks; i++ {
		if i > 2000 {
			t.Fatal("Bob never held the whole key unconfirmed")
		}
		bob.deliver(t, send(t, a, "k"))
		if i%5 == 4 && b.peer.received() < ekChunks-3 {
			alice.deliver(t, send(t, b, "r"))
		}
	}
	snap, tags := state(t, b), maps.Clone(bob.consumed)
	for i := 0; !b.peer.answered(); i++ {
		if i > 80 {
			t.Fatal("Bob never answered")
		}
		bob.deliver(t, send(t, a, "confirms"))
	}
	sent := 0
	for ; !a.own.ready; sent++ {
		if sent > 200 {
			t.Fatal("Alice never confirmed the answer")
		}
		alice.deliver(t, send(t, b, "answer"))
	}
	bob = &line{s: restored(t, snap), consumed: tags, orphans: map[string]bool{}}
	if bob.s.peer.answered() || bob.s.peer.received() != ekChunks {
		t.Fatal("setup: the restored state is not the one wanted")
	}
	before := [2]KEMProgress{progress(a), progress(bob.s)}
	talk(t, alice, bob, newShake("restore confirming"), 600)
	after := [2]KEMProgress{progress(a), progress(bob.s)}
	if after[1].Peer <= before[1].Peer || after[0].Own <= before[0].Own || after[1].Own <= before[1].Own {
		t.Fatalf("lanes mixed %v then %v", before, after)
	}
	if alice.reused > sent || bob.reused != 0 {
		t.Fatalf("%d and %d messages refused, want at most the %d re-used positions", alice.reused, bob.reused, sent)
	}
	t.Logf("progress %v -> %v; %d of %d re-sent positions refused", before, after, alice.reused, sent)
}

package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"testing"
)

// splitStore is a party's store of split parts with the mark of what it
// holds, as a Device keeps them.
type splitStore struct {
	parts map[Part][]byte
	mark  SplitMark
	of    *Session // the session the mark belongs to
	puts  int      // parts written by the last save
	bytes int      // bytes written by the last save
}

// save writes the parts changed since the store's mark; commit false models
// a failed store write: the parts are dropped and the mark is kept.
func (st *splitStore) save(t testing.TB, s *Session, commit bool) {
	t.Helper()
	if st.of != s {
		st.mark, st.of = SplitMark{}, s
	}
	staged := map[Part][]byte{}
	st.puts, st.bytes = 0, 0
	head, mark, err := s.SaveSplit(nil, st.mark, 4, func(p Part, v []byte) {
		if cap(v)-len(v) < 4 {
			t.Fatalf("part %d has no room", p)
		}
		if _, dup := staged[p]; dup {
			t.Fatalf("part %d put twice", p)
		}
		staged[p] = v
		st.puts++
		st.bytes += len(v)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := staged[PartHead]; ok || len(head) == 0 || len(head) > SplitHeadSize {
		t.Fatalf("head of %d bytes, or put as a part", len(head))
	}
	staged[PartHead] = head
	st.puts++
	st.bytes += len(head)
	if commit {
		maps.Copy(st.parts, staged)
		st.mark = mark
	}
}

// load rebuilds the session from the store.
func (st *splitStore) load(t testing.TB) (*Session, SplitMark) {
	t.Helper()
	s, mark, err := LoadSplit(st.parts[PartHead], st.get)
	if err != nil {
		t.Fatal(err)
	}
	return s, mark
}

func (st *splitStore) get(p Part) ([]byte, error) {
	v, ok := st.parts[p]
	if !ok {
		return nil, fmt.Errorf("part %d: %w", p, errMissingPart)
	}
	return v, nil
}

var errMissingPart = errors.New("missing part")

// TestSplitSaveProperty: over random conversations (sends, deliveries out
// of order, drops, duplicates, KEM rounds in both lanes), a split save
// after every step, with one in ten (or one in two) failing, always loads back to exactly
// the live state; and a party that goes on from its reloaded session, or
// from a session reloaded the whole-state way, keeps saving correctly.
func TestSplitSaveProperty(t *testing.T) {
	for _, c := range []struct {
		seed string
		fail int // one save in fail fails
	}{{"split 1", 10}, {"split 2", 10}, {"split 3", 2}} {
		m := newSim(t, c.seed)
		stores := [2]*splitStore{{parts: map[Part][]byte{}}, {parts: map[Part][]byte{}}}
		for i := range 5000 {
			m.step()
			for k, p := range m.p {
				st := stores[k]
				st.save(t, p.s, m.rnd.intn(c.fail) != 0)
				if m.rnd.intn(3) != 0 {
					continue
				}
				// Save again, committed: it must catch up with whatever the
				// failed saves since the mark left out.
				st.save(t, p.s, true)
				got, mark := st.load(t)
				if !bytes.Equal(state(t, got), state(t, p.s)) {
					t.Fatalf("%s step %d: split load differs from the live state", p.name, i)
				}
				switch m.rnd.intn(20) {
				case 0: // go on from the split-loaded session
					got.hooks = p.s.hooks
					p.s, st.of, st.mark = got, got, mark
				case 1: // go on from a whole-state reload: a zero mark
					m.roundTrip(p)
				}
			}
		}
		if m.p[0].s.own.declared < 2 || m.p[1].s.own.declared < 2 {
			t.Fatalf("too few KEM epochs: %d, %d", m.p[0].s.own.declared, m.p[1].s.own.declared)
		}
	}
}

// TestSplitSaveWritesOnlyChanges: in an in-order conversation a save writes
// the head and at most one replay block and one block of each decoder, and
// the cold part only when skipped keys change.
func TestSplitSaveWritesOnlyChanges(t *testing.T) {
	alice, bob := pairFrom(t, "split changes")
	sa, sb := &splitStore{parts: map[Part][]byte{}}, &splitStore{parts: map[Part][]byte{}}
	most := [2]int{}
	for i := range 600 {
		from, to, st := alice, bob, sb
		if i%10 >= 7 { // turns of 7 and 3
			from, to, st = bob, alice, sa
		}
		if i == 0 {
			sa.save(t, alice, true)
		}
		m := send(t, from, fmt.Sprint(i))
		recv(t, to, m)
		st.save(t, to, true)
		if i > 0 && st.puts > 4 {
			t.Fatalf("message %d: the receiver's save wrote %d parts", i, st.puts)
		}
		if _, ok := st.parts[PartCold]; ok {
			t.Fatalf("message %d: a cold part without skipped keys", i)
		}
		most[0] = max(most[0], st.bytes)
	}
	// One skipped message: the cold part appears, and goes with its key.
	late := send(t, alice, "late")
	recv(t, bob, send(t, alice, "early"))
	sb.save(t, bob, true)
	if _, ok := sb.parts[PartCold]; !ok || sb.puts > 4 {
		t.Fatalf("skipped key saved in %d parts, cold part %v", sb.puts, ok)
	}
	recv(t, bob, late)
	sb.save(t, bob, true)
	got, _ := sb.load(t)
	if !bytes.Equal(state(t, got), state(t, bob)) || len(got.skipped.chains) != 0 {
		t.Fatal("reload after the skipped key was used differs")
	}
	t.Logf("largest receiving save in order: %d bytes", most[0])
}

// TestLoadSplitRejects: every damaged or stale part is ErrMalformed or
// ErrUnsupportedVersion, never a panic, and a missing part is the store's
// error.
func TestLoadSplitRejects(t *testing.T) {
	alice, bob := pairFrom(t, "split rejects")
	converse(t, alice, bob, 3, 150) // KEM rounds done, replay blocks
	// Bob holds chunks of Alice's next key, more than one block of them.
	for i := 0; bob.peer.received() <= decoderBlock && i < 400; i++ {
		recv(t, bob, send(t, alice, "chunk"))
		if i%40 == 39 {
			recv(t, alice, send(t, bob, "turn"))
		}
	}
	send(t, alice, "lost")
	recv(t, bob, send(t, alice, "after")) // a skipped key: a cold part
	st := &splitStore{parts: map[Part][]byte{}}
	st.save(t, bob, true)
	head := st.parts[PartHead]
	edit := func(p Part, f func([]byte) []byte) func() (map[Part][]byte, error) {
		return func() (map[Part][]byte, error) {
			parts := maps.Clone(st.parts)
			v, ok := parts[p]
			if !ok {
				return nil, fmt.Errorf("no part %d", p)
			}
			parts[p] = f(bytes.Clone(v))
			return parts, nil
		}
	}
	consumedPart := partConsumed + Part((bob.consumed.total-1)/consumedBlock%ConsumedSlots)
	peerKeyPart := partPeerKey
	if bob.peer.received() == 0 {
		t.Fatal("test needs bob to hold chunks of alice's key")
	}
	cases := []struct {
		name  string
		parts func() (map[Part][]byte, error)
		want  error
	}{
		{"empty head", edit(PartHead, func(b []byte) []byte { return nil }), ErrMalformed},
		{"no version", edit(PartHead, func(b []byte) []byte { b[0] = 0; return b }), ErrMalformed},
		{"version 1", edit(PartHead, func(b []byte) []byte { b[0] = 1; return b }), ErrUnsupportedVersion},
		{"version 2", edit(PartHead, func(b []byte) []byte { b[0] = 2; return b }), ErrUnsupportedVersion},
		{"version 4", edit(PartHead, func(b []byte) []byte { b[0] = 4; return b }), ErrUnsupportedVersion},
		{"format 2", edit(PartHead, func(b []byte) []byte { b[1] = 2; return b }), ErrUnsupportedVersion},
		{"unknown flag", edit(PartHead, func(b []byte) []byte { b[2] |= 0x80; return b }), ErrMalformed},
		{"truncated head", edit(PartHead, func(b []byte) []byte { return b[:len(b)-1] }), ErrMalformed},
		{"head trailing byte", edit(PartHead, func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"head cut in the keys", edit(PartHead, func(b []byte) []byte { return b[:40] }), ErrMalformed},
		{"zero bounds", edit(PartHead, func(b []byte) []byte { clear(b[3:7]); return b }), ErrMalformed},
		{"replay count too high", edit(PartHead, func(b []byte) []byte { b[34]++; return b }), ErrMalformed},
		{"stale replay block", edit(consumedPart, func(b []byte) []byte { b[7] -= consumedBlock; return b }), ErrMalformed},
		{"replay block short", edit(consumedPart, func(b []byte) []byte { return b[:len(b)-2*TagSize] }), ErrMalformed},
		{"replay block ragged", edit(consumedPart, func(b []byte) []byte { return b[:len(b)-1] }), ErrMalformed},
		{"decoder block of another epoch", edit(peerKeyPart, func(b []byte) []byte { b[3]++; return b }), ErrMalformed},
		{"decoder block index", edit(peerKeyPart, func(b []byte) []byte { b[4]++; return b }), ErrMalformed},
		{"decoder block size", edit(peerKeyPart, func(b []byte) []byte { return b[:len(b)-1] }), ErrMalformed},
		{"decoder duplicate point", edit(peerKeyPart, func(b []byte) []byte {
			if len(b) < 5+2*33 {
				return b[:4]
			}
			b[5+33] = b[5]
			return b
		}), ErrMalformed},
		{"cold part empty", edit(PartCold, func(b []byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, 0} }), ErrMalformed},
		{"cold part truncated", edit(PartCold, func(b []byte) []byte { return b[:len(b)-1] }), ErrMalformed},
		{"cold part trailing", edit(PartCold, func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"cold chain of no keys", edit(PartCold, func(b []byte) []byte { clear(b[36:40]); return b }), ErrMalformed},
		{"cold huge chain count", edit(PartCold, func(b []byte) []byte { b[0] = 0xff; return b }), ErrMalformed},
		{"missing replay block", func() (map[Part][]byte, error) {
			parts := maps.Clone(st.parts)
			delete(parts, consumedPart)
			return parts, nil
		}, errMissingPart},
		{"missing AD", func() (map[Part][]byte, error) {
			parts := maps.Clone(st.parts)
			delete(parts, PartAD)
			return parts, nil
		}, errMissingPart},
		{"missing cold part", func() (map[Part][]byte, error) {
			parts := maps.Clone(st.parts)
			delete(parts, PartCold)
			return parts, nil
		}, errMissingPart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parts, err := c.parts()
			if err != nil {
				t.Fatal(err)
			}
			s, _, err := LoadSplit(parts[PartHead], (&splitStore{parts: parts}).get)
			if !errors.Is(err, c.want) || s != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if _, _, err := LoadSplit(head, st.get); err != nil {
		t.Fatalf("the undamaged parts: %v", err)
	}
}

// TestSplitSaveAcrossEpochs: a save whose mark is from an earlier KEM
// epoch (every save in between failed) rewrites the new epoch's decoder
// blocks from the first, even where the old decoder held more chunks.
func TestSplitSaveAcrossEpochs(t *testing.T) {
	alice, bob := pairFrom(t, "split epochs")
	converse(t, alice, bob, 3, 120)
	for i := 0; bob.peer.received() < 2*decoderBlock && i < 400; i++ {
		recv(t, bob, send(t, alice, "chunk"))
		if i%30 == 29 {
			recv(t, alice, send(t, bob, "turn"))
		}
	}
	st := &splitStore{parts: map[Part][]byte{}}
	st.save(t, bob, true)
	held, epoch := bob.peer.received(), bob.peer.declared
	if held < 2*decoderBlock {
		t.Fatalf("bob holds only %d chunks", held)
	}
	// No save succeeds until Bob holds a few chunks of a later key.
	for i := 0; (bob.peer.declared == epoch || bob.peer.received() == 0 || bob.peer.received() >= decoderBlock) && i < 2000; i++ {
		recv(t, bob, send(t, alice, "on"))
		if i%5 == 4 {
			recv(t, alice, send(t, bob, "back"))
		}
	}
	if bob.peer.declared == epoch || bob.peer.received() == 0 || bob.peer.received() >= decoderBlock {
		t.Fatalf("no new epoch under way: epoch %d -> %d, %d chunks", epoch, bob.peer.declared, bob.peer.received())
	}
	st.save(t, bob, true)
	got, _ := st.load(t)
	if !bytes.Equal(state(t, got), state(t, bob)) {
		t.Fatal("split load after an epoch change differs")
	}
}

// splitVector is testdata/split.json: the split saves (zero mark) of both
// final states of testdata/conversation.json, part by part.
type splitVector struct {
	Comment string              `json:"comment"`
	Alice   map[string]hexBytes `json:"alice_parts"`
	Bob     map[string]hexBytes `json:"bob_parts"`
}

// splitParts saves s with a zero mark and returns its parts by number.
func splitParts(t testing.TB, s *Session) map[string]hexBytes {
	t.Helper()
	out := map[string]hexBytes{}
	head, _, err := s.SaveSplit(nil, SplitMark{}, 0, func(p Part, v []byte) { out[fmt.Sprint(int(p))] = v })
	if err != nil {
		t.Fatal(err)
	}
	out[fmt.Sprint(int(PartHead))] = head
	return out
}

// loadParts loads a session from parts keyed by number.
func loadParts(parts map[string]hexBytes) (*Session, error) {
	get := func(p Part) ([]byte, error) {
		v, ok := parts[fmt.Sprint(int(p))]
		if !ok {
			return nil, fmt.Errorf("part %d: %w", p, errMissingPart)
		}
		return v, nil
	}
	head, err := get(PartHead)
	if err != nil {
		return nil, err
	}
	s, _, err := LoadSplit(head, get)
	return s, err
}

// TestGoldenSplit checks testdata/split.json (regenerate with -update): the
// split save of the golden conversation's final states is byte for byte the
// stored parts, and the stored parts load to exactly those states.
func TestGoldenSplit(t *testing.T) {
	var conv conversation
	readJSON(t, filepath.Join("testdata", "conversation.json"), &conv)
	var alice, bob Session
	if err := errors.Join(alice.UnmarshalBinary(conv.AliceState), bob.UnmarshalBinary(conv.BobState)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "split.json")
	if *update {
		writeJSON(t, path, &splitVector{
			Comment: fmt.Sprintf("ratchet split save (state version %d, split format %d) of alice_state and bob_state of conversation.json, saved with a zero mark; keys are part numbers", StateVersion, splitFormat),
			Alice:   splitParts(t, &alice), Bob: splitParts(t, &bob),
		})
	}
	var v splitVector
	readJSON(t, path, &v)
	for _, c := range []struct {
		name  string
		s     *Session
		parts map[string]hexBytes
		whole []byte
	}{{"alice", &alice, v.Alice, conv.AliceState}, {"bob", &bob, v.Bob, conv.BobState}} {
		if !maps.EqualFunc(splitParts(t, c.s), c.parts, func(a, b hexBytes) bool { return bytes.Equal(a, b) }) {
			t.Fatalf("%s: the split save differs from the vector: a format change needs a new split format", c.name)
		}
		got, err := loadParts(c.parts)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(state(t, got), c.whole) {
			t.Fatalf("%s: the stored parts load to another state", c.name)
		}
	}
}

// TestRetiredSplit: a genuine split save of state version 2 (kept from the
// version-2 golden conversation, never regenerated) is refused with
// ErrUnsupportedVersion, not half-read.
func TestRetiredSplit(t *testing.T) {
	var v splitVector
	readJSON(t, filepath.Join("testdata", "split_version2_rejected.json"), &v)
	if len(v.Bob) < 3 || v.Bob["0"][0] != 2 {
		t.Fatal("the vector is not a version-2 split save")
	}
	if s, err := loadParts(v.Bob); !errors.Is(err, ErrUnsupportedVersion) || s != nil {
		t.Fatalf("version-2 split save: %v, want ErrUnsupportedVersion", err)
	}
}

// FuzzLoadSplit: LoadSplit of the golden parts with the head and one other
// part replaced never panics, returns a typed error or a session whose
// split save loads back to the same state.
func FuzzLoadSplit(f *testing.F) {
	var v splitVector
	readJSON(f, filepath.Join("testdata", "split.json"), &v)
	for p, raw := range v.Bob {
		n, _ := strconv.Atoi(p)
		f.Add([]byte(v.Bob["0"]), []byte(raw), uint8(n))
	}
	f.Add([]byte(v.Alice["0"]), []byte(v.Alice["4"]), uint8(4))
	f.Fuzz(func(t *testing.T, head, part []byte, which uint8) {
		parts := maps.Clone(v.Bob)
		parts["0"] = head
		if p := int(which) % SplitParts; p != 0 {
			parts[fmt.Sprint(p)] = part
		}
		s, err := loadParts(parts)
		if err != nil {
			if s != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, errMissingPart)) {
				t.Fatalf("untyped error or a session with it: %v", err)
			}
			return
		}
		again, err := loadParts(splitParts(t, s))
		if err != nil || !bytes.Equal(state(t, again), state(t, s)) {
			t.Fatalf("an accepted state does not save and load the same: %v", err)
		}
	})
}

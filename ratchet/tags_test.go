package ratchet

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
)

// TestTagsDistinct: 10,000 tags of one session (both directions, across DH
// steps) are distinct, and none appears in another session.
func TestTagsDistinct(t *testing.T) {
	total := 10_000
	if testing.Short() {
		total = 2_000
	}
	collect := func(label string) map[[TagSize]byte]bool {
		alice, bob := pairFrom(t, label)
		seen := make(map[[TagSize]byte]bool, total)
		for i := range total {
			from, to := alice, bob
			if (i/100)%3 == 2 {
				from, to = bob, alice
			}
			m := send(t, from, "x")
			if seen[m.tag] {
				t.Fatalf("tag repeated after %d messages", i)
			}
			seen[m.tag] = true
			recv(t, to, m)
		}
		return seen
	}
	a, b := collect("tags a"), collect("tags b")
	for tag := range a {
		if b[tag] {
			t.Fatal("two sessions share a tag")
		}
	}
}

// TestExpectedTagsCoverWindow: the tags of the next TagWindow messages of
// the receiving chain and of the next chain, and of every skipped key, are
// expected; the tag of the message after the window is not.
func TestExpectedTagsCoverWindow(t *testing.T) {
	alice, bob := pairFrom(t, "window")
	expected := func() map[[TagSize]byte]bool {
		m := map[[TagSize]byte]bool{}
		for tag := range bob.ExpectedTags() {
			m[tag] = true
		}
		return m
	}
	ms := sendN(t, alice, TagWindow+1)
	e := expected()
	if len(e) != TagWindow {
		t.Fatalf("fresh responder expects %d tags, want %d", len(e), TagWindow)
	}
	for i, m := range ms {
		if e[m.tag] != (i < TagWindow) {
			t.Fatalf("message %d: expected %t", i, e[m.tag])
		}
	}
	recv(t, bob, ms[10]) // 10 skipped, 1 consumed
	e = expected()
	if want := 2*TagWindow + 10 + 1; len(e) != want {
		t.Fatalf("expects %d tags, want %d", len(e), want)
	}
	for _, m := range ms {
		if !e[m.tag] {
			t.Fatal("a skipped or in-window tag is not expected")
		}
	}
}

// TestFindSessionAmongMany: with the tag table of 1,000 sessions, the tag
// alone names the right session, before and after the window moves.
func TestFindSessionAmongMany(t *testing.T) {
	n := 1000
	if testing.Short() {
		n = 100
	}
	alices, bobs := make([]*Session, n), make([]*Session, n)
	table := map[[TagSize]byte]int{}
	index := func(i int) {
		for tag := range bobs[i].ExpectedTags() {
			if j, ok := table[tag]; ok && j != i {
				t.Fatal("two sessions expect the same tag")
			}
			table[tag] = i
		}
	}
	for i := range n {
		alices[i], bobs[i] = pairFrom(t, fmt.Sprint("many ", i))
		index(i)
	}
	for round := range 3 {
		for _, i := range []int{0, n / 2, n - 1, (round * 7919) % n} {
			m := send(t, alices[i], "hello")
			j, ok := table[m.tag]
			if !ok || j != i {
				t.Fatalf("tag found session %d (%t), want %d", j, ok, i)
			}
			recv(t, bobs[j], m)
			index(j)
		}
	}
}

// TestTagDerivation pins the tag construction: the first 16 bytes of
// HMAC-SHA-256 under the tag key of message n as 4 big-endian bytes.
func TestTagDerivation(t *testing.T) {
	var hk [keySize]byte
	hk[0] = 1
	h := newHeaderKeys(&hk)
	a, b := h.tag(0), h.tag(1)
	if a == b || slices.Equal(a[:], make([]byte, TagSize)) {
		t.Fatal("degenerate tags")
	}
	var hk2 [keySize]byte
	hk2[0] = 2
	if newHeaderKeys(&hk2).tag(0) == a {
		t.Fatal("tag ignores the header key")
	}
	_ = sha256.Size
}

// TestAppendExpectedTags: AppendExpectedTags and ExpectedTags give exactly
// the tags computed from the session's parts, in order, at every step of a
// random conversation (skipped keys, DH steps, replay and eviction
// records), appended after what dst already holds.
func TestAppendExpectedTags(t *testing.T) {
	m := newSim(t, "append tags")
	prefix := [][TagSize]byte{{1}, {2}}
	for range 1500 {
		m.step()
		for _, p := range m.p {
			want := append(slices.Clone(prefix), expectedTagsOf(p.s)...)
			if got := p.s.AppendExpectedTags(slices.Clone(prefix)); !slices.Equal(got, want) {
				t.Fatalf("%s: AppendExpectedTags gives %d tags, want %d", p.name, len(got), len(want))
			}
			if got := slices.Collect(p.s.ExpectedTags()); !slices.Equal(got, want[len(prefix):]) {
				t.Fatalf("%s: ExpectedTags gives %d tags, want %d", p.name, len(got), len(want)-len(prefix))
			}
		}
	}
	var zero Session
	if got := zero.AppendExpectedTags(nil); len(got) != 0 {
		t.Fatal("a zero session expects tags")
	}
}

// expectedTagsOf lists a session's expected tags from its parts, computed
// here independently of AppendExpectedTags: each window's tags from its
// header keys, then the skipped keys, the replay and eviction records.
func expectedTagsOf(s *Session) [][TagSize]byte {
	var out [][TagSize]byte
	for _, w := range []*window{s.windowOf(atCurrent), s.next} {
		if w == nil {
			continue
		}
		for i := range w.limit() {
			out = append(out, w.hk.tag(w.base+uint32(i)))
		}
	}
	for _, c := range s.skipped.chains {
		for _, k := range c.keys {
			out = append(out, c.hk.tag(k.n))
		}
	}
	for i := range s.consumed.len() {
		out = append(out, s.consumed.at(i).tag)
	}
	for i := range s.expired.len() {
		out = append(out, s.expired.at(i))
	}
	return out
}

// TestStepExpectedTags: over random conversations (in order, reordered,
// lost, duplicated, DH steps, skipped keys), whenever StepExpectedTags
// accepts a step, the list it returns is exactly AppendExpectedTags now
// and its gone and fresh tags are exactly the set difference; when it
// refuses, the list is unchanged. The fast path must be the common case of
// an in-order conversation.
func TestStepExpectedTags(t *testing.T) {
	m := newSim(t, "step tags")
	type seen struct {
		of   *Session
		list [][TagSize]byte
		gen  uint64
	}
	var last [2]seen
	steps, fast := 0, 0
	for range 4000 {
		m.step()
		for k, p := range m.p {
			s, l := p.s, &last[k]
			if l.of == s && s.TagGeneration() == l.gen+1 {
				steps++
				before := slices.Clone(l.list)
				out, gone, hasGone, fresh, ok := s.StepExpectedTags(l.list, l.gen)
				want := s.AppendExpectedTags(nil)
				switch {
				case ok:
					fast++
					if !slices.Equal(out, want) {
						t.Fatalf("%s: the stepped list differs from AppendExpectedTags", p.name)
					}
					g, f := setDiff(before, want), setDiff(want, before)
					if len(f) != 1 || f[0] != fresh || len(g) > 1 || (len(g) == 1) != hasGone || (hasGone && g[0] != gone) {
						t.Fatalf("%s: step reports gone %v (%v) fresh %v, the difference is %v / %v", p.name, gone, hasGone, fresh, g, f)
					}
				case !slices.Equal(out, before) || !slices.Equal(l.list[:len(before)], before):
					t.Fatalf("%s: a refused step changed the list", p.name)
				}
			}
			l.of, l.list, l.gen = s, s.AppendExpectedTags(nil), s.TagGeneration()
		}
	}
	if fast < steps/5 || fast < 200 {
		t.Fatalf("fast path taken %d times of %d single steps", fast, steps)
	}
	t.Logf("fast path taken %d times of %d single steps", fast, steps)

	// In order, every message takes it, and a stale generation does not.
	alice, bob := pairFrom(t, "step in order")
	recv(t, bob, send(t, alice, "first"))
	list, gen := bob.AppendExpectedTags(nil), bob.TagGeneration()
	for i := range 200 {
		recv(t, bob, send(t, alice, "m"))
		var ok bool
		if list, _, _, _, ok = bob.StepExpectedTags(list, gen); !ok {
			t.Fatalf("message %d: in-order step refused", i)
		}
		gen = bob.TagGeneration()
	}
	if _, _, _, _, ok := bob.StepExpectedTags(list, gen-1); ok {
		t.Fatal("a step accepted for a stale generation")
	}
}

// setDiff returns the tags of a missing from b.
func setDiff(a, b [][TagSize]byte) [][TagSize]byte {
	in := map[[TagSize]byte]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out [][TagSize]byte
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}

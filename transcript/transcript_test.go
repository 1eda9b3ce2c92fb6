package transcript_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// exchange runs script steps on a fresh pair.
func exchange(t *testing.T, steps ...string) *pair {
	t.Helper()
	p := newPair()
	for _, s := range steps {
		p.run(t, s)
	}
	return p
}

func TestForks(t *testing.T) {
	t.Run("relay serves Bob other bytes for a2", func(t *testing.T) {
		p := exchange(t, "a", "a", "a", "B1")
		a := p.sent['a']
		if got := recv(t, p.conv['b'], forge(a[1], "not what Alice wrote", nil)); got != nil {
			t.Fatalf("the forged content itself cannot be told apart yet: %q", got)
		}
		// Alice's a3 names her real a2.
		want := []string{"fork: peer seqs 2-3 [a2 a3]"}
		if got := recv(t, p.conv['b'], a[2]); !equal(got, want) {
			t.Fatalf("Bob: %q, want %q", got, want)
		}
		// Bob's reply acknowledges the forged a2... a3: Alice's hash of a3
		// is the same, so Bob's view is checked at a3, which matches; the
		// fork at a2 shows when Bob acknowledges a2 itself.
		b1 := send(t, p.conv['b'], 'b', "reply")
		if got := recv(t, p.conv['a'], b1); got != nil {
			t.Fatalf("Alice: %q", got)
		}
		if got := describe(p.conv['b'].Findings()); !equal(got, want) {
			t.Fatalf("Bob's fork is not sticky: %q", got)
		}
	})
	t.Run("Bob's hash of Alice's content differs", func(t *testing.T) {
		p := exchange(t, "a", "a", "B1")
		a2 := p.sent['a'][1]
		recv(t, p.conv['b'], forge(a2, "other bytes", nil))
		b1 := send(t, p.conv['b'], 'b', "ack")
		want := []string{"fork: our seq 2 [a2]"}
		if got := recv(t, p.conv['a'], b1); !equal(got, want) {
			t.Fatalf("Alice: %q, want %q", got, want)
		}
		// Bob keeps saying so: sticky, reported once.
		if got := recv(t, p.conv['a'], send(t, p.conv['b'], 'b', "again")); got != nil {
			t.Fatalf("repeated fork reported again: %q", got)
		}
		if got := describe(p.conv['a'].Findings()); !equal(got, want) {
			t.Fatalf("open: %q", got)
		}
	})
	t.Run("the peer acknowledges contents never sent", func(t *testing.T) {
		p := exchange(t, "a", "B1", "b")
		b1 := forge(p.sent['b'][0], "x", func(f *transcript.Fields) { f.AckCount = 5; f.AckHash[0] = 1 })
		if got, want := recv(t, p.conv['a'], b1), []string{"fork: our seqs 2-5"}; !equal(got, want) {
			t.Fatalf("%q, want %q", got, want)
		}
	})
	t.Run("the peer's view goes back", func(t *testing.T) {
		p := exchange(t, "a", "a", "B1", "B2", "b", "A1")
		b2 := send(t, p.conv['b'], 'b', "x")
		b2 = forge(b2, "x", func(f *transcript.Fields) { f.AckCount, f.AckHash = 1, p.sent['a'][0].f.Prev })
		b2.f.AckHash = hashOfAlice(t, p, 1)
		b2.raw = encode(b2.f, b2.id, []byte("x"))
		if got, want := recv(t, p.conv['a'], b2), []string{"fork: our seq 2"}; !equal(got, want) {
			t.Fatalf("%q, want %q", got, want)
		}
	})
	t.Run("first content with a previous hash", func(t *testing.T) {
		p := exchange(t, "a")
		a1 := forge(p.sent['a'][0], "x", func(f *transcript.Fields) { f.Prev[5] = 9 })
		if got, want := recv(t, p.conv['b'], a1), []string{"fork: peer seqs 0-1 [a1]"}; !equal(got, want) {
			t.Fatalf("%q, want %q", got, want)
		}
	})
	t.Run("fork found when a gap fills", func(t *testing.T) {
		p := exchange(t, "a", "a", "a", "B1", "B3 => gap: peer seq 2")
		got := recv(t, p.conv['b'], forge(p.sent['a'][1], "withheld, then altered", nil))
		if want := []string{"fork: peer seqs 2-3 [a2 a3]"}; !equal(got, want) {
			t.Fatalf("%q, want %q", got, want)
		}
	})
}

// hashOfAlice returns Bob's AckHash for Alice's first n contents, read from
// what Bob's Next reports after receiving exactly them in a fresh pair.
func hashOfAlice(t *testing.T, p *pair, n int) [32]byte {
	t.Helper()
	c := transcript.New()
	for _, m := range p.sent['a'][:n] {
		recv(t, c, m)
	}
	return c.Next().AckHash
}

func TestReceivedErrorsChangeNothing(t *testing.T) {
	tests := []struct {
		name string
		edit func(p *pair) msg
		want error
	}{
		{"replay of a received content", func(p *pair) msg { return p.sent['a'][0] }, transcript.ErrDuplicate},
		{"replay of a waiting content", func(p *pair) msg { return p.sent['a'][3] }, transcript.ErrDuplicate},
		{"seq 0", func(p *pair) msg {
			return forge(p.sent['a'][2], "x", func(f *transcript.Fields) { f.Seq = 0 })
		}, transcript.ErrMalformed},
		{"ack hash without count", func(p *pair) msg {
			return forge(p.sent['a'][2], "x", func(f *transcript.Fields) { f.AckHash[0] = 1 })
		}, transcript.ErrMalformed},
		{"ack above leaves no gap", func(p *pair) msg {
			return forge(p.sent['a'][2], "x", func(f *transcript.Fields) { f.AckAbove = f.AckCount + 1 })
		}, transcript.ErrMalformed},
		{"ack above below count", func(p *pair) msg {
			return forge(p.sent['a'][2], "x", func(f *transcript.Fields) { f.AckCount, f.AckHash[0], f.AckAbove = 9, 1, 3 })
		}, transcript.ErrMalformed},
		{"gap over MaxMissing", func(p *pair) msg {
			return forge(p.sent['a'][2], "x", func(f *transcript.Fields) { f.Seq = 4 + transcript.MaxMissing + 2 })
		}, transcript.ErrTooManySkipped},
		{"seq at the end of the space", func(p *pair) msg {
			return forge(p.sent['a'][2], "x", func(f *transcript.Fields) { f.Seq = 1<<64 - 1 })
		}, transcript.ErrTooManySkipped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := exchange(t, "a", "a", "a", "a", "B1", "B2", "B4 => gap: peer seq 3", "b")
			before := state(t, p.conv['b'])
			m := tt.edit(p)
			fs, err := p.conv['b'].Received(m.f, m.id, m.raw)
			if !errors.Is(err, tt.want) || fs != nil {
				t.Fatalf("got %v, %v; want %v", fs, err, tt.want)
			}
			if !bytes.Equal(before, state(t, p.conv['b'])) {
				t.Fatal("a failed Received changed the state")
			}
		})
	}
}

// TestForkedSeqAccepted: a content with the seq of one already received
// but other bytes (the peer's state was restored from a backup) is a new
// content: accepted with a Fork naming both, the chain left as it was; the
// same forked content again is a duplicate, and it can be acknowledged.
func TestForkedSeqAccepted(t *testing.T) {
	p := exchange(t, "a", "a", "a", "a", "B1", "B2", "B4 => gap: peer seq 3", "b")
	b := p.conv['b']
	next := b.Next()
	m := forge(p.sent['a'][1], "zzz", nil)
	fs, err := b.Received(m.f, m.id, m.raw)
	if err != nil || len(fs) != 1 || fs[0].Kind != transcript.Fork || fs[0].Seq != 2 || fs[0].ToSeq != 2 ||
		len(fs[0].IDs) != 2 || fs[0].IDs[0] != p.sent['a'][1].id || fs[0].IDs[1] != m.id {
		t.Fatalf("forked seq: %v, %v", describe(fs), err)
	}
	if b.Next() != next {
		t.Fatal("a forked content moved the chain")
	}
	before := state(t, b)
	if fs, err := b.Received(m.f, m.id, m.raw); !errors.Is(err, transcript.ErrDuplicate) || fs != nil {
		t.Fatalf("the forked content again: %v, %v", fs, err)
	}
	if !bytes.Equal(before, state(t, b)) {
		t.Fatal("a failed Received changed the state")
	}
	if _, err := b.ReceiptHash([][16]byte{m.id}); err != nil {
		t.Fatalf("the forked content cannot be acknowledged: %v", err)
	}
	if !slices.ContainsFunc(b.Findings(), func(f transcript.Finding) bool { return f.Kind == transcript.Fork && f.Seq == 2 }) {
		t.Fatal("the fork is not kept")
	}
}

func TestSentMisuseChangesNothing(t *testing.T) {
	p := exchange(t, "a", "B1", "b")
	c := p.conv['b']
	before := state(t, c)
	stale := p.sent['b'][0].f // already used
	next := c.Next()
	bad := next
	bad.AckCount = 0
	for _, f := range []transcript.Fields{stale, bad, {}} {
		if err := c.Sent(f, idFor('b', 9), []byte("x")); !errors.Is(err, transcript.ErrMalformed) {
			t.Errorf("Sent(%+v) = %v, want ErrMalformed", f, err)
		}
	}
	if !bytes.Equal(before, state(t, c)) {
		t.Fatal("a failed Sent changed the state")
	}
}

func TestReceipts(t *testing.T) {
	p := exchange(t, "a", "a", "a", "B1", "B2", "B3")
	alice, bob := p.conv['a'], p.conv['b']
	a := p.sent['a']
	ids := [][16]byte{a[2].id, a[0].id}
	h, err := bob.ReceiptHash(ids)
	if err != nil {
		t.Fatal(err)
	}
	before := state(t, alice)
	if fs := alice.CheckReceipt(ids, h); fs != nil {
		t.Fatalf("a genuine receipt did not verify: %q", describe(fs))
	}
	unknown := idFor('z', 1)
	wrong := h
	wrong[0] ^= 1
	tests := []struct {
		name string
		ids  [][16]byte
		hash [32]byte
		want string
	}{
		{"wrong hash", ids, wrong, "receipt mismatch: our seqs 1-3 [a3 a1]"},
		{"other order", [][16]byte{a[0].id, a[2].id}, h, "receipt mismatch: our seqs 1-3 [a1 a3]"},
		{"unknown id", [][16]byte{a[0].id, unknown}, h, "receipt mismatch: 1 ids [z1]"},
		{"zero id", [][16]byte{{}}, h, "receipt mismatch: 1 ids [00000000]"},
		{"Bob's own id", [][16]byte{idFor('b', 1)}, h, "receipt mismatch: 1 ids [b1]"},
		{"no ids", nil, h, "receipt mismatch: 0 ids"},
	}
	for _, tt := range tests {
		got := describe(alice.CheckReceipt(tt.ids, tt.hash))
		if !equal(got, []string{tt.want}) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	if !bytes.Equal(before, state(t, alice)) || alice.Findings() != nil {
		t.Fatal("CheckReceipt changed the state")
	}
	if _, err := bob.ReceiptHash([][16]byte{a[0].id, unknown}); !errors.Is(err, transcript.ErrNotFound) {
		t.Errorf("ReceiptHash of an unknown id: %v", err)
	}
	if _, err := bob.ReceiptHash(nil); !errors.Is(err, transcript.ErrMalformed) {
		t.Errorf("ReceiptHash of no ids: %v", err)
	}
}

// A receipt for other bytes than Alice sent does not verify.
func TestReceiptOverForgedContent(t *testing.T) {
	p := exchange(t, "a", "a", "B1")
	a2 := p.sent['a'][1]
	recv(t, p.conv['b'], forge(a2, "other", nil))
	h, err := p.conv['b'].ReceiptHash([][16]byte{a2.id})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(p.conv['a'].CheckReceipt([][16]byte{a2.id}, h)), []string{"receipt mismatch: our seq 2 [a2]"}; !equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

// Large receipts take the indexed path and agree with the scan.
func TestLargeReceipt(t *testing.T) {
	p := newPair()
	var ids [][16]byte
	for i := range 100 {
		p.run(t, "a")
		p.run(t, fmt.Sprintf("B%d", i+1))
		ids = append(ids, p.sent['a'][i].id)
	}
	h, err := p.conv['b'].ReceiptHash(ids)
	if err != nil {
		t.Fatal(err)
	}
	if fs := p.conv['a'].CheckReceipt(ids, h); fs != nil {
		t.Fatalf("%q", describe(fs))
	}
	small, _ := p.conv['b'].ReceiptHash(ids[:3])
	if fs := p.conv['a'].CheckReceipt(ids[:3], small); fs != nil {
		t.Fatalf("%q", describe(fs))
	}
	ids[50] = idFor('z', 0)
	if got := describe(p.conv['a'].CheckReceipt(ids, h)); !equal(got, []string{"receipt mismatch: 1 ids [z0]"}) {
		t.Fatalf("%q", got)
	}
}

// More than MaxMissing missing seqs: the oldest gap is given up as Lost,
// a late arrival of it is ErrExpiredKey, and the conversation goes on.
func TestGiveUpOldestGap(t *testing.T) {
	alice, bob := transcript.New(), transcript.New()
	var a []msg
	for range 3 + transcript.MaxMissing + 1 {
		a = append(a, send(t, alice, 'a', "m"))
	}
	recv(t, bob, a[0])
	if got, want := recv(t, bob, a[2]), []string{"gap: peer seq 2"}; !equal(got, want) {
		t.Fatalf("%q", got)
	}
	last := a[len(a)-1] // seq 3+MaxMissing+1: opens a gap of exactly MaxMissing
	want := []string{"gap: peer seqs 4-2003", "lost: peer seq 2"}
	if got := recv(t, bob, last); !equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
	if got := describe(bob.Findings()); !equal(got, []string{"lost: peer seq 2", "gap: peer seqs 4-2003"}) {
		t.Fatalf("open: %q", got)
	}
	before := state(t, bob)
	if _, err := bob.Received(a[1].f, a[1].id, a[1].raw); !errors.Is(err, transcript.ErrExpiredKey) {
		t.Fatalf("late given-up content: %v", err)
	}
	if !bytes.Equal(before, state(t, bob)) {
		t.Fatal("state changed")
	}
	// Bob acknowledges past the lost content; Alice's drop is the next gap.
	b1 := send(t, bob, 'b', "ack")
	if b1.f.AckCount != 3 || b1.f.AckAbove != 2004 {
		t.Fatalf("Bob reports %d/%d", b1.f.AckCount, b1.f.AckAbove)
	}
	// Its ids are those still in Alice's log: the newest MaxLog of her
	// len(a) contents, from seq len(a)-MaxLog+1 up to 2003.
	first := len(a) - transcript.MaxLog + 1
	fs, err := alice.Received(b1.f, b1.id, b1.raw)
	if err != nil || len(fs) != 1 || fs[0].Seq != 4 || fs[0].ToSeq != 2003 || len(fs[0].IDs) != 2003-first+1 || fs[0].IDs[0] != a[first-1].id {
		t.Fatalf("%v %.80q", err, describe(fs))
	}
	// Filling the remaining gap closes everything but the Lost.
	for _, m := range a[3 : len(a)-1] {
		recv(t, bob, m)
	}
	if got := describe(bob.Findings()); !equal(got, []string{"lost: peer seq 2"}) {
		t.Fatalf("open: %q", got)
	}
}

// Forks are kept up to MaxSticky and never pushed out by Lost ranges.
func TestStickyBound(t *testing.T) {
	bob := transcript.New()
	alice := transcript.New()
	var forks int
	for i := range 2 * transcript.MaxSticky {
		m := send(t, alice, 'a', "m")
		if i%2 == 1 {
			m = forge(m, "m", func(f *transcript.Fields) { f.Prev[0] ^= 1 })
		}
		for _, s := range recv(t, bob, m) {
			if s[:4] == "fork" {
				forks++
			}
		}
	}
	// Each altered content breaks two links: into it and out of it.
	open := bob.Findings()
	if forks != 2*transcript.MaxSticky-1 || len(open) != transcript.MaxSticky {
		t.Fatalf("%d forks returned, %d kept", forks, len(open))
	}
	// Once full of forks, further forks are returned but not kept.
	m := forge(send(t, alice, 'a', "m"), "m", func(f *transcript.Fields) { f.Prev[0] ^= 1 })
	if got := recv(t, bob, m); len(got) != 1 || len(bob.Findings()) != transcript.MaxSticky {
		t.Fatalf("%q, %d kept", got, len(bob.Findings()))
	}
}

// The logs keep the newest MaxLog contents: older receipts cannot be made
// or verified, older AckHashes cannot be checked.
func TestLogBound(t *testing.T) {
	alice, bob := transcript.New(), transcript.New()
	var a []msg
	for range transcript.MaxLog + 5 {
		m := send(t, alice, 'a', "m")
		recv(t, bob, m)
		a = append(a, m)
	}
	if _, err := bob.ReceiptHash([][16]byte{a[4].id}); !errors.Is(err, transcript.ErrNotFound) {
		t.Fatalf("evicted id: %v", err)
	}
	h, err := bob.ReceiptHash([][16]byte{a[5].id})
	if err != nil {
		t.Fatal(err)
	}
	if fs := alice.CheckReceipt([][16]byte{a[5].id}, h); fs != nil {
		t.Fatalf("%q", describe(fs))
	}
	if fs := alice.CheckReceipt([][16]byte{a[4].id}, h); len(fs) != 1 || fs[0].Kind != transcript.ReceiptMismatch {
		t.Fatalf("evicted id verified: %q", describe(fs))
	}
	// An ack of a content older than the log cannot be checked: no fork.
	old := transcript.Fields{Seq: 1, AckCount: 3, AckHash: [32]byte{1}}
	if fs, err := alice.Received(old, idFor('b', 1), encode(old, idFor('b', 1), nil)); err != nil || fs != nil {
		t.Fatalf("%v %v", describe(fs), err)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	p := exchange(t, "a", "a", "a", "B1", "B3 => gap: peer seq 2", "b", "A1 => drop: our seq 2 [a2]")
	for _, c := range p.conv {
		before := state(t, c)
		d := c.Clone()
		if !bytes.Equal(before, state(t, d)) {
			t.Fatal("clone differs")
		}
		for range transcript.MaxLog + 3 {
			send(t, d, 'x', "m")
		}
		fs := d.Findings()
		if len(fs) > 0 {
			fs[0].IDs = nil
		}
		if !bytes.Equal(before, state(t, c)) {
			t.Fatal("changing the clone changed the original")
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[transcript.Kind]string{
		transcript.Gap: "gap", transcript.Drop: "drop", transcript.Fork: "fork", transcript.Lost: "lost",
		transcript.ReceiptMismatch: "receipt mismatch", transcript.IdentityChanged: "identity changed", 0: "Kind(0)", 99: "Kind(99)",
	} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
	if s := (transcript.Finding{Kind: transcript.IdentityChanged}).String(); s != "identity changed" {
		t.Errorf("%q", s)
	}
}

// When the sticky list is full, the oldest Lost goes first; Forks stay.
func TestStickyDropsLostBeforeForks(t *testing.T) {
	c := transcript.New()
	rx := func(f transcript.Fields) []string {
		t.Helper()
		fs, err := c.Received(f, idFor('b', f.Seq), encode(f, idFor('b', f.Seq), nil))
		if err != nil {
			t.Fatal(err)
		}
		return describe(fs)
	}
	rx(transcript.Fields{Seq: 1, Prev: [32]byte{1}}) // fork 0-1
	rx(transcript.Fields{Seq: 3})
	// Each jump of MaxMissing+1 opens a gap of MaxMissing and gives up the
	// one before it.
	seq := uint64(3)
	for range transcript.MaxSticky + 5 {
		seq += transcript.MaxMissing + 1
		if got := rx(transcript.Fields{Seq: seq}); len(got) != 2 || got[1][:5] != "lost:" {
			t.Fatalf("%q", got)
		}
	}
	open := describe(c.Findings())
	if len(open) != transcript.MaxSticky+1 || open[0] != "fork: peer seqs 0-1 [b1]" || open[len(open)-1][:4] != "gap:" {
		t.Fatalf("%d open, first %q, last %q", len(open), open[0], open[len(open)-1])
	}
	// The newest Lost ranges were kept, the oldest dropped: a late content
	// from a kept one is ErrExpiredKey, from a dropped one ErrDuplicate.
	late := func(s uint64) error {
		f := transcript.Fields{Seq: s}
		_, err := c.Received(f, idFor('b', s), encode(f, idFor('b', s), nil))
		return err
	}
	if err := late(seq - transcript.MaxMissing - 2); !errors.Is(err, transcript.ErrExpiredKey) {
		t.Fatalf("kept lost: %v", err)
	}
	if err := late(2); !errors.Is(err, transcript.ErrDuplicate) {
		t.Fatalf("dropped lost: %v", err)
	}
}

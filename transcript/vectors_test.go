package transcript_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/testkit"
	"github.com/sealpost/sealpost/transcript"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// vector is one golden saved-state case: testdata/state/<name>.bin holds
// "key: value" lines, a blank line, then the raw state.
type vector struct {
	name     string
	expect   string // "ok" or a sentinel name
	findings string // for "ok": Findings() as "; "-joined strings
	comment  string
	raw      []byte
}

// goldenStates plays fixed scripts; every id, body and hash is
// deterministic, so the states are too.
func goldenStates(t *testing.T) map[string]*transcript.Conversation {
	p := exchange(t, "a", "a", "a", "a", "a", "B1", "B2", "B4 => gap: peer seq 3", "B5", "b",
		"A1 => drop: our seq 3 [a3]", "b", "A2")
	bob := transcript.New()
	bad := transcript.Fields{Seq: 1, Prev: [32]byte{1}}
	for _, f := range []transcript.Fields{bad, {Seq: 3}, {Seq: 3 + transcript.MaxMissing + 1}} {
		if _, err := bob.Received(f, idFor('a', f.Seq), encode(f, idFor('a', f.Seq), nil)); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]*transcript.Conversation{"gap": p.conv['b'], "drop": p.conv['a'], "fork_lost": bob}
}

func goldenVectors(t *testing.T) []vector {
	var vs []vector
	states := goldenStates(t)
	for _, v := range []struct{ name, comment string }{
		{"gap", "Bob: Alice's 1,2,4,5 received, 3 missing; two replies sent"},
		{"drop", "Alice: five sent, Bob's two replies name 3 as missing"},
		{"fork_lost", "Bob: content 1 with a non-zero prev, then 3, then 2004: 2 given up"},
	} {
		raw := state(t, states[v.name])
		fs := strings.Join(describe(states[v.name].Findings()), "; ")
		vs = append(vs, vector{name: "valid_" + v.name, expect: "ok", findings: fs, comment: v.comment, raw: raw})
	}
	gap := state(t, states["gap"])
	edit := func(f func(m *layoutState)) []byte { return edited(t, gap, f) }
	v1, err := os.ReadFile(filepath.Join("testdata", "version1", "valid_gap.bin"))
	if err != nil {
		t.Fatal(err)
	}
	_, v1raw, _ := bytes.Cut(v1, []byte("\n\n"))
	return append(vs,
		vector{name: "version_unsupported", expect: "ErrUnsupportedVersion", comment: "valid_gap with version 3",
			raw: edit(func(m *layoutState) { m.version = 3 })},
		vector{name: "version_unsupported_new_field", expect: "ErrUnsupportedVersion", comment: "version 3 with a field this build lacks",
			raw: append(edit(func(m *layoutState) { m.version = 3 }), 1, 2, 3)},
		vector{name: "version1_rejected", expect: "ErrUnsupportedVersion",
			comment: "valid_gap as version 1 (protocol buffers) wrote it: no longer read", raw: v1raw},
		vector{name: "malformed_trailing", expect: "ErrMalformed", comment: "version 2 with trailing bytes",
			raw: append(bytes.Clone(gap), 1, 2, 3)},
		vector{name: "malformed_sent_log", expect: "ErrMalformed", comment: "sent log count one past its entries",
			raw: pastCount(t, gap)},
		vector{name: "malformed_segment", expect: "ErrMalformed", comment: "segment starts right after the prefix",
			raw: edit(func(m *layoutState) { m.segments[0].from = m.received + 1 })},
		vector{name: "malformed_head", expect: "ErrMalformed", comment: "sent head is not the newest logged hash",
			raw: edit(func(m *layoutState) { m.sentHead[0] ^= 1 })},
		vector{name: "malformed_truncated", expect: "ErrMalformed", comment: "valid_gap cut short",
			raw: gap[:40]},
	)
}

func (v vector) encode() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "expect: %s\n", v.expect)
	if v.expect == "ok" {
		fmt.Fprintf(&b, "findings: %s\n", v.findings)
	}
	fmt.Fprintf(&b, "comment: %s\n\n", v.comment)
	b.Write(v.raw)
	return b.Bytes()
}

func decodeVector(t testing.TB, name string, data []byte) vector {
	t.Helper()
	f, err := testkit.ParseVector(data, "expect", "findings", "comment")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return vector{name: name, raw: f.Raw, expect: f.Get("expect"), findings: f.Get("findings"), comment: f.Get("comment")}
}

var sentinels = map[string]error{
	"ErrMalformed":          transcript.ErrMalformed,
	"ErrUnsupportedVersion": transcript.ErrUnsupportedVersion,
}

func TestGoldenVectors(t *testing.T) {
	want := goldenVectors(t)
	if *update {
		for _, v := range want {
			if err := os.WriteFile(filepath.Join("testdata", "state", v.name+".bin"), v.encode(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob("testdata/state/*.bin")
	if err != nil || len(files) != len(want) {
		t.Fatalf("found %d vector files, want %d (run with -update): %v", len(files), len(want), err)
	}
	for _, w := range want {
		data, err := os.ReadFile(filepath.Join("testdata", "state", w.name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, w.encode()) {
			t.Errorf("%s: golden file differs from the generator (format change?)", w.name)
		}
		checkVector(t, decodeVector(t, w.name, data))
	}
}

// checkVector loads a vector into a conversation with state of its own: on
// error the state must be untouched; on success it must be the vector's.
func checkVector(t *testing.T, v vector) {
	t.Helper()
	c := transcript.New()
	send(t, c, 'x', "existing state")
	before := state(t, c)
	err := c.UnmarshalBinary(v.raw)
	if v.expect != "ok" {
		if !errors.Is(err, sentinels[v.expect]) {
			t.Errorf("%s: UnmarshalBinary error %v, want %s", v.name, err, v.expect)
		}
		if !bytes.Equal(before, state(t, c)) {
			t.Errorf("%s: a failed UnmarshalBinary changed the state", v.name)
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", v.name, err)
	}
	if got := strings.Join(describe(c.Findings()), "; "); got != v.findings {
		t.Errorf("%s: findings %q, want %q", v.name, got, v.findings)
	}
	if !bytes.Equal(state(t, c), v.raw) {
		t.Errorf("%s: re-encoding differs", v.name)
	}
}

// The largest state the bounds allow fits MaxStateSize.
func TestLargestState(t *testing.T) {
	c := transcript.New()
	for range transcript.MaxLog {
		send(t, c, 'a', "m")
	}
	// Peer contents 1..MaxSticky+1 that do not chain: a full sticky list
	// of forks with two ids each.
	for i := range uint64(transcript.MaxSticky + 1) {
		f := transcript.Fields{Seq: i + 1, Prev: [32]byte{1}}
		if _, err := c.Received(f, idFor('b', f.Seq), encode(f, idFor('b', f.Seq), nil)); err != nil {
			t.Fatal(err)
		}
	}
	// Then every other peer seq missing: the most runs MaxMissing allows.
	for i := range uint64(transcript.MaxMissing) {
		f := transcript.Fields{Seq: transcript.MaxSticky + 1 + 2*i + 2}
		if _, err := c.Received(f, idFor('b', f.Seq), encode(f, idFor('b', f.Seq), nil)); err != nil {
			t.Fatal(err)
		}
	}
	b := state(t, c)
	t.Logf("largest state: %d bytes (%d open findings)", len(b), len(c.Findings()))
	if len(b) > transcript.MaxStateSize {
		t.Fatalf("%d bytes over MaxStateSize", len(b))
	}
	d := transcript.New()
	if err := d.UnmarshalBinary(b); err != nil || !bytes.Equal(state(t, d), b) {
		t.Fatalf("round trip: %v", err)
	}
	if err := d.UnmarshalBinary(make([]byte, transcript.MaxStateSize+1)); !errors.Is(err, transcript.ErrMalformed) {
		t.Fatalf("oversized: %v", err)
	}
}

// A sent log shorter than MaxLog allows loads (a later build may raise
// MaxLog) and grows back to MaxLog; one longer is ErrMalformed.
func TestSentLogLengths(t *testing.T) {
	c := transcript.New()
	for range 40 {
		send(t, c, 'a', "m")
	}
	m := parseLayout(t, state(t, c))
	m.sentLog = m.sentLog[10:]
	short := m.bytes()
	d := transcript.New()
	if err := d.UnmarshalBinary(short); err != nil {
		t.Fatal(err)
	}
	for range transcript.MaxLog {
		send(t, d, 'a', "m")
	}
	m.sent, m.sentLog = 1, m.sentLog[:2]
	m.sentHead = [32]byte(m.sentLog[1][16:])
	if err := d.UnmarshalBinary(m.bytes()); !errors.Is(err, transcript.ErrMalformed) {
		t.Fatalf("log longer than sent: %v", err)
	}
}

// Counters at the end of the uint64 space decode or fail cleanly, and
// calls on them do not wrap.
func TestStateAtTheEndOfTheSpace(t *testing.T) {
	top := uint64(1<<64 - 1)
	m := &layoutState{version: transcript.StateVersion, receivedHead: [32]byte{31: 1},
		received: top, highest: top, segments: []layoutSegment{{from: 5, to: top}}}
	raw := m.bytes()
	if err := transcript.New().UnmarshalBinary(raw); !errors.Is(err, transcript.ErrMalformed) {
		t.Fatalf("segment below the prefix: %v", err)
	}
	m.segments = nil
	raw = m.bytes()
	c := transcript.New()
	if err := c.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	f := transcript.Fields{Seq: top}
	if _, err := c.Received(f, [16]byte{1}, nil); !errors.Is(err, transcript.ErrDuplicate) {
		t.Fatalf("%v", err)
	}
	if n := c.Next(); n.AckCount != top || n.AckAbove != 0 {
		t.Fatalf("%+v", n)
	}
}

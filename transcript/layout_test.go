package transcript_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// layoutState is the saved-state layout of AppendBinary's doc comment,
// decoded and encoded here independently of the package, so that the
// tests check the documented layout and can build states the package
// would never write.
type layoutState struct {
	version                     byte
	sent                        uint64
	sentHead                    [32]byte
	ackFrom, ackCount, ackAbove uint64
	received                    uint64
	receivedHead                [32]byte
	highest, receivedLogged     uint64
	segments                    []layoutSegment
	findings                    []layoutFinding
	sentLog, receivedLog        [][]byte // entries of 48 and 56 bytes
}

type layoutSegment struct {
	from, to   uint64
	prev, head [32]byte
}

type layoutFinding struct {
	kind, outgoing byte
	seq, toSeq     uint64
	ids            [][16]byte
}

// parseLayout decodes raw by the documented layout; it fails the test on
// anything that does not follow it.
func parseLayout(t testing.TB, raw []byte) *layoutState {
	t.Helper()
	b := raw
	next := func(n int) []byte {
		if len(b) < n {
			t.Fatalf("layout: %d bytes left, want %d", len(b), n)
		}
		out := b[:n]
		b = b[n:]
		return out
	}
	u64 := func() uint64 { return binary.BigEndian.Uint64(next(8)) }
	m := &layoutState{version: next(1)[0], sent: u64(), sentHead: [32]byte(next(32)), ackFrom: u64(), ackCount: u64(),
		ackAbove: u64(), received: u64(), receivedHead: [32]byte(next(32)), highest: u64(), receivedLogged: u64()}
	for range binary.BigEndian.Uint16(next(2)) {
		m.segments = append(m.segments, layoutSegment{from: u64(), to: u64(), prev: [32]byte(next(32)), head: [32]byte(next(32))})
	}
	for range next(1)[0] {
		f := layoutFinding{kind: next(1)[0], outgoing: next(1)[0], seq: u64(), toSeq: u64()}
		for range next(1)[0] {
			f.ids = append(f.ids, [16]byte(next(16)))
		}
		m.findings = append(m.findings, f)
	}
	for range binary.BigEndian.Uint32(next(4)) {
		m.sentLog = append(m.sentLog, next(48))
	}
	for range binary.BigEndian.Uint32(next(4)) {
		m.receivedLog = append(m.receivedLog, next(56))
	}
	if len(b) != 0 {
		t.Fatalf("layout: %d trailing bytes", len(b))
	}
	return m
}

// bytes encodes m by the documented layout.
func (m *layoutState) bytes() []byte {
	b := []byte{m.version}
	b = binary.BigEndian.AppendUint64(b, m.sent)
	b = append(b, m.sentHead[:]...)
	for _, v := range []uint64{m.ackFrom, m.ackCount, m.ackAbove, m.received} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	b = append(b, m.receivedHead[:]...)
	b = binary.BigEndian.AppendUint64(b, m.highest)
	b = binary.BigEndian.AppendUint64(b, m.receivedLogged)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.segments)))
	for _, s := range m.segments {
		b = binary.BigEndian.AppendUint64(b, s.from)
		b = binary.BigEndian.AppendUint64(b, s.to)
		b = append(append(b, s.prev[:]...), s.head[:]...)
	}
	b = append(b, byte(len(m.findings)))
	for _, f := range m.findings {
		b = append(b, f.kind, f.outgoing)
		b = binary.BigEndian.AppendUint64(b, f.seq)
		b = binary.BigEndian.AppendUint64(b, f.toSeq)
		b = append(b, byte(len(f.ids)))
		for _, id := range f.ids {
			b = append(b, id[:]...)
		}
	}
	for _, log := range [][][]byte{m.sentLog, m.receivedLog} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(log)))
		for _, e := range log {
			b = append(b, e...)
		}
	}
	return b
}

// edited returns raw decoded by the layout, changed by f, re-encoded.
func edited(t testing.TB, raw []byte, f func(m *layoutState)) []byte {
	t.Helper()
	m := parseLayout(t, raw)
	f(m)
	return m.bytes()
}

// TestStateLayout: the state of seeded conversations (gaps, findings,
// both logs) follows the documented layout field by field, and so does
// the head, which differs only in received_logged and its empty logs.
func TestStateLayout(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		c := randomConversation(t, seed)
		raw := state(t, c)
		m := parseLayout(t, raw)
		if !bytes.Equal(m.bytes(), raw) {
			t.Fatalf("seed %d: the documented layout does not re-encode the state", seed)
		}
		next := c.Next()
		if m.version != transcript.StateVersion || m.sent != next.Seq-1 || m.sentHead != next.Prev ||
			m.received != next.AckCount || m.receivedHead != next.AckHash || m.receivedLogged != 0 {
			t.Fatalf("seed %d: fields %+v do not match Next %+v", seed, m, next)
		}
		if len(m.segments) == 0 || len(m.findings) == 0 || len(m.sentLog) == 0 || len(m.receivedLog) == 0 {
			t.Fatalf("seed %d: the script should leave segments, findings and both logs", seed)
		}
		head, err := c.MarshalHead()
		if err != nil || len(head) != c.HeadSize() {
			t.Fatalf("head: %v, %d bytes, HeadSize %d", err, len(head), c.HeadSize())
		}
		h := parseLayout(t, head)
		if h.receivedLogged != c.LogTotal(transcript.ReceivedLog) || len(h.sentLog)+len(h.receivedLog) != 0 {
			t.Fatalf("seed %d: head has received_logged %d (want %d) and %d log entries", seed, h.receivedLogged,
				c.LogTotal(transcript.ReceivedLog), len(h.sentLog)+len(h.receivedLog))
		}
		h.receivedLogged, h.sentLog, h.receivedLog = 0, m.sentLog, m.receivedLog
		if !bytes.Equal(h.bytes(), raw) {
			t.Fatalf("seed %d: head plus logs is not the state", seed)
		}
		if a, _ := c.AppendBinary([]byte("prefix")); !bytes.Equal(a, append([]byte("prefix"), raw...)) {
			t.Fatal("AppendBinary does not append MarshalBinary")
		}
		if a := c.AppendHead([]byte("prefix")); !bytes.Equal(a, append([]byte("prefix"), head...)) {
			t.Fatal("AppendHead does not append MarshalHead")
		}
	}
}

// randomConversation plays a seeded exchange with loss, reordering and
// forged contents, so the state has gaps and sticky findings.
func randomConversation(t *testing.T, seed uint64) *transcript.Conversation {
	r := rand.New(rand.NewPCG(seed, 11))
	a, b := transcript.New(), transcript.New()
	var toB []msg
	for i := range 300 {
		if r.IntN(2) == 0 {
			send(t, b, 'b', fmt.Sprint(i))
			continue
		}
		m := send(t, a, 'a', fmt.Sprint(i))
		if r.IntN(5) > 0 {
			toB = append(toB, m)
		}
		if len(toB) > 3 || r.IntN(3) == 0 {
			for _, k := range r.Perm(len(toB)) {
				if k%4 != 0 { // a quarter of each batch stays missing
					if _, err := b.Received(toB[k].f, toB[k].id, toB[k].raw); err != nil {
						t.Fatal(err)
					}
				}
			}
			toB = toB[:0]
		}
	}
	// Two forks: a content 1 that does not chain, re-sent with other bytes.
	f := transcript.Fields{Seq: 1, Prev: [32]byte{1}}
	for _, body := range []string{"x", "y"} {
		if _, err := b.Received(f, idFor('z', 1), encode(f, idFor('z', 1), []byte(body))); err != nil &&
			!errors.Is(err, transcript.ErrDuplicate) {
			t.Fatal(err)
		}
	}
	return b
}

// TestStateDecodeErrors: every input that breaks the layout (a
// truncation, trailing bytes, a count past its bound or past the input, a
// byte that must be 0 or 1) is ErrMalformed, another version is
// ErrUnsupportedVersion; never a panic, and the target is unchanged.
func TestStateDecodeErrors(t *testing.T) {
	c := randomConversation(t, 1)
	raw := state(t, c)
	cases := map[string]struct {
		raw  []byte
		want error
	}{
		"empty":              {nil, transcript.ErrMalformed},
		"version only":       {raw[:1], transcript.ErrMalformed},
		"trailing byte":      {append(bytes.Clone(raw), 0), transcript.ErrMalformed},
		"version 1 protobuf": {[]byte{0x08, 0x01, 0x10, 0x05}, transcript.ErrUnsupportedVersion},
		"version 3":          {edited(t, raw, func(m *layoutState) { m.version = 3 }), transcript.ErrUnsupportedVersion},
		"version 0":          {edited(t, raw, func(m *layoutState) { m.version = 0 }), transcript.ErrUnsupportedVersion},
		"outgoing byte 2": {edited(t, raw, func(m *layoutState) { m.findings[0].outgoing = 2 }),
			transcript.ErrMalformed},
		"three finding ids": {edited(t, raw, func(m *layoutState) {
			m.findings[0].ids = append(m.findings[0].ids, [16]byte{9}, [16]byte{8}, [16]byte{7})
		}), transcript.ErrMalformed},
		"finding kind gap": {edited(t, raw, func(m *layoutState) { m.findings[0].kind = byte(transcript.Gap) }),
			transcript.ErrMalformed},
		"sent log longer than MaxLog": {edited(t, raw, func(m *layoutState) {
			for len(m.sentLog) <= transcript.MaxLog {
				m.sentLog = append([][]byte{m.sentLog[0]}, m.sentLog...)
			}
			m.sent = uint64(len(m.sentLog))
		}), transcript.ErrMalformed},
		"received log seq above highest": {edited(t, raw, func(m *layoutState) {
			e := bytes.Clone(m.receivedLog[0])
			binary.BigEndian.PutUint64(e, m.highest+1)
			m.receivedLog[0] = e
		}), transcript.ErrMalformed},
		"sent head not the newest": {edited(t, raw, func(m *layoutState) { m.sentHead[0] ^= 1 }), transcript.ErrMalformed},
	}
	// Counts past the input, at each count's offset.
	segAt, findAt, sentAt, recvAt := countOffsets(parseLayout(t, raw))
	for name, at := range map[string]int{"segments": segAt, "findings": findAt, "sent": sentAt, "received": recvAt} {
		for _, v := range []byte{0x01, 0xff} {
			b := bytes.Clone(raw)
			b[at] ^= v // a high byte of the count: far past the input
			cases[fmt.Sprintf("%s count ^%#x", name, v)] = struct {
				raw  []byte
				want error
			}{b, transcript.ErrMalformed}
		}
	}
	for n := 1; n < len(raw); n += 1 + n/8 {
		cases[fmt.Sprintf("truncated to %d", n)] = struct {
			raw  []byte
			want error
		}{raw[:n], transcript.ErrMalformed}
	}
	for name, tc := range cases {
		d := transcript.New()
		send(t, d, 'q', "existing")
		before := state(t, d)
		err := d.UnmarshalBinary(tc.raw)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
		if !bytes.Equal(state(t, d), before) {
			t.Errorf("%s: a failed UnmarshalBinary changed the target", name)
		}
	}
}

// countOffsets returns where the layout of m holds its counts.
func countOffsets(m *layoutState) (segments, findings, sent, received int) {
	segments = 1 + 8 + 32 + 3*8 + 8 + 32 + 8 + 8
	findings = segments + 2 + 80*len(m.segments)
	sent = findings + 1
	for _, f := range m.findings {
		sent += 19 + 16*len(f.ids)
	}
	return segments, findings, sent, sent + 4 + 48*len(m.sentLog)
}

// pastCount returns raw with its sent-log count one more than its entries.
func pastCount(t testing.TB, raw []byte) []byte {
	m := parseLayout(t, raw)
	_, _, at, _ := countOffsets(m)
	b := bytes.Clone(raw)
	binary.BigEndian.PutUint32(b[at:], uint32(len(m.sentLog)+1))
	return b
}

package transcript_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// simSide is one party of the relay simulation with the ground truth the
// transcript must reproduce.
type simSide struct {
	who  byte
	c    *transcript.Conversation
	sent []simMsg
	got  map[uint64]bool // peer seqs delivered here
	// The peer's newest content delivered here and the run of our seqs it
	// said it lacked.
	reportFrom uint64
	reportRun  [2]uint64
}

// simMsg is a content with the run of the receiver's seqs that its sender
// lacked when it made it (zero: none), from the simulation's ground truth.
type simMsg struct {
	msg
	run [2]uint64
}

// truth returns the prefix and the lowest seq above it in got.
func truth(got map[uint64]bool) (count, above uint64) {
	for got[count+1] {
		count++
	}
	for s := range got {
		if s > count && (above == 0 || s < above) {
			above = s
		}
	}
	return count, above
}

// runs returns the maximal runs of the sorted seqs as "a-b" ranges.
func runs(seqs []uint64) [][2]uint64 {
	var out [][2]uint64
	for _, s := range seqs {
		if n := len(out); n > 0 && out[n-1][1]+1 == s {
			out[n-1][1] = s
		} else {
			out = append(out, [2]uint64{s, s})
		}
	}
	return out
}

func rangeString(kind, side string, r [2]uint64) string {
	if r[0] == r[1] {
		return fmt.Sprintf("%s: %s seq %d", kind, side, r[0])
	}
	return fmt.Sprintf("%s: %s seqs %d-%d", kind, side, r[0], r[1])
}

// expected returns the open findings s must report: a Gap per run of peer
// seqs missing below the highest delivered, then the Drop its peer's
// newest report names, with exact ids.
func (s *simSide) expected() []string {
	var missing []uint64
	var highest uint64
	for q := range s.got {
		highest = max(highest, q)
	}
	for q := uint64(1); q < highest; q++ {
		if !s.got[q] {
			missing = append(missing, q)
		}
	}
	var out []string
	for _, r := range runs(missing) {
		out = append(out, rangeString("gap", "peer", r))
	}
	if r := s.reportRun; r != [2]uint64{} {
		str := rangeString("drop", "our", r) + " ["
		for q := r[0]; q <= r[1]; q++ {
			str += idName(s.sent[q-1].id)
			if q < r[1] {
				str += " "
			}
		}
		out = append(out, str+"]")
	}
	return out
}

type sim struct {
	t         *testing.T
	r         *rand.Rand
	interfere bool
	side      [2]*simSide
	queue     [2][]simMsg // queue[i]: in flight to side[i]
	dropped   [2][]uint64 // seqs of side i's contents the relay dropped
}

func (s *sim) send(i int) {
	x := s.side[i]
	f := x.c.Next()
	count, above := truth(x.got)
	if f.AckCount != count || f.AckAbove != above {
		s.t.Fatalf("%c reports %d/%d, truth %d/%d", x.who, f.AckCount, f.AckAbove, count, above)
	}
	m := simMsg{msg: send(s.t, x.c, x.who, fmt.Sprintf("body %d", s.r.Uint64()))}
	if above != 0 {
		m.run = [2]uint64{count + 1, above - 1}
	}
	x.sent = append(x.sent, m)
	s.queue[1-i] = append(s.queue[1-i], m)
}

func (s *sim) deliver(i int, m simMsg) {
	y := s.side[i]
	before := state(s.t, y.c)
	fs, err := y.c.Received(m.f, m.id, m.raw)
	if y.got[m.f.Seq] {
		if !errors.Is(err, transcript.ErrDuplicate) || !bytes.Equal(before, state(s.t, y.c)) {
			s.t.Fatalf("replay to %c: %v, or the state changed", y.who, err)
		}
		return
	}
	if err != nil {
		s.t.Fatalf("deliver to %c: %v", y.who, err)
	}
	if !s.interfere && fs != nil {
		s.t.Fatalf("findings without interference: %q", describe(fs))
	}
	for _, f := range fs {
		if f.Kind != transcript.Gap && f.Kind != transcript.Drop {
			s.t.Fatalf("unexpected finding %v", f)
		}
	}
	y.got[m.f.Seq] = true
	if m.f.Seq > y.reportFrom {
		y.reportFrom, y.reportRun = m.f.Seq, m.run
	}
	if got, want := describe(y.c.Findings()), y.expected(); !equal(got, want) {
		s.t.Fatalf("%c open findings %q, want %q", y.who, got, want)
	}
}

// relay makes one relay move on the queue to side i.
func (s *sim) relay(i int) {
	q := s.queue[i]
	if len(q) == 0 {
		return
	}
	k, p := 0, s.r.IntN(100)
	switch {
	case !s.interfere:
	case p < 10: // drop
		s.dropped[1-i] = append(s.dropped[1-i], q[0].f.Seq)
		s.queue[i] = q[1:]
		return
	case p < 25: // reorder
		k = s.r.IntN(min(4, len(q)))
	case p < 33: // replay something already delivered
		if sent := s.side[1-i].sent; len(sent) > 0 {
			m := sent[s.r.IntN(len(sent))]
			if s.side[i].got[m.f.Seq] {
				s.deliver(i, m)
			}
		}
		return
	}
	m := q[k]
	s.queue[i] = slices.Delete(q, k, k+1)
	s.deliver(i, m)
}

// reload replaces a side's conversation by its saved and restored state or
// by a clone: the simulation must go on exactly as before.
func (s *sim) reload(i int) {
	x := s.side[i]
	b := state(s.t, x.c)
	d := transcript.New()
	if err := d.UnmarshalBinary(b); err != nil {
		s.t.Fatalf("UnmarshalBinary of MarshalBinary: %v", err)
	}
	if !bytes.Equal(b, state(s.t, d)) || !equal(describe(d.Findings()), describe(x.c.Findings())) || d.Next() != x.c.Next() {
		s.t.Fatal("round trip lost something")
	}
	if s.r.IntN(2) == 0 {
		d = x.c.Clone()
	}
	x.c = d
}

func (s *sim) step() {
	switch x := s.r.IntN(20); {
	case x < 6:
		s.send(x % 2)
	case x < 19:
		s.relay(x % 2)
	default:
		s.reload(x % 2)
	}
}

// quiesce delivers everything still in flight, then lets each side send
// once more, so each side's last report reaches the other.
func (s *sim) quiesce() {
	for i := range 2 {
		for _, m := range s.queue[i] {
			s.deliver(i, m)
		}
		s.queue[i] = nil
	}
	for _, i := range []int{0, 1, 0} {
		s.send(i)
		s.deliver(1-i, s.queue[1-i][0])
		s.queue[1-i] = nil
	}
}

// TestRelaySimulation plays seeded conversations through a relay that
// drops, reorders and replays contents, and checks after every delivery
// that each side's open findings are exactly what the relay did: a Gap per
// run of missing contents, the Drop of the first run with its exact ids,
// ErrDuplicate with no change for replays, nothing else; and with no
// interference, no findings at all.
func TestRelaySimulation(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 20
	}
	for seed := range uint64(seeds) {
		for _, interfere := range []bool{false, true} {
			s := &sim{t: t, r: rand.New(rand.NewPCG(seed, 0x7a)), interfere: interfere}
			for i, who := range []byte{'a', 'b'} {
				s.side[i] = &simSide{who: who, c: transcript.New(), got: map[uint64]bool{}}
			}
			for range 300 {
				s.step()
			}
			s.quiesce()
			s.checkFinal()
		}
	}
}

// checkFinal states the end result from the relay's log alone.
func (s *sim) checkFinal() {
	for i := range 2 {
		slices.Sort(s.dropped[i])
		var want []string // side i's view of its own contents: the first dropped run
		var peerWant []string
		for j, r := range runs(s.dropped[i]) {
			peerWant = append(peerWant, rangeString("gap", "peer", r))
			if j == 0 {
				ids := ""
				for q := r[0]; q <= r[1]; q++ {
					ids += " " + idName(s.side[i].sent[q-1].id)
				}
				want = append(want, rangeString("drop", "our", r)+" ["+ids[1:]+"]")
			}
		}
		if !s.interfere && (len(want) > 0) {
			s.t.Fatal("dropped without interference")
		}
		got := describe(s.side[i].c.Findings())
		got = slices.DeleteFunc(got, func(f string) bool { return f[:4] == "gap:" })
		if !equal(got, want) {
			s.t.Errorf("%c: drops %q, want %q", s.side[i].who, got, want)
		}
		gaps := slices.DeleteFunc(describe(s.side[1-i].c.Findings()), func(f string) bool { return f[:4] != "gap:" })
		if !equal(gaps, peerWant) {
			s.t.Errorf("%c: gaps %q, want %q", s.side[1-i].who, gaps, peerWant)
		}
	}
}

package transcript_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// splitSave is what a caller of the split save holds: the head and the
// block slots of both logs.
type splitSave struct {
	head   []byte
	blocks map[string][]byte
}

func blockKey(l transcript.Log, slot int) string { return fmt.Sprintf("%d/%d", l, slot) }

// save writes what changed since before (the log totals then).
func (s *splitSave) save(t *testing.T, c *transcript.Conversation, sentBefore, recvBefore uint64) {
	t.Helper()
	head, err := c.MarshalHead()
	if err != nil {
		t.Fatal(err)
	}
	s.head = head
	for _, l := range []transcript.Log{transcript.SentLog, transcript.ReceivedLog} {
		before := sentBefore
		if l == transcript.ReceivedLog {
			before = recvBefore
		}
		n := 0
		c.ChangedBlocks(l, before, 0, func(slot int, b []byte) {
			s.blocks[blockKey(l, slot)] = b
			n++
		})
		if grew := c.LogTotal(l) - before; (grew == 0) != (n == 0) || n > 1 {
			t.Fatalf("log grew by %d, %d blocks changed", grew, n)
		}
	}
}

func (s *splitSave) load(c *transcript.Conversation) error {
	return c.UnmarshalSplit(s.head, func(l transcript.Log, slot int) ([]byte, error) {
		b, ok := s.blocks[blockKey(l, slot)]
		if !ok {
			return nil, fmt.Errorf("%w: block %s", transcript.ErrMalformed, blockKey(l, slot))
		}
		return b, nil
	})
}

// TestSplitSave runs seeded conversations with loss and reordering well
// past MaxLog, saving each side split after every operation. Loading the
// split save always gives the live state (same MarshalBinary), and
// RestoreHead after an operation gives the state before it.
func TestSplitSave(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			conv := [2]*transcript.Conversation{transcript.New(), transcript.New()}
			saves := [2]*splitSave{{blocks: map[string][]byte{}}, {blocks: map[string][]byte{}}}
			for i := range saves {
				saves[i].save(t, conv[i], 0, 0)
			}
			var queue [2][]msg
			n := 3*transcript.MaxLog + 50
			for step := 0; step < n; step++ {
				i := r.IntN(2)
				c := conv[i]
				head := saves[i].head
				before := state(t, c)
				sb, rb := c.LogTotal(transcript.SentLog), c.LogTotal(transcript.ReceivedLog)
				if r.IntN(3) > 0 || len(queue[i]) == 0 {
					m := send(t, c, byte('a'+i), fmt.Sprint("body ", step))
					queue[1-i] = append(queue[1-i], m)
				} else {
					k := r.IntN(min(3, len(queue[i])))
					m := queue[i][k]
					queue[i] = append(queue[i][:k:k], queue[i][k+1:]...)
					if r.IntN(10) == 0 {
						continue // dropped by the relay
					}
					if _, err := c.Received(m.f, m.id, m.raw); err != nil {
						t.Fatalf("step %d: Received: %v", step, err)
					}
				}
				// A failed save: restoring the old head gives the old state.
				if r.IntN(4) == 0 {
					d := c.Clone()
					if err := d.RestoreHead(head); err != nil {
						t.Fatalf("step %d: RestoreHead: %v", step, err)
					}
					if !bytes.Equal(state(t, d), before) {
						t.Fatalf("step %d: RestoreHead did not give the state before", step)
					}
				}
				saves[i].save(t, c, sb, rb)
				if r.IntN(8) == 0 || step == n-1 {
					d := transcript.New()
					if err := saves[i].load(d); err != nil {
						t.Fatalf("step %d: UnmarshalSplit: %v", step, err)
					}
					if !bytes.Equal(state(t, d), state(t, c)) || d.Next() != c.Next() {
						t.Fatalf("step %d: split save does not give the live state", step)
					}
					conv[i] = d // go on from the loaded one
				}
			}
		})
	}
}

// TestSplitSaveErrors: a missing, stale, short or foreign block, or a head
// that is not one, is ErrMalformed and changes nothing.
func TestSplitSaveErrors(t *testing.T) {
	c := transcript.New()
	s := &splitSave{blocks: map[string][]byte{}}
	for i := 0; i < transcript.MaxLog+40; i++ {
		sb, rb := c.LogTotal(transcript.SentLog), c.LogTotal(transcript.ReceivedLog)
		send(t, c, 'a', fmt.Sprint(i))
		s.save(t, c, sb, rb)
	}
	full := state(t, c)
	var slot int
	var newest []byte
	c.ChangedBlocks(transcript.SentLog, c.LogTotal(transcript.SentLog)-1, 0, func(s int, b []byte) { slot, newest = s, b })
	stale := s.blocks[blockKey(transcript.SentLog, (slot+1)%transcript.LogSlots)]
	cases := map[string]func(s *splitSave){
		"missing block": func(s *splitSave) { delete(s.blocks, blockKey(transcript.SentLog, slot)) },
		"stale block":   func(s *splitSave) { s.blocks[blockKey(transcript.SentLog, slot)] = stale },
		"short block":   func(s *splitSave) { s.blocks[blockKey(transcript.SentLog, slot)] = newest[:len(newest)-1] },
		"long block": func(s *splitSave) {
			s.blocks[blockKey(transcript.SentLog, slot)] = append(newest[:len(newest):len(newest)], make([]byte, 48)...)
		},
		"block as head":  func(s *splitSave) { s.head = newest },
		"full as head":   func(s *splitSave) { s.head = full },
		"truncated head": func(s *splitSave) { s.head = s.head[:len(s.head)-1] },
		"wrong hash log": func(s *splitSave) {
			b := bytes.Clone(newest)
			b[len(b)-1] ^= 1
			s.blocks[blockKey(transcript.SentLog, slot)] = b
		},
		"block index off": func(s *splitSave) {
			b := bytes.Clone(newest)
			b[8] ^= 16 // the low byte of first: one block off
			s.blocks[blockKey(transcript.SentLog, slot)] = b
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			bad := &splitSave{head: s.head, blocks: map[string][]byte{}}
			for k, v := range s.blocks {
				bad.blocks[k] = v
			}
			edit(bad)
			d := transcript.New()
			empty := state(t, d)
			err := bad.load(d)
			if !errors.Is(err, transcript.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
			if !bytes.Equal(state(t, d), empty) {
				t.Fatal("failed UnmarshalSplit changed the target")
			}
		})
	}
	// A block of another version is ErrUnsupportedVersion.
	bad := &splitSave{head: s.head, blocks: maps.Clone(s.blocks)}
	b := bytes.Clone(newest)
	b[0] = transcript.StateVersion + 1
	bad.blocks[blockKey(transcript.SentLog, slot)] = b
	if err := bad.load(transcript.New()); !errors.Is(err, transcript.ErrUnsupportedVersion) {
		t.Fatalf("block version: got %v, want ErrUnsupportedVersion", err)
	}
	// Blocks come with the room asked for past their end.
	c.ChangedBlocks(transcript.ReceivedLog, 0, 0, func(int, []byte) { t.Fatal("no received block changed") })
	c.ChangedBlocks(transcript.SentLog, c.LogTotal(transcript.SentLog)-1, 7, func(_ int, b []byte) {
		if cap(b)-len(b) != 7 || !bytes.Equal(b, newest) {
			t.Fatalf("block with room: %d spare bytes, or other bytes", cap(b)-len(b))
		}
	})
	// RestoreHead of a head from further back than one operation.
	d := transcript.New()
	if err := s.load(d); err != nil {
		t.Fatal(err)
	}
	for range 300 {
		send(t, d, 'a', "far")
	}
	before := state(t, d)
	if err := d.RestoreHead(s.head); !errors.Is(err, transcript.ErrMalformed) || !bytes.Equal(state(t, d), before) {
		t.Fatalf("RestoreHead from far back: %v, or the state changed", err)
	}
}

// FuzzUnmarshalSplit feeds UnmarshalSplit an arbitrary head and blocks
// (one for each log, returned for every slot): a typed error with the
// target unchanged, or a state that re-encodes. Seeds: a head with both
// logs under way and their newest blocks, and an empty input.
func FuzzUnmarshalSplit(f *testing.F) {
	a, c := transcript.New(), transcript.New()
	for i := range 40 {
		m := send(f, a, 'a', fmt.Sprint(i))
		if _, err := c.Received(m.f, m.id, m.raw); err != nil {
			f.Fatal(err)
		}
		send(f, c, 'c', fmt.Sprint(i))
	}
	head, _ := c.MarshalHead()
	var sent, recv []byte
	c.ChangedBlocks(transcript.SentLog, 39, 0, func(_ int, b []byte) { sent = b })
	c.ChangedBlocks(transcript.ReceivedLog, 39, 0, func(_ int, b []byte) { recv = b })
	f.Add(head, sent, recv)
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, head, sent, recv []byte) {
		d := transcript.New()
		err := d.UnmarshalSplit(head, func(l transcript.Log, _ int) ([]byte, error) {
			if l == transcript.SentLog {
				return sent, nil
			}
			return recv, nil
		})
		if err != nil {
			if !errors.Is(err, transcript.ErrMalformed) && !errors.Is(err, transcript.ErrUnsupportedVersion) {
				t.Fatalf("untyped error %v", err)
			}
			if !bytes.Equal(state(t, d), state(t, transcript.New())) {
				t.Fatal("failed UnmarshalSplit changed the target")
			}
			return
		}
		again := state(t, d)
		e := transcript.New()
		if err := e.UnmarshalBinary(again); err != nil || !bytes.Equal(state(t, e), again) {
			t.Fatalf("accepted split state does not re-encode stably: %v", err)
		}
		if h, _ := d.MarshalHead(); !bytes.Equal(h, head) {
			t.Fatal("accepted head does not re-encode to itself")
		}
	})
}

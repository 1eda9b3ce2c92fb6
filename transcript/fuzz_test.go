package transcript_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// typed reports whether err is one of the sentinels a call may return.
func typed(err error) bool {
	for _, s := range []error{transcript.ErrMalformed, transcript.ErrDuplicate, transcript.ErrTooManySkipped,
		transcript.ErrExpiredKey, transcript.ErrNotFound, transcript.ErrUnsupportedVersion} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// script reads a fuzz input as a stream of small numbers; past its end it
// reads zeros.
type script []byte

func (s *script) byte() byte {
	if len(*s) == 0 {
		return 0
	}
	b := (*s)[0]
	*s = (*s)[1:]
	return b
}

func (s *script) uint16() uint16 { return uint16(s.byte())<<8 | uint16(s.byte()) }

// fuzzer drives two conversations from a script and checks the invariants
// after every call.
type fuzzer struct {
	t    *testing.T
	conv [2]*transcript.Conversation
	sent [2][]msg
}

// check runs call on side i: an error must be typed and leave the state
// byte-identical; the state must stay within bounds and reload.
func (z *fuzzer) check(i int, call func(c *transcript.Conversation) error) {
	c := z.conv[i]
	before := state(z.t, c)
	err := call(c)
	after := state(z.t, c)
	if err != nil {
		if !typed(err) {
			z.t.Fatalf("untyped error %v", err)
		}
		if !bytes.Equal(before, after) {
			z.t.Fatalf("failed call (%v) changed the state", err)
		}
		return
	}
	if len(after) > transcript.MaxStateSize {
		z.t.Fatalf("state of %d bytes", len(after))
	}
	if n := len(c.Findings()); n > transcript.MaxSticky+transcript.MaxMissing+1 {
		z.t.Fatalf("%d open findings", n)
	}
	d := transcript.New()
	if err := d.UnmarshalBinary(after); err != nil || !bytes.Equal(state(z.t, d), after) {
		z.t.Fatalf("state does not reload: %v", err)
	}
}

// forged reads peer fields near side i's view from s: seq relative to its
// prefix (or absolute), prev and ack fields from a few choices.
func (z *fuzzer) forged(i int, s *script) msg {
	view, peer := z.conv[i].Next(), z.sent[1-i]
	f := transcript.Fields{Seq: view.AckCount + uint64(int16(s.uint16()))}
	if s.byte()%16 == 0 {
		f.Seq = binary.BigEndian.Uint64([]byte{s.byte(), s.byte(), s.byte(), s.byte(), s.byte(), s.byte(), s.byte(), s.byte()})
	}
	switch p := s.byte(); {
	case p%3 == 0 && f.Seq > 0 && f.Seq <= uint64(len(peer)):
		f.Prev = peer[f.Seq-1].f.Prev
	case p%3 == 1:
		f.Prev = [32]byte{p}
	}
	f.AckCount = uint64(s.byte()) % (uint64(len(z.sent[i])) + 3)
	if h := s.byte(); h%2 == 1 {
		f.AckHash = [32]byte{h}
	} else if f.AckCount > 0 && f.AckCount <= uint64(len(z.sent[i])) {
		f.AckHash = hashAt(z.sent[i], f.AckCount)
	}
	if a := s.byte(); a%4 != 0 {
		f.AckAbove = f.AckCount + uint64(a%8)
	}
	id := [16]byte{s.byte(), s.byte()}
	return msg{f: f, id: id, raw: encode(f, id, []byte{s.byte()})}
}

// hashAt returns our hash of our content n when a later content carries
// it, and an arbitrary value for the newest.
func hashAt(sent []msg, n uint64) [32]byte {
	if n < uint64(len(sent)) {
		return sent[n].f.Prev // content n+1 carries the hash of content n
	}
	return [32]byte{byte(n)}
}

func (z *fuzzer) op(s *script) {
	op := s.byte()
	i := int(op>>3) % 2
	switch op % 6 {
	case 0: // side i sends
		z.check(i, func(c *transcript.Conversation) error {
			f := c.Next()
			id := [16]byte{byte('a' + i), byte(len(z.sent[i]))}
			m := msg{f: f, id: id, raw: encode(f, id, []byte{s.byte()})}
			err := c.Sent(f, m.id, m.raw)
			if err == nil {
				z.sent[i] = append(z.sent[i], m)
			}
			return err
		})
	case 1: // the relay delivers (again, or out of order) a genuine content
		if peer := z.sent[1-i]; len(peer) > 0 {
			m := peer[int(s.uint16())%len(peer)]
			z.check(i, func(c *transcript.Conversation) error { _, err := c.Received(m.f, m.id, m.raw); return err })
		}
	case 2: // a forged content
		m := z.forged(i, s)
		z.check(i, func(c *transcript.Conversation) error { _, err := c.Received(m.f, m.id, m.raw); return err })
	case 3: // a receipt from side i for some of the peer's contents
		var ids [][16]byte
		for n := s.byte() % 5; n > 0 && len(z.sent[1-i]) > 0; n-- {
			ids = append(ids, z.sent[1-i][int(s.byte())%len(z.sent[1-i])].id)
		}
		h, _ := z.conv[i].ReceiptHash(ids)
		h[0] ^= s.byte() & 1
		z.check(1-i, func(c *transcript.Conversation) error { c.CheckReceipt(ids, h); return nil })
	case 4: // Sent with fields other than Next's
		z.check(i, func(c *transcript.Conversation) error {
			f := c.Next()
			f.AckCount += uint64(s.byte()%2) + 1
			err := c.Sent(f, [16]byte{}, nil)
			if err == nil {
				z.t.Fatal("Sent accepted fields other than Next's")
			}
			return err
		})
	case 5: // reload through a clone
		z.conv[i] = z.conv[i].Clone()
	}
}

// FuzzTranscript plays arbitrary sequences of sends, deliveries, replays,
// forged transcript fields (seq, prev, ack count, hash and above, ids) and
// receipts between two conversations. Every call must end in findings or
// a typed error, a failed call must change nothing, and state must stay
// within its bounds and reload byte-identically.
func FuzzTranscript(f *testing.F) {
	f.Add([]byte{0, 8, 0, 1, 9, 0, 0, 8, 1, 0, 0, 3, 2, 1})
	f.Add([]byte{0, 0, 0, 0, 1, 0, 2, 1, 0, 0, 8, 1, 0, 1, 3, 3, 0, 1, 2, 5, 13})
	f.Add([]byte{0, 1, 2, 1, 0, 7, 2, 0, 0, 0, 0, 0, 2, 0x07, 0xd2, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{2, 0xff, 0xff, 16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		z := &fuzzer{t: t, conv: [2]*transcript.Conversation{transcript.New(), transcript.New()}}
		s := script(data)
		for n := 0; len(s) > 0 && n < 300; n++ {
			z.op(&s)
		}
	})
}

// FuzzTranscriptUnmarshal feeds UnmarshalBinary arbitrary bytes, seeded
// from the golden vectors: no panic, a typed error that leaves the target
// unchanged, or a state that re-encodes stably and accepts further calls.
func FuzzTranscriptUnmarshal(f *testing.F) {
	files, _ := filepath.Glob("testdata/state/*.bin")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		_, raw, _ := bytes.Cut(data, []byte("\n\n"))
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := transcript.New()
		err := c.UnmarshalBinary(raw)
		if err != nil {
			if !errors.Is(err, transcript.ErrMalformed) && !errors.Is(err, transcript.ErrUnsupportedVersion) {
				t.Fatalf("untyped error %v", err)
			}
			if !bytes.Equal(state(t, c), state(t, transcript.New())) {
				t.Fatal("failed UnmarshalBinary changed the target")
			}
			return
		}
		again := state(t, c)
		d := transcript.New()
		if err := d.UnmarshalBinary(again); err != nil || !bytes.Equal(state(t, d), again) {
			t.Fatalf("accepted state does not re-encode stably: %v", err)
		}
		z := &fuzzer{t: t, conv: [2]*transcript.Conversation{c, transcript.New()}}
		s := script(raw)
		for n := 0; len(s) > 0 && n < 20; n++ {
			z.op(&s)
		}
		c.Findings()
	})
}

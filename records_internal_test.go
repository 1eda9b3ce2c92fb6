package sealpost

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/internal/kept"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/proto/statepb"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// The fixed layouts of the per-message records (internal/sessrec,
// keptrecord.go, queue.go): a round-trip property per record, a table of
// bad inputs per decoder (each a typed error, never a panic), and a fuzz
// target per decoder.

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randomID(r *rand.Rand) (id [16]byte) {
	copy(id[:], randomBytes(r, 16))
	return id
}

// randomSession returns a session with a transcript under way, and at
// random a pending start, read receipts and queued delivery receipts.
func randomSession(t testing.TB, r *rand.Rand) *session {
	t.Helper()
	m := &sessionMeta{BaseKey: randomBytes(r, baseKeySize), Initiator: r.IntN(2) == 0,
		CreatedUnixNano: int64(r.Uint64()), LastReceivedUnixNano: int64(r.Uint64())}
	s := &session{meta: m, conv: transcript.New()}
	for i := range r.IntN(40) {
		f := s.conv.Next()
		if err := s.conv.Sent(f, randomID(r), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if r.IntN(2) == 0 {
		s.pending = &statepb.PendingStart{}
	}
	if r.IntN(3) > 0 {
		m.Receipts = &receiptQueue{DueUnixNano: int64(r.Uint64())}
		for range r.IntN(5) {
			m.Receipts.Read = append(m.Receipts.Read, randomBytes(r, 16))
		}
	}
	if r.IntN(2) == 0 {
		s.delivered.From = uint64(r.IntN(1 << 20))
		s.delivered.To = s.delivered.From + uint64(r.IntN(maxQueuedReceipts+1))
	}
	return s
}

// fakeHead stands for the ratchet's head in session records made without
// a ratchet: the record carries it as bytes; ratchet.LoadSplit checks it.
const fakeHead = "a ratchet head"

func fakeRatchetHead(b []byte) ([]byte, error) { return append(b, fakeHead...), nil }

// TestSessionRecordRoundTrip: a session record decodes to the fields it
// was encoded from, and is encoded in a buffer of exactly its size plus
// the checksum's.
func TestSessionRecordRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		s := randomSession(t, r)
		raw, err := s.encode(fakeRatchetHead)
		if err != nil {
			t.Fatal(err)
		}
		if cap(raw)-len(raw) < record.ChecksumSize {
			t.Fatalf("%d: %d spare bytes, want at least %d", i, cap(raw)-len(raw), record.ChecksumSize)
		}
		got, err := decodeSessionRecord(raw)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		head, _ := s.conv.MarshalHead()
		want := &sessionMeta{BaseKey: s.meta.BaseKey, Initiator: s.meta.Initiator, Pending: s.pending != nil,
			CreatedUnixNano: s.meta.CreatedUnixNano, LastReceivedUnixNano: s.meta.LastReceivedUnixNano, Transcript: head,
			RatchetHead: []byte(fakeHead)}
		if s.meta.Receipts != nil || s.delivered.To != 0 {
			want.Receipts = &receiptQueue{DeliveredFrom: s.delivered.From, DeliveredTo: s.delivered.To}
			if q := s.meta.Receipts; q != nil {
				want.Receipts.DueUnixNano, want.Receipts.Read = q.DueUnixNano, q.Read
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%d: decoded %+v, want %+v", i, got, want)
		}
	}
}

// layoutCase is a bad input for a decoder and the error it must return.
type layoutCase struct {
	raw  []byte
	want error
}

// badLayouts adds to cases every truncation of raw, raw with a trailing
// byte, and raw with version 3 and 0.
func badLayouts(cases map[string]layoutCase, raw []byte) {
	for n := range len(raw) {
		cases[fmt.Sprintf("truncated to %d", n)] = layoutCase{raw[:n], ErrMalformed}
	}
	cases["trailing byte"] = layoutCase{append(bytes.Clone(raw), 0), ErrMalformed}
	for _, v := range []byte{0, record.Layout + 1} {
		cases[fmt.Sprintf("version %d", v)] = layoutCase{with(raw, 0, v), ErrUnsupportedVersion}
	}
}

// with returns a copy of raw with the bytes at i replaced by b.
func with(raw []byte, i int, b ...byte) []byte {
	out := bytes.Clone(raw)
	copy(out[i:], b)
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func checkLayoutCases(t *testing.T, cases map[string]layoutCase, decode func([]byte) error) {
	t.Helper()
	for name, tc := range cases {
		err := decode(tc.raw)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
	}
}

// TestSessionRecordDecodeErrors: every bad session record is a typed error.
func TestSessionRecordDecodeErrors(t *testing.T) {
	s := randomSession(t, rand.New(rand.NewPCG(3, 4)))
	s.meta.Receipts = &receiptQueue{DueUnixNano: 5, Read: [][]byte{bytes.Repeat([]byte{7}, 16)}}
	s.delivered.From, s.delivered.To = 10, 20
	raw, err := s.encode(fakeRatchetHead)
	if err != nil {
		t.Fatal(err)
	}
	headLen := int(binary.BigEndian.Uint32(raw[52:]))
	rh := 56 + headLen          // the ratchet head's length, then the head
	q := rh + 2 + len(fakeHead) // the receipt section: due, from, to, read count, ids
	cases := map[string]layoutCase{
		"ratchet head length past input": {with(raw, rh, be16(uint16(len(raw)))...), ErrMalformed},
		"ratchet head over its bound":    {with(raw, rh, be16(ratchet.SplitHeadSize+1)...), ErrMalformed},
		"empty":                          {nil, ErrMalformed},
		"unknown flag":                   {with(raw, 1, raw[1]|32), ErrMalformed},
		"receipt flag off":               {with(raw, 1, raw[1]&^sessReceipts), ErrMalformed},
		"base key length 32":             {with(raw, 18, 32), ErrMalformed},
		"head length past input":         {with(raw, 52, be32(uint32(len(raw)))...), ErrMalformed},
		"head length huge":               {with(raw, 52, 0xff, 0xff, 0xff, 0xff), ErrMalformed},
		"head length short":              {with(raw, 52, be32(uint32(headLen-1))...), ErrMalformed},
		"delivered to below from":        {with(raw, q+16, be64(9)...), ErrMalformed},
		"257 delivered receipts":         {with(raw, q+16, be64(10+maxQueuedReceipts+1)...), ErrMalformed},
		"read count past input":          {with(raw, q+24, be16(2)...), ErrMalformed},
		"read count over the bound":      {with(raw, q+24, be16(maxQueuedReceipts+1)...), ErrMalformed},
	}
	badLayouts(cases, raw)
	checkLayoutCases(t, cases, func(b []byte) error { _, err := decodeSessionRecord(b); return err })
	if _, err := decodeSessionRecord(raw); err != nil {
		t.Fatalf("the unedited record: %v", err)
	}
}

func randomKept(r *rand.Rand) []kept.Entry {
	var entries []kept.Entry
	for range r.IntN(20) {
		entries = append(entries, kept.Entry{Env: [32]byte(randomBytes(r, 32)), ID: randomID(r), Received: int64(r.Uint64())})
	}
	return entries
}

// TestKeptIndexRoundTrip: the kept index decodes to the entries it was
// encoded from, in an exact-size buffer.
func TestKeptIndexRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 200 {
		p := &peer{kept: randomKept(r)}
		raw, err := p.encodeKept()
		if err != nil || cap(raw)-len(raw) != record.ChecksumSize {
			t.Fatalf("%d: %v, %d spare bytes", i, err, cap(raw)-len(raw))
		}
		q := new(peer)
		if err := q.decodeKept(raw); err != nil {
			t.Fatal(err)
		}
		if len(p.kept) == 0 && len(q.kept) == 0 {
			continue
		}
		if !reflect.DeepEqual(q.kept, p.kept) {
			t.Fatalf("%d: decoded %v, want %v", i, q.kept, p.kept)
		}
	}
}

// TestKeptIndexDecodeErrors: every bad kept index is a typed error.
func TestKeptIndexDecodeErrors(t *testing.T) {
	p := &peer{kept: randomKept(rand.New(rand.NewPCG(7, 8)))[:0]}
	p.kept = append(p.kept, kept.Entry{ID: [16]byte{1}}, kept.Entry{ID: [16]byte{2}})
	raw, _ := p.encodeKept()
	cases := map[string]layoutCase{
		"empty":            {[]byte{}, ErrMalformed},
		"count past input": {with(raw, 1, be32(3)...), ErrMalformed},
		"count huge":       {with(raw, 1, 0xff, 0xff, 0xff, 0xff), ErrMalformed},
		"count short":      {with(raw, 1, be32(1)...), ErrMalformed},
	}
	badLayouts(cases, raw)
	checkLayoutCases(t, cases, func(b []byte) error { return new(peer).decodeKept(b) })
}

func randomIDs(r *rand.Rand, max int) []MessageID {
	var ids []MessageID
	for range r.IntN(max + 1) {
		ids = append(ids, randomID(r))
	}
	return ids
}

// randomIncoming returns a result as Receive would keep it, and what
// decoding its record must give.
func randomIncoming(r *rand.Rand) (in, want *Incoming) {
	c := &content{kind: Kind(1 + r.IntN(3)), id: randomID(r), delivered: randomIDs(r, 4), read: randomIDs(r, 4)}
	if n := r.IntN(300); n > 0 {
		c.body = randomBytes(r, n)
	}
	from := Address{User: string(randomBytes(r, 1+r.IntN(256))), Device: r.Uint32()}
	if c.kind == KindMessage {
		for i := range r.IntN(3) {
			key, _ := attach.NewKey(randomBytes(r, 32))
			c.attachments = append(c.attachments, &attach.Pointer{ID: fmt.Sprint("blob", i), Key: key,
				Length: int64(r.IntN(1 << 30)), Digest: [32]byte(randomBytes(r, 32)), MediaType: "image/png", Name: fmt.Sprint("f", i, ".png")})
		}
	}
	var findings []transcript.Finding
	for range r.IntN(4) {
		f := transcript.Finding{Kind: transcript.Kind(1 + r.IntN(6)), Outgoing: r.IntN(2) == 0, Seq: r.Uint64(), ToSeq: r.Uint64()}
		for range r.IntN(4) {
			f.IDs = append(f.IDs, randomID(r))
		}
		findings = append(findings, f)
	}
	in = incomingFrom(from, c, findings)
	want = incomingFrom(from, c, findings)
	want.Redelivered = true
	return in, want
}

// TestKeptResultRoundTrip: a kept result decodes to the result it was
// encoded from, marked Redelivered, in an exact-size buffer.
func TestKeptResultRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 300 {
		in, want := randomIncoming(r)
		raw, err := encodeKeptResult(in)
		if err != nil || cap(raw)-len(raw) != record.ChecksumSize {
			t.Fatalf("%d: %v, %d spare bytes", i, err, cap(raw)-len(raw))
		}
		got, err := decodeKeptResult(raw)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%d: decoded %+v, want %+v", i, got, want)
		}
	}
}

// TestKeptResultDecodeErrors: every bad kept result is a typed error.
func TestKeptResultDecodeErrors(t *testing.T) {
	c := &content{kind: KindMessage, id: MessageID{1}, body: []byte("body"), delivered: []MessageID{{2}}}
	in := incomingFrom(Address{User: "al", Device: 3}, c,
		[]transcript.Finding{{Kind: transcript.Fork, Seq: 1, ToSeq: 1, IDs: [][16]byte{{4}}}})
	raw, err := encodeKeptResult(in)
	if err != nil {
		t.Fatal(err)
	}
	// Offsets: kind 1, device 2, user length 6, user 8, id 10, body
	// length 26, body 30, delivered count 34, id 36, read count 52,
	// findings count 54, the finding: kind 56, outgoing 57, seq 58,
	// to_seq 66, ids count 74, id 76.
	cases := map[string]layoutCase{
		"empty":                    {[]byte{}, ErrMalformed},
		"kind 0":                   {with(raw, 1, 0), ErrMalformed},
		"kind 5":                   {with(raw, 1, 5), ErrMalformed},
		"empty user":               {append(with(raw[:6], 6, 0, 0), raw[10:]...), ErrMalformed},
		"user over the bound":      {with(raw, 6, be16(257)...), ErrMalformed},
		"user past input":          {with(raw, 6, 0xff, 0xff), ErrMalformed},
		"body past input":          {with(raw, 26, be32(5)...), ErrMalformed},
		"body over MaxBodySize":    {with(raw, 26, be32(MaxBodySize+1)...), ErrMalformed},
		"delivered over the bound": {with(raw, 34, be16(maxReceiptBatch+1)...), ErrMalformed},
		"delivered past input":     {with(raw, 34, be16(5)...), ErrMalformed},
		"read count past input":    {with(raw, 52, be16(1)...), ErrMalformed},
		"findings past input":      {with(raw, 54, be16(2)...), ErrMalformed},
		"finding kind 0":           {with(raw, 56, 0), ErrMalformed},
		"finding kind 8":           {with(raw, 56, 8), ErrMalformed},
		"sync flag, no user":       {with(raw, len(raw)-1, 2), ErrMalformed},
		"unknown flag":             {with(raw, len(raw)-1, 4), ErrMalformed},
		"outgoing byte 2":          {with(raw, 57, 2), ErrMalformed},
		"finding ids past input":   {with(raw, 74, be16(2)...), ErrMalformed},
		"finding ids over bound":   {with(raw, 74, be16(2*kept.MaxIDs+1)...), ErrMalformed},
	}
	badLayouts(cases, raw)
	checkLayoutCases(t, cases, func(b []byte) error { _, err := decodeKeptResult(b); return err })
	if got, err := decodeKeptResult(raw); err != nil || got.From.User != "al" || got.Findings[0].IDs[0] != [16]byte{4} {
		t.Fatalf("the unedited record: %v, %+v", err, got)
	}
}

// typedRecordError fails t unless err is nil or one of the decoders'
// sentinels.
func typedRecordError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("untyped error %v", err)
	}
	return err == nil
}

// FuzzSessionRecord: decodeSessionRecord never panics, fails with a
// typed error, and a record it accepts whose transcript head loads
// re-encodes to the same bytes (one encoding per record).
func FuzzSessionRecord(f *testing.F) {
	r := rand.New(rand.NewPCG(15, 16))
	for range 4 {
		s := randomSession(f, r)
		s.conv = transcript.New() // a head that loads without blocks
		raw, _ := s.encode(fakeRatchetHead)
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := decodeSessionRecord(raw)
		if !typedRecordError(t, err) {
			return
		}
		conv := transcript.New()
		if conv.UnmarshalSplit(m.Transcript, func(transcript.Log, int) ([]byte, error) { return nil, ErrNotFound }) != nil {
			return
		}
		s := &session{meta: m, conv: conv}
		if m.Pending {
			s.pending = &statepb.PendingStart{}
		}
		if q := m.Receipts; q != nil {
			s.delivered.From, s.delivered.To = q.DeliveredFrom, q.DeliveredTo
		}
		again, err := s.encode(func(b []byte) ([]byte, error) { return append(b, m.RatchetHead...), nil })
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("accepted record re-encodes as %x (%v), was %x", again, err, raw)
		}
	})
}

// FuzzKeptIndex: decodeKeptIndex never panics, fails with a typed error,
// and an index it accepts re-encodes to the same bytes.
func FuzzKeptIndex(f *testing.F) {
	r := rand.New(rand.NewPCG(17, 18))
	for range 3 {
		raw, _ := (&peer{kept: randomKept(r)}).encodeKept()
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		kept, err := kept.DecodeIndex(raw)
		if !typedRecordError(t, err) {
			return
		}
		again, _ := (&peer{kept: kept}).encodeKept()
		if !bytes.Equal(again, raw) {
			t.Fatalf("accepted index re-encodes differently")
		}
	})
}

// FuzzKeptResult: decodeKeptResult never panics, fails with a typed
// error, and a result it accepts re-encodes to the same bytes.
func FuzzKeptResult(f *testing.F) {
	r := rand.New(rand.NewPCG(19, 20))
	for range 4 {
		in, _ := randomIncoming(r)
		raw, _ := encodeKeptResult(in)
		f.Add(raw)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := decodeKeptResult(raw)
		if !typedRecordError(t, err) {
			return
		}
		again, err := encodeKeptResult(in)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("accepted result re-encodes differently (%v)", err)
		}
	})
}

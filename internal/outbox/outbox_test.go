package outbox

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/internal/testkit"
	"github.com/sealpost/sealpost/keys"
)

func entry() *Entry {
	return &Entry{To: keys.Address{User: "bob", Device: 2}, ID: [16]byte{1, 2, 3}, Mailbox: []byte("mailbox-id"),
		Envelope: bytes.Repeat([]byte{0xa5}, 545)}
}

// TestEntryRoundTrip: an entry decodes to itself, encoded into a buffer
// of its exact size plus the checksum's; entries out of bounds are
// refused at encode time.
func TestEntryRoundTrip(t *testing.T) {
	for _, e := range []*Entry{entry(), {To: keys.Address{User: strings.Repeat("u", keys.MaxUserLength)}, Mailbox: bytes.Repeat([]byte{1}, 255), Envelope: []byte{1}}} {
		raw, err := Encode(e)
		if err != nil || cap(raw)-len(raw) != record.ChecksumSize {
			t.Fatalf("Encode: %v, %d spare bytes", err, cap(raw)-len(raw))
		}
		back, err := Decode(raw)
		if err != nil || !reflect.DeepEqual(back, e) {
			t.Fatalf("Decode: %+v, %v", back, err)
		}
	}
	for name, edit := range map[string]func(*Entry){
		"no user":       func(e *Entry) { e.To.User = "" },
		"long user":     func(e *Entry) { e.To.User = strings.Repeat("u", keys.MaxUserLength+1) },
		"no mailbox":    func(e *Entry) { e.Mailbox = nil },
		"long mailbox":  func(e *Entry) { e.Mailbox = make([]byte, 256) },
		"no envelope":   func(e *Entry) { e.Envelope = nil },
		"huge envelope": func(e *Entry) { e.Envelope = make([]byte, maxEnvelope+1) },
	} {
		e := entry()
		edit(e)
		if _, err := Encode(e); !errors.Is(err, errs.ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestEntryDecodeErrors: every bad entry record is a typed error.
func TestEntryDecodeErrors(t *testing.T) {
	raw, err := Encode(entry())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]testkit.LayoutCase{
		"empty user":     {Raw: testkit.With(raw, 5, 0, 0), Want: errs.ErrMalformed},
		"empty mailbox":  {Raw: append(append(bytes.Clone(raw[:1+4+2+3+16]), 0), raw[1+4+2+3+16+1+10:]...), Want: errs.ErrMalformed},
		"envelope short": {Raw: raw[:len(raw)-1], Want: errs.ErrMalformed},
	}
	testkit.BadLayouts(cases, raw, record.Layout)
	testkit.CheckLayoutCases(t, cases, func(b []byte) error { _, err := Decode(b); return err })
}

// memStore is framed records in a map, as a Device keeps them.
type memStore map[string][]byte

func (m memStore) get(key string) ([]byte, error) {
	raw, ok := m[key]
	if !ok {
		return nil, fmt.Errorf("%w: %s", errs.ErrNotFound, key)
	}
	return record.Unframe(key, raw)
}

func (m memStore) Put(key string, value []byte) { m[key] = record.Frame(value, record.Sum(key, value)) }
func (m memStore) Delete(key string)            { delete(m, key) }

// add writes n entries as a Device's Send does: reserve, write, Add.
func (m memStore) add(t *testing.T, b *Box, n int) []uint64 {
	t.Helper()
	var slots []uint64
	for range n {
		slot, err := b.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := Encode(entry())
		m.Put(Key(slot), raw)
		b.Add(slot)
		slots = append(slots, slot)
	}
	return slots
}

// TestLoad: a reloaded box holds exactly the entries not yet sent, found
// through the head and past it, in any order of Sent; slots are never
// reused, also after everything was sent.
func TestLoad(t *testing.T) {
	m := memStore{}
	b, err := Load(m.get)
	if err != nil || b.Len() != 0 {
		t.Fatalf("empty store: %v", err)
	}
	s := m.add(t, b, 5) // 0..4
	sent := func(slots ...uint64) {
		if b.StageSent(slots, m) {
			b.Remove(slots)
		}
	}
	sent(s[1], s[3])
	m.add(t, b, 2) // 5, 6, after the head
	reload := func() {
		t.Helper()
		again, err := Load(m.get)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again.Slots(), b.Slots()) || again.next != b.next {
			t.Fatalf("reloaded %v next %d, want %v next %d", again.Slots(), again.next, b.Slots(), b.next)
		}
		b = again
	}
	reload()
	if want := []uint64{0, 2, 4, 5, 6}; !reflect.DeepEqual(b.Slots(), want) {
		t.Fatalf("slots %v, want %v", b.Slots(), want)
	}
	sent(0, 2, 4, 5, 6, 6, 99)
	reload()
	if b.Len() != 0 || b.next != 7 {
		t.Fatalf("after sending all: %d held, next %d", b.Len(), b.next)
	}
	if got := m.add(t, b, 1); got[0] != 7 {
		t.Fatalf("a slot was reused: %d", got[0])
	}
	if b.StageSent([]uint64{42}, m) {
		t.Fatal("StageSent of a slot not held staged something")
	}
}

// TestReserveFull: Reserve refuses past Max with ErrOutboxFull.
func TestReserveFull(t *testing.T) {
	b := &Box{live: map[uint64]string{}}
	for i := range uint64(Max - 1) {
		b.Add(i)
	}
	if _, err := b.Reserve(1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(2); !errors.Is(err, errs.ErrOutboxFull) {
		t.Fatalf("Reserve past Max: %v", err)
	}
}

// TestHeadDecodeErrors: a bad head is a typed error.
func TestHeadDecodeErrors(t *testing.T) {
	raw := encodeHead(3, 9)
	cases := map[string]testkit.LayoutCase{
		"to before from": {Raw: encodeHead(9, 3), Want: errs.ErrMalformed},
		"too far apart":  {Raw: encodeHead(0, Max+1), Want: errs.ErrMalformed},
	}
	testkit.BadLayouts(cases, raw, record.Layout)
	testkit.CheckLayoutCases(t, cases, func(b []byte) error { _, _, err := decodeHead(b); return err })
	if from, to, err := decodeHead(raw); err != nil || from != 3 || to != 9 {
		t.Fatalf("decodeHead: %d %d %v", from, to, err)
	}
}

// FuzzOutboxEntry: Decode never panics, fails with a typed error, and an
// entry it accepts re-encodes to the same bytes.
func FuzzOutboxEntry(f *testing.F) {
	raw, _ := Encode(entry())
	f.Add(raw)
	f.Add([]byte{record.Layout})
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Decode(raw)
		if !testkit.TypedRecordError(t, err) {
			if e != nil {
				t.Fatal("an entry with an error")
			}
			return
		}
		again, err := Encode(e)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("accepted entry re-encodes differently (%v)", err)
		}
	})
}

// TestAddKeyed: an entry added with its key is removed under that key,
// as one added without it is under the key StageSent builds.
func TestAddKeyed(t *testing.T) {
	m := memStore{}
	b, err := Load(m.get)
	if err != nil {
		t.Fatal(err)
	}
	for _, keyed := range []bool{true, false} {
		slot, err := b.Reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := Encode(&Entry{To: keys.Address{User: "bob", Device: 1}, Mailbox: []byte("m"), Envelope: []byte{1}})
		if err != nil {
			t.Fatal(err)
		}
		m.Put(Key(slot), raw)
		if keyed {
			b.AddKeyed(slot, Key(slot))
		} else {
			b.Add(slot)
		}
		if !b.StageSent([]uint64{slot}, m) {
			t.Fatal("nothing staged")
		}
		b.Remove([]uint64{slot})
		if _, ok := m[Key(slot)]; ok {
			t.Fatalf("keyed %v: the entry is still in the store", keyed)
		}
	}
}

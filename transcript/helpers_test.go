package transcript_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/transcript"
)

// The tests encode contents with a fixed layout: seq, prev, ack count, ack
// hash, ack above, id, body. The real encoding is the root package's
// protobuf Content; any encoding that carries the fields makes the hash
// chain real, since each content's bytes hold the previous hash.
const headerLen = 8 + 32 + 8 + 32 + 8 + 16

func encode(f transcript.Fields, id [16]byte, body []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, f.Seq)
	b = append(b, f.Prev[:]...)
	b = binary.BigEndian.AppendUint64(b, f.AckCount)
	b = append(b, f.AckHash[:]...)
	b = binary.BigEndian.AppendUint64(b, f.AckAbove)
	b = append(b, id[:]...)
	return append(b, body...)
}

func decode(raw []byte) (f transcript.Fields, id [16]byte) {
	f.Seq = binary.BigEndian.Uint64(raw)
	f.Prev = [32]byte(raw[8:40])
	f.AckCount = binary.BigEndian.Uint64(raw[40:])
	f.AckHash = [32]byte(raw[48:80])
	f.AckAbove = binary.BigEndian.Uint64(raw[80:])
	return f, [16]byte(raw[88:headerLen])
}

// msg is one content as it travels: its fields, id and exact bytes.
type msg struct {
	f   transcript.Fields
	id  [16]byte
	raw []byte
}

// idFor names content n of party who ('a' or 'b'), so that ids read back
// as "a3".
func idFor(who byte, n uint64) [16]byte {
	var id [16]byte
	id[0] = who
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

func idName(id [16]byte) string {
	if id[0] < 'a' || id[0] > 'z' || !bytes.Equal(id[1:8], make([]byte, 7)) {
		return fmt.Sprintf("%x", id[:4])
	}
	return fmt.Sprintf("%c%d", id[0], binary.BigEndian.Uint64(id[8:]))
}

// send makes c's next content with body, records it, and returns it.
func send(t testing.TB, c *transcript.Conversation, who byte, body string) msg {
	t.Helper()
	f := c.Next()
	id := idFor(who, f.Seq)
	m := msg{f: f, id: id, raw: encode(f, id, []byte(body))}
	if err := c.Sent(f, id, m.raw); err != nil {
		t.Fatalf("Sent: %v", err)
	}
	return m
}

// recv delivers m to c and returns the new findings as strings.
func recv(t testing.TB, c *transcript.Conversation, m msg) []string {
	t.Helper()
	fs, err := c.Received(m.f, m.id, m.raw)
	if err != nil {
		t.Fatalf("Received seq %d: %v", m.f.Seq, err)
	}
	return describe(fs)
}

// forge returns m with its fields changed by edit and re-encoded, as a
// party holding the session keys could send it.
func forge(m msg, body string, edit func(*transcript.Fields)) msg {
	f := m.f
	if edit != nil {
		edit(&f)
	}
	return msg{f: f, id: m.id, raw: encode(f, m.id, []byte(body))}
}

// describe renders findings as "kind: side seq[s] [ids]".
func describe(fs []transcript.Finding) []string {
	var out []string
	for _, f := range fs {
		s := f.String()
		if len(f.IDs) > 0 {
			names := make([]string, len(f.IDs))
			for i, id := range f.IDs {
				names[i] = idName(id)
			}
			s += " [" + strings.Join(names, " ") + "]"
		}
		out = append(out, s)
	}
	return out
}

func state(t testing.TB, c *transcript.Conversation) []byte {
	t.Helper()
	b, err := c.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

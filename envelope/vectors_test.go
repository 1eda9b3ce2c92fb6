package envelope_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// vector is one golden routing-header case: testdata/<category>_<case>.bin
// holds "key: value" lines, a blank line, then the raw envelope.
type vector struct {
	name    string
	expect  string // "ok" or a sentinel name
	mailbox string // hex, for "ok"
	tag     string // hex, for "ok"
	comment string
	raw     []byte
}

func goldenVectors() []vector {
	mbox := []byte("bob-mailbox")
	ok := build(mbox, 0x10, 256)
	return []vector{
		{name: "valid_basic", expect: "ok", mailbox: hex.EncodeToString(mbox), tag: "101112131415161718191a1b1c1d1e1f", comment: "11-byte mailbox, 256-byte body", raw: ok},
		{name: "valid_min", expect: "ok", mailbox: "01", tag: "000102030405060708090a0b0c0d0e0f", comment: "1-byte mailbox, 16-byte body", raw: build([]byte{1}, 0, 16)},
		{name: "version_unsupported", expect: "ErrUnsupportedVersion", comment: "version byte 3", raw: append([]byte{3}, ok[1:]...)},
		{name: "version1_rejected", expect: "ErrUnsupportedVersion", comment: "version 1 (no body length): the valid_basic envelope as version 1 wrote it", raw: append(append([]byte{1}, ok[1:2+len(mbox)+16]...), ok[2+len(mbox)+16+3:]...)},
		{name: "malformed_short_body", expect: "ErrMalformed", comment: "body of 15 bytes", raw: build(mbox, 0, 15)},
		{name: "malformed_truncated", expect: "ErrMalformed", comment: "valid_basic less its last byte", raw: ok[:len(ok)-1]},
		{name: "malformed_extended", expect: "ErrMalformed", comment: "valid_basic and one more byte", raw: append(bytes.Clone(ok), 0)},
		{name: "malformed_mailbox_length", expect: "ErrMalformed", comment: "mailbox length 65", raw: append([]byte{envelope.Version, 65}, bytes.Repeat([]byte{7}, 120)...)},
		{name: "malformed_empty_mailbox", expect: "ErrMalformed", comment: "mailbox length 0", raw: append([]byte{envelope.Version, 0}, bytes.Repeat([]byte{7}, 40)...)},
	}
}

func (v vector) encode() []byte {
	h := []testkit.Field{{Key: "expect", Value: v.expect}}
	if v.expect == "ok" {
		h = append(h, testkit.Field{Key: "mailbox", Value: v.mailbox}, testkit.Field{Key: "tag", Value: v.tag})
	}
	h = append(h, testkit.Field{Key: "comment", Value: v.comment})
	return testkit.Vector{Header: h, Raw: v.raw}.Encode()
}

func decodeVector(t *testing.T, name string, data []byte) vector {
	t.Helper()
	f, err := testkit.ParseVector(data, "expect", "mailbox", "tag", "comment")
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return vector{name: name, raw: f.Raw, expect: f.Get("expect"), mailbox: f.Get("mailbox"), tag: f.Get("tag"), comment: f.Get("comment")}
}

var sentinels = map[string]error{
	"ErrMalformed":          envelope.ErrMalformed,
	"ErrUnsupportedVersion": envelope.ErrUnsupportedVersion,
	"ErrTooLarge":           envelope.ErrTooLarge,
}

func TestGoldenVectors(t *testing.T) {
	if *update {
		for _, v := range goldenVectors() {
			if err := os.WriteFile(filepath.Join("testdata", v.name+".bin"), v.encode(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := goldenVectors()
	files, err := filepath.Glob("testdata/*.bin")
	if err != nil || len(files) != len(want) {
		t.Fatalf("found %d vector files, want %d (run with -update): %v", len(files), len(want), err)
	}
	for _, w := range want {
		data, err := os.ReadFile(filepath.Join("testdata", w.name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, w.encode()) {
			t.Errorf("%s: golden file differs from the generator (format change?)", w.name)
		}
		checkVector(t, decodeVector(t, w.name, data))
	}
}

func checkVector(t *testing.T, v vector) {
	t.Helper()
	h, err := envelope.Parse(v.raw)
	if v.expect != "ok" {
		if !errors.Is(err, sentinels[v.expect]) {
			t.Errorf("%s: Parse error %v, want %s", v.name, err, v.expect)
		}
		return
	}
	if err != nil {
		t.Errorf("%s: Parse: %v", v.name, err)
		return
	}
	if hex.EncodeToString(h.Mailbox) != v.mailbox || hex.EncodeToString(h.Tag[:]) != v.tag {
		t.Errorf("%s: got mailbox %x tag %x, want %s %s", v.name, h.Mailbox, h.Tag, v.mailbox, v.tag)
	}
}

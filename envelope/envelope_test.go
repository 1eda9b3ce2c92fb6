package envelope_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/internal/wire"
)

func build(mailbox []byte, tag byte, body int) []byte {
	var t [envelope.TagSize]byte
	for i := range t {
		t[i] = tag + byte(i)
	}
	raw := wire.AppendHeader(nil, mailbox, t)
	return append(raw, bytes.Repeat([]byte{0xAB}, body)...)
}

func TestParse(t *testing.T) {
	good := build([]byte("bob-mailbox"), 7, 256)
	tests := []struct {
		name    string
		raw     []byte
		wantErr error
	}{
		{"valid", good, nil},
		{"mailbox of one byte", build([]byte{1}, 0, 16), nil},
		{"mailbox of max length", build(bytes.Repeat([]byte{9}, envelope.MaxMailboxLength), 0, 16), nil},
		{"empty", nil, envelope.ErrMalformed},
		{"version only", []byte{1}, envelope.ErrMalformed},
		{"version 0", append([]byte{0}, good[1:]...), envelope.ErrUnsupportedVersion},
		{"version 2", append([]byte{2}, good[1:]...), envelope.ErrUnsupportedVersion},
		{"zero mailbox length", append([]byte{1, 0}, good[2:]...), envelope.ErrMalformed},
		{"mailbox length over max", append([]byte{1, envelope.MaxMailboxLength + 1}, bytes.Repeat([]byte{1}, 200)...), envelope.ErrMalformed},
		{"body one byte short", build([]byte("m"), 0, 15), envelope.ErrMalformed},
		{"no body", build([]byte("m"), 0, 0), envelope.ErrMalformed},
		{"too large", build([]byte("m"), 0, envelope.MaxSize), envelope.ErrTooLarge},
		{"exactly max size", build([]byte("m"), 0, envelope.MaxSize-wire.HeaderSize(1)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := envelope.Parse(tt.raw)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && (h.Version != 0 || h.Mailbox != nil || h.Tag != [16]byte{}) {
				t.Fatalf("Parse returned a non-zero header with an error: %+v", h)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	raw := build([]byte("bob-mailbox"), 7, 300)
	h, err := envelope.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != envelope.Version || string(h.Mailbox) != "bob-mailbox" || h.Tag[0] != 7 || h.Tag[15] != 22 {
		t.Fatalf("unexpected header %+v", h)
	}
	// The mailbox must not let a caller append into the body.
	if cap(h.Mailbox) != len(h.Mailbox) {
		t.Fatalf("mailbox capacity %d exceeds its length %d", cap(h.Mailbox), len(h.Mailbox))
	}
}

// TestParseTruncations checks every prefix of a valid envelope shorter than
// the minimum is rejected as malformed, never a panic.
func TestParseTruncations(t *testing.T) {
	raw := build([]byte("bob"), 1, 16)
	for n := range len(raw) {
		if _, err := envelope.Parse(raw[:n]); !errors.Is(err, envelope.ErrMalformed) {
			t.Fatalf("Parse(raw[:%d]) = %v, want ErrMalformed", n, err)
		}
	}
}

func TestParseAllocations(t *testing.T) {
	raw := build([]byte("bob-mailbox"), 7, 256)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := envelope.Parse(raw); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Parse allocates %v times per call, want 0", allocs)
	}
}

func BenchmarkParse(b *testing.B) {
	raw := build([]byte("0123456789abcdef0123456789abcdef"), 7, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := envelope.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

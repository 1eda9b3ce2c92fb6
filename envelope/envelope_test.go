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
	return wire.AppendEnvelope(nil, mailbox, t, bytes.Repeat([]byte{0xAB}, body))
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
		{"version only", []byte{envelope.Version}, envelope.ErrMalformed},
		{"version 0", append([]byte{0}, good[1:]...), envelope.ErrUnsupportedVersion},
		{"version 1 (no body length)", append([]byte{1}, good[1:]...), envelope.ErrUnsupportedVersion},
		{"version 3", append([]byte{3}, good[1:]...), envelope.ErrUnsupportedVersion},
		{"zero mailbox length", append([]byte{envelope.Version, 0}, good[2:]...), envelope.ErrMalformed},
		{"mailbox length over max", append([]byte{envelope.Version, envelope.MaxMailboxLength + 1}, bytes.Repeat([]byte{1}, 200)...), envelope.ErrMalformed},
		{"a byte more than the length says", append(bytes.Clone(good), 0), envelope.ErrMalformed},
		{"a byte less than the length says", good[:len(good)-1], envelope.ErrMalformed},
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

// TestParseTruncations checks that every truncation and every extension of
// a valid envelope is refused as malformed, never a panic: the header's
// body length makes an envelope self-delimiting.
func TestParseTruncations(t *testing.T) {
	for _, body := range []int{16, 511, 3571, 70_000} {
		raw := build([]byte("bob"), 1, body)
		for n := range len(raw) {
			if _, err := envelope.Parse(raw[:n]); !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("body %d: Parse(raw[:%d]) = %v, want ErrMalformed", body, n, err)
			}
		}
		for _, extra := range []int{1, 2, 16, 511} {
			if _, err := envelope.Parse(append(bytes.Clone(raw), make([]byte, extra)...)); !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("body %d and %d bytes more: %v, want ErrMalformed", body, extra, err)
			}
		}
	}
}

// TestNext reads envelopes sent back to back, and refuses a stream that
// ends inside one.
func TestNext(t *testing.T) {
	a, b := build([]byte("bob"), 1, 40), build([]byte("carol"), 2, 300)
	stream := append(append(bytes.Clone(a), b...), a...)
	var got [][]byte
	for len(stream) > 0 {
		h, body, rest, err := envelope.Next(stream)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, stream[:len(stream)-len(rest)])
		if len(body) != 40 && len(body) != 300 || len(h.Mailbox) == 0 {
			t.Fatalf("body of %d bytes, mailbox %q", len(body), h.Mailbox)
		}
		stream = rest
	}
	if len(got) != 3 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || !bytes.Equal(got[2], a) {
		t.Fatalf("read %d envelopes", len(got))
	}
	if _, _, _, err := envelope.Next(b[:len(b)-1]); !errors.Is(err, envelope.ErrMalformed) {
		t.Fatalf("a stream ending inside an envelope: %v", err)
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

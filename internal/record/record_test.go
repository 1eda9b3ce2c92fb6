package record

import (
	"bytes"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
)

// TestSumScratch: the checksum with the key copied into scratch space is
// the plain checksum, for keys shorter and longer than the scratch, and
// both are the CRC-32C of key || value.
func TestSumScratch(t *testing.T) {
	var scratch [96]byte
	value := []byte("a record value")
	for n := range 200 {
		key := strings.Repeat("k", n)
		if got, want := SumScratch(scratch[:], key, value), Sum(key, value); got != want {
			t.Fatalf("key of %d bytes: %08x, want %08x", n, got, want)
		}
		if got := crc32.Checksum(append([]byte(key), value...), crc32.MakeTable(crc32.Castagnoli)); got != Sum(key, value) {
			t.Fatalf("key of %d bytes: Sum is not the CRC-32C of key || value", n)
		}
	}
}

// TestFrame: a framed record unframes under its key to the same value,
// with or without room for the checksum, leaving the value unchanged;
// under another key, truncated, or with any bit flipped it is
// ErrMalformed.
func TestFrame(t *testing.T) {
	value := []byte("a record value")
	roomy := append(make([]byte, 0, len(value)+ChecksumSize), value...)
	for name, v := range map[string][]byte{"no room": bytes.Clone(value), "room": roomy, "empty": {}} {
		want := bytes.Clone(v)
		raw := Frame(v, Sum("k/1", v))
		if !bytes.Equal(v, want) {
			t.Fatalf("%s: Frame changed the value", name)
		}
		got, err := Unframe("k/1", raw)
		if err != nil || !bytes.Equal(got, want) || cap(got) != len(got) {
			t.Fatalf("%s: Unframe = %x, %v", name, got, err)
		}
		if _, err := Unframe("k/2", raw); !errors.Is(err, errs.ErrMalformed) {
			t.Fatalf("%s: under another key: %v", name, err)
		}
		for i := range len(raw) * 8 {
			bad := bytes.Clone(raw)
			bad[i/8] ^= 1 << (i % 8)
			if _, err := Unframe("k/1", bad); !errors.Is(err, errs.ErrMalformed) {
				t.Fatalf("%s: bit %d flipped: %v", name, i, err)
			}
		}
		for n := range len(raw) {
			if _, err := Unframe("k/1", raw[:n]); !errors.Is(err, errs.ErrMalformed) {
				t.Fatalf("%s: truncated to %d: %v", name, n, err)
			}
		}
	}
}

// TestCheckVersion: the layout version passes, an empty record is
// ErrMalformed and any other version ErrUnsupportedVersion.
func TestCheckVersion(t *testing.T) {
	tests := []struct {
		raw  []byte
		want error
	}{
		{[]byte{Layout}, nil},
		{[]byte{Layout, 1, 2}, nil},
		{nil, errs.ErrMalformed},
		{[]byte{Layout - 1}, errs.ErrUnsupportedVersion},
		{[]byte{Layout + 1}, errs.ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		if err := CheckVersion(tt.raw, "test record"); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("CheckVersion(%x) = %v, want %v", tt.raw, err, tt.want)
		}
	}
}

package testkit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
)

// LayoutCase is one bad input of a record decoder and the sentinel it
// must fail with.
type LayoutCase struct {
	Raw  []byte
	Want error
}

// CheckLayoutCases runs decode on every case and reports each that does
// not fail with its sentinel.
func CheckLayoutCases(t *testing.T, cases map[string]LayoutCase, decode func([]byte) error) {
	t.Helper()
	for name, tc := range cases {
		if err := decode(tc.Raw); !errors.Is(err, tc.Want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.Want)
		}
	}
}

// BadLayouts adds to cases every truncation of raw (ErrMalformed), raw
// with a trailing byte (ErrMalformed), and raw with its version byte set
// to 0 and to version+1 (ErrUnsupportedVersion).
func BadLayouts(cases map[string]LayoutCase, raw []byte, version byte) {
	for n := range len(raw) {
		cases[fmt.Sprintf("truncated to %d", n)] = LayoutCase{raw[:n], errs.ErrMalformed}
	}
	cases["trailing byte"] = LayoutCase{append(bytes.Clone(raw), 0), errs.ErrMalformed}
	for _, v := range []byte{0, version + 1} {
		cases[fmt.Sprintf("version %d", v)] = LayoutCase{With(raw, 0, v), errs.ErrUnsupportedVersion}
	}
}

// With returns a copy of raw with the bytes at i replaced by b.
func With(raw []byte, i int, b ...byte) []byte {
	out := bytes.Clone(raw)
	copy(out[i:], b)
	return out
}

// BE16 encodes v big-endian.
func BE16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// BE32 encodes v big-endian.
func BE32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// BE64 encodes v big-endian.
func BE64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// TypedRecordError fails t unless err is nil or one of the record
// decoders' sentinels (ErrMalformed, ErrUnsupportedVersion); it reports
// whether err is nil.
func TypedRecordError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil && !errors.Is(err, errs.ErrMalformed) && !errors.Is(err, errs.ErrUnsupportedVersion) {
		t.Fatalf("untyped error %v", err)
	}
	return err == nil
}

package kept

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/transcript"
)

// TestEnvelopeID: the id is the routing tag then the envelope's last 16
// bytes, and its key is "kept/" and the id in hex, also for an envelope
// shorter than 16 bytes.
func TestEnvelopeID(t *testing.T) {
	tag := [16]byte{1, 2, 3}
	raw := append(bytes.Repeat([]byte{9}, 40), bytes.Repeat([]byte{7}, 16)...)
	id := EnvelopeID(tag, raw)
	if !bytes.Equal(id[:16], tag[:]) || !bytes.Equal(id[16:], raw[len(raw)-16:]) {
		t.Fatalf("EnvelopeID = %x", id)
	}
	if short := EnvelopeID(tag, []byte{5}); short[16] != 5 {
		t.Fatalf("EnvelopeID of a 1-byte envelope = %x", short)
	}
	k := Key(id)
	if !strings.HasPrefix(k, record.KeyKeptPrefix) || len(k) != len(record.KeyKeptPrefix)+64 {
		t.Fatalf("Key = %q", k)
	}
	e, f := Entry{Env: id}, NewEntry(id, [16]byte{}, 0, k)
	if e.StoreKey() != k || f.StoreKey() != k {
		t.Fatal("StoreKey differs from Key")
	}
}

type messageID [16]byte

// TestResultBounds: a result past a bound is refused at encode time, and
// one at the bounds round-trips.
func TestResultBounds(t *testing.T) {
	ids := make([]messageID, MaxIDs)
	in := &Result[messageID]{Kind: 1, From: keys.Address{User: strings.Repeat("u", keys.MaxUserLength), Device: 3},
		Body: make([]byte, 100), Delivered: ids, Read: ids,
		Findings: []transcript.Finding{{Kind: transcript.Gap, Seq: 1, ToSeq: 2, IDs: make([][16]byte, maxFindingIDs)}}}
	raw, err := EncodeResult(in, 100)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeResult[messageID](raw, 100)
	if err != nil || !reflect.DeepEqual(back, in) {
		t.Fatalf("round trip at the bounds: %v", err)
	}
	if _, err := DecodeResult[messageID](raw, 99); !errors.Is(err, errs.ErrMalformed) {
		t.Fatalf("a body past the decoder's bound: %v", err)
	}
	for name, edit := range map[string]func(r *Result[messageID]){
		"body":          func(r *Result[messageID]) { r.Body = make([]byte, 101) },
		"delivered ids": func(r *Result[messageID]) { r.Delivered = make([]messageID, MaxIDs+1) },
		"read ids":      func(r *Result[messageID]) { r.Read = make([]messageID, MaxIDs+1) },
		"user":          func(r *Result[messageID]) { r.From.User += "u" },
		"finding ids": func(r *Result[messageID]) {
			r.Findings = []transcript.Finding{{Kind: transcript.Gap, IDs: make([][16]byte, maxFindingIDs+1)}}
		},
	} {
		r := *in
		edit(&r)
		if _, err := EncodeResult(&r, 100); !errors.Is(err, errs.ErrMalformed) {
			t.Errorf("%s past its bound: %v", name, err)
		}
	}
}

package testkit

import (
	"bytes"
	"errors"
	"testing"
)

func TestVectorRoundTrip(t *testing.T) {
	v := Vector{Header: []Field{{"expect", "ok"}, {"comment", "a: b"}}, Raw: []byte("\x00\n\nraw")}
	got, err := ParseVector(v.Encode(), "expect", "comment")
	if err != nil || got.Get("expect") != "ok" || got.Get("comment") != "a: b" || !bytes.Equal(got.Raw, v.Raw) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got.Get("missing") != "" {
		t.Fatal("absent key has a value")
	}
	for name, data := range map[string]string{
		"no blank line": "expect: ok\n",
		"bad line":      "expect ok\n\nraw",
		"unknown key":   "expect: ok\nother: x\n\nraw",
	} {
		if _, err := ParseVector([]byte(data), "expect"); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

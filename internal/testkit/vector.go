// Package testkit holds what sealpost's tests share: the golden vector file
// format (docs/SPEC.md section 19). It is imported by tests only.
//
// A vector file is "key: value" header lines, one blank line, then the raw
// bytes of one scenario:
//
//	expect: ErrMalformed
//	comment: body of 15 bytes
//
//	<raw bytes>
package testkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Field is one header line of a vector file.
type Field struct{ Key, Value string }

// Vector is one parsed vector file: its header fields in order, and the raw
// bytes after the blank line.
type Vector struct {
	Header []Field
	Raw    []byte
}

// ErrFormat reports a vector file that is not in the format.
var ErrFormat = errors.New("testkit: malformed vector file")

// Get returns the value of the header key, or "" when absent.
func (v Vector) Get(key string) string {
	for _, f := range v.Header {
		if f.Key == key {
			return f.Value
		}
	}
	return ""
}

// Encode returns the file bytes: the header lines, a blank line, the raw
// bytes.
func (v Vector) Encode() []byte {
	var b bytes.Buffer
	for _, f := range v.Header {
		fmt.Fprintf(&b, "%s: %s\n", f.Key, f.Value)
	}
	b.WriteByte('\n')
	b.Write(v.Raw)
	return b.Bytes()
}

// ParseVector parses a vector file. Keys outside allowed (when allowed is
// not empty) are an error, so a typo in a hand-edited file fails loudly.
func ParseVector(data []byte, allowed ...string) (Vector, error) {
	head, raw, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return Vector{}, fmt.Errorf("%w: no blank line after the header", ErrFormat)
	}
	v := Vector{Raw: raw}
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		k, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			return Vector{}, fmt.Errorf("%w: header line %q", ErrFormat, sc.Text())
		}
		if len(allowed) > 0 && !contains(allowed, k) {
			return Vector{}, fmt.Errorf("%w: unknown header key %q", ErrFormat, k)
		}
		v.Header = append(v.Header, Field{k, val})
	}
	return v, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

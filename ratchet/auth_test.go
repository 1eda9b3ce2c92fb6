package ratchet

import (
	"bytes"
	"testing"
)

// TestNothingParsedBeforeAuthentication (checklist item 47): apart from the
// version byte and the lengths, no byte of a message is read before it is
// authenticated. Setting any byte after the version, or of the routing tag,
// to other values gives exactly ErrDecrypt, never an error that a parsed
// field would cause (ErrMalformed, ErrTooManySkipped, ErrDuplicate, ...),
// with the state unchanged; for an in-order message, a DH step, a skipped
// key and a message ahead of the tag window, with the KEM field in every
// header. The version byte alone gives ErrUnsupportedVersion.
func TestNothingParsedBeforeAuthentication(t *testing.T) {
	alice, bob := pairFrom(t, "auth")
	m1, m2 := send(t, alice, "first, skipped"), send(t, alice, "second, a DH step")
	t.Run("DH step", func(t *testing.T) { checkAuthenticatedBeforeParsed(t, bob, m2) })
	recv(t, bob, m2)
	m3 := send(t, alice, "in order")
	ahead := sendN(t, alice, TagWindow+1)[TagWindow]
	for name, m := range map[string]sealed{"skipped": m1, "in order": m3, "ahead": ahead} {
		t.Run(name, func(t *testing.T) { checkAuthenticatedBeforeParsed(t, bob, m) })
	}
	recv(t, bob, m1)
	recv(t, bob, m3)
	recv(t, bob, ahead)
}

// checkAuthenticatedBeforeParsed edits every byte of m in turn.
func checkAuthenticatedBeforeParsed(t *testing.T, bob *Session, m sealed) {
	t.Helper()
	for i := 1; i < len(m.msg); i++ {
		for _, edit := range []func(byte) byte{
			func(b byte) byte { return b ^ 0x01 }, func(b byte) byte { return b ^ 0x80 },
			func(byte) byte { return 0x00 }, func(byte) byte { return 0xff },
		} {
			b := bytes.Clone(m.msg)
			if b[i] = edit(b[i]); b[i] == m.msg[i] {
				continue
			}
			mustFail(t, bob, m.tag, b, ErrDecrypt)
		}
	}
	for i := range TagSize {
		tag := m.tag
		tag[i] ^= 0x80
		mustFail(t, bob, tag, m.msg, ErrDecrypt)
	}
	b := bytes.Clone(m.msg)
	b[0]++
	mustFail(t, bob, m.tag, b, ErrUnsupportedVersion)
}

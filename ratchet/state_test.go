package ratchet

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/statepb"
)

// busyPair is a pair with every part of the state in use: both chains,
// skipped keys in two chains, replay and expired records.
func busyPair(t testing.TB) (alice, bob *Session) {
	alice, bob = pairFrom(t, "busy", WithMaxSkippedKeys(6))
	ms := sendN(t, alice, 5)
	recv(t, bob, ms[4])
	recv(t, alice, send(t, bob, "reply"))
	ms2 := sendN(t, alice, 4)
	recv(t, bob, ms2[3]) // 4 + 3 skipped, cap 6: one evicted
	recv(t, bob, ms[2])
	return alice, bob
}

func TestStateRoundTrip(t *testing.T) {
	alice, bob := busyPair(t)
	if bob.expired.len() == 0 || bob.consumed.len() == 0 || len(bob.skipped.chains) != 2 {
		t.Fatal("busyPair does not exercise the whole state")
	}
	for _, s := range []*Session{alice, bob} {
		b := state(t, s)
		var r Session
		if err := r.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, state(t, &r)) {
			t.Fatal("round trip changed the state")
		}
		if !slices.Equal(slices.Collect(s.ExpectedTags()), slices.Collect(r.ExpectedTags())) {
			t.Fatal("round trip changed the expected tags")
		}
	}
}

// TestStateRejects: bad versions, unknown fields, wrong sizes and broken
// invariants are typed errors, and a failed UnmarshalBinary leaves the
// session as it was.
func TestStateRejects(t *testing.T) {
	_, bob := busyPair(t)
	good := state(t, bob)
	mutate := func(f func(m *statepb.RatchetSession)) []byte {
		m := new(statepb.RatchetSession)
		if err := pbstrict.Unmarshal(good, m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := pbstrict.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name string
		blob []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version 1", mutate(func(m *statepb.RatchetSession) { m.Version = 1 }), ErrUnsupportedVersion},
		{"version 2", mutate(func(m *statepb.RatchetSession) { m.Version = 2 }), ErrUnsupportedVersion},
		{"version 4", mutate(func(m *statepb.RatchetSession) { m.Version = 4 }), ErrUnsupportedVersion},
		{"unknown field", append(bytes.Clone(good), 0xf8, 0x07, 0x01), ErrMalformed},
		{"root key", mutate(func(m *statepb.RatchetSession) { m.RootKey = m.RootKey[:31] }), ErrMalformed},
		{"own key", mutate(func(m *statepb.RatchetSession) { m.OwnRatchetKey = nil }), ErrMalformed},
		{"peer key", mutate(func(m *statepb.RatchetSession) { m.PeerRatchetKey = m.PeerRatchetKey[:5] }), ErrMalformed},
		{"no peer key", mutate(func(m *statepb.RatchetSession) { m.PeerRatchetKey = nil }), ErrMalformed},
		{"no sending", mutate(func(m *statepb.RatchetSession) { m.Sending = nil }), ErrMalformed},
		{"chain key", mutate(func(m *statepb.RatchetSession) { m.Receiving.ChainKey = nil }), ErrMalformed},
		{"header key", mutate(func(m *statepb.RatchetSession) { m.Sending.HeaderKey = make([]byte, 33) }), ErrMalformed},
		{"bounds", mutate(func(m *statepb.RatchetSession) { m.TagWindow = 0 }), ErrMalformed},
		{"bounds max", mutate(func(m *statepb.RatchetSession) { m.MaxSkip = 1 << 30 }), ErrMalformed},
		{"skipped order", mutate(func(m *statepb.RatchetSession) { m.Skipped[0].Numbers[0] = 99 }), ErrMalformed},
		{"skipped sizes", mutate(func(m *statepb.RatchetSession) { m.Skipped[0].MessageKeys = m.Skipped[0].MessageKeys[1:] }), ErrMalformed},
		{"skipped empty", mutate(func(m *statepb.RatchetSession) { m.Skipped[0].Numbers, m.Skipped[0].MessageKeys = nil, nil }), ErrMalformed},
		{"skipped cap", mutate(func(m *statepb.RatchetSession) { m.MaxSkippedKeys = 2 }), ErrMalformed},
		{"consumed", mutate(func(m *statepb.RatchetSession) { m.Consumed = m.Consumed[1:] }), ErrMalformed},
		{"consumed size", mutate(func(m *statepb.RatchetSession) { m.Consumed = make([]byte, 32*(ReplayRecord+1)) }), ErrMalformed},
		{"expired", mutate(func(m *statepb.RatchetSession) { m.Expired = append(m.Expired, 1) }), ErrMalformed},
	}
	for _, c := range cases {
		err := bob.UnmarshalBinary(c.blob)
		if !errorsIs(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if !bytes.Equal(good, state(t, bob)) {
			t.Fatalf("%s: a failed UnmarshalBinary changed the session", c.name)
		}
	}
}

// TestStateCorruption: every truncation and every single-bit flip of a
// saved state is either a typed error or a state that works (a flipped key
// byte is still a key); never a panic.
func TestStateCorruption(t *testing.T) {
	_, bob := busyPair(t)
	good := state(t, bob)
	try := func(b []byte) {
		var s Session
		err := s.UnmarshalBinary(b)
		if err != nil {
			if !anySentinel(err) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		exercise(t, &s)
	}
	for n := range len(good) {
		try(good[:n])
	}
	step := 1
	if testing.Short() {
		step = 7
	}
	for i := 0; i < len(good); i += step {
		for bit := range 8 {
			b := bytes.Clone(good)
			b[i] ^= 1 << bit
			try(b)
		}
	}
}

// exercise runs a loaded session through every operation: none may panic.
func exercise(t testing.TB, s *Session) {
	b := state(t, s)
	var r Session
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatalf("a state that loaded does not reload: %v", err)
	}
	if !bytes.Equal(b, state(t, &r)) {
		t.Fatal("a state that loaded is not stable")
	}
	for range s.ExpectedTags() {
	}
	if tag, msg, err := s.Encrypt([]byte("x")); err == nil {
		s.Decrypt(tag, msg)
	}
	m := randomMessage(3)
	s.Decrypt(m.tag, m.msg)
}

// TestFormatHidesSecrets is checklist item 46 for Session: every verb prints
// no key in hex or base64.
func TestFormatHidesSecrets(t *testing.T) {
	_, bob := busyPair(t)
	var secrets [][]byte
	secrets = append(secrets, bob.rk[:], bob.dhs.Bytes(), bob.nhks[:], bob.next.hk.hk[:],
		bob.send.ck[:], bob.send.hk.hk[:], bob.recv.ck[:], bob.recv.win.hk.hk[:])
	for _, c := range bob.skipped.chains {
		secrets = append(secrets, c.hk.hk[:])
		for _, k := range c.keys {
			secrets = append(secrets, bytes.Clone(k.mk[:]))
		}
	}
	var out strings.Builder
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
		fmt.Fprintf(&out, verb+"\n", bob)
		fmt.Fprintf(&out, verb+"\n", *bob)
		fmt.Fprintf(&out, verb+"\n", []any{bob})
	}
	out.WriteString(bob.String() + bob.GoString())
	text := strings.ToLower(out.String())
	for _, s := range secrets {
		for _, enc := range []string{hex.EncodeToString(s[:8]), base64.StdEncoding.EncodeToString(s[:9]), base64.RawURLEncoding.EncodeToString(s[:9])} {
			if strings.Contains(text, strings.ToLower(enc)) {
				t.Fatalf("formatted session contains key bytes: %s", out.String())
			}
		}
	}
	if !strings.Contains(out.String(), "ratchet.Session") {
		t.Fatalf("unexpected format: %s", out.String())
	}
}

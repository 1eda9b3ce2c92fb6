package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"testing"
)

// testAD is the associated data of test sessions.
var testAD = []byte("sealpost v1 associated data: alice, bob")

// seedKeygen returns a deterministic ratchet key generator: the i-th key's
// seed is SHA-256(label || i). Vectors record the label.
func seedKeygen(label string) func() (*ecdh.PrivateKey, error) {
	var i uint32
	return func() (*ecdh.PrivateKey, error) {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], i)
		i++
		seed := sha256.Sum256(append([]byte(label), b[:]...))
		return ecdh.X25519().NewPrivateKey(seed[:])
	}
}

// kemSeeds returns a deterministic ML-KEM-768 seed generator: the i-th
// seed is SHA-256(label || i || 0) || SHA-256(label || i || 1).
func kemSeeds(label string) func() [kemSeedSize]byte {
	var i uint32
	return func() (seed [kemSeedSize]byte) {
		b := binary.BigEndian.AppendUint32([]byte(label), i)
		i++
		h0, h1 := sha256.Sum256(append(b, 0)), sha256.Sum256(append(b, 1))
		copy(seed[:], h0[:])
		copy(seed[32:], h1[:])
		return seed
	}
}

// encSecrets returns a deterministic generator of encapsulation secrets:
// the i-th is SHA-256(label || i).
func encSecrets(label string) func() [keySize]byte {
	var i uint32
	return func() [keySize]byte {
		b := binary.BigEndian.AppendUint32([]byte(label), i)
		i++
		return sha256.Sum256(b)
	}
}

// testHooks makes every random choice of a session deterministic.
func testHooks(label string) hooks {
	return hooks{keygen: seedKeygen(label), kemSeed: kemSeeds(label + " kem"), encSecret: encSecrets(label + " encaps")}
}

// pairFrom builds a deterministic initiator/responder pair from a label.
func pairFrom(t testing.TB, label string, opts ...Option) (alice, bob *Session) {
	t.Helper()
	return pairWith(t, label, false, opts...)
}

// pairWith is pairFrom, with the KEM ratchet sending filler only
// (classical) when asked.
func pairWith(t testing.TB, label string, classical bool, opts ...Option) (alice, bob *Session) {
	t.Helper()
	secret := sha256.Sum256([]byte(label + " secret"))
	bobKey, _ := seedKeygen(label + " bob")()
	ha, hb := testHooks(label+" alice"), testHooks(label+" bob next")
	ha.classical, hb.classical = classical, classical
	alice, err := newInitiator(secret[:], testAD, bobKey.PublicKey(), ha, opts...)
	if err != nil {
		t.Fatal(err)
	}
	bob, err = newResponder(secret[:], testAD, bobKey, hb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

// sealed is one message in flight.
type sealed struct {
	tag [TagSize]byte
	msg []byte
	pt  []byte
}

func send(t testing.TB, s *Session, pt string) sealed {
	t.Helper()
	tag, msg, err := s.Encrypt([]byte(pt))
	if err != nil {
		t.Fatal(err)
	}
	return sealed{tag, msg, []byte(pt)}
}

func recv(t testing.TB, s *Session, m sealed) {
	t.Helper()
	got, err := s.Decrypt(m.tag, m.msg)
	if err != nil {
		t.Fatalf("decrypt %q: %v", m.pt, err)
	}
	if !bytes.Equal(got, m.pt) {
		t.Fatalf("decrypt: got %q, want %q", got, m.pt)
	}
}

func state(t testing.TB, s *Session) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustFail checks that decrypting m fails with want and changes nothing.
func mustFail(t testing.TB, s *Session, tag [TagSize]byte, msg []byte, want error) {
	t.Helper()
	before := state(t, s)
	got, err := s.Decrypt(tag, msg)
	if err == nil {
		t.Fatalf("decrypt succeeded (%d bytes), want %v", len(got), want)
	}
	if want != nil && !errorsIs(err, want) {
		t.Fatalf("decrypt: %v, want %v", err, want)
	}
	if !anySentinel(err) {
		t.Fatalf("decrypt: untyped error %v", err)
	}
	if after := state(t, s); !bytes.Equal(before, after) {
		t.Fatalf("state changed by a failed decrypt (%v)", err)
	}
}

// shake is a deterministic byte stream for walks and property tests.
type shake struct{ *sha3.SHAKE }

func newShake(seed string) shake {
	h := sha3.NewSHAKE128()
	h.Write([]byte(seed))
	return shake{h}
}

func (s shake) intn(n int) int {
	var b [8]byte
	s.Read(b[:])
	return int(binary.BigEndian.Uint64(b[:]) % uint64(n))
}

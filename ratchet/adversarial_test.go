package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"testing"
)

// Checklist items 25-28 of TESTING.md (simultaneous initiation, archived
// sessions, reset and restore, maximum session age) need several sessions per
// peer and the store: they are Device-level tests in the root package.

// TestReplay is checklist item 19: replays of an in-order message, of a
// skipped message delivered later, and of messages older than the replay
// record are ErrDuplicate and change nothing.
func TestReplay(t *testing.T) {
	alice, bob := pairFrom(t, "replay")
	m1, m2, m3 := send(t, alice, "1"), send(t, alice, "2"), send(t, alice, "3")
	recv(t, bob, m1)
	recv(t, bob, m3)
	recv(t, bob, m2) // from the skipped keys
	for _, m := range []sealed{m1, m2, m3} {
		mustFail(t, bob, m.tag, m.msg, ErrDuplicate)
	}
	// Past the record, in the same chain: still a duplicate.
	for _, m := range sendN(t, alice, ReplayRecord+5) {
		recv(t, bob, m)
	}
	mustFail(t, bob, m1.tag, m1.msg, ErrDuplicate)
	// Past the record and after the chain is gone: never decrypted twice.
	for i := range ReplayRecord + 1 {
		recv(t, alice, send(t, bob, fmt.Sprint("b", i)))
		recv(t, bob, send(t, alice, fmt.Sprint("a", i)))
	}
	mustFail(t, bob, m1.tag, m1.msg, ErrDecrypt)
}

// TestReplayOfAForgeryIsNotADuplicate: a consumed tag with another body is a
// forgery (ErrDecrypt), not a duplicate.
func TestReplayOfAForgeryIsNotADuplicate(t *testing.T) {
	alice, bob := pairFrom(t, "replay forgery")
	m := send(t, alice, "x")
	recv(t, bob, m)
	forged := bytes.Clone(m.msg)
	forged[len(forged)-1] ^= 1
	mustFail(t, bob, m.tag, forged, ErrDecrypt)
}

// randomMessage is a well-formed message of random bytes.
func randomMessage(body int) sealed {
	var m sealed
	rand.Read(m.tag[:])
	m.msg = make([]byte, Overhead+body)
	rand.Read(m.msg)
	m.msg[0] = Version
	return m
}

// TestForgedFreshRatchetKey is checklist item 20: a message with a fresh
// ratchet key and random ciphertext, with an unknown tag or with an
// expected one, is ErrDecrypt; nothing changes; the next genuine message
// decrypts.
func TestForgedFreshRatchetKey(t *testing.T) {
	alice, bob := pairFrom(t, "forged")
	recv(t, bob, send(t, alice, "start"))
	recv(t, alice, send(t, bob, "reply"))
	mallory, _ := ecdh.X25519().GenerateKey(rand.Reader)
	f := randomMessage(40)
	copy(f.msg[1:], mallory.PublicKey().Bytes()) // as if the header were in clear
	mustFail(t, bob, f.tag, f.msg, ErrDecrypt)
	for tag := range bob.ExpectedTags() {
		mustFail(t, bob, tag, f.msg, ErrDecrypt)
	}
	recv(t, bob, send(t, alice, "genuine"))
}

// TestCorruptBodyKeepsState is checklist item 21, and the same for a DH step
// and an in-order message: a genuine header with a corrupted body fails,
// keeps the skipped key, generates no ratchet key, and the genuine message
// then decrypts.
func TestCorruptBodyKeepsState(t *testing.T) {
	alice, bob := pairFrom(t, "corrupt body")
	m1, m2 := send(t, alice, "1"), send(t, alice, "2")
	corrupt := func(m sealed) []byte {
		b := bytes.Clone(m.msg)
		b[bodyOffset] ^= 0x40
		return b
	}
	keys := 0
	gen := bob.keygen
	bob.keygen = func() (*ecdh.PrivateKey, error) { keys++; return gen() }
	mustFail(t, bob, m2.tag, corrupt(m2), ErrDecrypt) // a DH step
	if keys != 0 {
		t.Fatal("a forged body cost a key generation")
	}
	recv(t, bob, m2)
	mustFail(t, bob, m1.tag, corrupt(m1), ErrDecrypt) // a skipped key
	if bob.skipped.count != 1 {
		t.Fatal("the skipped key was lost")
	}
	recv(t, bob, m1)
	m3 := send(t, alice, "3")
	mustFail(t, bob, m3.tag, corrupt(m3), ErrDecrypt) // in order
	recv(t, bob, m3)
}

// flipAll flips each byte of m's tag and message in turn (two patterns) and
// expects a typed error with the state unchanged.
func flipAll(t *testing.T, s *Session, m sealed) {
	t.Helper()
	for _, x := range []byte{0x01, 0x80} {
		for i := range TagSize {
			tag := m.tag
			tag[i] ^= x
			mustFail(t, s, tag, m.msg, nil)
		}
		for i := range m.msg {
			b := bytes.Clone(m.msg)
			b[i] ^= x
			mustFail(t, s, m.tag, b, nil)
		}
	}
}

// TestFlipEveryByte is checklist item 22 for an in-order message, a DH step,
// a skipped key and a message ahead of the tag window.
func TestFlipEveryByte(t *testing.T) {
	alice, bob := pairFrom(t, "flip")
	m1, m2 := send(t, alice, "first, skipped"), send(t, alice, "second, a DH step")
	flipAll(t, bob, m2)
	recv(t, bob, m2)
	flipAll(t, bob, m1)
	recv(t, bob, m1)
	m3 := send(t, alice, "in order")
	flipAll(t, bob, m3)
	recv(t, bob, m3)
	ahead := sendN(t, alice, TagWindow+1)[TagWindow]
	flipAll(t, bob, ahead)
	recv(t, bob, ahead)
}

// TestTruncationAndTrailingBytes is checklist item 23: every truncation is
// ErrMalformed or ErrDecrypt, as is trailing garbage; no panic.
func TestTruncationAndTrailingBytes(t *testing.T) {
	alice, bob := pairFrom(t, "truncate")
	m := send(t, alice, "some body")
	for n := range len(m.msg) {
		before := state(t, bob)
		_, err := bob.Decrypt(m.tag, m.msg[:n])
		if !errorsIs(err, ErrMalformed) && !errorsIs(err, ErrDecrypt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
		if n < Overhead && !errorsIs(err, ErrMalformed) {
			t.Fatalf("truncated to %d below the overhead: %v", n, err)
		}
		if !bytes.Equal(before, state(t, bob)) {
			t.Fatal("state changed")
		}
	}
	for _, extra := range [][]byte{{0}, bytes.Repeat([]byte{0xff}, 100)} {
		mustFail(t, bob, m.tag, append(bytes.Clone(m.msg), extra...), ErrDecrypt)
	}
	mustFail(t, bob, m.tag, append([]byte{Version + 1}, m.msg[1:]...), ErrUnsupportedVersion)
	recv(t, bob, m)
}

// TestHeaderHidesNumbersAndKeys: the message bytes contain neither the
// sender's ratchet public key nor N nor PN in the clear.
func TestHeaderHidesNumbersAndKeys(t *testing.T) {
	alice, bob := pairFrom(t, "hidden")
	recv(t, bob, send(t, alice, "start"))
	sendN(t, alice, 299)
	recv(t, alice, send(t, bob, "reply"))
	sendN(t, alice, 0x1234-1)
	m := send(t, alice, "n = 0x1234, pn = 300")
	all := append(m.tag[:], m.msg...)
	if bytes.Contains(all, alice.dhsPub[:8]) {
		t.Fatal("message carries the ratchet public key")
	}
	for _, v := range []uint32{0x1234, 300} {
		var be, le [4]byte
		binary.BigEndian.PutUint32(be[:], v)
		binary.LittleEndian.PutUint32(le[:], v)
		if bytes.Contains(all, be[:]) || bytes.Contains(all, le[:]) {
			t.Fatalf("message carries %#x in the clear", v)
		}
	}
}

// TestTrialDecryptionBound is checklist item 24: a header that opens under no
// key costs at most two trial decryptions (HKr and NHKr), however many
// skipped keys and chains the session holds; an expected tag costs one.
func TestTrialDecryptionBound(t *testing.T) {
	alice, bob := pairFrom(t, "trials")
	for i := range 20 { // 20 chains with skipped keys
		ms := sendN(t, alice, 3)
		recv(t, bob, ms[2])
		recv(t, alice, send(t, bob, fmt.Sprint(i)))
	}
	if len(bob.skipped.chains) != 20 {
		t.Fatalf("%d skipped chains", len(bob.skipped.chains))
	}
	bob.trials = 0
	f := randomMessage(10)
	mustFail(t, bob, f.tag, f.msg, ErrDecrypt)
	if bob.trials > 2 {
		t.Fatalf("%d trial decryptions for an unknown tag, want <= 2", bob.trials)
	}
	for tag := range bob.ExpectedTags() {
		bob.trials = 0
		mustFail(t, bob, tag, f.msg, nil)
		if bob.trials > 1 {
			t.Fatalf("%d trial decryptions for an expected tag", bob.trials)
		}
	}
	// A genuine message beyond the window: found by trial, at most two.
	ahead := sendN(t, alice, TagWindow+3)[TagWindow+2]
	bob.trials = 0
	recv(t, bob, ahead)
	if bob.trials > 2 {
		t.Fatalf("%d trials for a message ahead of the window", bob.trials)
	}
}

// TestLowOrderRatchetKey: a low-order point as the peer's ratchet key, at
// the start or in an (authenticated) header, is ErrLowOrderPoint and
// changes nothing.
func TestLowOrderRatchetKey(t *testing.T) {
	zero, err := ecdh.X25519().NewPublicKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewInitiator(make([]byte, 32), nil, zero); !errorsIs(err, ErrLowOrderPoint) {
		t.Fatalf("NewInitiator with a low-order key: %v", err)
	}
	alice, bob := pairFrom(t, "low order")
	m := send(t, alice, "genuine")
	// Alice's key replaced by a low-order point (order 8) in her header.
	alice.dhsPub = [32]byte{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}
	bad := send(t, alice, "low order")
	mustFail(t, bob, bad.tag, bad.msg, ErrLowOrderPoint)
	recv(t, bob, m)
}

// TestMisuse: the zero Session and a responder that has not received yet
// refuse with ErrNoSession; bad constructor inputs are ErrMalformed.
func TestMisuse(t *testing.T) {
	var z Session
	if _, _, err := z.Encrypt(nil); !errorsIs(err, ErrNoSession) {
		t.Fatal(err)
	}
	if _, err := z.Decrypt([TagSize]byte{}, make([]byte, 100)); !errorsIs(err, ErrNoSession) {
		t.Fatal(err)
	}
	if _, err := z.MarshalBinary(); !errorsIs(err, ErrNoSession) {
		t.Fatal(err)
	}
	for range z.ExpectedTags() {
		t.Fatal("the zero session expects tags")
	}
	_, bob := pairFrom(t, "misuse")
	if _, _, err := bob.Encrypt(nil); !errorsIs(err, ErrNoSession) {
		t.Fatal(err)
	}
	k, _ := ecdh.X25519().GenerateKey(rand.Reader)
	p256, _ := ecdh.P256().GenerateKey(rand.Reader)
	for _, err := range []error{
		first(NewInitiator(make([]byte, 31), nil, k.PublicKey())),
		first(NewInitiator(make([]byte, 32), nil, nil)),
		first(NewInitiator(make([]byte, 32), nil, p256.PublicKey())),
		first(NewResponder(make([]byte, 33), nil, k)),
		first(NewResponder(make([]byte, 32), nil, nil)),
		first(NewResponder(make([]byte, 32), nil, p256)),
	} {
		if !errorsIs(err, ErrMalformed) {
			t.Fatalf("constructor: %v, want ErrMalformed", err)
		}
	}
}

func first(_ *Session, err error) error { return err }

// TestKeysAreNeverReused is checklist item 30: over 10^5 messages in a
// conversation with DH steps, every message key is distinct and every
// (header key, nonce) pair is distinct.
func TestKeysAreNeverReused(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	mks := make(map[[keySize]byte]struct{}, total)
	nonces := make(map[[keySize + nonceSize]byte]struct{}, total)
	testHookSeal = func(hk [keySize]byte, tag [TagSize]byte, mk [keySize]byte) {
		var hn [keySize + nonceSize]byte
		copy(hn[:], hk[:])
		copy(hn[keySize:], tag[:nonceSize])
		if _, dup := mks[mk]; dup {
			t.Fatal("message key reused")
		}
		if _, dup := nonces[hn]; dup {
			t.Fatal("header key and nonce reused")
		}
		mks[mk], nonces[hn] = struct{}{}, struct{}{}
	}
	defer func() { testHookSeal = nil }()
	alice, bob := pairFrom(t, "no reuse")
	pt := make([]byte, 16)
	for i := 0; i < total; {
		from, to := alice, bob
		if (i/250)%2 == 1 {
			from, to = bob, alice
		}
		for range 250 {
			tag, msg, err := from.Encrypt(pt)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := to.Decrypt(tag, msg); err != nil {
				t.Fatal(err)
			}
			i++
		}
	}
	if len(mks) != total {
		t.Fatalf("%d keys seen, want %d", len(mks), total)
	}
}

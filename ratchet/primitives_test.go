package ratchet

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealpost/sealpost/internal/kdf"
)

// TestHMACMatchesStdlib checks the hand-written HMAC against crypto/hmac.
func TestHMACMatchesStdlib(t *testing.T) {
	rnd := newShake("hmac")
	for _, label := range []string{"", "x", kdf.LabelRatchetMessageKey, kdf.LabelRatchetChainKey,
		kdf.LabelRatchetHeaderAEAD, kdf.LabelRatchetTagKey, string(make([]byte, 55)), string(make([]byte, 64))} {
		for range 20 {
			var k, got [keySize]byte
			rnd.Read(k[:])
			hmacKey(&got, &k, label)
			m := hmac.New(sha256.New, k[:])
			m.Write([]byte(label))
			if want := m.Sum(nil); string(want) != string(got[:]) {
				t.Fatalf("HMAC mismatch for label %q", label)
			}
			hmacKey(&k, &k, label) // aliasing
			if k != got {
				t.Fatal("aliased HMAC differs")
			}
		}
	}
}

// TestConstantSizes pins the wire layout.
func TestConstantSizes(t *testing.T) {
	if headerSize != 40 || encHeaderSize != 56 || Overhead != 85 || TagSize != 16 || nonceOffset != 57 || bodyOffset != 69 {
		t.Fatal("layout constants changed: bump Version")
	}
	if nonceSize != chacha20poly1305.NonceSize || keySize != chacha20poly1305.KeySize {
		t.Fatal("AEAD sizes")
	}
	alice, _ := pairFrom(t, "sizes")
	for _, n := range []int{0, 1, 100, 1000} {
		_, msg, err := alice.Encrypt(make([]byte, n))
		if err != nil || len(msg) != n+Overhead {
			t.Fatalf("message of %d bytes for %d: %v", len(msg), n, err)
		}
	}
}

// TestHeaderLayout: putHeader and parseHeader agree.
func TestHeaderLayout(t *testing.T) {
	var b [headerSize]byte
	dh := [pubSize]byte{1, 2, 3}
	putHeader(b[:], &dh, 0xdeadbeef, 7)
	h := parseHeader(b[:])
	if h.dh != dh || h.pn != 0xdeadbeef || h.n != 7 {
		t.Fatalf("%+v", h)
	}
}

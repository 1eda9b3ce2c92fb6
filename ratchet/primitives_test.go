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
	if Version != 3 || headerSize != 82 || encHeaderSize != 98 || Overhead != 127 || TagSize != 16 || nonceOffset != 1 || headerOffset != 13 || bodyOffset != 111 {
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
	f := kemField{mixed: 0x01020304, kind: kindCT, epoch: 0x05060708, index: 9, chunk: [kemChunkSize]byte{10, 11}}
	putHeader(b[:], &dh, 0xdeadbeef, 7, &f)
	h := parseHeader(b[:])
	if h.dh != dh || h.pn != 0xdeadbeef || h.n != 7 || h.kem != f {
		t.Fatalf("%+v", h)
	}
	if headerSize != 82 || encHeaderSize != 98 || Overhead != 127 || kemFieldSize != 42 {
		t.Fatalf("layout sizes %d %d %d %d", headerSize, encHeaderSize, Overhead, kemFieldSize)
	}
	if ekSize != 1184 || answerSize != 1104 || (ekSize+kemChunkSize-1)/kemChunkSize != 37 || (answerSize+kemChunkSize-1)/kemChunkSize != 35 {
		t.Fatal("ML-KEM-768 sizes")
	}
}

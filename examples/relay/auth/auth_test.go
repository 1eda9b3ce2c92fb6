package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

// TestMessageLayout pins the signed bytes of one request (README,
// "Ownership"), so a change to the format is seen.
func TestMessageLayout(t *testing.T) {
	var nonce [NonceSize]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	m := Message("GET", MailboxResource([]byte{0xaa, 0xbb}), 0x0102030405060708, nonce, nil)
	want := hex.EncodeToString([]byte(Context)) + "00" + "03" + hex.EncodeToString([]byte("GET")) +
		"01" + "02" + "aabb" + "0102030405060708" + "000102030405060708090a0b0c0d0e0f" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256 of nothing
	if got := hex.EncodeToString(m); got != want {
		t.Errorf("message\n got %s\nwant %s", got, want)
	}
	b := BundleResource("bob", 7)
	if got := hex.EncodeToString(b); got != "02"+"0003"+hex.EncodeToString([]byte("bob"))+"00000007" {
		t.Errorf("bundle resource %s", got)
	}
}

func TestSignVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	res := MailboxResource([]byte("m"))
	h := Sign(priv, "GET", res, nil, now)
	s, err := ParseHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	if s.String() != h || !s.Fresh(now) || !s.Verify(pub, "GET", res, nil) {
		t.Fatal("a fresh signature does not verify")
	}
	if s.Verify(pub, "PUT", res, nil) || s.Verify(pub, "GET", MailboxResource([]byte("n")), nil) || s.Verify(pub, "GET", res, []byte{0}) {
		t.Error("a signature verifies for another request")
	}
	if s.Fresh(now.Add(Window+time.Second)) || s.Fresh(now.Add(-Window-time.Second)) || !s.Fresh(now.Add(Window)) {
		t.Error("window")
	}
	if h2 := Sign(priv, "GET", res, nil, now); h2 == h {
		t.Error("two signatures in the same second are equal (no nonce)")
	}
	if k, err := ParseKey(EncodeKey(pub)); err != nil || !bytes.Equal(k, pub) {
		t.Errorf("key round trip: %v", err)
	}
	for _, bad := range []string{"", EncodeKey(pub) + "=", EncodeKey(pub)[:42], strings.Repeat("/", 43)} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

// FuzzParseHeader: ParseHeader never panics, and what it accepts prints
// back to exactly its input (one encoding per header), while ParseKey
// accepts only 32-byte keys that print back too.
func FuzzParseHeader(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f.Add(Sign(priv, "GET", MailboxResource([]byte("m")), nil, time.Unix(1700000000, 0)))
	f.Add("v1 0 AAAAAAAAAAAAAAAAAAAAAA " + strings.Repeat("A", 86))
	f.Add("v1 9223372036854775808 AAAAAAAAAAAAAAAAAAAAAA " + strings.Repeat("A", 86))
	f.Add("v1 -1 x y")
	f.Add("v1 00 AAAAAAAAAAAAAAAAAAAAAA " + strings.Repeat("A", 86))
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		s, err := ParseHeader(v)
		if err == nil {
			if s.String() != v {
				t.Fatalf("%q parsed, prints as %q", v, s.String())
			}
			if s.Time < 0 {
				t.Fatalf("negative time from %q", v)
			}
			_ = s.Fresh(time.Now())
		}
		if k, err := ParseKey(v); err == nil && (len(k) != ed25519.PublicKeySize || EncodeKey(k) != v) {
			t.Fatalf("key %q parsed as %x", v, k)
		}
	})
}

// BenchmarkVerify is the relay's cost of checking one signed request,
// without the seen-set: parse the header, check the window, verify.
func BenchmarkVerify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	res := MailboxResource(bytes.Repeat([]byte{7}, 32))
	h := Sign(priv, "GET", res, nil, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		s, err := ParseHeader(h)
		if err != nil || !s.Fresh(time.Now()) || !s.Verify(pub, "GET", res, nil) {
			b.Fatal("refused")
		}
	}
}

package benchmarks

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	dr "github.com/status-im/doubleratchet"
)

// checkPair runs one message each way, three delivered in reverse, and a
// replay of the last one, which every implementation must refuse.
func checkPair[M any](t *testing.T, newPair func() (Pair[M], error)) {
	p, err := newPair()
	if err != nil {
		t.Fatal(err)
	}
	if err := Warm(p); err != nil {
		t.Fatal(err)
	}
	var last M
	for i, from := range []int{Alice, Bob, Alice} {
		pt := fmt.Appendf(nil, "message %d from %d", i, from)
		m, err := p.Seal(from, pt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.Open(1-from, m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("message %d: got %q, want %q", i, got, pt)
		}
		if p.Wire(m) <= len(pt) {
			t.Fatalf("message %d: %d wire bytes for %d of plaintext", i, p.Wire(m), len(pt))
		}
		last = m
	}
	var batch []M
	for i := range 3 {
		m, err := p.Seal(Alice, []byte{byte(i)})
		if err != nil {
			t.Fatal(err)
		}
		batch = append(batch, m)
	}
	for i := len(batch) - 1; i >= 0; i-- {
		got, err := p.Open(Bob, batch[i])
		if err != nil {
			t.Fatalf("reverse %d: %v", i, err)
		}
		if !bytes.Equal(got, []byte{byte(i)}) {
			t.Fatalf("reverse %d: got %x", i, got)
		}
	}
	if got, err := p.Open(Bob, last); err == nil {
		t.Fatalf("a replayed message opened again (%q)", got)
	}
}

func TestPairs(t *testing.T) {
	t.Run("impl=sealpost", func(t *testing.T) { checkPair(t, ratchetPair) })
	t.Run("impl=sealpost-device", func(t *testing.T) { checkPair(t, devicePair) })
	t.Run("impl=libsignal", func(t *testing.T) { checkPair(t, libsignalPair(false)) })
	t.Run("impl=libsignal-saved", func(t *testing.T) { checkPair(t, libsignalPair(true)) })
	t.Run("impl=statusdr", func(t *testing.T) { checkPair(t, statusPair) })
}

func TestEstablish(t *testing.T) {
	for name, newEst := range map[string]func() (Establisher, error){
		"sealpost":        NewRatchetEstablish,
		"sealpost-device": NewDeviceEstablish,
		"libsignal":       func() (Establisher, error) { return NewLibsignalEstablish(false) },
		"libsignal-saved": func() (Establisher, error) { return NewLibsignalEstablish(true) },
		"statusdr":        NewStatusEstablish,
	} {
		t.Run("impl="+name, func(t *testing.T) {
			e, err := newEst()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 { // twice: Reset must make a second start possible
				if err := e.Reset(); err != nil {
					t.Fatal(err)
				}
				pt := fmt.Appendf(nil, "first message %d", i)
				got, wire, err := e.Establish(pt)
				if err != nil {
					t.Fatalf("start %d: %v", i, err)
				}
				if !bytes.Equal(got, pt) || wire <= len(pt) {
					t.Fatalf("start %d: got %q in %d wire bytes", i, got, wire)
				}
			}
		})
	}
}

// TestStatusDRDefaults records why impl=statusdr calls DeleteMk after
// every message: without it a replayed message decrypts again, and the key
// storage keeps a table for every peer ratchet key even when told to keep
// only a few keys.
func TestStatusDRDefaults(t *testing.T) {
	p, err := NewStatusPair(false)
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.Seal(Alice, []byte("once"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if got, err := p.Open(Bob, m); err != nil || string(got) != "once" {
			t.Fatalf("delivery %d: %q, %v (the library's default behaviour changed)", i, got, err)
		}
	}

	// Ping-pong with the key storage told to keep 10 keys.
	ad, err := statusAD()
	if err != nil {
		t.Fatal(err)
	}
	sk := make(dr.Key, 32)
	rand.Read(sk)
	kp, err := dr.DefaultCrypto{}.GenerateDH()
	if err != nil {
		t.Fatal(err)
	}
	ks := &dr.KeysStorageInMemory{}
	opts := []func() (dr.Session, error){
		func() (dr.Session, error) { return dr.NewWithRemoteKey([]byte("s"), sk, kp.PublicKey(), nil) },
		func() (dr.Session, error) {
			return dr.New([]byte("s"), sk, kp, nil, dr.WithKeysStorage(ks), dr.WithMaxKeep(10), dr.WithMaxMessageKeysPerSession(10))
		},
	}
	q := &StatusPair{ad: ad}
	for i, f := range opts {
		if q.s[i], err = f(); err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 100
	for i := range 2 * rounds {
		m, err := q.Seal(i%2, []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Open(1-i%2, m); err != nil {
			t.Fatal(err)
		}
	}
	all, err := ks.All()
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, k := range all {
		keys += len(k)
	}
	if len(all) < rounds || keys > 10 {
		t.Fatalf("after %d rounds: %d tables holding %d keys (the library's default behaviour changed)", rounds, len(all), keys)
	}
}

// TestFloorHMAC checks the floor's HMAC against crypto/hmac.
func TestFloorHMAC(t *testing.T) {
	var key, got [32]byte
	rand.Read(key[:])
	hmacKey(&got, &key, labelChainKey)
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(labelChainKey))
	if !bytes.Equal(got[:], m.Sum(nil)) {
		t.Fatal("floor HMAC differs from crypto/hmac")
	}
	var mk [32]byte
	rand.Read(mk[:])
	nm := hmac.New(sha256.New, mk[:])
	nm.Write([]byte(labelBodyNonce))
	f := NewFloor(100)
	f.mk = mk
	nm.Write(f.body)
	f.BodyNonce()
	if !bytes.Equal(f.bodyNonce[:], nm.Sum(nil)[:len(f.bodyNonce)]) {
		t.Fatal("floor body nonce differs from crypto/hmac")
	}
	f.SealOpen()
	f.DHStep()
}

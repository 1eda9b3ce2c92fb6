package sealpost_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
)

// recordingStore remembers every plaintext name and value a Device wrote
// through it, to check that none of them reaches the inner store.
type recordingStore struct {
	sealpost.Store
	mu     sync.Mutex
	names  map[string]bool
	values [][]byte
}

func (r *recordingStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	r.mu.Lock()
	_ = b.Each(func(key string, value []byte, deleted bool) error {
		r.names[key] = true
		if !deleted {
			r.values = append(r.values, append([]byte{}, value...))
		}
		return nil
	})
	r.mu.Unlock()
	return r.Store.Apply(ctx, b)
}

func encryptedParty(t testing.TB, addr sealpost.Address, c *clock, inner sealpost.Store, key []byte) *party {
	t.Helper()
	enc, err := sealpost.NewEncryptedStore(inner, key)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sealpost.Open(ctx, enc, addr, sealpost.WithClock(c.now), sealpost.WithReceiptDelay(time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return &party{Device: d, addr: addr}
}

func storeKey(b byte) []byte { return bytes.Repeat([]byte{b}, sealpost.EncryptedStoreKeySize) }

// TestEncryptedStoreDump: after a conversation, the inner store holds no
// peer address, no plaintext name, no 16-byte run of any plaintext value
// (identity seeds, ratchet keys, bodies) and no public key bytes.
func TestEncryptedStoreDump(t *testing.T) {
	c := newClock()
	inner := sealpost.NewMemoryStore()
	enc, err := sealpost.NewEncryptedStore(inner, storeKey(7))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{Store: enc, names: map[string]bool{}}
	addr := sealpost.Address{User: "carol", Device: 3}
	d, err := sealpost.Open(ctx, rec, addr, sealpost.WithClock(c.now), sealpost.WithReceiptDelay(time.Second, 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	carol := &party{Device: d, addr: addr}
	dave := newParty(t, "dave", c)
	connect(t, carol, dave)
	for range 5 {
		receive(t, dave, send(t, carol, dave, "a secret body that must not be stored in clear"))
		receive(t, carol, send(t, dave, carol, "another secret body, the reply"))
	}
	snap := inner.Snapshot()
	if len(snap) == 0 || len(rec.names) == 0 {
		t.Fatal("nothing was stored")
	}
	secrets := [][]byte{carol.Identity().Bytes(), dave.Identity().Bytes(), carol.Mailbox(), dave.Mailbox(),
		[]byte("dave"), []byte("carol"), []byte("secret body")}
	for name, value := range snap {
		if !strings.HasPrefix(name, "e1/") {
			t.Fatalf("inner name %q is not a hashed name", name)
		}
		for plain := range rec.names {
			if strings.Contains(name, plain) {
				t.Fatalf("inner name %q contains the plaintext name %q", name, plain)
			}
		}
		for _, s := range secrets {
			if bytes.Contains(value, s) || strings.Contains(name, string(s)) {
				t.Fatalf("inner record %q holds %q", name, s)
			}
		}
		for _, v := range rec.values {
			for i := 0; i+16 <= len(v); i += 8 {
				if bytes.Contains(value, v[i:i+16]) {
					t.Fatalf("inner record %q holds 16 plaintext bytes of a value", name)
				}
			}
		}
	}
	// The device reopens from the encrypted store and keeps talking.
	again := encryptedParty(t, addr, c, inner, storeKey(7))
	receive(t, dave, send(t, again, dave, "after reopening"))
}

// TestEncryptedStoreTamper: a flipped byte anywhere in any sealed value, a
// truncated value, a value moved under another name and the wrong key are
// each ErrMalformed; the device refuses to open rather than read them.
func TestEncryptedStoreTamper(t *testing.T) {
	c := newClock()
	inner := sealpost.NewMemoryStore()
	alice := encryptedParty(t, sealpost.Address{User: "alice", Device: 1}, c, inner, storeKey(1))
	bob := newParty(t, "bob", c)
	connect(t, alice, bob)
	receive(t, bob, send(t, alice, bob, "hi"))
	good := inner.Snapshot()

	enc, err := sealpost.NewEncryptedStore(inner, storeKey(1))
	if err != nil {
		t.Fatal(err)
	}
	// One plaintext name to probe: the device record.
	const deviceKey = "device"
	var deviceName string
	for name := range good {
		inner.Restore(good)
		mutated := inner.Snapshot()
		delete(mutated, name)
		inner.Restore(mutated)
		if _, err := enc.Get(ctx, deviceKey); errors.Is(err, sealpost.ErrNotFound) {
			deviceName = name
		}
	}
	inner.Restore(good)
	if deviceName == "" {
		t.Fatal("the device record was not found under any hashed name")
	}
	value := good[deviceName]
	for i := range value {
		m := inner.Snapshot()
		v := append([]byte{}, value...)
		v[i] ^= 0x10
		m[deviceName] = v
		inner.Restore(m)
		if _, err := enc.Get(ctx, deviceKey); !errors.Is(err, sealpost.ErrMalformed) && !errors.Is(err, sealpost.ErrUnsupportedVersion) {
			t.Fatalf("flip at byte %d: Get = %v, want ErrMalformed", i, err)
		}
		if i == 0 || i == len(value)-1 {
			if _, err := sealpost.Open(ctx, enc, alice.addr); err == nil {
				t.Fatalf("flip at byte %d: Open succeeded", i)
			}
		}
	}
	for _, n := range []int{0, 1, 24, 40, len(value) - 1} {
		m := inner.Snapshot()
		m[deviceName] = value[:n]
		inner.Restore(m)
		if _, err := enc.Get(ctx, deviceKey); !errors.Is(err, sealpost.ErrMalformed) {
			t.Fatalf("truncated to %d: Get = %v, want ErrMalformed", n, err)
		}
	}
	// Another record's value under the device's name.
	for name, v := range good {
		if name == deviceName {
			continue
		}
		m := inner.Snapshot()
		m[deviceName] = v
		inner.Restore(m)
		if _, err := enc.Get(ctx, deviceKey); !errors.Is(err, sealpost.ErrMalformed) {
			t.Fatalf("moved value: Get = %v, want ErrMalformed", err)
		}
		break
	}
	inner.Restore(good)
	wrong, err := sealpost.NewEncryptedStore(inner, storeKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := sealpost.Open(ctx, wrong, alice.addr); !errors.Is(err, sealpost.ErrMalformed) {
		t.Fatalf("Open with the wrong key = %v, %v; want ErrMalformed, not a new identity", d, err)
	}
	if len(inner.Snapshot()) != len(good) {
		t.Fatal("Open with the wrong key wrote to the store")
	}
	if _, err := sealpost.NewEncryptedStore(inner, make([]byte, 31)); !errors.Is(err, sealpost.ErrMalformed) {
		t.Fatalf("31-byte key: %v, want ErrMalformed", err)
	}
	inner.Restore(good)
	if _, err := sealpost.Open(ctx, enc, alice.addr); err != nil {
		t.Fatalf("the untouched store no longer opens: %v", err)
	}
}

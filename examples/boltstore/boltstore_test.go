package boltstore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sealpost/sealpost"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustGet(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	v, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func wantNotFound(t *testing.T, s *Store, key string) {
	t.Helper()
	if v, err := s.Get(context.Background(), key); !errors.Is(err, sealpost.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, v, err)
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	wantNotFound(t, s, "a")
	wantNotFound(t, s, "")

	b := new(sealpost.Batch)
	b.Put("a", []byte("one"))
	b.Put("b", []byte("two"))
	b.Put("empty", []byte{})
	b.Put("c", []byte("gone soon"))
	b.Delete("c")
	b.Delete("never-there")
	if err := s.Apply(ctx, b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if v := mustGet(t, s, "a"); string(v) != "one" {
		t.Errorf("a = %q", v)
	}
	if v := mustGet(t, s, "b"); string(v) != "two" {
		t.Errorf("b = %q", v)
	}
	if v := mustGet(t, s, "empty"); v == nil || len(v) != 0 {
		t.Errorf("empty = %#v, want a non-nil empty slice", v)
	}
	wantNotFound(t, s, "c")
	wantNotFound(t, s, "never-there")
	// Keys that sort next to stored ones are still absent.
	wantNotFound(t, s, "a0")
	wantNotFound(t, s, "0")

	// Get returns a copy: changing it changes nothing stored.
	v := mustGet(t, s, "a")
	v[0] = 'X'
	if v := mustGet(t, s, "a"); string(v) != "one" {
		t.Errorf("a after changing a copy = %q", v)
	}

	b = new(sealpost.Batch)
	b.Delete("a")
	b.Put("b", []byte("three"))
	if err := s.Apply(ctx, b); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	wantNotFound(t, s, "a")
	if v := mustGet(t, s, "b"); string(v) != "three" {
		t.Errorf("b = %q", v)
	}
}

// TestApplyAtomic checks that a batch that fails part way writes nothing:
// once with a key bbolt itself refuses, once with a failure injected after
// some writes have gone into the transaction.
func TestApplyAtomic(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		bad  func(b *sealpost.Batch)
		hook func(key string) error
		want error
	}{
		{name: "empty key", bad: func(b *sealpost.Batch) { b.Put("", []byte("x")) }, want: bolterrors.ErrKeyRequired},
		{name: "key too large", bad: func(b *sealpost.Batch) { b.Put(strings.Repeat("k", bolt.MaxKeySize+1), []byte("x")) }, want: bolterrors.ErrKeyTooLarge},
		{name: "injected", hook: func(key string) error {
			if key == "z-last" {
				return errInjected
			}
			return nil
		}, want: errInjected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTemp(t)
			seed := new(sealpost.Batch)
			seed.Put("keep", []byte("old"))
			seed.Put("drop", []byte("old"))
			if err := s.Apply(ctx, seed); err != nil {
				t.Fatal(err)
			}
			b := new(sealpost.Batch)
			b.Put("keep", []byte("new"))
			b.Delete("drop")
			b.Put("fresh", []byte("new"))
			if tc.bad != nil {
				tc.bad(b)
			}
			b.Put("z-last", []byte("new"))
			s.beforeCommit = tc.hook
			if err := s.Apply(ctx, b); !errors.Is(err, tc.want) {
				t.Fatalf("Apply = %v, want %v", err, tc.want)
			}
			s.beforeCommit = nil
			if v := mustGet(t, s, "keep"); string(v) != "old" {
				t.Errorf("keep = %q after a failed Apply", v)
			}
			if v := mustGet(t, s, "drop"); string(v) != "old" {
				t.Errorf("drop = %q after a failed Apply", v)
			}
			wantNotFound(t, s, "fresh")
			wantNotFound(t, s, "z-last")
		})
	}
}

var errInjected = errors.New("injected failure")

func TestCanceledContext(t *testing.T) {
	s, _ := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := new(sealpost.Batch)
	b.Put("a", []byte("1"))
	if err := s.Apply(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply = %v", err)
	}
	if _, err := s.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v", err)
	}
	wantNotFound(t, s, "a")
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b := new(sealpost.Batch)
	b.Put("a", []byte("one"))
	b.Put("b", bytes.Repeat([]byte{7}, 100_000)) // spans overflow pages
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := mustGet(t, s, "a"); string(v) != "one" {
		t.Errorf("a = %q", v)
	}
	if v := mustGet(t, s, "b"); !bytes.Equal(v, bytes.Repeat([]byte{7}, 100_000)) {
		t.Errorf("b has %d bytes", len(v))
	}
}

// TestSharedDB keeps two Stores on different buckets of one file apart.
func TestSharedDB(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	other, err := New(s.DB(), "app")
	if err != nil {
		t.Fatal(err)
	}
	b := new(sealpost.Batch)
	b.Put("a", []byte("device"))
	if err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, other, "a")
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	// Closing a Store from New leaves the database open.
	if v := mustGet(t, s, "a"); string(v) != "device" {
		t.Errorf("a = %q", v)
	}
	if _, err := New(s.DB(), ""); err == nil {
		t.Error("New with an empty bucket name succeeded")
	}
}

// TestDeviceOnBolt runs a Device on a Store, closes it, and opens it again:
// the same identity and mailbox come back.
func TestDeviceOnBolt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dev.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	addr := sealpost.Address{User: "bob", Device: 1}
	d, err := sealpost.Open(ctx, s, addr)
	if err != nil {
		t.Fatal(err)
	}
	id, mbx := d.Identity().Bytes(), d.Mailbox()
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err = sealpost.Open(ctx, s, addr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Identity().Bytes(), id) || !bytes.Equal(d.Mailbox(), mbx) {
		t.Error("the reopened device has another identity or mailbox")
	}
}

// TestCheckStore runs the library's Store conformance check on the bolt
// store, plain and wrapped in an EncryptedStore.
func TestCheckStore(t *testing.T) {
	s, _ := openTemp(t)
	if err := sealpost.CheckStore(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	enc, err := sealpost.NewEncryptedStore(s, bytes.Repeat([]byte{9}, sealpost.EncryptedStoreKeySize))
	if err != nil {
		t.Fatal(err)
	}
	if err := sealpost.CheckStore(context.Background(), enc); err != nil {
		t.Fatal(err)
	}
}

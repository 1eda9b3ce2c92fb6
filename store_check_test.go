package sealpost_test

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost"
)

func TestCheckStorePasses(t *testing.T) {
	enc, err := sealpost.NewEncryptedStore(sealpost.NewMemoryStore(), make([]byte, sealpost.EncryptedStoreKeySize))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]sealpost.Store{"MemoryStore": sealpost.NewMemoryStore(), "EncryptedStore": enc} {
		t.Run(name, func(t *testing.T) {
			if err := sealpost.CheckStore(ctx, s); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// brokenStore is a map store with one contract violation switched on.
type brokenStore struct {
	mu sync.Mutex
	m  map[string][]byte
	// the violations
	noCopy, nilForAbsent, otherAbsentErr, piecewise, partialOnCancel, dropEmpty bool
}

func (s *brokenStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	switch {
	case !ok && s.nilForAbsent:
		return nil, nil
	case !ok && s.otherAbsentErr:
		return nil, errors.New("no such key")
	case !ok:
		return nil, sealpost.ErrNotFound
	case s.noCopy:
		return v, nil
	}
	return append([]byte{}, v...), nil
}

func (s *brokenStore) Apply(ctx context.Context, b *sealpost.Batch) error {
	if !s.piecewise {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	first := true
	return b.Each(func(key string, value []byte, deleted bool) error {
		if s.partialOnCancel && !first && ctx.Err() != nil {
			return ctx.Err()
		}
		first = false
		if s.piecewise {
			s.mu.Lock()
			defer s.mu.Unlock()
			runtime.Gosched()
		}
		switch {
		case deleted:
			delete(s.m, key)
		case len(value) == 0 && s.dropEmpty:
		default:
			s.m[key] = append([]byte{}, value...)
		}
		return nil
	})
}

// TestCheckStoreFindsViolations: every contract violation a Device would
// suffer from is reported. Each broken store is otherwise correct; the
// piecewise one applies a batch key by key (not atomic) and is caught by
// the concurrent reader, which may need a few attempts to interleave.
func TestCheckStoreFindsViolations(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func() *brokenStore
		want  string
	}{
		{"returns its own slice", func() *brokenStore { return &brokenStore{noCopy: true} }, "copy"},
		{"nil for absent", func() *brokenStore { return &brokenStore{nilForAbsent: true} }, "ErrNotFound"},
		{"other error for absent", func() *brokenStore { return &brokenStore{otherAbsentErr: true} }, "ErrNotFound"},
		{"drops empty values", func() *brokenStore { return &brokenStore{dropEmpty: true} }, "empty"},
		{"partial apply on cancel", func() *brokenStore { return &brokenStore{partialOnCancel: true} }, "part of its batch"},
		{"not atomic", func() *brokenStore { return &brokenStore{piecewise: true} }, "part of a batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			for range 20 {
				s := tc.store()
				s.m = map[string][]byte{}
				if err = sealpost.CheckStore(ctx, s); err != nil {
					break
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckStore = %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

package sealpost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// CheckStore exercises s as a Device relies on it and returns the first
// way it falls short of the Store contract, or nil. Run it in the tests of
// your own Store implementation:
//
//	if err := sealpost.CheckStore(ctx, myStore); err != nil {
//		t.Fatal(err)
//	}
//
// It checks that an absent key is ErrNotFound, that empty, large and
// binary values and long names round-trip, that Get hands out a copy, that
// a batch's later operations on a key replace earlier ones, that deletes
// work and deleting an absent key is no error, that a batch applied with a
// cancelled context is applied whole or not at all, and that concurrent
// readers never see part of a batch. It writes only keys starting with
// "sealpost-checkstore/" and deletes them before it returns; run it on a
// store holding no device, as it cannot stop a Device from reading its
// records meanwhile. It does not check durability across a crash: that
// needs a process to kill (see the examples' bolt store crash test).
func CheckStore(ctx context.Context, s Store) error {
	const p = "sealpost-checkstore/"
	long := string(bytes.Repeat([]byte("n/"), 100))
	cleanup := func() {
		b := new(Batch)
		for _, k := range []string{"absent", "a", "empty", "big", long, "moved", "x", "y"} {
			b.Delete(p + k)
		}
		for i := range checkPairs {
			b.Delete(p + "pair/" + strconv.Itoa(i))
		}
		_ = s.Apply(context.WithoutCancel(ctx), b)
	}
	cleanup() // what an interrupted earlier run left
	defer cleanup()
	fail := func(format string, args ...any) error {
		return fmt.Errorf("sealpost: CheckStore: "+format, args...)
	}
	get := func(key string) ([]byte, error) {
		v, err := s.Get(ctx, p+key)
		if err != nil {
			return nil, fail("Get %q: %w", key, err)
		}
		return v, nil
	}

	if _, err := s.Get(ctx, p+"absent"); !errors.Is(err, ErrNotFound) {
		return fail("Get of an absent key returned %v, want ErrNotFound (errors.Is)", err)
	}

	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>8)
	}
	values := map[string][]byte{"a": {0, 1, 2, 0xff}, "empty": {}, "big": big, long: []byte("long name")}
	b := new(Batch)
	for k, v := range values {
		b.Put(p+k, v)
	}
	if err := s.Apply(ctx, b); err != nil {
		return fail("Apply: %w", err)
	}
	for k, want := range values {
		got, err := get(k)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fail("Get %q returned %d bytes that differ from the %d put", k, len(got), len(want))
		}
	}
	got, _ := get("a")
	got[0] ^= 0xff
	if again, err := get("a"); err != nil || again[0] != 0 {
		return fail("Get does not return a copy: changing its result changed the stored value")
	}

	b = new(Batch)
	b.Put(p+"x", []byte("first"))
	b.Delete(p + "x")
	b.Put(p+"y", []byte("first"))
	b.Put(p+"y", []byte("second"))
	b.Delete(p + "absent")
	b.Delete(p + "a")
	if err := s.Apply(ctx, b); err != nil {
		return fail("Apply of puts and deletes: %w", err)
	}
	if _, err := s.Get(ctx, p+"x"); !errors.Is(err, ErrNotFound) {
		return fail("a key put then deleted in one batch is present (%v)", err)
	}
	if _, err := s.Get(ctx, p+"a"); !errors.Is(err, ErrNotFound) {
		return fail("a deleted key is present (%v)", err)
	}
	if v, err := get("y"); err != nil || string(v) != "second" {
		return fail("a key put twice in one batch holds %q, want the later value", v)
	}

	// A cancelled context: the batch is applied whole or not at all.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	b = new(Batch)
	b.Put(p+"moved", []byte("new"))
	b.Delete(p + "y")
	err := s.Apply(cancelled, b)
	_, errMoved := s.Get(ctx, p+"moved")
	_, errY := s.Get(ctx, p+"y")
	if errors.Is(errMoved, ErrNotFound) != (errY == nil) {
		return fail("Apply with a cancelled context (error %v) applied part of its batch", err)
	}
	if err == nil && errY == nil {
		return fail("Apply with a cancelled context returned nil but did not apply its batch")
	}

	return checkIsolation(ctx, s, p, fail)
}

// checkPairs is how many keys each batch of the isolation check writes.
const checkPairs = 4

// checkIsolation has one goroutine apply batches that write the same
// generation to checkPairs keys while another reads them: a reader that
// sees two generations in one pass saw part of a batch. Reads of separate
// keys are not one snapshot, so a later key may be newer than an earlier
// one, never older.
func checkIsolation(ctx context.Context, s Store, p string, fail func(string, ...any) error) error {
	key := func(i int) string { return p + "pair/" + strconv.Itoa(i) }
	write := func(gen int) error {
		b := new(Batch)
		for i := range checkPairs {
			b.Put(key(i), []byte(strconv.Itoa(gen)))
		}
		return s.Apply(ctx, b)
	}
	if err := write(0); err != nil {
		return fail("Apply: %w", err)
	}
	// The writer runs until the reader has made its passes, so the two
	// overlap however the goroutines are scheduled.
	const passes = 2000
	var wg sync.WaitGroup
	var writeErr error
	var done atomic.Bool
	generations := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			generations++
			if err := write(generations); err != nil {
				writeErr = err
				return
			}
		}
	}()
	var readErr error
	for pass := 0; pass < passes && readErr == nil; pass++ {
		last := -1
		for i := range checkPairs {
			v, err := s.Get(ctx, key(i))
			if err != nil {
				readErr = fail("Get during concurrent Apply: %w", err)
				break
			}
			gen, err := strconv.Atoi(string(v))
			if err != nil {
				readErr = fail("Get during concurrent Apply returned %q, a value never put", v)
				break
			}
			if gen < last {
				readErr = fail("a reader saw part of a batch: generation %d after %d", gen, last)
				break
			}
			last = gen
		}
		runtime.Gosched()
	}
	done.Store(true)
	wg.Wait()
	if writeErr != nil {
		return fail("Apply: %w", writeErr)
	}
	if readErr != nil {
		return readErr
	}
	for i := range checkPairs {
		v, err := s.Get(ctx, key(i))
		if err != nil || string(v) != strconv.Itoa(generations) {
			return fail("after %d batches %q holds %q (%v)", generations, key(i), v, err)
		}
	}
	return nil
}

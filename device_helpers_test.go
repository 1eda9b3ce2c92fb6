package sealpost_test

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/keys"
)

// Helpers of the Device tests on attacker input. "Unchanged" is checked
// as the TESTING.md checklist defines it: the store is byte-identical
// before and after, and (for parties on a faultyStore) Apply was not
// called.

// dmSentinels are the sentinel errors an operation on attacker input may
// return. Anything else (an untyped error) fails the tests that use
// dmTyped.
var dmSentinels = []error{
	sealpost.ErrMalformed, sealpost.ErrTooLarge, sealpost.ErrUnsupportedVersion,
	sealpost.ErrBadSignature, sealpost.ErrUnknownPrekey, sealpost.ErrDecrypt,
	sealpost.ErrLowOrderPoint, sealpost.ErrDuplicate, sealpost.ErrTooManySkipped,
	sealpost.ErrExpiredKey, sealpost.ErrNoSession, sealpost.ErrIdentityChanged,
}

// dmTyped reports whether err matches one of the sentinels.
func dmTyped(err error) bool {
	for _, s := range dmSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// dmState is what "unchanged" compares: the store's contents and how many
// times Apply was called.
type dmState struct {
	snap    map[string][]byte
	applies int
}

func dmCapture(p *party, fs *faultyStore) dmState {
	st := dmState{snap: p.store.Snapshot(), applies: -1}
	if fs != nil {
		fs.mu.Lock()
		st.applies = fs.applies
		fs.mu.Unlock()
	}
	return st
}

// dmUnchanged fails the test if the store or the Apply count moved since
// before was captured.
func dmUnchanged(t testing.TB, p *party, fs *faultyStore, before dmState, what string) {
	t.Helper()
	after := dmCapture(p, fs)
	if !maps.EqualFunc(before.snap, after.snap, bytes.Equal) {
		t.Fatalf("%s: the store changed (%s)", what, dmStoreDiff(before.snap, after.snap))
	}
	if before.applies != after.applies {
		t.Fatalf("%s: Apply was called %d times", what, after.applies-before.applies)
	}
}

// dmStoreDiff names the keys that differ between two snapshots.
func dmStoreDiff(a, b map[string][]byte) string {
	var diff []string
	for k, v := range a {
		if w, ok := b[k]; !ok {
			diff = append(diff, "-"+k)
		} else if !bytes.Equal(v, w) {
			diff = append(diff, "~"+k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diff = append(diff, "+"+k)
		}
	}
	slices.Sort(diff)
	return strings.Join(diff, " ")
}

// dmBlob returns blob i of the device's split bundle (n one-time prekeys),
// marshalled as the relay stores it.
func dmBlob(t testing.TB, p *party, n, i int) []byte {
	t.Helper()
	b, err := p.NewBundle(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Split()[i].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// dmStart has from start a session with to from a bundle blob.
func dmStart(t testing.TB, from, to *party, blob []byte) {
	t.Helper()
	b, err := keys.ParseBundle(blob, testBundleClock)
	if err != nil {
		t.Fatal(err)
	}
	if err := from.StartSession(ctx, to.addr, b); err != nil {
		t.Fatal(err)
	}
}

// dmReopen opens p's device again from its store, as after a restart.
func dmReopen(t testing.TB, p *party, c *clock, opts ...sealpost.Option) *party {
	t.Helper()
	opts = append([]sealpost.Option{sealpost.WithClock(c.now), sealpost.WithReceiptDelay(time.Second, 2*time.Second)}, opts...)
	d, err := sealpost.Open(ctx, p.store, p.addr, opts...)
	if err != nil {
		t.Fatalf("reopening %s: %v", p.addr, err)
	}
	return &party{Device: d, addr: p.addr, store: p.store}
}

// withByte returns a copy of raw with byte i set to v.
func withByte(raw []byte, i int, v byte) []byte {
	out := bytes.Clone(raw)
	out[i] = v
	return out
}

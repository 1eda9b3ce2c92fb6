package ratchet

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

// craft seals a message from a copy of s with the header numbers forced to
// pn and n; s is not changed. The body key is the chain's next key, not the
// n-th, so only checks made before the body can pass.
func craft(t testing.TB, s *Session, pn, n uint32) sealed {
	t.Helper()
	var c Session
	if err := c.UnmarshalBinary(state(t, s)); err != nil {
		t.Fatal(err)
	}
	c.pn = pn
	var mk [keySize]byte
	f := kemField{mixed: c.own.declared}
	tag, msg := c.seal(c.send.hk, n, &mk, &f, []byte("crafted"))
	return sealed{tag, msg, []byte("crafted")}
}

func sendN(t testing.TB, s *Session, k int) []sealed {
	out := make([]sealed, k)
	for i := range out {
		out[i] = send(t, s, fmt.Sprintf("m%d", i))
	}
	return out
}

// TestMaxSkipBoundary is checklist item 15, in the next chain (the responder's
// first message) and in the current chain: a gap of MaxSkip succeeds, one of
// MaxSkip+1 is ErrTooManySkipped and changes nothing, and the messages
// after it still decrypt.
func TestMaxSkipBoundary(t *testing.T) {
	for _, started := range []bool{false, true} {
		alice, bob := pairFrom(t, fmt.Sprint("maxskip ", started))
		if started {
			recv(t, bob, send(t, alice, "start"))
		}
		msgs := sendN(t, alice, MaxSkip+2)
		mustFail(t, bob, msgs[MaxSkip+1].tag, msgs[MaxSkip+1].msg, ErrTooManySkipped)
		recv(t, bob, msgs[MaxSkip])
		if bob.skipped.count != MaxSkip {
			t.Fatalf("skipped = %d, want %d", bob.skipped.count, MaxSkip)
		}
		recv(t, bob, msgs[MaxSkip+1])
		for _, m := range msgs[:MaxSkip] {
			recv(t, bob, m)
		}
	}
}

// TestMaxSkipPN: the keys left in the old chain count too. A DH step whose
// PN is MaxSkip+1 past Nr is refused unchanged; MaxSkip past is accepted.
func TestMaxSkipPN(t *testing.T) {
	for _, lost := range []int{MaxSkip, MaxSkip + 1} {
		alice, bob := pairFrom(t, fmt.Sprint("pn ", lost))
		recv(t, bob, send(t, alice, "start"))
		old := sendN(t, alice, lost)
		recv(t, alice, send(t, bob, "reply"))
		m := send(t, alice, "after the step")
		if lost > MaxSkip {
			mustFail(t, bob, m.tag, m.msg, ErrTooManySkipped)
			continue
		}
		recv(t, bob, m)
		recv(t, bob, old[0])
		recv(t, bob, old[lost-1])
	}
}

// TestTotalBoundPerMessage: a message whose skips would pass the total cap
// at once is refused; the cap is enforced by eviction only across messages.
func TestTotalBoundPerMessage(t *testing.T) {
	alice, bob := pairFrom(t, "total per message", WithMaxSkip(4), WithMaxSkippedKeys(5))
	recv(t, bob, send(t, alice, "start"))
	sendN(t, alice, 3) // lost: old chain gap 3
	recv(t, alice, send(t, bob, "reply"))
	new := sendN(t, alice, 4) // new chain gap 3
	mustFail(t, bob, new[3].tag, new[3].msg, ErrTooManySkipped)
	recv(t, bob, new[2])
}

// TestEviction is checklist items 16 and 17: 1,000 forced DH steps with 3
// skipped keys each. The store never holds more than the cap, the oldest
// keys go first, and a message whose key was evicted is ErrExpiredKey, not
// ErrDuplicate.
func TestEviction(t *testing.T) {
	rounds, opts := 1000, []Option(nil)
	if testing.Short() {
		rounds, opts = 100, []Option{WithMaxSkippedKeys(200)}
	}
	alice, bob := pairFrom(t, "eviction", opts...)
	capKeys := int(bob.cfg.maxSkipped)
	var lost []sealed
	maxState := 0
	for r := range rounds {
		ms := sendN(t, alice, 4)
		recv(t, bob, ms[3])
		lost = append(lost, ms[:3]...)
		recv(t, alice, send(t, bob, fmt.Sprint("reply ", r)))
		if bob.skipped.count > capKeys {
			t.Fatalf("round %d: %d skipped keys, cap %d", r, bob.skipped.count, capKeys)
		}
		maxState = max(maxState, len(state(t, bob)))
	}
	if bob.skipped.count != capKeys {
		t.Fatalf("skipped = %d, want the cap %d", bob.skipped.count, capKeys)
	}
	evicted := len(lost) - capKeys
	// State size is bounded by the cap and the records: about 36 bytes per
	// key, 16 per expired tag, 32 per replay entry, plus the chains.
	if bound := capKeys*40 + ExpiredRecord*16 + ReplayRecord*32 + rounds*40 + 1024; maxState > bound {
		t.Fatalf("state grew to %d bytes, bound %d", maxState, bound)
	}
	mustFail(t, bob, lost[0].tag, lost[0].msg, ErrExpiredKey)
	mustFail(t, bob, lost[evicted-1].tag, lost[evicted-1].msg, ErrExpiredKey)
	recv(t, bob, lost[evicted]) // the oldest kept
	recv(t, bob, lost[len(lost)-1])
}

// TestEvictedKeysAreCleared: eviction and use clear the key in the store's
// backing array (checklist item 30, erasure).
func TestEvictedKeysAreCleared(t *testing.T) {
	alice, bob := pairFrom(t, "clear", WithMaxSkippedKeys(3))
	ms := sendN(t, alice, 6)
	recv(t, bob, ms[2]) // skips 0, 1
	recv(t, bob, ms[5]) // skips 3, 4: four keys, cap 3, so 0 is evicted
	mustFail(t, bob, ms[0].tag, ms[0].msg, ErrExpiredKey)
	c := bob.skipped.chains[0]
	recv(t, bob, ms[3])
	full := c.keys[:cap(c.keys)]
	for i := len(c.keys); i < len(full); i++ {
		if full[i].mk != ([keySize]byte{}) {
			t.Fatalf("slot %d of the store still holds a key", i)
		}
	}
}

// TestHugeNumbers is checklist item 18: N = 2^32-1, N = 2^32-2 and a huge PN
// are refused at once, without looping, and change nothing.
func TestHugeNumbers(t *testing.T) {
	alice, bob := pairFrom(t, "huge")
	recv(t, bob, send(t, alice, "start"))
	for _, n := range []uint32{math.MaxUint32, math.MaxUint32 - 1, 1 << 31} {
		m := craft(t, alice, 0, n)
		start := time.Now()
		mustFail(t, bob, m.tag, m.msg, ErrTooManySkipped)
		if d := time.Since(start); d > 50*time.Millisecond {
			t.Fatalf("N=%d took %v", n, d)
		}
	}
	recv(t, alice, send(t, bob, "reply"))
	for _, pn := range []uint32{math.MaxUint32, 1 << 20} {
		m := craft(t, alice, pn, 0)
		mustFail(t, bob, m.tag, m.msg, ErrTooManySkipped)
	}
	recv(t, bob, send(t, alice, "still fine"))
}

// TestSendingChainExhausted: the last message number is never used.
func TestSendingChainExhausted(t *testing.T) {
	alice, _ := pairFrom(t, "exhausted")
	alice.send.n = math.MaxUint32
	if _, _, err := alice.Encrypt(nil); !errorsIs(err, ErrTooLarge) {
		t.Fatalf("Encrypt: %v, want ErrTooLarge", err)
	}
}

// TestOptions: options change the bounds, are saved with the state, and
// out-of-range values panic (a programming error, not input).
func TestOptions(t *testing.T) {
	alice, bob := pairFrom(t, "options", WithMaxSkip(3), WithMaxSkippedKeys(10), WithTagWindow(2))
	ms := sendN(t, alice, 5)
	mustFail(t, bob, ms[4].tag, ms[4].msg, ErrTooManySkipped)
	var r Session
	if err := r.UnmarshalBinary(state(t, bob)); err != nil {
		t.Fatal(err)
	}
	if r.cfg != bob.cfg {
		t.Fatalf("bounds not saved: %+v", r.cfg)
	}
	if n := len(slices.Collect(r.ExpectedTags())); n != 2 {
		t.Fatalf("%d tags expected with a window of 2", n)
	}
	recv(t, &r, ms[3]) // beyond the window of 2: found by trial
	for _, f := range []func(){
		func() { WithMaxSkip(0) }, func() { WithMaxSkip(1 << 17) },
		func() { WithMaxSkippedKeys(0) }, func() { WithTagWindow(0) }, func() { WithTagWindow(2000) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("out-of-range option did not panic")
				}
			}()
			f()
		}()
	}
}

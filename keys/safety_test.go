package keys

import (
	"bytes"
	"regexp"
	"testing"
)

var safetyFormat = regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`)

// TestSafetyNumber checks docs/SPEC.md section 16: the same 60 digits in 12
// groups of 5 on both sides, and a different number when either identity (or
// the user name bound with it) changes.
func TestSafetyNumber(t *testing.T) {
	alice, bob, mallory := aliceSpec().build(t), bobSpec().build(t), malloryspec().build(t)
	a, b, m := alice.id.Public(), bob.id.Public(), mallory.id.Public()
	ab := SafetyNumber(a, "alice", b, "bob")
	if ba := SafetyNumber(b, "bob", a, "alice"); ab != ba {
		t.Fatalf("the two sides differ:\n%s\n%s", ab, ba)
	}
	if !safetyFormat.MatchString(ab) || len(ab) != 60+11 {
		t.Fatalf("bad format %q", ab)
	}
	changed := map[string]string{
		"alice's identity":   SafetyNumber(m, "alice", b, "bob"),
		"bob's identity":     SafetyNumber(a, "alice", m, "bob"),
		"alice's user":       SafetyNumber(a, "alice2", b, "bob"),
		"bob's user":         SafetyNumber(a, "alice", b, "bo"),
		"users swapped":      SafetyNumber(a, "bob", b, "alice"),
		"one side as itself": SafetyNumber(a, "alice", a, "alice"),
	}
	for name, n := range changed {
		if n == ab {
			t.Errorf("changing %s does not change the safety number", name)
		}
		if !safetyFormat.MatchString(n) {
			t.Errorf("%s: bad format %q", name, n)
		}
	}
}

// TestScannable checks the QR form: each side's scan of the other's code
// matches in both directions; a code for another identity, one's own code,
// a wrong size or another version does not.
func TestScannable(t *testing.T) {
	alice, bob, mallory := aliceSpec().build(t), bobSpec().build(t), malloryspec().build(t)
	a, b, m := alice.id.Public(), bob.id.Public(), mallory.id.Public()
	onAlice := Scannable(a, "alice", b, "bob")
	onBob := Scannable(b, "bob", a, "alice")
	if len(onAlice) != ScannableSize || onAlice[0] != SafetyNumberVersion {
		t.Fatalf("scannable form %x", onAlice)
	}
	for name, c := range map[string][2][]byte{"alice scans bob": {onAlice, onBob}, "bob scans alice": {onBob, onAlice}} {
		ok, err := CompareScannable(c[0], c[1])
		if err != nil || !ok {
			t.Errorf("%s: %t, %v", name, ok, err)
		}
	}
	for name, scanned := range map[string][]byte{
		"mallory in the middle": Scannable(b, "bob", m, "alice"),
		"mallory as alice":      Scannable(m, "alice", b, "bob"),
		"own code":              onAlice,
	} {
		ok, err := CompareScannable(onAlice, scanned)
		if err != nil || ok {
			t.Errorf("%s: matched (%v)", name, err)
		}
	}
	// One flipped bit anywhere but the version byte is a mismatch.
	for bit := 8; bit < 8*ScannableSize; bit++ {
		ok, err := CompareScannable(onAlice, flipBit(onBob, bit))
		if err != nil || ok {
			t.Fatalf("bit %d: matched (%v)", bit, err)
		}
	}
	for _, n := range []int{0, 1, ScannableSize - 1, ScannableSize + 1} {
		short := make([]byte, n)
		copy(short, onBob)
		ok, err := CompareScannable(onAlice, short)
		if ok {
			t.Error("a wrong-size scan matched")
		}
		wantErr(t, err, ErrMalformed)
		ok, err = CompareScannable(short, onBob)
		if ok {
			t.Error("a wrong-size own code matched")
		}
		wantErr(t, err, ErrMalformed)
	}
	for _, v := range []byte{0, 2, 0xff} {
		other := bytes.Clone(onBob)
		other[0] = v
		ok, err := CompareScannable(onAlice, other)
		if ok {
			t.Error("another version matched")
		}
		wantErr(t, err, ErrUnsupportedVersion)
		ok, err = CompareScannable(other, onAlice)
		if ok {
			t.Error("another version matched")
		}
		wantErr(t, err, ErrUnsupportedVersion)
	}
}

// TestSafetyNumberDigits checks the rendering of one half: 5 digits per
// 5-byte chunk, big-endian, reduced mod 100000, zero-padded.
func TestSafetyNumberDigits(t *testing.T) {
	var h [safetyHalfSize]byte
	if got := digits(h); got != "000000000000000000000000000000" {
		t.Fatalf("zero half: %s", got)
	}
	for i := range h {
		h[i] = 0xff
	}
	// 2^40-1 = 1099511627775; mod 100000 = 27775.
	if got := digits(h); got != "277752777527775277752777527775" {
		t.Fatalf("0xff half: %s", got)
	}
	h = [safetyHalfSize]byte{4: 1}
	if got := digits(h); got[:5] != "00001" {
		t.Fatalf("chunk order: %s", got)
	}
}

package erasure

import "testing"

// slowMul multiplies by shift and add, reducing by poly: the reference the
// tables must match.
func slowMul(a, b byte) byte {
	var p int
	x, y := int(a), int(b)
	for y != 0 {
		if y&1 != 0 {
			p ^= x
		}
		y >>= 1
		x <<= 1
		if x&0x100 != 0 {
			x ^= poly
		}
	}
	return byte(p)
}

func TestFieldMatchesReference(t *testing.T) {
	for a := range 256 {
		for b := range 256 {
			if got, want := mul(byte(a), byte(b)), slowMul(byte(a), byte(b)); got != want {
				t.Fatalf("mul(%#x, %#x) = %#x, want %#x", a, b, got, want)
			}
		}
	}
	for a := 1; a < 256; a++ {
		if p := mul(byte(a), inv(byte(a))); p != 1 {
			t.Fatalf("%#x · inv = %#x", a, p)
		}
	}
}

func TestGeneratorIsPrimitive(t *testing.T) {
	seen := map[byte]bool{}
	for i := range 255 {
		seen[expTable[i]] = true
	}
	if len(seen) != 255 || seen[0] {
		t.Fatalf("2 generates %d elements", len(seen))
	}
}

func TestMulAddAndScale(t *testing.T) {
	src := []byte{0, 1, 2, 0x53, 0xff}
	for c := range 256 {
		dst := []byte{7, 0, 9, 0xca, 1, 0xee} // one byte past src: untouched
		mulAdd(dst, src, byte(c))
		sc := append([]byte(nil), src...)
		if c != 0 {
			scale(sc, byte(c))
		}
		for i, x := range src {
			want := []byte{7, 0, 9, 0xca, 1}[i] ^ slowMul(byte(c), x)
			if dst[i] != want {
				t.Fatalf("mulAdd c=%#x byte %d = %#x, want %#x", c, i, dst[i], want)
			}
			if c != 0 && sc[i] != slowMul(byte(c), x) {
				t.Fatalf("scale c=%#x byte %d", c, i)
			}
		}
		if dst[5] != 0xee {
			t.Fatal("mulAdd wrote past src")
		}
	}
}

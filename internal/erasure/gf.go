package erasure

// Arithmetic in GF(2^8) with the reducing polynomial x^8+x^4+x^3+x^2+1
// (0x11d), the field of most Reed-Solomon codes, and generator 2.
//
// Multiplication goes through log and exp tables (mulAdd through a full
// multiplication table), so its time depends on the operands (a zero test
// and table lookups indexed by data). The chunks this package codes are
// public KEM keys and ciphertexts that travel inside encrypted headers, so
// this is acceptable; do not reuse these helpers on secrets.

import "sync"

const poly = 0x11d

// expTable[i] = 2^i for i in [0, 510): doubled so that the sum of two logs
// needs no reduction. logTable[x] is the discrete log of x != 0.
var expTable, logTable = buildTables()

func buildTables() (exp [510]byte, log [256]byte) {
	x := 1
	for i := range 255 {
		exp[i] = byte(x)
		exp[i+255] = byte(x)
		log[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= poly
		}
	}
	return exp, log
}

// mul returns a·b.
func mul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return expTable[int(logTable[a])+int(logTable[b])]
}

// inv returns a^-1 for a != 0.
func inv(a byte) byte {
	return expTable[255-int(logTable[a])]
}

// mulTable returns the full multiplication table, mulTable()[a][b] = a·b
// (64 KB), built on first use: encoding a parity chunk multiplies every
// byte of every data chunk, and one lookup per byte is about twice as fast
// as going through the log and exp tables.
var mulTable = sync.OnceValue(func() *[256][256]byte {
	t := new([256][256]byte)
	for a := range 256 {
		for b := range 256 {
			t[a][b] = mul(byte(a), byte(b))
		}
	}
	return t
})

// mulAdd sets dst[i] += c·src[i] (addition is XOR) for every i < len(src).
func mulAdd(dst, src []byte, c byte) {
	if c == 0 {
		return
	}
	dst = dst[:len(src)]
	row := &mulTable()[c]
	for i, x := range src {
		dst[i] ^= row[x]
	}
}

// scale sets b[i] = c·b[i] for every i.
func scale(b []byte, c byte) {
	lc := int(logTable[c]) // c != 0
	for i, x := range b {
		if x != 0 {
			b[i] = expTable[lc+int(logTable[x])]
		}
	}
}

// coef is the generator matrix entry of parity point p (p >= k) for data
// chunk i (i < k): the Cauchy entry 1/(p + i). The points of data chunks,
// 0..k-1, and of parity chunks, k..255, are disjoint, so p ^ i != 0, and
// every square submatrix of a Cauchy matrix is invertible.
func coef(p, i int) byte {
	return inv(byte(p) ^ byte(i))
}

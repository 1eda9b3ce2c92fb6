package attach_test

import (
	"math"
	"math/bits"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
)

// padme is Padmé (Nikitin et al., PETS 2019) with the same floor as
// PaddedLength, the alternative the package doc compares against.
func padme(n int64) int64 {
	n = max(n, attach.MinPadded)
	e := bits.Len64(uint64(n)) - 1
	s := bits.Len64(uint64(e))
	mask := int64(1)<<(e-s) - 1
	return (n + mask) &^ mask
}

// paddingStats measures a padding function over lengths from lo to hi: the
// mean and maximum overhead over a log-uniform sample, and the number of
// distinct padded sizes (walked bucket by bucket).
func paddingStats(f func(int64) int64, lo, hi int64) (mean, worst float64, buckets int) {
	var sum float64
	n := 0
	for x := math.Log2(float64(lo)); x <= math.Log2(float64(hi)); x += 0.0005 {
		l := int64(math.Exp2(x))
		o := float64(f(l)-l) / float64(l)
		sum, worst, n = sum+o, max(worst, o), n+1
	}
	for l := lo; l <= hi; l = f(l) + 1 {
		buckets++
	}
	return sum / float64(n), worst, buckets
}

// TestPaddingOverhead measures the chosen 5% buckets against Padmé from
// 4 KiB to 2 GiB (the numbers in the package doc) and checks the chosen
// function's promises: at most 5% above the floor, never below the length,
// monotonic, and fewer buckets (less leaked) than Padmé.
func TestPaddingOverhead(t *testing.T) {
	const lo, hi = attach.MinPadded, 2 << 30
	m5, w5, b5 := paddingStats(attach.PaddedLength, lo, hi)
	mp, wp, bp := paddingStats(padme, lo, hi)
	t.Logf("4 KiB-2 GiB: 5%% buckets: mean %.2f%%, max %.2f%%, %d buckets (%.1f bits)", 100*m5, 100*w5, b5, math.Log2(float64(b5)))
	t.Logf("4 KiB-2 GiB: Padmé:      mean %.2f%%, max %.2f%%, %d buckets (%.1f bits)", 100*mp, 100*wp, bp, math.Log2(float64(bp)))
	if w5 > 0.05 || b5 >= bp {
		t.Errorf("5%% buckets: max %.3f, %d buckets (Padmé %d)", w5, b5, bp)
	}
	prev := int64(0)
	for n := int64(0); n < 300_000; n++ {
		p := attach.PaddedLength(n)
		if p < n || p < prev || p < attach.MinPadded || (n > attach.MinPadded && p-n > n/20) {
			t.Fatalf("PaddedLength(%d) = %d (previous %d)", n, p, prev)
		}
		prev = p
	}
	if p := attach.PaddedLength(attach.MaxLength); p < attach.MaxLength || p-attach.MaxLength > attach.MaxLength/20 {
		t.Fatalf("PaddedLength(MaxLength) = %d", p)
	}
}

// TestPaddedLengthValues pins a few bucket sizes: they are part of the
// format (a reader refuses a blob whose length does not pad to its size).
func TestPaddedLengthValues(t *testing.T) {
	for _, c := range []struct{ n, want int64 }{
		{0, 4096}, {4096, 4096}, {4097, 4300}, {4300, 4300}, {4301, 4515},
		{1 << 20, 1064182}, {1 << 30, 1086157041},
	} {
		if got := attach.PaddedLength(c.n); got != c.want {
			t.Errorf("PaddedLength(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	if _, err := attach.EncryptedSize(-1); !isErr(err, attach.ErrMalformed) {
		t.Errorf("EncryptedSize(-1): %v", err)
	}
	if _, err := attach.EncryptedSize(attach.MaxLength + 1); !isErr(err, attach.ErrTooLarge) {
		t.Errorf("EncryptedSize(MaxLength+1): %v", err)
	}
}

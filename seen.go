package sealpost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Accepted session starts are remembered so that a replayed start is
// ErrDuplicate even after its session is gone (ADVERSARIAL 8). A start can
// only be accepted while the signed prekey it names is kept, so they are
// remembered per signed prekey, under "seen/<signed prekey id>", as a
// sorted list of the first 16 bytes of SHA-256(base key), and forgotten
// with the prekey when RotatePrekeys drops it: the set stays bounded by the
// starts one signed prekey receives in its lifetime. A start replayed after
// that names an unknown prekey and is ErrUnknownPrekey.

// seenSet is the sorted list of accepted starts for one signed prekey.
type seenSet []byte

func seenKey(signedPrekeyID uint32) string {
	return keySeenPrefix + strconv.FormatUint(uint64(signedPrekeyID), 10)
}

// seenStarts reads the accepted starts for a signed prekey.
func (d *Device) seenStarts(ctx context.Context, signedPrekeyID uint32) (seenSet, error) {
	raw, err := getRecord(ctx, d.store, seenKey(signedPrekeyID))
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case len(raw)%16 != 0:
		return nil, fmt.Errorf("%w: saved accepted starts", ErrMalformed)
	}
	return seenSet(raw), nil
}

// with returns the set with h added, and whether it already held h. The
// set itself is not changed.
func (s seenSet) with(h [16]byte) (seenSet, bool) {
	lo, hi := 0, len(s)/16
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(s[16*mid:16*mid+16], h[:]); {
		case c == 0:
			return s, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	out := make([]byte, 0, len(s)+16)
	out = append(out, s[:16*lo]...)
	out = append(out, h[:]...)
	return append(out, s[16*lo:]...), false
}

// forgetSeen adds to b the deletion of the accepted starts of every signed
// prekey in old that next no longer keeps.
func forgetSeen(b *Batch, old, next *prekeys) {
	for _, k := range old.signed {
		if next.signedByID(k.ID()) == nil {
			b.Delete(seenKey(k.ID()))
		}
	}
}

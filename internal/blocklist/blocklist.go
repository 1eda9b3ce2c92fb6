// Package blocklist is the set of senders a Device refuses (Block and
// Unblock): addresses and identity fingerprints, saved together in the
// "block" record, rewritten whole on each change.
package blocklist

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/fixed"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
)

// Max is how many senders (addresses and identities together) a list may
// hold. A Device refuses to block one more, so the record stays small (at
// most about 280 KB), and Decode refuses a count above it without
// allocating.
const Max = 4096

// List is the blocked addresses and identity fingerprints. The zero List
// blocks nothing.
type List struct {
	addrs map[keys.Address]bool
	ids   map[[keys.FingerprintSize]byte]bool
}

// Blocks reports whether an envelope from addr with the identity of
// fingerprint fp is refused. It costs nothing while nothing is blocked.
func (l *List) Blocks(addr keys.Address, fp *[keys.FingerprintSize]byte) bool {
	if len(l.addrs) == 0 && len(l.ids) == 0 {
		return false
	}
	return l.addrs[addr] || l.ids[*fp]
}

// Len returns the number of blocked addresses and identities.
func (l *List) Len() int { return len(l.addrs) + len(l.ids) }

// With returns a copy of the list with addr (when not zero) and fp (when
// not nil) blocked (on) or unblocked.
func (l *List) With(addr keys.Address, fp *[keys.FingerprintSize]byte, on bool) List {
	out := List{addrs: make(map[keys.Address]bool, len(l.addrs)+1), ids: make(map[[keys.FingerprintSize]byte]bool, len(l.ids)+1)}
	for a := range l.addrs {
		out.addrs[a] = true
	}
	for f := range l.ids {
		out.ids[f] = true
	}
	if addr != (keys.Address{}) {
		setOrDelete(out.addrs, addr, on)
	}
	if fp != nil {
		setOrDelete(out.ids, *fp, on)
	}
	return out
}

func setOrDelete[K comparable](m map[K]bool, k K, on bool) {
	if on {
		m[k] = true
	} else {
		delete(m, k)
	}
}

// Entry kinds in the block record.
const (
	blockAddress  = 1
	blockIdentity = 2
)

// Encode returns the block record, in a buffer with room for the checksum.
// Layout (integers big-endian), addresses first, each part sorted:
//
//	version   1   record.Layout
//	count     4   entries
//	entries   each a kind byte, then for kind 1 (an address) the device
//	          4 and the user (length 2, 1..keys.MaxUserLength bytes), for
//	          kind 2 (an identity) its fingerprint, 32 bytes
//
// Nothing follows.
func (l *List) Encode() []byte {
	addrs := make([]keys.Address, 0, len(l.addrs))
	for a := range l.addrs {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, func(a, b keys.Address) int {
		return cmp.Or(strings.Compare(a.User, b.User), cmp.Compare(a.Device, b.Device))
	})
	ids := make([][keys.FingerprintSize]byte, 0, len(l.ids))
	for f := range l.ids {
		ids = append(ids, f)
	}
	slices.SortFunc(ids, func(a, b [keys.FingerprintSize]byte) int { return bytes.Compare(a[:], b[:]) })
	b := binary.BigEndian.AppendUint32([]byte{record.Layout}, uint32(len(addrs)+len(ids)))
	for _, a := range addrs {
		b = binary.BigEndian.AppendUint32(append(b, blockAddress), a.Device)
		b = append(binary.BigEndian.AppendUint16(b, uint16(len(a.User))), a.User...)
	}
	for _, f := range ids {
		b = append(append(b, blockIdentity), f[:]...)
	}
	return b
}

// Decode decodes the block record (layout on Encode). It returns
// ErrUnsupportedVersion for another version and errs.ErrMalformed for anything
// else that is not such a record: a truncation, trailing bytes, an unknown
// kind, a bad user, an entry twice or out of order.
func Decode(raw []byte) (List, error) {
	if err := record.CheckVersion(raw, "block record"); err != nil {
		return List{}, err
	}
	l := List{addrs: map[keys.Address]bool{}, ids: map[[keys.FingerprintSize]byte]bool{}}
	r := fixed.NewReader(raw[1:])
	n := r.Count(uint64(r.U32()), Max, 1)
	for range n {
		switch r.U8() {
		case blockAddress:
			a := keys.Address{Device: r.U32()}
			a.User = string(r.Bytes(r.Count(uint64(r.U16()), keys.MaxUserLength, 1)))
			if a.User == "" || len(a.User) > keys.MaxUserLength || l.addrs[a] {
				r.Fail()
			}
			l.addrs[a] = true
		case blockIdentity:
			f := r.A32()
			if l.ids[f] {
				r.Fail()
			}
			l.ids[f] = true
		default:
			r.Fail()
		}
		if !r.Ok() {
			break
		}
	}
	if !r.Done() {
		return List{}, fmt.Errorf("%w: block record", errs.ErrMalformed)
	}
	if !bytes.Equal(l.Encode(), raw) {
		return List{}, fmt.Errorf("%w: block record not in order", errs.ErrMalformed)
	}
	return l, nil
}

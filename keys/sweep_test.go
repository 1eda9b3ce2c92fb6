package keys

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// thorough reports whether the sweeps should try every bit. With -short or
// under the race detector they sample the long opaque fields instead (see
// sweepBits); the framing, ids, addresses and small keys are always swept
// bit by bit.
func thorough() bool { return !testing.Short() && !raceEnabled }

// span names a byte range of an encoding: a tag, a length prefix or a
// leaf value, by its path ("signed_prekey.key", "one_time_prekeys[0].tag").
type span struct {
	path       string
	start, end int
}

// encodingSpans walks a protobuf encoding and returns its spans, descending
// into the length-delimited fields whose numbers are in nested (given by
// name). It fails the test on an encoding it cannot walk.
func encodingSpans(t testing.TB, raw []byte, names map[protowire.Number]string, nested map[string]map[protowire.Number]string) []span {
	t.Helper()
	var spans []span
	counts := map[string]int{}
	var walk func(prefix string, off int, b []byte, names map[protowire.Number]string)
	walk = func(prefix string, off int, b []byte, names map[protowire.Number]string) {
		for pos := 0; pos < len(b); {
			num, typ, n := protowire.ConsumeTag(b[pos:])
			if n < 0 {
				t.Fatalf("walk %s: bad tag at %d", prefix, off+pos)
			}
			name := names[num]
			if name == "" {
				t.Fatalf("walk %s: unknown field %d", prefix, num)
			}
			path := prefix + name
			if sub := nested[name]; sub != nil && repeatedField(name) {
				path = fmt.Sprintf("%s%s[%d]", prefix, name, counts[prefix+name])
				counts[prefix+name]++
			}
			spans = append(spans, span{path + ".tag", off + pos, off + pos + n})
			pos += n
			switch typ {
			case protowire.VarintType:
				_, m := protowire.ConsumeVarint(b[pos:])
				spans = append(spans, span{path, off + pos, off + pos + m})
				pos += m
			case protowire.BytesType:
				v, m := protowire.ConsumeBytes(b[pos:])
				if m < 0 {
					t.Fatalf("walk %s: bad length", path)
				}
				hdr := m - len(v)
				spans = append(spans, span{path + ".len", off + pos, off + pos + hdr})
				if sub := nested[name]; sub != nil {
					walk(path+".", off+pos+hdr, v, sub)
				} else {
					spans = append(spans, span{path, off + pos + hdr, off + pos + m})
				}
				pos += m
			default:
				t.Fatalf("walk %s: unexpected wire type %d", path, typ)
			}
		}
	}
	walk("", 0, raw, names)
	return spans
}

func repeatedField(name string) bool { return strings.HasPrefix(name, "one_time_") }

// spanAt returns the span holding byte i.
func spanAt(spans []span, i int) span {
	for _, s := range spans {
		if s.start <= i && i < s.end {
			return s
		}
	}
	return span{path: "?"}
}

var (
	signedKeyFields  = map[protowire.Number]string{1: "id", 2: "key", 3: "signature", 4: "expires"}
	oneTimeKeyFields = map[protowire.Number]string{1: "id", 2: "key"}
	bundleFields     = map[protowire.Number]string{
		1: "version", 2: "user", 3: "device", 4: "mailbox", 5: "identity",
		6: "signed_prekey", 7: "pq_prekey", 8: "one_time_prekeys", 9: "one_time_pq_prekeys", 10: "mailbox_key",
	}
	bundleNested = map[string]map[protowire.Number]string{
		"signed_prekey": signedKeyFields, "pq_prekey": signedKeyFields, "mailbox_key": signedKeyFields,
		"one_time_prekeys": oneTimeKeyFields, "one_time_pq_prekeys": signedKeyFields,
	}
	startFields = map[protowire.Number]string{
		1: "version", 2: "initiator_user", 3: "initiator_device", 4: "initiator_identity", 5: "base_key",
		6: "signed_prekey_id", 7: "pq_prekey_id", 8: "pq_one_time", 9: "one_time_prekey_id",
		10: "kem_ciphertext", 11: "confirmation", 12: "payload",
	}
)

func bundleSpans(t testing.TB, raw []byte) []span {
	return encodingSpans(t, raw, bundleFields, bundleNested)
}

func startSpans(t testing.TB, raw []byte) []span {
	return encodingSpans(t, raw, startFields, nil)
}

// bulkSize is the length from which a leaf value counts as a long opaque
// field (a signature, an ML-KEM or X-Wing key, a ciphertext, an identity).
const bulkSize = 60

// sampleStride is how sparsely a non-thorough sweep tries bulk bytes: one
// byte in sampleStride, with the bit rotating from byte to byte.
const sampleStride = 8

// sweepBits returns the bit positions to flip: all of them when all is
// true; otherwise every bit of framing and short fields plus one bit of
// every sampleStride-th byte of each bulk field.
func sweepBits(spans []span, all bool) []int {
	var bits []int
	for _, s := range spans {
		bulk := s.end-s.start >= bulkSize
		for i := s.start; i < s.end; i++ {
			switch {
			case all || !bulk:
				for j := range 8 {
					bits = append(bits, 8*i+j)
				}
			case (i-s.start)%sampleStride == 0:
				bits = append(bits, 8*i+(i/sampleStride)%8)
			}
		}
	}
	sort.Ints(bits)
	return bits
}

// parallelSweep calls try for every item, spread over GOMAXPROCS parallel
// subtests of t, and returns the items for which try returned true.
func parallelSweep(t *testing.T, items []int, try func(t *testing.T, item int) bool) []int {
	t.Helper()
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	var hits []int
	t.Run("sweep", func(t *testing.T) {
		for w := range workers {
			t.Run(fmt.Sprint(w), func(t *testing.T) {
				t.Parallel()
				for i := w; i < len(items); i += workers {
					if try(t, items[i]) {
						mu.Lock()
						hits = append(hits, items[i])
						mu.Unlock()
					}
				}
			})
		}
	})
	sort.Ints(hits)
	return hits
}

package erasure

import (
	"math/rand/v2"
	"testing"
)

// The sizes of the post-quantum ratchet: an ML-KEM-768 encapsulation key
// (1184 bytes) in 32-byte chunks, k = 37.
const benchLen, benchSize = 1184, 32

func benchEncoder(b *testing.B) *Encoder {
	e, err := NewEncoder(message(rand.New(rand.NewPCG(1, 1)), benchLen), benchSize)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkEncodeChunk(b *testing.B) {
	e := benchEncoder(b)
	buf := make([]byte, 0, benchSize)
	b.Run("data", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			buf = e.Chunk(uint32(i)%37, buf[:0])
		}
	})
	b.Run("parity", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			buf = e.Chunk(37+uint32(i)%219, buf[:0])
		}
	})
}

func BenchmarkNewEncoder(b *testing.B) {
	msg := make([]byte, benchLen)
	b.ReportAllocs()
	for range b.N {
		NewEncoder(msg, benchSize)
	}
}

// BenchmarkDecode receives 37 chunks of a 1184-byte key and solves: all
// data chunks (no solve), half lost (18 missing data chunks recovered from
// parity), and only parity (all 37 solved: the worst case). It reports
// the cost of one whole decode: NewDecoder, 37 Adds and Message.
func BenchmarkDecode(b *testing.B) {
	e := benchEncoder(b)
	for _, tc := range []struct {
		name  string
		first uint32 // chunks first, first+1, ..., first+36
	}{{"data", 0}, {"half", 19}, {"parity", 100}} {
		var chunks [37][]byte
		for j := range chunks {
			chunks[j] = e.Chunk(tc.first+uint32(j), nil)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				d, _ := NewDecoder(benchLen, benchSize)
				for j, c := range chunks {
					d.Add(tc.first+uint32(j), c)
				}
				if _, err := d.Message(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAdd is the per-message cost on the receive path.
func BenchmarkAdd(b *testing.B) {
	e := benchEncoder(b)
	chunk := e.Chunk(50, nil)
	d, _ := NewDecoder(benchLen, benchSize)
	b.ReportAllocs()
	for i := range b.N {
		if i%36 == 0 {
			d.points, d.have = d.points[:0], [4]uint64{}
		}
		d.Add(uint32(i%36), chunk[:])
	}
}

package erasure

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzErasureDecoder feeds a decoder arbitrary (index, chunk) sequences:
// genuine chunks from an encoder, chunks of arbitrary bytes and chunks of
// the wrong size. It checks that nothing panics, that the decoder never
// holds more than k chunks or grows its buffers, that done means exactly k
// distinct points, and that when every chunk kept came from the encoder
// the message is the encoder's.
//
// Input: msgLen (2 bytes), chunk size (1 byte), message seed (1 byte), then
// records of index (4 bytes) and a kind byte: even = the encoder's chunk,
// odd = the next bytes of input as the chunk, with length chunk size + (kind/2)%3 - 1.
func FuzzErasureDecoder(f *testing.F) {
	f.Add([]byte{0x04, 0xa0, 32, 1, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 40, 32, 7, 0, 0, 0, 1, 0, 0, 0, 0, 9, 0, 0, 0, 5, 0})
	f.Add([]byte{0, 3, 1, 0, 0, 0, 1, 0, 1, 7, 0, 0, 2, 0, 3, 0xff, 0xff, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 4 {
			return
		}
		msgLen := 1 + int(binary.BigEndian.Uint16(in))%2048
		size := 1 + int(in[2])%64
		msg := bytes.Repeat([]byte{in[3], in[3] ^ 0x5a, 1}, msgLen)[:msgLen]
		e, err := NewEncoder(msg, size)
		d, err2 := NewDecoder(msgLen, size)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("encoder %v, decoder %v", err, err2)
		}
		if err != nil {
			return
		}
		k, capPoints, capChunks := e.DataChunks(), cap(d.points), cap(d.chunks)
		genuine := true
		for in = in[4:]; len(in) >= 5; {
			idx, kind := binary.BigEndian.Uint32(in), in[4]
			in = in[5:]
			var chunk []byte
			own := kind%2 == 0
			if own {
				chunk = e.Chunk(idx, nil)
			} else {
				n := min(len(in), max(0, size+int(kind/2)%3-1))
				chunk, in = in[:n], in[n:]
			}
			before := d.Received()
			had := d.has(uint8(idx))
			done, err := d.Add(idx, chunk)
			if err == nil && !had && d.Received() == before+1 && !own {
				genuine = false
			}
			if err != nil && d.Received() != before {
				t.Fatal("a rejected chunk changed the decoder")
			}
			if done != (d.Received() == k) || d.Received() > k {
				t.Fatalf("done %v with %d of %d chunks", done, d.Received(), k)
			}
			if cap(d.points) != capPoints || cap(d.chunks) != capChunks {
				t.Fatal("decoder grew its buffers")
			}
		}
		got, err := d.Message()
		if !d.Done() {
			return
		}
		if genuine && (err != nil || !bytes.Equal(got, msg)) {
			t.Fatalf("genuine chunks gave %x, %v", got, err)
		}
	})
}

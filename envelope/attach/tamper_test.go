package attach_test

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
)

// tamperFile is four data chunks and a short last one: big enough for
// every kind of chunk edit.
var tamperLength = 4*attach.ChunkSize + 5000

// chunkAt returns the offset of data chunk i.
func chunkAt(i int) int { return attach.HeaderSize + i*attach.ChunkCTSize }

// TestTruncation cuts the blob at every chunk boundary, a few bytes either
// side of each, and 200 random points: every cut is a typed error for
// both readers, and a cut right after a data chunk is ErrTruncated for the
// sequential reader (the stream ended cleanly before its final chunk).
// Checklist item 62 (TESTING.md).
func TestTruncation(t *testing.T) {
	key := keyOf(t, "truncation")
	blob := encrypt(t, key, fileOf("truncation", tamperLength))
	chunks := int(attach.ChunkCount(int64(tamperLength)))
	var cuts []int
	for i := 0; i <= chunks; i++ {
		b := chunkAt(i)
		for _, d := range []int{-17, -16, -1, 0, 1, 16, 17, 24} {
			if c := b + d; c >= 0 && c < len(blob) {
				cuts = append(cuts, c)
			}
		}
	}
	cuts = append(cuts, 0, 1, attach.HeaderSize-1, len(blob)-1, len(blob)-attach.TrailerCTSize)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		cuts = append(cuts, rng.IntN(len(blob)))
	}
	slices.Sort(cuts)
	for _, c := range slices.Compact(cuts) {
		mustFail(t, "cut at "+itoa(c), key, blob[:c], nil)
	}
	for i := 1; i < chunks; i++ { // clean cuts after whole data chunks
		if _, err := decrypt(key, blob[:chunkAt(i)]); !isErr(err, attach.ErrTruncated) {
			t.Errorf("cut after data chunk %d: %v, want ErrTruncated", i-1, err)
		}
	}
	if _, err := decrypt(key, blob[:len(blob)-attach.TrailerCTSize]); !isErr(err, attach.ErrTruncated) {
		t.Errorf("trailer dropped: %v, want ErrTruncated", err)
	}
}

// TestChunkEdits reorders, swaps, drops, repeats and appends chunks.
// Checklist item 62.
func TestChunkEdits(t *testing.T) {
	key := keyOf(t, "edits")
	blob := encrypt(t, key, fileOf("edits", tamperLength))
	n := int(attach.ChunkCount(int64(tamperLength)))
	chunk := func(i int) []byte { return blob[chunkAt(i) : chunkAt(i)+attach.ChunkCTSize] }
	rebuild := func(order ...int) []byte {
		out := bytes.Clone(blob[:attach.HeaderSize])
		for _, i := range order {
			if i == n-1 {
				out = append(out, blob[chunkAt(n-1):len(blob)-attach.TrailerCTSize]...)
			} else {
				out = append(out, chunk(i)...)
			}
		}
		return append(out, blob[len(blob)-attach.TrailerCTSize:]...)
	}
	if !bytes.Equal(rebuild(0, 1, 2, 3, 4), blob) {
		t.Fatal("rebuild is wrong")
	}
	trailer := blob[len(blob)-attach.TrailerCTSize:]
	edits := map[string][]byte{
		"swap 1 and 2":          rebuild(0, 2, 1, 3, 4),
		"swap 0 and 3":          rebuild(3, 1, 2, 0, 4),
		"rotate":                rebuild(1, 2, 3, 0, 4),
		"drop chunk 2":          rebuild(0, 1, 3, 4),
		"repeat chunk 1":        rebuild(0, 1, 1, 2, 3, 4),
		"chunk 1 for chunk 2":   rebuild(0, 1, 1, 3, 4),
		"append a chunk":        append(bytes.Clone(blob), chunk(1)...),
		"append the trailer":    append(bytes.Clone(blob), trailer...),
		"append a byte":         append(bytes.Clone(blob), 0),
		"append 24 bytes":       append(bytes.Clone(blob), make([]byte, 24)...),
		"trailer before last":   append(append(bytes.Clone(blob[:chunkAt(n-1)]), trailer...), blob[chunkAt(n-1):len(blob)-attach.TrailerCTSize]...),
		"trailer after chunk 2": append(bytes.Clone(blob[:chunkAt(3)]), trailer...),
	}
	for name, b := range edits {
		mustFail(t, name, key, b, nil)
	}
}

// TestSwapBetweenFiles moves chunks between two blobs of files of the same
// length: under two keys, and under one key (the header nonce gives each
// blob its own chunk key). Checklist item 62.
func TestSwapBetweenFiles(t *testing.T) {
	k1, k2 := keyOf(t, "swap 1"), keyOf(t, "swap 2")
	a := encrypt(t, k1, fileOf("swap a", tamperLength))
	for name, b := range map[string][]byte{
		"other key": encrypt(t, k2, fileOf("swap b", tamperLength)),
		"same key":  encrypt(t, k1, fileOf("swap b", tamperLength)),
	} {
		if len(a) != len(b) {
			t.Fatal("blobs differ in size")
		}
		for i := range int(attach.ChunkCount(int64(tamperLength))) {
			mixed := bytes.Clone(a)
			end := min(chunkAt(i+1), len(a)-attach.TrailerCTSize)
			copy(mixed[chunkAt(i):end], b[chunkAt(i):end])
			mustFail(t, name+": chunk "+itoa(i)+" from the other blob", k1, mixed, attach.ErrDecrypt)
		}
		mixed := bytes.Clone(a)
		copy(mixed[len(a)-attach.TrailerCTSize:], b[len(b)-attach.TrailerCTSize:])
		mustFail(t, name+": trailer from the other blob", k1, mixed, attach.ErrDecrypt)
		mixed = bytes.Clone(a)
		copy(mixed, b[:attach.HeaderSize])
		mustFail(t, name+": header from the other blob", k1, mixed, attach.ErrDecrypt)
	}
}

// TestEveryBitFlip flips each bit of every byte of a small file's blob:
// each is a typed error (ErrUnsupportedVersion for the version byte,
// ErrDecrypt elsewhere). Checklist item 62.
func TestEveryBitFlip(t *testing.T) {
	key := keyOf(t, "flips")
	blob := encrypt(t, key, fileOf("flips", 1000))
	for i := range blob {
		for bit := range 8 {
			b := bytes.Clone(blob)
			b[i] ^= 1 << bit
			want := attach.ErrDecrypt
			if i == 0 {
				want = attach.ErrUnsupportedVersion
			}
			mustFail(t, "flip of byte "+itoa(i)+" bit "+itoa(bit), key, b, want)
		}
	}
}

// TestWrongKey: another key fails at the header, before any chunk.
func TestWrongKey(t *testing.T) {
	blob := encrypt(t, keyOf(t, "right"), fileOf("wrong key", 3*attach.ChunkSize))
	mustFail(t, "wrong key", keyOf(t, "wrong"), blob, attach.ErrDecrypt)
	mustFail(t, "wrong key, header only", keyOf(t, "wrong"), blob[:attach.HeaderSize], nil)
}

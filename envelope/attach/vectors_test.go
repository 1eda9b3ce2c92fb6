package attach_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/internal/testkit"
)

// Golden vectors (docs/SPEC.md section 21.8): testdata/blob/*.bin are blobs
// of a fixed key, header nonce and file, and edits of them;
// testdata/pointer/*.bin are encoded pointers. Each file's header records the
// inputs and the expected outcome. TestVectors rebuilds every vector from its
// spec and compares the bytes, then checks the outcome; `go test
// ./envelope/attach
// -run TestVectors -update` writes them again.
var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

var blobKeys = []string{"expect", "key", "nonce", "length", "sha256", "comment"}

// vectorKey is the key of every blob vector (and of FuzzReader).
func vectorKey(t testing.TB) *attach.Key {
	k, err := attach.NewKey(fileOf("vector key", attach.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var vectorNonce = fileOf("vector nonce", 16)

type blobSpec struct {
	name, expect, comment string
	length                int // of the file: fileOf("vector", length)
	edit                  func(valid []byte) []byte
}

func blobSpecs() []blobSpec {
	two := 2*attach.ChunkSize + 1000
	clone := func(f func(b []byte) []byte) func([]byte) []byte {
		return func(v []byte) []byte { return f(bytes.Clone(v)) }
	}
	return []blobSpec{
		{name: "valid_empty", expect: "ok", length: 0, comment: "an empty file: one chunk of 4096 zeros"},
		{name: "valid_short", expect: "ok", length: 1000, comment: "a 1000-byte file, padded to 4096"},
		{name: "valid_two_chunks", expect: "ok", length: two, comment: "two whole chunks and 1000 bytes, padded to 137118"},
		{name: "version_unsupported", expect: "ErrUnsupportedVersion", length: 1000,
			edit: clone(func(b []byte) []byte { b[0] = 2; return b }), comment: "valid_short with version byte 2"},
		{name: "decrypt_commitment", expect: "ErrDecrypt", length: 1000,
			edit: clone(func(b []byte) []byte { b[attach.HeaderSize-1] ^= 1; return b }), comment: "valid_short with the last commitment bit flipped"},
		{name: "decrypt_chunk_flip", expect: "ErrDecrypt", length: 1000,
			edit: clone(func(b []byte) []byte { b[attach.HeaderSize+500] ^= 0x80; return b }), comment: "valid_short with a bit of its chunk flipped"},
		{name: "decrypt_swapped_chunks", expect: "ErrDecrypt", length: two, edit: clone(func(b []byte) []byte {
			c0 := bytes.Clone(b[chunkAt(0):chunkAt(1)])
			copy(b[chunkAt(0):], b[chunkAt(1):chunkAt(2)])
			copy(b[chunkAt(1):], c0)
			return b
		}), comment: "valid_two_chunks with its first two chunks swapped"},
		{name: "truncated_no_trailer", expect: "ErrTruncated", length: two,
			edit:    func(b []byte) []byte { return bytes.Clone(b[:len(b)-attach.TrailerCTSize]) },
			comment: "valid_two_chunks without its final chunk"},
		{name: "decrypt_appended", expect: "ErrDecrypt", length: 1000,
			edit:    func(b []byte) []byte { return append(bytes.Clone(b), b[len(b)-attach.TrailerCTSize:]...) },
			comment: "valid_short with its trailer appended again"},
	}
}

// make returns the vector's blob and file.
func (s blobSpec) make(t testing.TB) (blob, file []byte) {
	restore := attach.SetNonceForTest(vectorNonce)
	defer restore()
	file = fileOf("vector", s.length)
	blob = encrypt(t, vectorKey(t), file)
	if s.edit != nil {
		blob = s.edit(blob)
	}
	return blob, file
}

func (s blobSpec) vector(t testing.TB) testkit.Vector {
	blob, file := s.make(t)
	sum := sha256.Sum256(file)
	return testkit.Vector{Header: []testkit.Field{
		{Key: "expect", Value: s.expect},
		{Key: "key", Value: hex.EncodeToString(vectorKey(t).Bytes())},
		{Key: "nonce", Value: hex.EncodeToString(vectorNonce)},
		{Key: "length", Value: strconv.Itoa(s.length)},
		{Key: "sha256", Value: hex.EncodeToString(sum[:])},
		{Key: "comment", Value: s.comment},
	}, Raw: blob}
}

type pointerSpec struct {
	name, expect, comment string
	raw                   func(t testing.TB) []byte
}

func pointerSpecs() []pointerSpec {
	full := func(t testing.TB) []byte {
		p := &attach.Pointer{ID: "AbCdEfGhIjKlMnOpQrStUv.token-Xyz_0123456789~", Key: vectorKey(t), Length: 1000,
			MediaType: "text/plain; charset=utf-8", Name: "notes ✓.txt"}
		blob, _ := blobSpecs()[1].make(t)
		p.Digest = sha256.Sum256(blob)
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	edit := func(f func([]byte) []byte) func(testing.TB) []byte {
		return func(t testing.TB) []byte { return f(full(t)) }
	}
	return []pointerSpec{
		{name: "valid_full", expect: "ok", raw: full, comment: "every field set; the blob is blob/valid_short"},
		{name: "valid_minimal", expect: "ok", comment: "a one-byte id, an empty file, no media type, no name", raw: func(t testing.TB) []byte {
			b, err := (&attach.Pointer{ID: "x", Key: vectorKey(t)}).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{name: "version_unsupported", expect: "ErrUnsupportedVersion", comment: "valid_full with version byte 2",
			raw: edit(func(b []byte) []byte { b[0] = 2; return b })},
		{name: "malformed_trailing", expect: "ErrMalformed", comment: "valid_full and one more byte",
			raw: edit(func(b []byte) []byte { return append(b, 0) })},
		{name: "malformed_truncated", expect: "ErrMalformed", comment: "valid_full less its last byte",
			raw: edit(func(b []byte) []byte { return b[:len(b)-1] })},
		{name: "malformed_name_slash", expect: "ErrMalformed", comment: "valid_full with a slash in the name",
			raw: edit(func(b []byte) []byte { b[len(b)-5] = '/'; return b })},
		{name: "malformed_name_format", expect: "ErrMalformed", comment: "valid_full with U+202E RIGHT-TO-LEFT OVERRIDE over the name's check mark (three bytes each)",
			raw: edit(func(b []byte) []byte { copy(b[len(b)-7:], "\u202e"); return b })},
	}
}

func (s pointerSpec) vector(t testing.TB) testkit.Vector {
	return testkit.Vector{Header: []testkit.Field{{Key: "expect", Value: s.expect}, {Key: "comment", Value: s.comment}}, Raw: s.raw(t)}
}

var vectorErrors = map[string]error{
	"ErrMalformed": attach.ErrMalformed, "ErrUnsupportedVersion": attach.ErrUnsupportedVersion,
	"ErrDecrypt": attach.ErrDecrypt, "ErrTruncated": attach.ErrTruncated,
}

// goldenFile checks (or with -update writes) one vector file and returns
// it as parsed from disk.
func goldenFile(t *testing.T, path string, want testkit.Vector, keys ...string) testkit.Vector {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, want.Encode(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(data, want.Encode()) {
		t.Fatalf("%s differs from its generator: the format changed (run with -update only if that is intended)", path)
	}
	v, err := testkit.ParseVector(data, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectors(t *testing.T) {
	for _, kind := range []string{"blob", "pointer"} {
		files, _ := filepath.Glob(filepath.Join("testdata", kind, "*.bin"))
		if n := map[string]int{"blob": len(blobSpecs()), "pointer": len(pointerSpecs())}[kind]; len(files) != n && !*update {
			t.Fatalf("%d %s vector files, want %d", len(files), kind, n)
		}
	}
	for _, s := range blobSpecs() {
		t.Run("blob/"+s.name, func(t *testing.T) {
			v := goldenFile(t, filepath.Join("testdata", "blob", s.name+".bin"), s.vector(t), blobKeys...)
			checkBlobVector(t, v)
		})
	}
	for _, s := range pointerSpecs() {
		t.Run("pointer/"+s.name, func(t *testing.T) {
			v := goldenFile(t, filepath.Join("testdata", "pointer", s.name+".bin"), s.vector(t), "expect", "comment")
			p, err := attach.ParsePointer(v.Raw)
			if want := vectorErrors[v.Get("expect")]; want != nil || v.Get("expect") != "ok" {
				if p != nil || want == nil || !errors.Is(err, want) {
					t.Fatalf("ParsePointer = %v, %v; want %s", p, err, v.Get("expect"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkBlobVector decrypts a blob vector with the key its header records,
// with both readers, and checks the outcome against the header.
func checkBlobVector(t *testing.T, v testkit.Vector) {
	kb, err := hex.DecodeString(v.Get("key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := attach.NewKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	if want := vectorErrors[v.Get("expect")]; want != nil {
		mustFail(t, "vector", key, v.Raw, want)
		return
	}
	for name, read := range map[string]func(*attach.Key, []byte) ([]byte, error){"Reader": decrypt, "ReaderAt": openAll} {
		file, err := read(key, v.Raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sum := sha256.Sum256(file)
		if strconv.Itoa(len(file)) != v.Get("length") || hex.EncodeToString(sum[:]) != v.Get("sha256") {
			t.Fatalf("%s: a %d-byte file with another digest", name, len(file))
		}
	}
}

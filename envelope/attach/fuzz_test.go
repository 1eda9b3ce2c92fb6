package attach_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/internal/testkit"
)

// FuzzReader decrypts arbitrary bytes with the fixed key of the golden
// vectors, through the sequential reader and the random-access reader. It
// must never panic; every error must be a documented sentinel (or the
// source's, which here has none); the two readers must agree on whether
// the blob is good and, when it is, on the file; and a blob they accept
// must be one the Writer makes (re-encrypting the file under the same
// header gives the same bytes: the format has one encoding per file).
// Seeded from the golden blobs and edits of them. Inputs stay under 1 MB,
// where no chunk is padding alone (5% of the length is less than a chunk):
// above that ReaderAt, which reads only the chunks asked for, never looks
// at a chunk of padding alone and so cannot agree on a tampered one.
func FuzzReader(f *testing.F) {
	key := vectorKey(f)
	for _, name := range vectorFiles(f, "blob") {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		v, err := testkit.ParseVector(data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v.Raw)
		if len(v.Raw) > 100 {
			f.Add(v.Raw[:len(v.Raw)-attach.TrailerCTSize])
		}
	}
	f.Add([]byte{})
	f.Add([]byte{attach.Version})
	f.Fuzz(func(t *testing.T, blob []byte) {
		if len(blob) > 1<<20 {
			return
		}
		seq, seqErr := decrypt(key, blob)
		at, atErr := openAll(key, blob)
		for _, err := range []error{seqErr, atErr} {
			if err != nil && !typed(err) {
				t.Fatalf("untyped error %v", err)
			}
		}
		if (seqErr == nil) != (atErr == nil) {
			t.Fatalf("the readers disagree: Reader %v, ReaderAt %v", seqErr, atErr)
		}
		if seqErr != nil {
			return
		}
		if !bytes.Equal(seq, at) {
			t.Fatal("the readers give different files")
		}
		restore := attach.SetNonceForTest(blob[1:17])
		again := encrypt(t, key, seq)
		restore()
		if !bytes.Equal(again, blob) {
			t.Fatal("an accepted blob is not what the Writer makes of its file")
		}
	})
}

// FuzzParsePointer parses arbitrary bytes as a Pointer: no panic, a typed
// error and a nil pointer on failure, and on success MarshalBinary gives
// back exactly the input (one encoding per pointer). Seeded from the
// golden pointers.
func FuzzParsePointer(f *testing.F) {
	for _, name := range vectorFiles(f, "pointer") {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		v, err := testkit.ParseVector(data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v.Raw)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := attach.ParsePointer(data)
		if err != nil {
			if p != nil || !(errors.Is(err, attach.ErrMalformed) || errors.Is(err, attach.ErrUnsupportedVersion)) {
				t.Fatalf("ParsePointer = %v, %v", p, err)
			}
			return
		}
		again, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("re-encoding: %x, %v; input %x", again, err, data)
		}
	})
}

// vectorFiles lists the golden vector files of one kind.
func vectorFiles(t testing.TB, kind string) []string {
	files, err := filepath.Glob(filepath.Join("testdata", kind, "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no %s vectors (run TestVectors with -update): %v", kind, err)
	}
	return files
}

package seal_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/sealpost/sealpost/envelope/seal"
)

// FuzzOpenFirstContact opens arbitrary bytes as Bob, with his fixed keys
// and mailbox (TESTING.md, fuzz target F3). It must never panic, must return
// a nil start with every error, every error must be a documented sentinel,
// and it may succeed only for the genuine valid_basic vector, opening to the
// start whose SHA-256 that vector records. The corpus is seeded from every
// vector in testdata/first_contact.
func FuzzOpenFirstContact(f *testing.F) {
	bob := bobSpec.build(f)
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.bin"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no vectors in %s: %v", vectorDir, err)
	}
	var genuine []byte
	var digest string
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		v := decodeVector(f, name, data)
		if filepath.Base(name) == "valid_basic.bin" {
			genuine, digest = v.raw, v.fields["sha256"]
		}
		f.Add(v.raw)
	}
	if genuine == nil {
		f.Fatal("no valid_basic vector")
	}
	f.Add([]byte{})
	f.Add(genuine[:len(genuine)-1])
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := seal.OpenFirstContact(bob.mailKey, bob.mailbox, raw)
		if err != nil {
			if m != nil {
				t.Fatalf("session start returned with error %v", err)
			}
			if !isTyped(err) {
				t.Fatalf("error %v matches no sentinel", err)
			}
			return
		}
		if m == nil {
			t.Fatal("neither a session start nor an error")
		}
		if !bytes.Equal(raw, genuine) {
			t.Fatalf("an envelope other than the genuine vector opened (%d bytes)", len(raw))
		}
		start, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(start); hex.EncodeToString(sum[:]) != digest {
			t.Fatal("the genuine vector opened to another session start")
		}
	})
}

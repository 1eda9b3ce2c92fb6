package ratchet

import (
	"bytes"
	"path/filepath"
	"testing"
)

// fuzzSession is Bob at the end of the golden conversation, with the
// messages he could still accept: Alice's next ones.
func fuzzSession(t testing.TB) (bob []byte, genuine map[string]bool, seeds [][]byte) {
	var v conversation
	readJSON(t, filepath.Join("testdata", "conversation.json"), &v)
	var a, b Session
	if err := a.UnmarshalBinary(v.AliceState); err != nil {
		t.Fatal(err)
	}
	if err := b.UnmarshalBinary(v.BobState); err != nil {
		t.Fatal(err)
	}
	genuine = map[string]bool{}
	for i := range 3 {
		m := send(t, &a, string(rune('x'+i)))
		in := append(m.tag[:], m.msg...)
		genuine[string(in)] = true
		seeds = append(seeds, in)
	}
	for _, m := range v.Messages {
		seeds = append(seeds, append(bytes.Clone(m.Tag), m.Message...))
	}
	return v.BobState, genuine, seeds
}

// FuzzRatchetDecrypt is fuzz target F5 (TESTING.md): an established session
// fed arbitrary bytes (tag || message). No panic; on error the state is
// unchanged; success only for a message Alice really sealed.
func FuzzRatchetDecrypt(f *testing.F) {
	blob, genuine, seeds := fuzzSession(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < TagSize {
			return
		}
		var bob Session
		if err := bob.UnmarshalBinary(blob); err != nil {
			t.Fatal(err)
		}
		bob.hooks = testHooks("fuzz")
		pt, err := bob.Decrypt([TagSize]byte(in), in[TagSize:])
		if err != nil {
			if pt != nil || !anySentinel(err) {
				t.Fatalf("error %v with output or untyped", err)
			}
			if !bytes.Equal(state(t, &bob), blob) {
				t.Fatal("failed decrypt changed the state")
			}
			return
		}
		if !genuine[string(in)] {
			t.Fatalf("decrypted a message nobody sealed: %x", in)
		}
	})
}

// FuzzSessionStateUnmarshal is fuzz target F6 for the ratchet
// state: arbitrary bytes load or fail with a typed error, never panic; on
// error the session is unchanged; a state that loads is stable under save
// and load and survives every operation.
func FuzzSessionStateUnmarshal(f *testing.F) {
	blob, _, _ := fuzzSession(f)
	f.Add(blob)
	var v conversation
	readJSON(f, filepath.Join("testdata", "conversation.json"), &v)
	f.Add([]byte(v.AliceState))
	files, _ := filepath.Glob(filepath.Join("testdata", "state", "*"))
	for _, file := range files {
		f.Add(readVector(f, file).data)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var s Session
		if err := s.UnmarshalBinary(blob); err != nil {
			t.Fatal(err)
		}
		if err := s.UnmarshalBinary(in); err != nil {
			if !anySentinel(err) {
				t.Fatalf("untyped error %v", err)
			}
			if !bytes.Equal(state(t, &s), blob) {
				t.Fatal("failed load changed the session")
			}
			return
		}
		s.hooks = testHooks("fuzz")
		exercise(t, &s)
	})
}

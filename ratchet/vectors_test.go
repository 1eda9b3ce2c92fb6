package ratchet

import (
	"bufio"
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// hexBytes is a byte string that JSON writes as hex.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) (err error) {
	*h, err = hex.DecodeString(string(b))
	return err
}

// conversation is the golden vector testdata/conversation.json: a fixed
// script run from a fixed secret, with every ratchet key injected and
// recorded. Steps are "alice: text" or "bob: text" (send) and "deliver N"
// (deliver the N-th message sent, counting from 0).
type conversation struct {
	Comment     string     `json:"comment"`
	Secret      hexBytes   `json:"secret"`
	AD          hexBytes   `json:"associated_data"`
	BobPrekey   hexBytes   `json:"bob_prekey_seed"`
	AliceSeeds  []hexBytes `json:"alice_ratchet_seeds"`
	BobSeeds    []hexBytes `json:"bob_ratchet_seeds"`
	AliceKEM    []hexBytes `json:"alice_mlkem_seeds"`
	BobKEM      []hexBytes `json:"bob_mlkem_seeds"`
	AliceEncaps []hexBytes `json:"alice_encapsulation_secrets"`
	BobEncaps   []hexBytes `json:"bob_encapsulation_secrets"`
	Script      []string   `json:"script"`
	Messages    []vecMsg   `json:"messages"`
	AliceState  hexBytes   `json:"alice_state"`
	BobState    hexBytes   `json:"bob_state"`
	StateDigest hexBytes   `json:"states_sha256"`
}

type vecMsg struct {
	From      string   `json:"from"`
	Plaintext string   `json:"plaintext"`
	Tag       hexBytes `json:"tag"`
	Message   hexBytes `json:"message"`
}

var script = []string{
	"alice: hello bob", "alice: are you there?", "alice: third",
	"deliver 1", "deliver 0", // out of order in the first chain
	"bob: hi alice", "deliver 3",
	"alice: new chain", "bob: second from bob", "deliver 5", "deliver 4",
	"deliver 2", // old chain, after a DH step (PN)
	"bob: ping", "deliver 6",
	"alice: pong", "deliver 7",
}

// vectorScript is script followed by vectorTurns alternating turns of 1 to
// 4 messages, each delivered at once but the first of every fifth turn,
// which is delivered after the second (reordered): long enough for a KEM
// epoch of each lane to be exchanged and mixed.
func vectorScript() []string {
	out := append([]string(nil), script...)
	sent := 8
	for turn := range vectorTurns {
		from := [2]string{"bob", "alice"}[turn%2]
		n := 1 + turn%4
		for i := range n {
			out = append(out, fmt.Sprintf("%s: t%d.%d", from, turn, i))
			switch {
			case turn%5 == 0 && n > 1 && i == 0:
			case turn%5 == 0 && n > 1 && i == 1:
				out = append(out, fmt.Sprintf("deliver %d", sent+1), fmt.Sprintf("deliver %d", sent))
			default:
				out = append(out, fmt.Sprintf("deliver %d", sent+i))
			}
		}
		sent += n
	}
	return out
}

// vectorTurns is the number of generated turns in the golden conversation.
const vectorTurns = 90

// listKEMSeeds injects the given ML-KEM seeds, in order.
func listKEMSeeds(t testing.TB, seeds *[]hexBytes, record bool, label string) func() [kemSeedSize]byte {
	i := 0
	return func() [kemSeedSize]byte {
		if record {
			a, b := sha256.Sum256(fmt.Appendf(nil, "%s %d a", label, i)), sha256.Sum256(fmt.Appendf(nil, "%s %d b", label, i))
			*seeds = append(*seeds, append(a[:], b[:]...))
		}
		if i >= len(*seeds) || len((*seeds)[i]) != kemSeedSize {
			t.Fatalf("vector has %d %s seeds; the script needs more", len(*seeds), label)
		}
		i++
		return [kemSeedSize]byte((*seeds)[i-1])
	}
}

// listEncSecrets injects the given encapsulation secrets, in order.
func listEncSecrets(t testing.TB, secrets *[]hexBytes, record bool, label string) func() [keySize]byte {
	i := 0
	return func() [keySize]byte {
		if record {
			s := sha256.Sum256(fmt.Appendf(nil, "%s %d", label, i))
			*secrets = append(*secrets, s[:])
		}
		if i >= len(*secrets) || len((*secrets)[i]) != keySize {
			t.Fatalf("vector has %d %s secrets; the script needs more", len(*secrets), label)
		}
		i++
		return [keySize]byte((*secrets)[i-1])
	}
}

// listKeygen injects the given seeds as ratchet private keys, in order.
func listKeygen(t testing.TB, seeds *[]hexBytes, record bool, label string) func() (*ecdh.PrivateKey, error) {
	i := 0
	return func() (*ecdh.PrivateKey, error) {
		if record {
			s := sha256.Sum256(fmt.Appendf(nil, "%s %d", label, i))
			*seeds = append(*seeds, s[:])
		}
		if i >= len(*seeds) {
			t.Fatalf("vector has %d %s seeds; the script needs more", len(*seeds), label)
		}
		k, err := ecdh.X25519().NewPrivateKey((*seeds)[i])
		i++
		return k, err
	}
}

// runConversation plays v's script. With record, it fills in every output
// and injected value; otherwise it checks them.
func runConversation(t *testing.T, v *conversation, record bool) (alice, bob *Session) {
	bobKey, err := ecdh.X25519().NewPrivateKey(v.BobPrekey)
	if err != nil {
		t.Fatal(err)
	}
	alice, err = newInitiator(v.Secret, v.AD, bobKey.PublicKey(), hooks{
		keygen:    listKeygen(t, &v.AliceSeeds, record, "alice"),
		kemSeed:   listKEMSeeds(t, &v.AliceKEM, record, "alice mlkem"),
		encSecret: listEncSecrets(t, &v.AliceEncaps, record, "alice encaps"),
	})
	if err != nil {
		t.Fatal(err)
	}
	bob, err = newResponder(v.Secret, v.AD, bobKey, hooks{
		keygen:    listKeygen(t, &v.BobSeeds, record, "bob"),
		kemSeed:   listKEMSeeds(t, &v.BobKEM, record, "bob mlkem"),
		encSecret: listEncSecrets(t, &v.BobEncaps, record, "bob encaps"),
	})
	if err != nil {
		t.Fatal(err)
	}
	parties := map[string][2]*Session{"alice": {alice, bob}, "bob": {bob, alice}}
	sent := 0
	for _, step := range v.Script {
		if from, text, ok := strings.Cut(step, ": "); ok {
			m := send(t, parties[from][0], text)
			got := vecMsg{from, text, m.tag[:], m.msg}
			if record {
				v.Messages = append(v.Messages, got)
			} else if w := v.Messages[sent]; w.From != from || !bytes.Equal(w.Tag, got.Tag) || !bytes.Equal(w.Message, got.Message) {
				t.Fatalf("message %d differs from the vector", sent)
			}
			sent++
			continue
		}
		var i int
		fmt.Sscanf(step, "deliver %d", &i)
		w := v.Messages[i]
		recv(t, parties[w.From][1], sealed{[TagSize]byte(w.Tag), w.Message, []byte(w.Plaintext)})
	}
	return alice, bob
}

// TestGoldenConversation checks testdata/conversation.json (regenerate with
// -update): every message byte, every tag and both saved states. It also
// loads the saved states, as a later version must.
func TestGoldenConversation(t *testing.T) {
	path := filepath.Join("testdata", "conversation.json")
	var v conversation
	if *update {
		secret := sha256.Sum256([]byte("sealpost ratchet vector secret"))
		prekey := sha256.Sum256([]byte("sealpost ratchet vector bob prekey"))
		v = conversation{
			Comment: "ratchet v3 golden conversation; ratchet seeds are X25519 private keys, mlkem seeds ML-KEM-768 seeds (d || z), " +
				"encapsulation secrets the per-epoch secrets the encapsulation randomness is derived from, each injected in order",
			Secret: secret[:], AD: []byte("sealpost v1 associated data: test vector"),
			BobPrekey: prekey[:], Script: vectorScript(),
		}
		alice, bob := runConversation(t, &v, true)
		v.AliceState, v.BobState = state(t, alice), state(t, bob)
		d := sha256.Sum256(append(bytes.Clone(v.AliceState), v.BobState...))
		v.StateDigest = d[:]
		writeJSON(t, path, &v)
	}
	readJSON(t, path, &v)
	alice, bob := runConversation(t, &v, false)
	if !bytes.Equal(state(t, alice), v.AliceState) || !bytes.Equal(state(t, bob), v.BobState) {
		t.Fatal("saved state differs from the vector: a format change needs a new StateVersion")
	}
	// The vector covers the KEM ratchet: each lane mixed an epoch.
	if alice.own.declared < 1 || bob.own.declared < 1 || alice.peer.declared < 1 || bob.peer.declared < 1 {
		t.Fatalf("KEM epochs mixed: alice %d/%d, bob %d/%d", alice.own.declared, alice.peer.declared, bob.own.declared, bob.peer.declared)
	}
	// Stored states load and the conversation continues.
	var a, b Session
	if err := errors.Join(a.UnmarshalBinary(v.AliceState), b.UnmarshalBinary(v.BobState)); err != nil {
		t.Fatal(err)
	}
	b.hooks = testHooks("continue")
	recv(t, &b, send(t, &a, "after reload"))
	recv(t, &a, send(t, &b, "and back"))
}

func writeJSON(t *testing.T, path string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t testing.TB, path string, v any) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// walk runs steps of a conversation driven by a SHAKE-128 stream and
// returns the SHA-256 of every tag, message, plaintext and final state.
func walk(t *testing.T, steps int) []byte {
	rnd := newShake(fmt.Sprintf("sealpost ratchet walk %d", steps))
	alice, bob := pairFrom(t, "walk")
	parties := [2]*Session{alice, bob}
	var inflight [2][]sealed
	canSend := [2]bool{true, false}
	h := sha256.New()
	for range steps {
		p := rnd.intn(2)
		switch r := rnd.intn(10); {
		case r < 4 && canSend[p]:
			pt := make([]byte, rnd.intn(300))
			rnd.Read(pt)
			m := send(t, parties[p], string(pt))
			h.Write(m.tag[:])
			h.Write(m.msg)
			inflight[1-p] = append(inflight[1-p], m)
		case r < 9 && len(inflight[p]) > 0:
			i := rnd.intn(min(4, len(inflight[p])))
			m := inflight[p][i]
			inflight[p] = append(inflight[p][:i], inflight[p][i+1:]...)
			if r == 8 {
				continue // dropped
			}
			recv(t, parties[p], m)
			h.Write(m.pt)
			canSend[p] = true
		}
	}
	h.Write(state(t, alice))
	h.Write(state(t, bob))
	return h.Sum(nil)
}

// TestAccumulated: a 10,000-step walk (100 with -short) checked
// as one digest in testdata/accumulated.json.
func TestAccumulated(t *testing.T) {
	path := filepath.Join("testdata", "accumulated.json")
	var want map[string]hexBytes
	if *update {
		want = map[string]hexBytes{"100": walk(t, 100), "10000": walk(t, 10000)}
		writeJSON(t, path, want)
	}
	readJSON(t, path, &want)
	steps := 10000
	if testing.Short() {
		steps = 100
	}
	if got := walk(t, steps); !bytes.Equal(got, want[fmt.Sprint(steps)]) {
		t.Fatalf("walk of %d steps: digest %x, want %x", steps, got, want[fmt.Sprint(steps)])
	}
}

// vectorFile is a vector in the layout of docs/SPEC.md section 19: "key:
// value" lines, a blank line, then the raw bytes.
type vectorFile struct {
	fields map[string]string
	data   []byte
}

func readVector(t testing.TB, path string) vectorFile {
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	head, data, ok := bytes.Cut(raw, []byte("\n\n"))
	if !ok {
		t.Fatalf("%s: no blank line", path)
	}
	v := vectorFile{fields: map[string]string{}, data: data}
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		k, val, _ := strings.Cut(sc.Text(), ": ")
		v.fields[k] = val
	}
	return v
}

func writeVector(t *testing.T, path string, fields [][2]string, data []byte) {
	var b bytes.Buffer
	for _, f := range fields {
		fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
	}
	b.WriteString("\n")
	b.Write(data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

var sentinels = map[string]error{
	"ErrUnsupportedVersion": ErrUnsupportedVersion, "ErrMalformed": ErrMalformed,
	"ErrDecrypt": ErrDecrypt, "ErrDuplicate": ErrDuplicate, "ok": nil,
}

// TestErrorVectors checks testdata/message/* (decrypted by Bob at the end
// of the golden conversation) and testdata/state/* (loaded), each against
// its expect: line.
func TestErrorVectors(t *testing.T) {
	var v conversation
	readJSON(t, filepath.Join("testdata", "conversation.json"), &v)
	last := v.Messages[len(v.Messages)-1]
	if *update {
		genErrorVectors(t, &v, last)
	}
	msgs, _ := filepath.Glob(filepath.Join("testdata", "message", "*"))
	states, _ := filepath.Glob(filepath.Join("testdata", "state", "*"))
	files := append(msgs, states...)
	// version1_rejected and version2_rejected (message and state) are
	// kept from the version-1 and version-2 golden conversations and never
	// regenerated.
	if len(files) < 13 {
		t.Fatalf("only %d vectors", len(files))
	}
	for _, f := range files {
		vec := readVector(t, f)
		want, ok := sentinels[vec.fields["expect"]]
		if !ok {
			t.Fatalf("%s: unknown expect %q", f, vec.fields["expect"])
		}
		var err error
		switch filepath.Base(filepath.Dir(f)) {
		case "message":
			var bob Session
			if err := bob.UnmarshalBinary(v.BobState); err != nil {
				t.Fatal(err)
			}
			tag, _ := hex.DecodeString(vec.fields["tag"])
			_, err = bob.Decrypt([TagSize]byte(tag), vec.data)
		case "state":
			var s Session
			err = s.UnmarshalBinary(vec.data)
		}
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Errorf("%s: %v, want %s", f, err, vec.fields["expect"])
		}
	}
}

func genErrorVectors(t *testing.T, v *conversation, last vecMsg) {
	tag := hex.EncodeToString(last.Tag)
	msg := func(name, expect, comment string, data []byte) {
		writeVector(t, filepath.Join("testdata", "message", name), [][2]string{
			{"expect", expect}, {"tag", tag}, {"session", "bob_state of conversation.json"}, {"comment", comment}}, data)
	}
	bumped := bytes.Clone(last.Message)
	bumped[0] = Version + 1
	msg("version_unsupported", "ErrUnsupportedVersion", fmt.Sprintf("the last message of the conversation with version byte %d", Version+1), bumped)
	msg("malformed_truncated", "ErrMalformed", "the last message cut below the fixed overhead", last.Message[:Overhead-1])
	msg("malformed_empty", "ErrMalformed", "no bytes", nil)
	msg("duplicate_replay", "ErrDuplicate", "the last message again: Bob consumed it", last.Message)
	flipped := bytes.Clone(last.Message)
	flipped[len(flipped)-1] ^= 1
	msg("decrypt_replayed_tag_other_body", "ErrDecrypt", "the consumed tag with the body authenticator's last bit flipped: a forgery, not a replay", flipped)
	st := func(name, expect, comment string, data []byte) {
		writeVector(t, filepath.Join("testdata", "state", name), [][2]string{{"expect", expect}, {"comment", comment}}, data)
	}
	// Field 1 (version) = StateVersion+1, then the rest of Bob's state.
	st("version_unsupported", "ErrUnsupportedVersion", fmt.Sprintf("bob_state of conversation.json with version %d", StateVersion+1), append([]byte{0x08, StateVersion + 1}, v.BobState[2:]...))
	st("malformed_unknown_field", "ErrMalformed", "bob_state with field 2047 appended", append(bytes.Clone(v.BobState), 0xf8, 0x7f, 0x01))
	st("malformed_truncated", "ErrMalformed", "bob_state cut in the middle of a field", v.BobState[:len(v.BobState)/2])
	st("valid_bob", "ok", "bob_state of conversation.json", v.BobState)
}

package seal_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
)

// Golden vectors (docs/SPEC.md section 19). crypto/hpke takes no injected randomness,
// so these are decrypt vectors: each file records the recipient's seeds in
// its header and holds an envelope sealed once. The test rebuilds the
// recipient from the recorded seeds, opens the envelope and checks the
// outcome (for "ok", the SHA-256 of the re-marshalled session start).
// Vectors derived from valid_basic by a fixed edit are checked byte for byte
// against that edit. `go test ./envelope/seal -run TestVectors -update`
// seals and writes them again; the new files differ in every sealed byte.
var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

const vectorDir = "testdata/first_contact"

// vectorSpec is one golden vector: its outcome, the recipient that opens it,
// and how its envelope is made: sealed afresh (seal) or derived from
// valid_basic by a deterministic edit (derive).
type vectorSpec struct {
	name    string
	expect  string // "ok" or a sentinel name
	comment string
	to      recipientSpec
	seal    func(t testing.TB) (env, start []byte)
	derive  func(valid []byte) []byte
}

// vectorSpecs lists the vectors; valid_basic comes first, as the others
// derive from it.
func vectorSpecs() []vectorSpec {
	hs := wire.HeaderSize(len(bobSpec.mailbox))
	sealTo := func(to recipientSpec, payload []byte) func(testing.TB) ([]byte, []byte) {
		return func(t testing.TB) ([]byte, []byte) {
			b := to.build(t).bundle(t)
			_, start := newStart(t, b, payload)
			return firstContact(t, b, start), start
		}
	}
	edit := func(f func(env []byte)) func([]byte) []byte {
		return func(valid []byte) []byte {
			env := bytes.Clone(valid)
			f(env)
			return env
		}
	}
	return []vectorSpec{
		{name: "valid_basic", expect: "ok", to: bobSpec, seal: sealTo(bobSpec, []byte("first ratchet message")),
			comment: "Alice's session start to Bob (last-resort prekeys) with a 21-byte payload"},
		{name: "valid_max_mailbox", expect: "ok", to: carolSpec, seal: sealTo(carolSpec, payloadOf(1000)),
			comment: "a 64-byte mailbox id and a 1000-byte payload"},
		{name: "version_unsupported", expect: "ErrUnsupportedVersion", to: bobSpec, derive: edit(func(env []byte) { env[0] = 3 }),
			comment: "valid_basic with routing version byte 3"},
		{name: "decrypt_wrong_key", expect: "ErrDecrypt", to: bobSpec, seal: sealTo(mallorySpec, []byte("first ratchet message")),
			comment: "sealed to Mallory's mailbox key published for Bob's mailbox; Bob opens it"},
		{name: "decrypt_tag_rewritten", expect: "ErrDecrypt", to: bobSpec, derive: edit(func(env []byte) { env[hs-wire.LengthSize-1] ^= 0x01 }),
			comment: "valid_basic with the last bit of the routing tag flipped by the relay"},
		{name: "malformed_other_mailbox", expect: "ErrMalformed", to: bobSpec, derive: edit(func(env []byte) { copy(env[2:], "eve-mailbox") }),
			comment: "valid_basic moved by the relay to mailbox eve-mailbox"},
		{name: "malformed_short_body", expect: "ErrMalformed", to: bobSpec,
			derive: func(valid []byte) []byte {
				n := seal.FirstContactOverhead - 1
				env := append(bytes.Clone(valid[:hs-wire.LengthSize]), byte(n>>16), byte(n>>8), byte(n))
				return append(env, valid[hs:hs+n]...)
			},
			comment: "valid_basic cut one byte short of an encapsulation and an AEAD tag, its length rewritten to match"},
		{name: "malformed_truncated", expect: "ErrMalformed", to: bobSpec,
			derive:  func(valid []byte) []byte { return bytes.Clone(valid[:len(valid)-1]) },
			comment: "valid_basic less its last byte: shorter than its header says"},
		{name: "decrypt_truncated_consistently", expect: "ErrDecrypt", to: bobSpec,
			derive: func(valid []byte) []byte {
				env := bytes.Clone(valid[:len(valid)-1])
				n := len(env) - hs
				env[hs-3], env[hs-2], env[hs-1] = byte(n>>16), byte(n>>8), byte(n)
				return env
			},
			comment: "valid_basic less its last byte with its length rewritten to match: the header is the seal's associated data"},
	}
}

// header writes a vector's header; digest is the SHA-256 of the expected
// session start, for "ok" vectors.
func (v vectorSpec) header(digest string) []byte {
	var b bytes.Buffer
	s := v.to
	fmt.Fprintf(&b, "expect: %s\n", v.expect)
	fmt.Fprintf(&b, "recipient_user: %s\nrecipient_device: %d\nmailbox: %x\n", s.addr.User, s.addr.Device, s.mailbox)
	fmt.Fprintf(&b, "identity_seed: %x\n", s.identitySeed)
	fmt.Fprintf(&b, "signed_prekey_id: %d\nsigned_prekey_seed: %x\n", s.signedPrekey.id, s.signedPrekey.seed)
	fmt.Fprintf(&b, "pq_prekey_id: %d\npq_prekey_seed: %x\n", s.pqPrekey.id, s.pqPrekey.seed)
	fmt.Fprintf(&b, "mailbox_key_id: %d\nmailbox_key_seed: %x\n", s.mailboxKey.id, s.mailboxKey.seed)
	if v.expect == "ok" {
		fmt.Fprintf(&b, "sha256: %s\n", digest)
	}
	fmt.Fprintf(&b, "comment: %s\n\n", v.comment)
	return b.Bytes()
}

// vectorFile is a decoded vector file.
type vectorFile struct {
	head   []byte
	fields map[string]string
	raw    []byte
}

var vectorKeys = []string{"expect", "recipient_user", "recipient_device", "mailbox", "identity_seed",
	"signed_prekey_id", "signed_prekey_seed", "pq_prekey_id", "pq_prekey_seed",
	"mailbox_key_id", "mailbox_key_seed", "sha256", "comment"}

func decodeVector(t testing.TB, name string, data []byte) vectorFile {
	t.Helper()
	head, raw, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		t.Fatalf("%s: no blank line after the header", name)
	}
	v := vectorFile{head: data[:len(head)+2], fields: make(map[string]string), raw: raw}
	sc := bufio.NewScanner(bytes.NewReader(head))
	for sc.Scan() {
		k, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok || !slices.Contains(vectorKeys, k) {
			t.Fatalf("%s: bad header line %q", name, sc.Text())
		}
		v.fields[k] = val
	}
	return v
}

// recipient rebuilds the recipient from the seeds the file records.
func (v vectorFile) recipient(t testing.TB) *recipient {
	t.Helper()
	hexField := func(k string) []byte {
		b, err := hex.DecodeString(v.fields[k])
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return b
	}
	idField := func(k string) uint32 {
		n, err := strconv.ParseUint(v.fields[k], 10, 32)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return uint32(n)
	}
	return recipientSpec{
		addr:         keys.Address{User: v.fields["recipient_user"], Device: idField("recipient_device")},
		mailbox:      hexField("mailbox"),
		identitySeed: hexField("identity_seed"),
		signedPrekey: keySeed{idField("signed_prekey_id"), hexField("signed_prekey_seed")},
		pqPrekey:     keySeed{idField("pq_prekey_id"), hexField("pq_prekey_seed")},
		mailboxKey:   keySeed{idField("mailbox_key_id"), hexField("mailbox_key_seed")},
	}.build(t)
}

var sentinels = map[string]error{
	"ErrMalformed":          seal.ErrMalformed,
	"ErrUnsupportedVersion": seal.ErrUnsupportedVersion,
	"ErrTooLarge":           seal.ErrTooLarge,
	"ErrDecrypt":            seal.ErrDecrypt,
}

// writeVectors seals every vector afresh and writes the files.
func writeVectors(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(vectorDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var valid []byte
	for _, v := range vectorSpecs() {
		var env, start []byte
		if v.seal != nil {
			env, start = v.seal(t)
		} else {
			env = v.derive(valid)
		}
		if v.name == "valid_basic" {
			valid = env
		}
		sum := sha256.Sum256(start)
		data := append(v.header(hex.EncodeToString(sum[:])), env...)
		if err := os.WriteFile(filepath.Join(vectorDir, v.name+".bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVectors(t *testing.T) {
	if *update {
		writeVectors(t)
	}
	specs := vectorSpecs()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.bin"))
	if err != nil || len(files) != len(specs) {
		t.Fatalf("found %d vector files, want %d (run with -update): %v", len(files), len(specs), err)
	}
	var valid []byte
	for _, spec := range specs {
		t.Run(spec.name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(vectorDir, spec.name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			v := decodeVector(t, spec.name, data)
			if spec.name == "valid_basic" {
				valid = v.raw
			}
			if !bytes.Equal(v.head, spec.header(v.fields["sha256"])) {
				t.Fatalf("header differs from the generator (seeds or comment changed? run with -update):\n%s", v.head)
			}
			if spec.derive != nil && (valid == nil || !bytes.Equal(v.raw, spec.derive(valid))) {
				t.Fatal("envelope is not valid_basic with this vector's edit")
			}
			checkVector(t, v)
		})
	}
}

// checkVector opens the vector as the recipient its header records.
func checkVector(t *testing.T, v vectorFile) {
	t.Helper()
	r := v.recipient(t)
	want, ok := sentinels[v.fields["expect"]]
	if !ok && v.fields["expect"] != "ok" {
		t.Fatalf("unknown expectation %q", v.fields["expect"])
	}
	m, err := seal.OpenFirstContact(r.mailKey, r.mailbox, v.raw)
	if want != nil {
		if !errors.Is(err, want) || m != nil {
			t.Fatalf("OpenFirstContact = %v, %v; want nil, %s", m, err, v.fields["expect"])
		}
		return
	}
	if err != nil {
		t.Fatalf("OpenFirstContact: %v", err)
	}
	start, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(start); hex.EncodeToString(sum[:]) != v.fields["sha256"] {
		t.Fatalf("session start sha256 %x, want %s", sum, v.fields["sha256"])
	}
	if _, err := r.respond(m); err != nil {
		t.Fatalf("the recipient cannot answer the vector's session start: %v", err)
	}
}

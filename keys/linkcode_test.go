package keys

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/internal/testkit"
)

// The golden vectors of link codes: each file in testdata/link_code is a
// testkit vector with an expect line (ok or the error class) and the
// encoding. A valid vector also records what it decodes to (user and name
// Go-quoted, identity and secret in hex) and its short form, so that a
// second implementation can check its decoder and its short-form
// derivation. The bytes are built here by hand from the layout documented
// on LinkCode.Bytes, not by Bytes, so that the vectors check the encoder
// as well as the decoder.
const linkCodeVectorsDir = "testdata/link_code"

// linkCodeComment is the comment line of every link-code vector.
const linkCodeComment = "sealpost link code, format 1 (LinkCode.Bytes: format 1 | user_len 2 | user | device 4 | identity | name_len 1 | name | secret 32); " +
	"identity seeds and secrets are testSeed(\"link code <name> identity\"/\"... secret\"). Regenerate with go test ./keys -run TestLinkCodeVectors -update."

// linkCodeLayout encodes a link code field by field, as documented on
// LinkCode.Bytes. Lengths are written as given (truncated to their width),
// so that the invalid vectors can carry fields the encoder refuses.
func linkCodeLayout(format byte, user string, device uint32, identity []byte, name string, secret []byte) []byte {
	b := []byte{format}
	b = append(b, testkit.BE16(uint16(len(user)))...)
	b = append(b, user...)
	b = append(b, testkit.BE32(device)...)
	b = append(b, identity...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	return append(b, secret...)
}

// linkCodeSpec is the input of one valid link-code vector.
type linkCodeSpec struct {
	name     string // the vector's name
	addr     Address
	device   string // the name the device asks to be listed under
	identity PublicIdentity
	secret   []byte
	comment  string
}

// newLinkCodeSpec derives the identity and secret of a spec from its
// vector name.
func newLinkCodeSpec(t testing.TB, name string, addr Address, device, comment string) linkCodeSpec {
	t.Helper()
	seed := testSeed("link code "+name+" identity", IdentitySeedSize)
	registerSecret("link code identity seed", seed)
	id, err := NewIdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	secret := testSeed("link code "+name+" secret", LinkSecretSize)
	registerSecret("link code secret", secret)
	return linkCodeSpec{name: name, addr: addr, device: device, identity: id.Public(), secret: secret, comment: comment}
}

func (s linkCodeSpec) raw() []byte {
	return linkCodeLayout(LinkCodeFormat, s.addr.User, s.addr.Device, s.identity.Bytes(), s.device, s.secret)
}

// code returns the LinkCode the spec describes, built without parsing.
func (s linkCodeSpec) code() *LinkCode {
	c := &LinkCode{Address: s.addr, Identity: s.identity, Name: s.device}
	copy(c.secret[:], s.secret)
	return c
}

// linkCodeVector is one file of testdata/link_code.
type linkCodeVector struct {
	name   string
	expect string
	spec   *linkCodeSpec // valid vectors only
	note   string
	raw    []byte
}

// linkCodeBase is the code the invalid vectors are edits of.
func linkCodeBase(t testing.TB) linkCodeSpec {
	return newLinkCodeSpec(t, "laptop", Address{User: "alice", Device: 2}, "laptop", "alice.2 asks to be listed as laptop")
}

// linkCodeVectors returns every link-code vector, valid ones first.
func linkCodeVectors(t testing.TB) []linkCodeVector {
	t.Helper()
	valid := []linkCodeSpec{
		linkCodeBase(t),
		newLinkCodeSpec(t, "longest", Address{User: strings.Repeat("ü", MaxUserLength/2), Device: 0xffffffff},
			strings.Repeat("é", MaxDeviceNameLength/2), "a user of MaxUserLength bytes, device 2^32-1 and a name of MaxDeviceNameLength bytes: MaxLinkCodeSize bytes in all"),
		newLinkCodeSpec(t, "unicode", Address{User: "Bébé 🐝", Device: 0}, "Anna's laptop", "device 0, non-ASCII user, a name with a space and an apostrophe"),
	}
	var out []linkCodeVector
	for i := range valid {
		s := &valid[i]
		out = append(out, linkCodeVector{name: "valid_" + s.name, expect: "ok", spec: s, note: s.comment, raw: s.raw()})
	}
	base := valid[0]
	raw := base.raw()
	id := base.identity.Bytes()
	idAt := 1 + 2 + len(base.addr.User) + 4
	with := func(user string, identity []byte, name string) []byte {
		return linkCodeLayout(LinkCodeFormat, user, base.addr.Device, identity, name, base.secret)
	}
	long := strings.Repeat("u", MaxUserLength+1)
	out = append(out, []linkCodeVector{
		{name: "truncated", expect: "ErrMalformed", note: "the valid_laptop code without its last byte", raw: raw[:len(raw)-1]},
		{name: "truncated_header", expect: "ErrMalformed", note: "the format and one byte of the user length", raw: raw[:2]},
		{name: "truncated_identity", expect: "ErrMalformed", note: "the valid_laptop code cut inside the identity", raw: raw[:idAt+PublicIdentitySize/2]},
		{name: "extended", expect: "ErrMalformed", note: "the valid_laptop code with a trailing zero byte", raw: append(bytes.Clone(raw), 0)},
		{name: "format_0", expect: "ErrUnsupportedVersion", note: "the valid_laptop code with format 0", raw: testkit.With(raw, 0, 0)},
		{name: "format_2", expect: "ErrUnsupportedVersion", note: "the valid_laptop code with format 2", raw: testkit.With(raw, 0, 2)},
		{name: "too_large", expect: "ErrTooLarge", note: "a user of MaxUserLength+1 bytes and the longest name: MaxLinkCodeSize+1 bytes",
			raw: with(long, id, strings.Repeat("n", MaxDeviceNameLength))},
		{name: "bad_identity_signature", expect: "ErrBadSignature", note: "bit 0 of the identity's self-signature flipped",
			raw: flipBit(raw, 8*(idAt+70))},
		{name: "bad_identity_type", expect: "ErrMalformed", note: "the identity's signing key with the X25519 type byte",
			raw: testkit.With(raw, idAt, typeX25519)},
		{name: "bad_name_control", expect: "ErrMalformed", note: "name \"lap\\ttop\": a control character", raw: with(base.addr.User, id, "lap\ttop")},
		{name: "bad_name_bidi", expect: "ErrMalformed", note: "name \"phone\\u202egpj.exe\": a right-to-left override", raw: with(base.addr.User, id, "phone\u202egpj.exe")},
		{name: "bad_name_empty", expect: "ErrMalformed", note: "an empty name", raw: with(base.addr.User, id, "")},
		{name: "bad_name_too_long", expect: "ErrMalformed", note: "a name of MaxDeviceNameLength+1 bytes", raw: with(base.addr.User, id, strings.Repeat("n", MaxDeviceNameLength+1))},
		{name: "bad_name_length", expect: "ErrMalformed", note: "the name length byte says 200, past the input",
			raw: testkit.With(raw, idAt+PublicIdentitySize, 200)},
		{name: "empty_user", expect: "ErrMalformed", note: "an empty user", raw: with("", id, base.device)},
		{name: "user_too_long", expect: "ErrMalformed", note: "a user of MaxUserLength+1 bytes (the code is within MaxLinkCodeSize)",
			raw: with(long, id, base.device)},
		{name: "user_length_past_input", expect: "ErrMalformed", note: "the user length says 65535, past the input",
			raw: testkit.With(raw, 1, 0xff, 0xff)},
	}...)
	return out
}

// file returns the vector file of v.
func (v linkCodeVector) file() testkit.Vector {
	h := []testkit.Field{{Key: "comment", Value: linkCodeComment}, {Key: "expect", Value: v.expect}, {Key: "case", Value: v.note}}
	if s := v.spec; s != nil {
		h = append(h,
			testkit.Field{Key: "user", Value: strconv.Quote(s.addr.User)},
			testkit.Field{Key: "device", Value: strconv.FormatUint(uint64(s.addr.Device), 10)},
			testkit.Field{Key: "identity", Value: hex.EncodeToString(s.identity.Bytes())},
			testkit.Field{Key: "name", Value: strconv.Quote(s.device)},
			testkit.Field{Key: "secret", Value: hex.EncodeToString(s.secret)},
			testkit.Field{Key: "short", Value: s.code().Short()},
		)
	}
	return testkit.Vector{Header: h, Raw: v.raw}
}

// linkCodeHeaderKeys are the keys a link-code vector file may hold.
var linkCodeHeaderKeys = []string{"comment", "expect", "case", "user", "device", "identity", "name", "secret", "short"}

// shortForm is the shape of LinkCode.Short.
var shortForm = regexp.MustCompile(`^[0-9]{4}-[0-9]{4}-[0-9]{4}$`)

// TestLinkCodeVectors checks the committed link-code vectors against the
// generator and runs each through ParseLinkCode: a valid one must decode
// to the recorded fields, encode back to its bytes and give the recorded
// short form; an invalid one must fail with the recorded error class.
func TestLinkCodeVectors(t *testing.T) {
	vectors := linkCodeVectors(t)
	if *update {
		if err := os.RemoveAll(linkCodeVectorsDir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(linkCodeVectorsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, v := range vectors {
			if err := os.WriteFile(filepath.Join(linkCodeVectorsDir, v.name+".bin"), v.file().Encode(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := map[string]bool{}
	for _, v := range vectors {
		names[v.name+".bin"] = true
		if v.spec != nil {
			// The encoder agrees with the hand-built layout.
			if !bytes.Equal(v.spec.code().Bytes(), v.raw) {
				t.Errorf("%s: LinkCode.Bytes differs from the documented layout", v.name)
			}
		}
	}
	entries, err := os.ReadDir(linkCodeVectorsDir)
	if err != nil {
		t.Fatalf("%v (run with -update to create the vectors)", err)
	}
	for _, e := range entries {
		if !names[e.Name()] {
			t.Errorf("%s/%s is not generated by any vector", linkCodeVectorsDir, e.Name())
		}
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			path := filepath.Join(linkCodeVectorsDir, v.name+".bin")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			got, err := testkit.ParseVector(data, linkCodeHeaderKeys...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Raw, v.raw) {
				t.Fatalf("the code now makes other bytes than %s", path)
			}
			if !bytes.Equal(data, v.file().Encode()) {
				t.Errorf("%s differs from what the generator writes now (header or bytes)", path)
			}
			checkLinkCodeVector(t, got)
		})
	}
	expects := map[string]bool{}
	for _, v := range vectors {
		expects[v.expect] = true
	}
	for _, want := range []string{"ok", "ErrMalformed", "ErrUnsupportedVersion", "ErrTooLarge", "ErrBadSignature"} {
		if !expects[want] {
			t.Errorf("no link-code vector expects %s", want)
		}
	}
	if n := len(vectors[1].raw); vectors[1].name != "valid_longest" || n != MaxLinkCodeSize {
		t.Errorf("valid_longest is %d bytes, want MaxLinkCodeSize (%d)", n, MaxLinkCodeSize)
	}
}

// checkLinkCodeVector runs one parsed vector file, from its header alone.
func checkLinkCodeVector(t *testing.T, v testkit.Vector) {
	t.Helper()
	c, err := ParseLinkCode(v.Raw)
	if v.Get("expect") != "ok" {
		want := sentinelByName(v.Get("expect"))
		if want == nil {
			t.Fatalf("unknown expect %q", v.Get("expect"))
		}
		if c != nil {
			t.Fatal("a link code with the error")
		}
		wantErr(t, err, want)
		return
	}
	if err != nil {
		t.Fatalf("want success, got %v", err)
	}
	user, err1 := strconv.Unquote(v.Get("user"))
	name, err2 := strconv.Unquote(v.Get("name"))
	device, err3 := strconv.ParseUint(v.Get("device"), 10, 32)
	identity, err4 := hex.DecodeString(v.Get("identity"))
	secret, err5 := hex.DecodeString(v.Get("secret"))
	if e := cmpErr(err1, err2, err3, err4, err5); e != nil {
		t.Fatalf("header: %v", e)
	}
	if c.Address.User != user || c.Address.Device != uint32(device) || c.Name != name ||
		!bytes.Equal(c.Identity.Bytes(), identity) || !bytes.Equal(c.Secret(), secret) {
		t.Fatalf("decoded %v %q, identity %x: not the recorded fields", c.Address, c.Name, c.Identity.Bytes())
	}
	if !bytes.Equal(c.Bytes(), v.Raw) {
		t.Fatal("the parsed code does not encode back to its bytes")
	}
	// The short form is pinned: both devices compute it, so an
	// implementation that derives it otherwise shows other digits.
	if s := c.Short(); s != v.Get("short") || !shortForm.MatchString(s) {
		t.Fatalf("short form %q, recorded %q", s, v.Get("short"))
	}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%x", c)} {
		if strings.Contains(s, hex.EncodeToString(secret)[:16]) {
			t.Fatalf("formatting a link code prints its secret: %s", s)
		}
	}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%#v", c), fmt.Sprintf("%x", c)} {
		checkNoSecret(t, "formatted link code", s)
	}
}

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// linkCodeSeeds returns the raw bytes of every committed link-code vector,
// to seed FuzzParseLinkCode.
func linkCodeSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(linkCodeVectorsDir, "*.bin"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no link-code vectors: %v", err)
	}
	var out [][]byte
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		v, err := testkit.ParseVector(data, linkCodeHeaderKeys...)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		out = append(out, v.Raw)
	}
	return out
}

// TestLinkCodeRoundTrip: NewLinkCode makes a code that parses back to its
// fields and bytes, with a fresh secret each time, and refuses what
// ParseLinkCode refuses.
func TestLinkCodeRoundTrip(t *testing.T) {
	s := linkCodeBase(t)
	c, err := NewLinkCode(s.addr, s.identity, s.device)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseLinkCode(c.Bytes())
	if err != nil || got.Address != s.addr || !got.Identity.Equal(s.identity) || got.Name != s.device ||
		!bytes.Equal(got.Secret(), c.Secret()) || got.Short() != c.Short() || !bytes.Equal(got.Bytes(), c.Bytes()) {
		t.Fatalf("round trip: %v", err)
	}
	again, err := NewLinkCode(s.addr, s.identity, s.device)
	if err != nil || bytes.Equal(again.Secret(), c.Secret()) || again.Short() == c.Short() {
		t.Fatal("two codes share a secret or a short form")
	}
	sec := c.Secret()
	sec[0] ^= 1
	if bytes.Equal(sec, c.Secret()) {
		t.Fatal("Secret returns the code's own array")
	}
	long := Address{User: strings.Repeat("u", MaxUserLength+1), Device: 1}
	for _, tc := range []struct {
		what string
		addr Address
		id   PublicIdentity
		name string
	}{
		{"empty user", Address{Device: 1}, s.identity, "laptop"},
		{"user over MaxUserLength", long, s.identity, "laptop"},
		{"no identity", s.addr, PublicIdentity{}, "laptop"},
		{"empty name", s.addr, s.identity, ""},
		{"a control character", s.addr, s.identity, "lap\ttop"},
		{"name over MaxDeviceNameLength", s.addr, s.identity, strings.Repeat("n", MaxDeviceNameLength+1)},
	} {
		c, err := NewLinkCode(tc.addr, tc.id, tc.name)
		if c != nil {
			t.Fatalf("%s: a code with the error", tc.what)
		}
		wantErr(t, err, ErrMalformed)
	}
	// Every truncation and every single bit flip is refused or, for a flip
	// in the secret, a code with another short form: never the same code.
	raw := s.raw()
	for n := range len(raw) {
		if c, err := ParseLinkCode(raw[:n]); err == nil || c != nil {
			t.Fatalf("truncated to %d bytes: parsed", n)
		} else {
			wantTyped(t, err)
		}
	}
	for i := range len(raw) * 8 {
		flipped := flipBit(raw, i)
		c, err := ParseLinkCode(flipped)
		if err != nil {
			wantTyped(t, err)
			continue
		}
		if !bytes.Equal(c.Bytes(), flipped) {
			t.Fatalf("bit %d flipped: parsed to other bytes", i)
		}
		if c.Short() == s.code().Short() {
			t.Fatalf("bit %d flipped: the same short form", i)
		}
		// A flip in the device id, the user or the name makes another
		// valid code; one in the identity or the format never does.
		if at := i / 8; at == 0 || (at >= 1+2+len(s.addr.User)+4 && at < 1+2+len(s.addr.User)+4+PublicIdentitySize) {
			t.Fatalf("bit %d flipped (byte %d): parsed", i, at)
		}
	}
}

// TestLinkCodeHidesSecret: however a link code is printed, by pointer, by
// value or inside a struct, its secret does not appear.
func TestLinkCodeHidesSecret(t *testing.T) {
	c, err := NewLinkCode(Address{User: "alice", Device: 2}, GenerateIdentity().Public(), "laptop")
	if err != nil {
		t.Fatal(err)
	}
	secret := fmt.Sprintf("%x", c.Secret())
	wrapped := struct{ C LinkCode }{*c}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", *c), fmt.Sprintf("%#v", wrapped), fmt.Sprintf("%x", *c), fmt.Sprintf("%v", wrapped)} {
		if strings.Contains(s, secret[:16]) || strings.Contains(s, fmt.Sprint(c.Secret()[:4])[1:8]) {
			t.Fatalf("printed the secret: %s", s)
		}
	}
	if _, err := NewLinkCode(Address{User: "\xff\xfe", Device: 2}, GenerateIdentity().Public(), "laptop"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a user that is not UTF-8: %v", err)
	}
}

package attach_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sealpost/sealpost/envelope/attach"
)

func testPointer(t testing.TB) *attach.Pointer {
	p := &attach.Pointer{ID: "blob_01.Zm9v-~", Key: keyOf(t, "pointer"), Length: 123456789,
		MediaType: "image/png", Name: "holiday photo ☀.png"}
	copy(p.Digest[:], fileOf("pointer digest", 32))
	return p
}

func TestPointerRoundTrip(t *testing.T) {
	for _, p := range []*attach.Pointer{
		testPointer(t),
		{ID: "x", Key: keyOf(t, "min"), Length: 0},
		{ID: strings.Repeat("a", attach.MaxIDLength), Key: keyOf(t, "max"), Length: attach.MaxLength,
			MediaType: strings.Repeat("m", attach.MaxMediaTypeLength), Name: strings.Repeat("é", attach.MaxNameLength/2)},
	} {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		q, err := attach.ParsePointer(b)
		if err != nil {
			t.Fatal(err)
		}
		if q.ID != p.ID || !q.Key.Equal(p.Key) || q.Length != p.Length || q.Digest != p.Digest ||
			q.MediaType != p.MediaType || q.Name != p.Name {
			t.Fatalf("round trip changed the pointer")
		}
		b2, _ := q.MarshalBinary()
		if !bytes.Equal(b, b2) {
			t.Fatal("re-encoding differs")
		}
	}
}

// TestPointerRejects: every field out of bounds, on encoding and decoding.
func TestPointerRejects(t *testing.T) {
	bad := map[string]func(p *attach.Pointer){
		"empty id":             func(p *attach.Pointer) { p.ID = "" },
		"long id":              func(p *attach.Pointer) { p.ID = strings.Repeat("a", attach.MaxIDLength+1) },
		"id with a slash":      func(p *attach.Pointer) { p.ID = "a/b" },
		"id with a space":      func(p *attach.Pointer) { p.ID = "a b" },
		"id with a percent":    func(p *attach.Pointer) { p.ID = "a%2f" },
		"nil key":              func(p *attach.Pointer) { p.Key = nil },
		"negative length":      func(p *attach.Pointer) { p.Length = -1 },
		"length over max":      func(p *attach.Pointer) { p.Length = attach.MaxLength + 1 },
		"media type control":   func(p *attach.Pointer) { p.MediaType = "text/plain\n" },
		"media type non-ascii": func(p *attach.Pointer) { p.MediaType = "image/pñg" },
		"long media type":      func(p *attach.Pointer) { p.MediaType = strings.Repeat("m", 256) },
		"name with a slash":    func(p *attach.Pointer) { p.Name = "../etc/passwd" },
		"name backslash":       func(p *attach.Pointer) { p.Name = `..\x` },
		"name dot":             func(p *attach.Pointer) { p.Name = "." },
		"name dot dot":         func(p *attach.Pointer) { p.Name = ".." },
		"name NUL":             func(p *attach.Pointer) { p.Name = "a\x00b" },
		"name newline":         func(p *attach.Pointer) { p.Name = "a\nb" },
		"name C1 control":      func(p *attach.Pointer) { p.Name = "a\u0085b" },
		"name not UTF-8":       func(p *attach.Pointer) { p.Name = "a\xffb" },
		"long name":            func(p *attach.Pointer) { p.Name = strings.Repeat("n", attach.MaxNameLength+1) },
	}
	for name, edit := range bad {
		p := testPointer(t)
		edit(p)
		if _, err := p.MarshalBinary(); !errors.Is(err, attach.ErrMalformed) {
			t.Errorf("%s: MarshalBinary: %v", name, err)
		}
	}
	good, err := testPointer(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	idLen := int(good[1])
	keyAt := 2 + idLen
	lengthAt := keyAt + attach.KeySize
	mtAt := lengthAt + 8 + 32
	set := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	decoding := map[string][]byte{
		"empty":           nil,
		"version only":    good[:1],
		"truncated":       good[:len(good)-1],
		"trailing byte":   append(bytes.Clone(good), 0),
		"id length 0":     set(1, 0),
		"id length long":  set(1, 255),
		"id bad byte":     set(2, '/'),
		"zero key":        append(append(bytes.Clone(good[:keyAt]), make([]byte, 32)...), good[keyAt+32:]...),
		"length too big":  set(lengthAt, 0x01),
		"negative length": set(lengthAt, 0x80),
		"media type len":  set(mtAt, 200),
		"media type byte": set(mtAt+1, 0x7f),
		"name length":     set(mtAt+1+len("image/png"), 3),
		"name byte":       set(len(good)-1, '/'),
	}
	for name, b := range decoding {
		if _, err := attach.ParsePointer(b); !errors.Is(err, attach.ErrMalformed) {
			t.Errorf("%s: ParsePointer: %v", name, err)
		}
	}
	for _, v := range []byte{0, 2, 255} {
		if _, err := attach.ParsePointer(set(0, v)); !errors.Is(err, attach.ErrUnsupportedVersion) {
			t.Errorf("version %d: %v", v, err)
		}
	}
}

// TestSecretsNotPrinted: a Key and a Pointer (which holds the key and the
// store's capability) print neither, with any verb, as values, pointers or
// struct fields (checklist item 46 of TESTING.md); nor do the package's errors.
func TestSecretsNotPrinted(t *testing.T) {
	p := testPointer(t)
	secrets := [][]byte{p.Key.Bytes(), []byte(p.ID)}
	var texts []string
	for _, v := range []any{p, *p, p.Key, *p.Key, struct{ P *attach.Pointer }{p}, struct{ K attach.Key }{*p.Key}, []*attach.Pointer{p}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%q", "%d"} {
			texts = append(texts, fmt.Sprintf(verb, v))
		}
		if s, ok := v.(fmt.Stringer); ok {
			texts = append(texts, s.String())
		}
	}
	blob := encrypt(t, p.Key, fileOf("secrets", 100))
	for _, b := range [][]byte{blob[:10], blob[:len(blob)-1], append(bytes.Clone(blob), 1)} {
		_, err := decrypt(p.Key, b)
		texts = append(texts, fmt.Sprintf("%v %+v", err, err))
	}
	for _, text := range texts {
		for _, s := range secrets {
			for _, form := range []string{string(s), hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s),
				base64.RawURLEncoding.EncodeToString(s), fmt.Sprint(s), hex.EncodeToString(s[4:12])} {
				if strings.Contains(strings.ToLower(text), strings.ToLower(form)) {
					t.Fatalf("secret printed: %s", text)
				}
			}
		}
	}
}

func TestKey(t *testing.T) {
	k := attach.GenerateKey()
	b := k.Bytes()
	b[0] ^= 1
	if bytes.Equal(b, k.Bytes()) {
		t.Fatal("Bytes returns the key's own array")
	}
	b[0] ^= 1
	k2, err := attach.NewKey(b)
	if err != nil || !k2.Equal(k) || k2.Equal(attach.GenerateKey()) || k.Equal(nil) {
		t.Fatalf("NewKey(Bytes()): %v", err)
	}
	b[0] ^= 1 // NewKey copies its input
	if !k2.Equal(k) {
		t.Fatal("NewKey kept the caller's slice")
	}
	for _, bad := range [][]byte{nil, make([]byte, 31), make([]byte, 33), make([]byte, 32)} {
		if _, err := attach.NewKey(bad); !errors.Is(err, attach.ErrMalformed) {
			t.Errorf("NewKey(%d bytes): %v", len(bad), err)
		}
	}
}

// TestValidName: the characters a displayed file name could use to look
// like another are refused (control, format, private-use, line and
// paragraph separators), but what real names hold passes: letters of
// every script, combining marks, emoji with variation selectors and
// zero-width joiners, non-ASCII spaces, unassigned code points.
func TestValidName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
		why  string
	}{
		{"", true, "empty"},
		{"report.pdf", true, "ASCII"},
		{"übung 1.txt", true, "Latin-1"},
		{"e\u0301te\u0301.txt", true, "combining accents"},
		{"写真 2024.jpg", true, "CJK"},
		{"\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645.txt", true, "Persian with ZWNJ"},
		{"👨\u200d👩\u200d👧.png", true, "emoji ZWJ sequence"},
		{"❤\ufe0f.txt", true, "variation selector"},
		{"Screenshot 2024-01-01 at 10.00.00\u202fPM.png", true, "narrow no-break space (macOS)"},
		{"\u00a0nbsp\u3000ideographic.txt", true, "other spaces"},
		{"new\U000e0000.txt", true, "unassigned code point"},
		{"photo\u202egpj.exe", false, "RIGHT-TO-LEFT OVERRIDE"},
		{"a\u202db", false, "LEFT-TO-RIGHT OVERRIDE"},
		{"a\u2066b\u2069", false, "isolates"},
		{"a\u200eb", false, "LEFT-TO-RIGHT MARK"},
		{"a\u061cb", false, "ARABIC LETTER MARK"},
		{"a\u200bb", false, "ZERO WIDTH SPACE"},
		{"\ufeffa.txt", false, "BOM"},
		{"a\u2060b", false, "WORD JOINER"},
		{"a\u00adb", false, "SOFT HYPHEN"},
		{"a\U000e0041b", false, "tag character"},
		{"a\ue000b", false, "private use"},
		{"a\U000f0000b", false, "supplementary private use"},
		{"a\u2028b", false, "LINE SEPARATOR"},
		{"a\u2029b", false, "PARAGRAPH SEPARATOR"},
		{"a\x00b", false, "NUL"},
		{"a\tb", false, "tab"},
		{"a\u0085b", false, "C1 control"},
		{"a\x7fb", false, "DEL"},
		{"a/b", false, "slash"},
		{`a\b`, false, "backslash"},
		{".", false, "dot"},
		{"..", false, "dot dot"},
		{"...", true, "three dots"},
		{"a\xffb", false, "not UTF-8"},
		{strings.Repeat("n", attach.MaxNameLength), true, "longest"},
		{strings.Repeat("n", attach.MaxNameLength+1), false, "too long"},
	} {
		if got := attach.ValidName(c.name); got != c.ok {
			t.Errorf("%s: ValidName(%q) = %v", c.why, c.name, got)
		}
		p := &attach.Pointer{ID: "id", Key: attach.GenerateKey(), Name: c.name}
		b, err := p.MarshalBinary()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, attach.ErrMalformed)) {
			t.Errorf("%s: MarshalBinary: %v", c.why, err)
		}
		if c.ok {
			if _, err := attach.ParsePointer(b); err != nil {
				t.Errorf("%s: ParsePointer: %v", c.why, err)
			}
		}
	}
}

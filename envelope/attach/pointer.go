package attach

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of the Pointer fields, each in one length byte.
const (
	// MaxIDLength bounds a blob id: a store's capability (a random id and
	// a token) fits well within it.
	MaxIDLength = 255
	// MaxMediaTypeLength bounds a media type (RFC 6838 allows 127 + 1 +
	// 127 bytes, parameters aside).
	MaxMediaTypeLength = 255
	// MaxNameLength bounds a file name: the common file-system limit.
	MaxNameLength = 255
)

// Pointer is what a message carries instead of a file: where the blob is,
// the key that opens it, and what the file is. It must be kept secret (it
// holds the key and the store's capability), so it prints only its length,
// media type and a prefix of the digest.
type Pointer struct {
	// ID names the blob in its store: what BlobStore.Create returned, and
	// all a recipient needs to Get it. Bytes of RFC 3986's unreserved set
	// (A-Z a-z 0-9 - . _ ~), 1 to MaxIDLength of them.
	ID string
	// Key is the file key.
	Key *Key
	// Length is the file's true length, padding excluded.
	Length int64
	// Digest is the SHA-256 of the whole blob as stored.
	Digest [sha256.Size]byte
	// MediaType is the file's media type ("image/png"), or empty: printable
	// ASCII, at most MaxMediaTypeLength bytes.
	MediaType string
	// Name is the file's name, or empty: UTF-8 without control, format or
	// private-use characters, line separators, slashes or backslashes, not
	// "." or "..", at most MaxNameLength bytes (see ValidName). It comes
	// from the sender: an app must still not use it as a path.
	Name string
}

// pointerFixedSize is the size of a pointer with empty strings.
const pointerFixedSize = 1 + 1 + KeySize + 8 + sha256.Size + 1 + 1

// MarshalBinary encodes the pointer (see the package doc, "Pointer encoding",
// and docs/SPEC.md section 21.5). It returns ErrMalformed for a field out of
// its bounds.
func (p *Pointer) MarshalBinary() ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, pointerFixedSize+len(p.ID)+len(p.MediaType)+len(p.Name))
	b = append(b, Version, byte(len(p.ID)))
	b = append(b, p.ID...)
	b = append(b, p.Key.b[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(p.Length))
	b = append(b, p.Digest[:]...)
	b = append(append(b, byte(len(p.MediaType))), p.MediaType...)
	b = append(append(b, byte(len(p.Name))), p.Name...)
	return b, nil
}

// ParsePointer decodes a pointer that MarshalBinary made. The encoding is
// strict: any other bytes, trailing bytes included, are ErrMalformed, and
// a version other than Version is ErrUnsupportedVersion. So a pointer that
// parses marshals back to exactly its input.
func ParsePointer(data []byte) (*Pointer, error) {
	d := decoder{data: data}
	if v := d.take(1)[0]; !d.short && v != Version {
		return nil, fmt.Errorf("%w: attach: pointer version %d", ErrUnsupportedVersion, v)
	}
	p := &Pointer{ID: d.str()}
	key := d.take(KeySize)
	if n := d.uint64(); n <= MaxLength {
		p.Length = int64(n)
	} else {
		p.Length = -1 // refused by check
	}
	copy(p.Digest[:], d.take(sha256.Size))
	p.MediaType = d.str()
	p.Name = d.str()
	if d.short || len(d.data) != 0 {
		return nil, fmt.Errorf("%w: attach: pointer of %d bytes", ErrMalformed, len(data))
	}
	var err error
	if p.Key, err = NewKey(key); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

// check validates every field.
func (p *Pointer) check() error {
	bad := func(what string) error { return fmt.Errorf("%w: attach: pointer %s", ErrMalformed, what) }
	switch {
	case len(p.ID) == 0 || len(p.ID) > MaxIDLength || strings.IndexFunc(p.ID, notUnreserved) >= 0:
		return bad("id")
	case p.Key == nil:
		return bad("without a key")
	case p.Length < 0 || p.Length > MaxLength:
		return bad("length")
	case len(p.MediaType) > MaxMediaTypeLength || strings.IndexFunc(p.MediaType, notPrintableASCII) >= 0:
		return bad("media type")
	case !ValidName(p.Name):
		return bad("file name")
	}
	return nil
}

// ValidName reports whether name may be a Pointer's Name: empty, or at
// most MaxNameLength bytes of UTF-8 without '/' or '\\', neither "." nor
// "..", and without the characters a name could use to look like another
// (docs/SPEC.md section 21.5):
//
//   - control characters (Unicode category Cc);
//   - format characters (Cf): the bidirectional controls, U+202E RIGHT-TO-LEFT
//     OVERRIDE among them, that make "gpj.exe" display as "exe.jpg", and
//     invisible ones such as U+200B ZERO WIDTH SPACE, U+FEFF and U+00AD
//     SOFT HYPHEN; but U+200C and U+200D (zero-width non-joiner and joiner),
//     which Persian and Indic words and emoji sequences need, and which
//     neither reorder text nor hide an extension;
//   - private-use characters (Co), which every font draws as it likes;
//   - U+2028 and U+2029, the line and paragraph separators (Zl, Zp).
//
// The categories are those of Go's unicode tables (Unicode 15.0.0).
// Unassigned code points are allowed: a later Unicode assigns new
// characters (emoji every year), and a pointer one build accepts must not
// fail in another; nor are spaces other than U+0020 refused (macOS names
// screenshots with U+202F before "PM"). An app still shows a received
// name as untrusted text and must not use it as a path.
func ValidName(name string) bool {
	return len(name) <= MaxNameLength && utf8.ValidString(name) && name != "." && name != ".." &&
		strings.IndexFunc(name, refusedInName) < 0
}

// refusedInName reports the runes ValidName refuses.
func refusedInName(r rune) bool {
	switch {
	case r == '/' || r == '\\' || r == 0x2028 || r == 0x2029:
		return true
	case r == 0x200C || r == 0x200D:
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r)
}

func notUnreserved(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-._~", r))
}

func notPrintableASCII(r rune) bool { return r < 0x20 || r > 0x7e }

// String prints the length, media type and a digest prefix: no key, no id.
func (p Pointer) String() string {
	return fmt.Sprintf("attach.Pointer{%d bytes, %q, digest %x…}", p.Length, p.MediaType, p.Digest[:4])
}

// GoString prints what String prints.
func (p Pointer) GoString() string { return p.String() }

// Format prints what String prints, whatever the verb.
func (p Pointer) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// decoder reads fields off data; past its end it reads zeros and sets
// short.
type decoder struct {
	data  []byte
	short bool
}

func (d *decoder) take(n int) []byte {
	if len(d.data) < n {
		d.data, d.short = nil, true
		return make([]byte, n)
	}
	b := d.data[:n]
	d.data = d.data[n:]
	return b
}

func (d *decoder) str() string    { return string(d.take(int(d.take(1)[0]))) }
func (d *decoder) uint64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

// Package auth is the signed-request format shared by the relay and its
// client (examples/relay/README.md, "Ownership"): a request that reads a
// mailbox or replaces a device's bundle blobs carries a Sealpost-Auth
// header, an Ed25519 signature (crypto/ed25519, nothing else) over
//
//	Context || 0x00 || u8 len(method) || method || resource ||
//	i64 unix seconds || nonce (16 bytes) || SHA-256(body)
//
// where resource is MailboxResource or BundleResource and every integer is
// big-endian. The header's value is
//
//	v1 <unix seconds, decimal> <nonce, base64url> <signature, base64url>
//
// (unpadded base64url, single spaces). It imports only the standard
// library, so both sides of the relay can link it.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Header names and the format's constants.
const (
	// Header carries the signature of a request.
	Header = "Sealpost-Auth"
	// KeyHeader carries the signer's public key (base64url) where the
	// relay does not know it yet: bundle uploads, whose key is trusted
	// on first use.
	KeyHeader = "Sealpost-Key"
	// Context is the fixed ASCII prefix of every signed message, so a
	// signature made here means nothing anywhere else.
	Context = "sealpost relay request v1"
	// Window is how far a request's timestamp may be from the relay's
	// clock, either way.
	Window = 2 * time.Minute
	// NonceSize is the size of the random nonce of each request: two
	// requests signed in the same second differ.
	NonceSize = 16
	// maxHeader bounds the header value before it is parsed: "v1", 19
	// digits, 22 and 86 base64 characters and three spaces are 132.
	maxHeader = 160
)

// Resource kinds, the first byte of a resource.
const (
	kindMailbox byte = 1
	kindBundle  byte = 2
)

// Limits of the resources, the relay's own.
const (
	MaxMailbox = 64  // envelope.MaxMailboxLength
	MaxUser    = 256 // the relay's bound on a user name
)

// MailboxResource is 0x01 || u8 len(mailbox) || mailbox. It panics for a
// mailbox of more than MaxMailbox bytes (the caller checks first).
func MailboxResource(mailbox []byte) []byte {
	if len(mailbox) > MaxMailbox {
		panic("auth: mailbox too long")
	}
	b := make([]byte, 0, 2+len(mailbox))
	b = append(b, kindMailbox, byte(len(mailbox)))
	return append(b, mailbox...)
}

// BundleResource is 0x02 || u16 len(user) || user || u32 device. It
// panics for a user of more than MaxUser bytes (the caller checks first).
func BundleResource(user string, device uint32) []byte {
	if len(user) > MaxUser {
		panic("auth: user too long")
	}
	b := make([]byte, 0, 7+len(user))
	b = append(b, kindBundle)
	b = binary.BigEndian.AppendUint16(b, uint16(len(user)))
	b = append(b, user...)
	return binary.BigEndian.AppendUint32(b, device)
}

// Signed is a parsed Sealpost-Auth header.
type Signed struct {
	Time  int64 // Unix seconds
	Nonce [NonceSize]byte
	Sig   [ed25519.SignatureSize]byte
}

// Message returns the bytes a request's signature covers.
func Message(method string, resource []byte, unix int64, nonce [NonceSize]byte, body []byte) []byte {
	if len(method) > 255 {
		panic("auth: method too long")
	}
	sum := sha256.Sum256(body)
	m := make([]byte, 0, len(Context)+2+len(method)+len(resource)+8+NonceSize+sha256.Size)
	m = append(m, Context...)
	m = append(m, 0, byte(len(method)))
	m = append(m, method...)
	m = append(m, resource...)
	m = binary.BigEndian.AppendUint64(m, uint64(unix))
	m = append(m, nonce[:]...)
	return append(m, sum[:]...)
}

// Sign signs a request made at now with priv and returns the value of its
// Sealpost-Auth header.
func Sign(priv ed25519.PrivateKey, method string, resource, body []byte, now time.Time) string {
	s := Signed{Time: now.Unix()}
	if _, err := rand.Read(s.Nonce[:]); err != nil {
		panic(err) // crypto/rand.Read does not fail since Go 1.24
	}
	copy(s.Sig[:], ed25519.Sign(priv, Message(method, resource, s.Time, s.Nonce, body)))
	return s.String()
}

// String is the header value of s.
func (s Signed) String() string {
	enc := base64.RawURLEncoding
	return "v1 " + strconv.FormatInt(s.Time, 10) + " " + enc.EncodeToString(s.Nonce[:]) + " " + enc.EncodeToString(s.Sig[:])
}

// Errors of ParseHeader and ParseKey: the header is malformed (a 400).
var (
	ErrMalformed = errors.New("auth: malformed " + Header + " header")
	ErrBadKey    = errors.New("auth: malformed " + KeyHeader + " header")
)

// ParseHeader parses a Sealpost-Auth value strictly: "v1", a timestamp of
// 1 to 19 decimal digits without leading zeros, a 16-byte nonce and a 64-byte signature in
// unpadded base64url, separated by single spaces.
func ParseHeader(v string) (Signed, error) {
	var s Signed
	if len(v) > maxHeader {
		return s, ErrMalformed
	}
	f := strings.Split(v, " ")
	if len(f) != 4 || f[0] != "v1" || len(f[1]) == 0 || len(f[1]) > 19 || (len(f[1]) > 1 && f[1][0] == '0') {
		return s, ErrMalformed
	}
	for _, c := range []byte(f[1]) {
		if c < '0' || c > '9' {
			return s, ErrMalformed
		}
	}
	t, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return s, ErrMalformed
	}
	s.Time = t
	if !decodeExact(s.Nonce[:], f[2]) || !decodeExact(s.Sig[:], f[3]) {
		return s, ErrMalformed
	}
	return s, nil
}

// ParseKey parses a Sealpost-Key value: a 32-byte Ed25519 public key in
// unpadded base64url.
func ParseKey(v string) (ed25519.PublicKey, error) {
	k := make([]byte, ed25519.PublicKeySize)
	if !decodeExact(k, v) {
		return nil, ErrBadKey
	}
	return k, nil
}

// EncodeKey is the Sealpost-Key value of pub.
func EncodeKey(pub ed25519.PublicKey) string { return base64.RawURLEncoding.EncodeToString(pub) }

// decodeExact decodes strict unpadded base64url of exactly len(dst) bytes.
func decodeExact(dst []byte, s string) bool {
	enc := base64.RawURLEncoding.Strict()
	if enc.EncodedLen(len(dst)) != len(s) {
		return false
	}
	n, err := enc.Decode(dst, []byte(s))
	return err == nil && n == len(dst)
}

// Fresh reports whether s's timestamp is within Window of now.
func (s Signed) Fresh(now time.Time) bool {
	d := now.Unix() - s.Time
	w := int64(Window / time.Second)
	return d >= -w && d <= w
}

// Verify reports whether s is pub's signature of the request.
func (s Signed) Verify(pub ed25519.PublicKey, method string, resource, body []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, Message(method, resource, s.Time, s.Nonce, body), s.Sig[:])
}

// ReplayKey names s in the relay's seen-set: the SHA-256 of the
// signature, in hex (a valid signature is unique to its message).
func (s Signed) ReplayKey() string {
	sum := sha256.Sum256(s.Sig[:])
	const hexdigits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(sum))
	for _, c := range sum {
		out = append(out, hexdigits[c>>4], hexdigits[c&15])
	}
	return string(out)
}

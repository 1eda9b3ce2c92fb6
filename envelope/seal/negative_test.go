package seal_test

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/pad"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

// TestOpenWrongRecipient opens first contacts with keys and mailboxes they
// were not sealed for (TESTING.md, checklist item 41: sealed to the wrong mailbox key).
func TestOpenWrongRecipient(t *testing.T) {
	bob, carol, mallory := bobSpec.build(t), carolSpec.build(t), mallorySpec.build(t)
	_, start := newStart(t, bob.bundle(t), payloadOf(20))
	toBob := firstContact(t, bob.bundle(t), start)
	toMallory := firstContact(t, mallory.bundle(t), start) // Mallory's key, Bob's mailbox
	tests := []struct {
		name    string
		opener  *recipient
		mailbox []byte
		raw     []byte
		want    error
	}{
		{"Bob, as sealed", bob, bob.mailbox, toBob, nil},
		{"Carol's key, Bob's mailbox", carol, bob.mailbox, toBob, seal.ErrDecrypt},
		{"Mallory's key for Bob's mailbox", mallory, bob.mailbox, toBob, seal.ErrDecrypt},
		{"sealed to Mallory's key, opened by Bob", bob, bob.mailbox, toMallory, seal.ErrDecrypt},
		{"Carol, with her own mailbox", carol, carol.mailbox, toBob, seal.ErrMalformed},
		{"Bob's key, Carol's mailbox expected", bob, carol.mailbox, toBob, seal.ErrMalformed},
		{"Bob's key, a prefix of his mailbox expected", bob, bob.mailbox[:len(bob.mailbox)-1], toBob, seal.ErrMalformed},
		{"Bob's key, his mailbox plus a byte expected", bob, append(bytes.Clone(bob.mailbox), 0), toBob, seal.ErrMalformed},
		{"Bob's key, no mailbox expected", bob, nil, toBob, seal.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openExpect(t, "open", tt.opener, tt.mailbox, tt.raw, tt.want)
		})
	}
}

// TestOpenRelayRewrites plays a relay that edits the routing header it is
// allowed to read: the header is the HPKE associated data and the mailbox
// is in the HPKE info, so every edit fails the open.
func TestOpenRelayRewrites(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, payloadOf(20))
	env, other := firstContact(t, b, start), firstContact(t, b, start)
	hs := wire.HeaderSize(len(bob.mailbox))
	eve, long := []byte("eve-mailbox"), []byte("bob-mailbox-with-a-longer-id")
	reframe := func(mailbox []byte, tag []byte) []byte {
		var tg [envelope.TagSize]byte
		copy(tg[:], tag)
		return wire.AppendEnvelope(nil, mailbox, tg, env[hs:])
	}
	tests := []struct {
		name    string
		raw     []byte
		mailbox []byte // the mailbox the opener expects
		want    error
	}{
		{"mailbox rewritten, Bob expects his", reframe(eve, env[hs-19:hs-3]), bob.mailbox, seal.ErrMalformed},
		{"mailbox rewritten, Bob's key at the new mailbox", reframe(eve, env[hs-19:hs-3]), eve, seal.ErrDecrypt},
		{"longer mailbox, Bob's key at it", reframe(long, env[hs-19:hs-3]), long, seal.ErrDecrypt},
		{"tag rewritten to zero", reframe(bob.mailbox, nil), bob.mailbox, seal.ErrDecrypt},
		{"tag of another seal", reframe(bob.mailbox, other[hs-19:hs-3]), bob.mailbox, seal.ErrDecrypt},
		{"header of another seal", append(bytes.Clone(other[:hs]), env[hs:]...), bob.mailbox, seal.ErrDecrypt},
		{"encapsulation of another seal", append(append(bytes.Clone(env[:hs]), other[hs:hs+xwingEncSize]...), env[hs+xwingEncSize:]...), bob.mailbox, seal.ErrDecrypt},
		{"version 0", append([]byte{0}, env[1:]...), bob.mailbox, seal.ErrUnsupportedVersion},
		{"version 1", append([]byte{1}, env[1:]...), bob.mailbox, seal.ErrUnsupportedVersion},
		{"version 3", append([]byte{3}, env[1:]...), bob.mailbox, seal.ErrUnsupportedVersion},
		{"length rewritten and the body cut to match", func() []byte {
			cut := bytes.Clone(env[:len(env)-1])
			n := len(cut) - hs
			cut[hs-3], cut[hs-2], cut[hs-1] = byte(n>>16), byte(n>>8), byte(n)
			return cut
		}(), bob.mailbox, seal.ErrDecrypt},
		{"version 255", append([]byte{255}, env[1:]...), bob.mailbox, seal.ErrUnsupportedVersion},
		{"untouched", env, bob.mailbox, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openExpect(t, "open", bob, tt.mailbox, tt.raw, tt.want)
		})
	}
}

// TestOpenBitFlips flips one bit at every byte position of a valid envelope
// (TESTING.md, checklist item 22), and every bit of each header byte. No flip may open; the
// error class follows the region: version, then mailbox length and mailbox
// (checked before any decryption), then tag (authentication), then the
// body length (the envelope is then shorter or longer than it says:
// malformed, or too large for a high bit), then encapsulation and
// ciphertext (authentication).
func TestOpenBitFlips(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, nil)
	env := firstContact(t, b, start)
	hs := wire.HeaderSize(len(bob.mailbox))
	region := func(i int) []error {
		switch {
		case i == 0:
			return []error{seal.ErrUnsupportedVersion}
		case i < hs-wire.LengthSize-envelope.TagSize:
			// A mailbox length flip moves where the body length is read.
			return []error{seal.ErrMalformed, seal.ErrTooLarge}
		case i < hs-wire.LengthSize:
			return []error{seal.ErrDecrypt}
		case i < hs:
			return []error{seal.ErrMalformed, seal.ErrTooLarge}
		default:
			return []error{seal.ErrDecrypt}
		}
	}
	flipped := bytes.Clone(env)
	for i := range env {
		bits := []int{i % 8}
		if i < hs {
			bits = []int{0, 1, 2, 3, 4, 5, 6, 7}
		}
		for _, bit := range bits {
			flipped[i] ^= 1 << bit
			m, err := seal.OpenFirstContact(bob.mailKey, bob.mailbox, flipped)
			if m != nil || !slices.ContainsFunc(region(i), func(e error) bool { return errors.Is(err, e) }) {
				t.Fatalf("byte %d bit %d of %d: %v, want one of %v", i, bit, len(env), err, region(i))
			}
			flipped[i] ^= 1 << bit
		}
	}
	openExpect(t, "the envelope after all flips were undone", bob, bob.mailbox, flipped, nil)
}

// TestOpenTruncations opens every proper prefix of a valid envelope
// (TESTING.md, checklist item 23): shorter than header and overhead is ErrMalformed, longer
// fails authentication. Nothing panics.
func TestOpenTruncations(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, nil)
	env := firstContact(t, b, start)
	// The header's body length makes every truncation malformed, refused
	// before any key is used.
	for n := range len(env) {
		openExpect(t, fmt.Sprintf("first %d of %d bytes", n, len(env)), bob, bob.mailbox, env[:n:n], seal.ErrMalformed)
	}
}

// TestOpenTrailingData appends bytes to a valid envelope: it is longer
// than its header says, so malformed, and past MaxSize it is refused
// unread.
func TestOpenTrailingData(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, nil)
	env := firstContact(t, b, start)
	grow := func(n int) []byte { return append(bytes.Clone(env), payloadOf(n)...) }
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"one zero byte", append(bytes.Clone(env), 0), seal.ErrMalformed},
		{"16 bytes", grow(16), seal.ErrMalformed},
		{"the envelope twice", append(bytes.Clone(env), env...), seal.ErrMalformed},
		{"up to exactly MaxSize", grow(envelope.MaxSize - len(env)), seal.ErrMalformed},
		{"one byte past MaxSize", grow(envelope.MaxSize - len(env) + 1), seal.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openExpect(t, "open", bob, bob.mailbox, tt.raw, tt.want)
		})
	}
}

// TestOpenShortOrBadBody covers bodies that cannot hold an encapsulation
// and a tag (ErrMalformed before any key is used) and encapsulations the
// KEM itself refuses.
func TestOpenShortOrBadBody(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, nil)
	env := firstContact(t, b, start)
	hs := wire.HeaderSize(len(bob.mailbox))
	withBody := func(n int) []byte { // the header with its length set to n, and n bytes
		h := bytes.Clone(env[:hs])
		h[hs-3], h[hs-2], h[hs-1] = byte(n>>16), byte(n>>8), byte(n)
		return append(h, payloadOf(n)...)
	}
	lowOrder := bytes.Clone(env)
	clear(lowOrder[hs+xwingEncSize-32 : hs+xwingEncSize]) // the X25519 share: the all-zero point
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"no body", withBody(0), seal.ErrMalformed},
		{"body of an AEAD tag", withBody(wire.MinBody), seal.ErrMalformed},
		{"body of an encapsulation", withBody(xwingEncSize), seal.ErrMalformed},
		{"body one byte short of the overhead", withBody(seal.FirstContactOverhead - 1), seal.ErrMalformed},
		{"random body of exactly the overhead", withBody(seal.FirstContactOverhead), seal.ErrDecrypt},
		{"random body of a real envelope's size", withBody(len(env) - hs), seal.ErrDecrypt},
		{"low-order X25519 share", lowOrder, seal.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			openExpect(t, "open", bob, bob.mailbox, tt.raw, tt.want)
		})
	}
}

// TestOpenBadPlaintext seals, with crypto/hpke directly, plaintexts that
// authenticate but are not a padded session start, and seals that deviate
// from the construction. Each must fail with its own sentinel.
func TestOpenBadPlaintext(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, payloadOf(20))
	padded := pad.Append(nil, start)
	restart := func(edit func(*sealedpb.SessionStart)) []byte {
		var pb sealedpb.SessionStart
		if err := proto.Unmarshal(start, &pb); err != nil {
			t.Fatal(err)
		}
		edit(&pb)
		raw, err := proto.Marshal(&pb)
		if err != nil {
			t.Fatal(err)
		}
		return pad.Append(nil, raw)
	}
	bundle, err := b.MarshalBinary()
	checkErr(t, "bundle", err, nil)
	tests := []struct {
		name  string
		p     sealParams
		plain []byte
		want  error
	}{
		{"control: a padded start", sealParams{}, padded, nil},
		{"empty plaintext", sealParams{}, nil, seal.ErrMalformed},
		{"padding without a marker", sealParams{}, make([]byte, pad.MinSize), seal.ErrMalformed},
		{"marker not last", sealParams{}, append(bytes.Clone(padded[:len(padded)-1]), 1), seal.ErrMalformed},
		{"padded one bucket too far", sealParams{}, append(bytes.Clone(padded), make([]byte, 64)...), seal.ErrMalformed},
		{"marker without its zeros", sealParams{}, append(payloadOf(300), 0x80), seal.ErrMalformed},
		{"padded text", sealParams{}, pad.Append(nil, []byte("hello, bob")), seal.ErrMalformed},
		{"padded bundle", sealParams{}, pad.Append(nil, bundle), seal.ErrMalformed},
		{"padded start of version 2", sealParams{}, restart(func(m *sealedpb.SessionStart) { m.Version = 2 }), seal.ErrUnsupportedVersion},
		{"padded start without KEM ciphertext", sealParams{}, restart(func(m *sealedpb.SessionStart) { m.KemCiphertext = nil }), seal.ErrMalformed},
		{"padded start with a forged identity", sealParams{}, restart(func(m *sealedpb.SessionStart) { m.InitiatorIdentity[len(m.InitiatorIdentity)-1] ^= 1 }), keys.ErrBadSignature},
		{"padded start over MaxSessionStartSize", sealParams{}, restart(func(m *sealedpb.SessionStart) { m.Payload = payloadOf(keys.MaxSessionStartSize) }), seal.ErrMalformed},
		{"info without the mailbox", sealParams{info: []byte(firstContactLabel)}, padded, seal.ErrDecrypt},
		{"info of another label", sealParams{info: []byte("sealpost v2 first contact" + string(bob.mailbox))}, padded, seal.ErrDecrypt},
		{"no associated data", sealParams{aad: func([]byte) []byte { return nil }}, padded, seal.ErrDecrypt},
		{"associated data without the tag", sealParams{aad: func(h []byte) []byte { return h[:len(h)-envelope.TagSize] }}, padded, seal.ErrDecrypt},
		{"AES-256-GCM", sealParams{aead: hpke.AES256GCM()}, padded, seal.ErrDecrypt},
		{"HKDF-SHA384", sealParams{kdf: hpke.HKDFSHA384()}, padded, seal.ErrDecrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := handSeal(t, b.MailboxKey.HPKE(), bob.mailbox, tt.p, tt.plain)
			openExpect(t, "open", bob, bob.mailbox, raw, tt.want)
		})
	}
}

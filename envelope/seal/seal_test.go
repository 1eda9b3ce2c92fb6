package seal_test

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"fmt"
	"testing"
	"unsafe"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/internal/pad"
	"github.com/sealpost/sealpost/internal/wire"
	"github.com/sealpost/sealpost/keys"
)

// firstContactLabel is the HPKE info prefix of a first-contact envelope,
// written out here rather than taken from internal/kdf so that a change of
// label is a visible change of wire format.
const firstContactLabel = "sealpost v1 first contact"

// xwingEncSize is the size of an X-Wing encapsulation: an ML-KEM-768
// ciphertext and an X25519 share (draft-connolly-cfrg-xwing-kem).
const xwingEncSize = 1088 + 32

// TestFirstContactRoundTrip seals a session start for Bob and opens it again,
// for first ratchet messages from empty to far beyond the padding floor.
func TestFirstContactRoundTrip(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	for _, n := range []int{0, 100, 1000, 50_000} {
		t.Run(fmt.Sprintf("payload %d", n), func(t *testing.T) {
			payload := payloadOf(n)
			_, start := newStart(t, b, payload)
			env := firstContact(t, b, start)

			h, err := envelope.Parse(env)
			checkErr(t, "envelope.Parse", err, nil)
			if h.Version != envelope.Version || !bytes.Equal(h.Mailbox, bob.mailbox) {
				t.Fatalf("routing header: version %d mailbox %q, want %d %q", h.Version, h.Mailbox, envelope.Version, bob.mailbox)
			}
			if want := wire.HeaderSize(len(bob.mailbox)) + seal.FirstContactOverhead + pad.Size(len(start)); len(env) != want {
				t.Fatalf("envelope of %d bytes, want header + overhead + padded start = %d", len(env), want)
			}

			m := openExpect(t, "OpenFirstContact", bob, bob.mailbox, env, nil)
			again, err := m.MarshalBinary()
			checkErr(t, "re-marshal", err, nil)
			if !bytes.Equal(again, start) {
				t.Fatal("the opened session start re-marshals to different bytes")
			}
			if !bytes.Equal(m.Payload, payload) || m.Initiator != aliceAddr || !m.Identity.Equal(alice(t).Public()) {
				t.Fatalf("opened start: initiator %v, payload %d bytes; want %v and the %d bytes sealed", m.Initiator, len(m.Payload), aliceAddr, n)
			}
			if _, err := bob.respond(m); err != nil {
				t.Fatalf("Bob cannot answer the opened start: %v", err)
			}
		})
	}
}

// TestFirstContactDoesNotAlias checks the opened start owns its bytes: the
// caller may reuse the envelope buffer, and sealing does not keep or change
// the caller's start.
func TestFirstContactDoesNotAlias(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, payloadOf(300))
	keep := bytes.Clone(start)
	env := firstContact(t, b, start)
	if !bytes.Equal(start, keep) {
		t.Fatal("FirstContact modified the session start it was given")
	}
	m := openExpect(t, "open", bob, bob.mailbox, env, nil)
	clear(env)
	if !bytes.Equal(m.Payload, payloadOf(300)) {
		t.Fatal("the opened start aliases the envelope buffer")
	}
}

// TestFirstContactTags checks the routing tag of a first contact is fresh
// every time: the relay cannot link two seals of the same start, by tag or
// by any byte.
func TestFirstContactTags(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, payloadOf(10))
	const n = 16
	tags := make(map[[envelope.TagSize]byte]bool)
	var prev []byte
	for i := range n {
		env := firstContact(t, b, start)
		h, err := envelope.Parse(env)
		checkErr(t, "Parse", err, nil)
		if h.Tag == [envelope.TagSize]byte{} {
			t.Fatal("all-zero routing tag")
		}
		tags[h.Tag] = true
		if prev != nil {
			if len(env) != len(prev) {
				t.Fatalf("two seals of one start differ in size: %d, %d", len(env), len(prev))
			}
			hs := wire.HeaderSize(len(bob.mailbox))
			if bytes.Equal(env[hs:hs+xwingEncSize], prev[hs:hs+xwingEncSize]) || bytes.Equal(env[hs+xwingEncSize:], prev[hs+xwingEncSize:]) {
				t.Fatalf("seal %d repeats the encapsulation or the ciphertext of the previous one", i)
			}
		}
		openExpect(t, "open", bob, bob.mailbox, env, nil)
		prev = env
	}
	if len(tags) != n {
		t.Fatalf("%d seals gave %d distinct tags", n, len(tags))
	}
}

// TestFirstContactSizeBuckets checks the relay learns only the padded size:
// each envelope is header + overhead + pad.Size(start), so starts of similar
// size share one envelope size, and far fewer sizes appear than starts.
func TestFirstContactSizeBuckets(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	m, _ := newStart(t, b, nil)
	bucket := make(map[int]int) // pad.Size(start) -> envelope size
	const starts = 160
	for n := range starts {
		m.Payload = payloadOf(n)
		start, err := m.MarshalBinary()
		checkErr(t, "MarshalBinary", err, nil)
		env := firstContact(t, b, start)
		p := pad.Size(len(start))
		if want := wire.HeaderSize(len(bob.mailbox)) + seal.FirstContactOverhead + p; len(env) != want {
			t.Fatalf("start of %d bytes: envelope of %d bytes, want %d", len(start), len(env), want)
		}
		if got, ok := bucket[p]; ok && got != len(env) {
			t.Fatalf("starts padded to %d give envelopes of %d and %d bytes", p, got, len(env))
		}
		bucket[p] = len(env)
	}
	if len(bucket) > starts/16 {
		t.Fatalf("%d starts of consecutive sizes fell into %d envelope sizes, want at most %d", starts, len(bucket), starts/16)
	}
}

// TestFirstContactTooLarge probes MaxSize: the largest session start the
// recipient accepts seals to an envelope the relay accepts, and a start
// whose padded envelope would pass MaxSize is ErrTooLarge.
func TestFirstContactTooLarge(t *testing.T) {
	b := bobSpec.build(t).bundle(t)
	fixed := wire.HeaderSize(len(b.Mailbox)) + seal.FirstContactOverhead
	largest := envelope.MaxSize - fixed // the largest start whose envelope fits
	for fixed+pad.Size(largest) > envelope.MaxSize {
		largest--
	}
	tests := []struct {
		name string
		n    int
		want error
	}{
		{"MaxSessionStartSize", keys.MaxSessionStartSize, nil},
		{"padded past MaxSize by one bucket", largest + 1, seal.ErrTooLarge},
		{"MaxSize", envelope.MaxSize, seal.ErrTooLarge},
		{"twice MaxSize", 2 * envelope.MaxSize, seal.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := seal.FirstContact(b, make([]byte, tt.n))
			checkErr(t, "FirstContact", err, tt.want)
			if err != nil {
				if env != nil {
					t.Fatal("FirstContact returned an envelope with its error")
				}
				return
			}
			if len(env) > envelope.MaxSize {
				t.Fatalf("envelope of %d bytes exceeds MaxSize", len(env))
			}
			if _, err := envelope.Parse(env); err != nil {
				t.Fatalf("the relay refuses an envelope FirstContact made: %v", err)
			}
		})
	}
}

// TestFirstContactOverhead checks the exported overhead against the HPKE
// suite itself: one X-Wing encapsulation and one AEAD tag.
func TestFirstContactOverhead(t *testing.T) {
	b := bobSpec.build(t).bundle(t)
	enc, s, err := hpke.NewSender(b.MailboxKey.HPKE(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), nil)
	checkErr(t, "NewSender", err, nil)
	ct, err := s.Seal(nil, nil)
	checkErr(t, "Seal", err, nil)
	if got := len(enc) + len(ct); got != seal.FirstContactOverhead || len(enc) != xwingEncSize {
		t.Fatalf("X-Wing enc %d + empty ciphertext %d = %d, want FirstContactOverhead %d", len(enc), len(ct), got, seal.FirstContactOverhead)
	}
}

// TestFirstContactConstruction pins the construction in the package doc:
// HPKE base mode, X-Wing, HKDF-SHA256, ChaCha20-Poly1305, info = label ||
// mailbox, aad = the routing header as sent, plaintext = Padmé(start). An
// independent crypto/hpke open of a FirstContact envelope must give the
// padded start, and an independent seal must open.
func TestFirstContactConstruction(t *testing.T) {
	bob := bobSpec.build(t)
	b := bob.bundle(t)
	_, start := newStart(t, b, payloadOf(42))

	env := firstContact(t, b, start)
	h, body, err := seal.Split(env)
	checkErr(t, "Split", err, nil)
	if !bytes.Equal(h.Mailbox, bob.mailbox) {
		t.Fatalf("Split mailbox %q", h.Mailbox)
	}
	r, err := hpke.NewRecipient(body[:xwingEncSize], bob.mailKey.HPKE(), hpke.HKDFSHA256(), hpke.ChaCha20Poly1305(), []byte(firstContactLabel+string(bob.mailbox)))
	checkErr(t, "NewRecipient", err, nil)
	plain, err := r.Open(env[:len(env)-len(body)], body[xwingEncSize:])
	if err != nil {
		t.Fatalf("independent HPKE open: %v", err)
	}
	if !bytes.Equal(plain, pad.Append(nil, start)) {
		t.Fatal("the sealed plaintext is not the Padmé-padded start")
	}

	hand := handSeal(t, b.MailboxKey.HPKE(), bob.mailbox, sealParams{}, pad.Append(nil, start))
	m := openExpect(t, "open hand-sealed", bob, bob.mailbox, hand, nil)
	if again, _ := m.MarshalBinary(); !bytes.Equal(again, start) {
		t.Fatal("hand-sealed start opened to different bytes")
	}
}

// TestSession checks the framing of session envelopes: envelope.Parse and
// Split give back the mailbox, tag and ratchet message, and Session appends
// to dst.
func TestSession(t *testing.T) {
	var tag [envelope.TagSize]byte
	for i := range tag {
		tag[i] = byte(0xA0 + i)
	}
	tests := []struct {
		name    string
		dst     []byte
		mailbox []byte
		msg     []byte
	}{
		{"shortest mailbox, AEAD-tag-sized message", nil, []byte{7}, payloadOf(wire.MinBody)},
		{"typical", nil, []byte("bob-mailbox"), payloadOf(300)},
		{"longest mailbox", nil, testSeed("long mailbox", envelope.MaxMailboxLength), payloadOf(1000)},
		{"appends to dst", []byte("prefix"), []byte("bob-mailbox"), payloadOf(64)},
		{"appends to dst with spare capacity", make([]byte, 3, 4096), []byte("m"), payloadOf(2000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := bytes.Clone(tt.dst)
			out := seal.Session(tt.dst, tt.mailbox, tag, tt.msg)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("Session overwrote dst")
			}
			env := out[len(prefix):]
			if want := wire.HeaderSize(len(tt.mailbox)) + len(tt.msg); len(env) != want {
				t.Fatalf("envelope of %d bytes, want %d", len(env), want)
			}
			ph, err := envelope.Parse(env)
			checkErr(t, "envelope.Parse", err, nil)
			h, body, err := seal.Split(env)
			checkErr(t, "Split", err, nil)
			if ph.Version != envelope.Version || !bytes.Equal(ph.Mailbox, tt.mailbox) || ph.Tag != tag {
				t.Fatalf("envelope.Parse gave %+v", ph)
			}
			if h.Version != ph.Version || !bytes.Equal(h.Mailbox, ph.Mailbox) || h.Tag != ph.Tag {
				t.Fatalf("Split header %+v differs from envelope.Parse %+v", h, ph)
			}
			if !bytes.Equal(body, tt.msg) {
				t.Fatal("Split body is not the ratchet message")
			}
			if unsafe.SliceData(body) != unsafe.SliceData(env[len(env)-len(body):]) {
				t.Fatal("Split body does not alias the envelope")
			}
		})
	}
}

// TestSplitErrors checks Split refuses what envelope.Parse refuses, with
// the same sentinels and zero results.
func TestSplitErrors(t *testing.T) {
	var tag [envelope.TagSize]byte
	good := seal.Session(nil, []byte("bob-mailbox"), tag, payloadOf(64))
	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, seal.ErrMalformed},
		{"version only", good[:1], seal.ErrMalformed},
		{"version 0", append([]byte{0}, good[1:]...), seal.ErrUnsupportedVersion},
		{"version 1", append([]byte{1}, good[1:]...), seal.ErrUnsupportedVersion},
		{"version 3", append([]byte{3}, good[1:]...), seal.ErrUnsupportedVersion},
		{"mailbox length 0", append([]byte{envelope.Version, 0}, good[2:]...), seal.ErrMalformed},
		{"mailbox length 65", append([]byte{envelope.Version, 65}, good[2:]...), seal.ErrMalformed},
		{"a byte appended", append(bytes.Clone(good), 0), seal.ErrMalformed},
		{"header only", good[:wire.HeaderSize(11)], seal.ErrMalformed},
		{"message shorter than an AEAD tag", seal.Session(nil, []byte("m"), tag, payloadOf(wire.MinBody-1)), seal.ErrMalformed},
		{"over MaxSize", seal.Session(nil, []byte("m"), tag, make([]byte, envelope.MaxSize)), seal.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, body, err := seal.Split(tt.raw)
			checkErr(t, "Split", err, tt.want)
			if h.Version != 0 || h.Mailbox != nil || h.Tag != [envelope.TagSize]byte{} || body != nil {
				t.Fatalf("Split returned %+v and %d body bytes with an error", h, len(body))
			}
			if _, perr := envelope.Parse(tt.raw); !errors.Is(perr, tt.want) {
				t.Fatalf("envelope.Parse = %v, Split = %v: they disagree", perr, err)
			}
		})
	}
}

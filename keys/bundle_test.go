package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"math"
	"math/rand"
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sealpost/sealpost/internal/kdf"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/bundlepb"
)

// marshalBundle encodes b or fails the test.
func marshalBundle(t testing.TB, b *Bundle) []byte {
	t.Helper()
	raw, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal bundle: %v", err)
	}
	return raw
}

// mutateBundle decodes raw without any check, lets f change it, and
// encodes it again: a way to build bundles the package would never write.
func mutateBundle(t testing.TB, raw []byte, f func(m *bundlepb.Bundle)) []byte {
	t.Helper()
	var m bundlepb.Bundle
	if err := proto.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(&m)
	out, err := pbstrict.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// parseBundleErr runs ParseBundle on input that must fail, and checks the
// error-path contract: a nil bundle and the wanted sentinel.
func parseBundleErr(t testing.TB, raw []byte, want error) {
	t.Helper()
	b, err := ParseBundle(raw)
	if b != nil {
		t.Errorf("ParseBundle returned a bundle with error %v", err)
	}
	wantErr(t, err, want)
}

// equalBundles fails unless a and b hold the same values.
func equalBundles(t testing.TB, a, b *Bundle) {
	t.Helper()
	ra, rb := marshalBundle(t, a), marshalBundle(t, b)
	if !bytes.Equal(ra, rb) {
		t.Fatal("bundles differ")
	}
	switch {
	case a.Address != b.Address, !bytes.Equal(a.Mailbox, b.Mailbox), !a.Identity.Equal(b.Identity),
		a.SignedPrekey.ID != b.SignedPrekey.ID, !bytes.Equal(a.SignedPrekey.Bytes(), b.SignedPrekey.Bytes()),
		!bytes.Equal(a.SignedPrekey.Signature(), b.SignedPrekey.Signature()),
		a.PQPrekey.ID != b.PQPrekey.ID, !bytes.Equal(a.PQPrekey.Bytes(), b.PQPrekey.Bytes()),
		a.MailboxKey.ID != b.MailboxKey.ID, !bytes.Equal(a.MailboxKey.Bytes(), b.MailboxKey.Bytes()),
		len(a.OneTimePrekeys) != len(b.OneTimePrekeys), len(a.OneTimePQPrekeys) != len(b.OneTimePQPrekeys):
		t.Fatal("bundle fields differ")
	}
}

// bundleCases are the bundle shapes the behaviour tests run over.
func bundleCases() []struct {
	name string
	spec partySpec
} {
	bob := newSpec("bob", "bob", 2)
	boundary := newSpec("bob boundary", "bob", math.MaxUint32)
	boundary.SignedPrekey.ID, boundary.PQPrekey.ID, boundary.MailboxKey.ID = minID, maxID, minID
	boundaryRev := newSpec("bob boundary", "bob", 0)
	boundaryRev.SignedPrekey.ID, boundaryRev.PQPrekey.ID, boundaryRev.MailboxKey.ID = maxID, minID, maxID
	return []struct {
		name string
		spec partySpec
	}{
		{"last resort only", bob},
		{"one-time x25519", bob.withOneTime("bob", 100)},
		{"one-time x25519 and pq", bob.withOneTime("bob", 100).withOneTimePQ("bob", 200)},
		{"several one-time", bob.withOneTime("bob", 100, 101, 102).withOneTimePQ("bob", 200, 201)},
		{"one-time pq only", bob.withOneTimePQ("bob", 200)},
		{"ids 0 and max", boundary.withOneTime("bob boundary", maxID).withOneTimePQ("bob boundary", minID)},
		{"ids max and 0", boundaryRev.withOneTime("bob boundary", minID).withOneTimePQ("bob boundary", maxID)},
		{"long user, long mailbox", func() partySpec {
			s := newSpec("bob long", strings.Repeat("ü", MaxUserLength/2), 9)
			s.Mailbox = bytes.Repeat([]byte{0xee}, MaxMailboxLength)
			return s.withOneTime("bob long", 1)
		}()},
	}
}

func TestBundleRoundTrip(t *testing.T) {
	for _, tc := range bundleCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.spec.build(t)
			b := p.bundle()
			if err := b.Verify(); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			raw := marshalBundle(t, b)
			got, err := ParseBundle(raw)
			if err != nil {
				t.Fatalf("ParseBundle: %v", err)
			}
			equalBundles(t, b, got)
			if again := marshalBundle(t, got); !bytes.Equal(again, raw) {
				t.Fatal("re-marshal of a parsed bundle differs")
			}
			for i, k := range got.OneTimePrekeys {
				if k.ID != p.otps[i].id || !bytes.Equal(k.Bytes(), p.otps[i].Public().Bytes()) {
					t.Errorf("one-time prekey %d differs", i)
				}
			}
			for i, k := range got.OneTimePQPrekeys {
				if k.ID != p.otpqs[i].id || k.LastResort || !bytes.Equal(k.Bytes(), p.otpqs[i].Public().Bytes()) {
					t.Errorf("one-time pq prekey %d differs", i)
				}
			}
			if !got.PQPrekey.LastResort {
				t.Error("bundle pq prekey is not the last-resort one")
			}
		})
	}
}

// TestBundleSplit checks that Split yields one bundle per one-time X25519
// prekey, paired with the one-time PQ prekey at the same index, then the
// last resort; that each round-trips and verifies; and that a session
// started from each one is answered.
func TestBundleSplit(t *testing.T) {
	alice := aliceSpec().build(t)
	for _, tc := range bundleCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.spec.build(t)
			full := p.bundle()
			parts := full.Split()
			if len(parts) != len(p.otps)+1 {
				t.Fatalf("Split gave %d bundles, want %d", len(parts), len(p.otps)+1)
			}
			for i, part := range parts {
				last := i == len(parts)-1
				switch {
				case last && (len(part.OneTimePrekeys) != 0 || len(part.OneTimePQPrekeys) != 0):
					t.Fatalf("last-resort bundle has one-time keys")
				case !last && (len(part.OneTimePrekeys) != 1 || part.OneTimePrekeys[0].ID != p.otps[i].id):
					t.Fatalf("bundle %d does not carry one-time prekey %d", i, p.otps[i].id)
				case !last && i < len(p.otpqs) && (len(part.OneTimePQPrekeys) != 1 || part.OneTimePQPrekeys[0].ID != p.otpqs[i].id):
					t.Fatalf("bundle %d does not carry one-time pq prekey %d", i, p.otpqs[i].id)
				case !last && i >= len(p.otpqs) && len(part.OneTimePQPrekeys) != 0:
					t.Fatalf("bundle %d carries a one-time pq prekey it should not", i)
				}
				raw := marshalBundle(t, part)
				parsed, err := ParseBundle(raw)
				if err != nil {
					t.Fatalf("bundle %d: %v", i, err)
				}
				equalBundles(t, part, parsed)
				st, ak := start(t, alice, parsed)
				m, err := ParseSessionStart(st)
				if err != nil {
					t.Fatal(err)
				}
				bk, err := p.respond(m)
				if err != nil {
					t.Fatalf("bundle %d: Respond: %v", i, err)
				}
				if !bytes.Equal(ak.Secret(), bk.Secret()) {
					t.Fatalf("bundle %d: secrets differ", i)
				}
			}
			// The parts do not alias the original's mailbox.
			parts[0].Mailbox[0] ^= 1
			if full.Mailbox[0] != p.mailbox[0] {
				t.Error("Split aliases the mailbox id")
			}
		})
	}
}

// TestBundleDeterministic is the property test: bundles with random
// addresses, mailbox ids and prekey ids marshal to the same bytes every
// time, and ParseBundle then MarshalBinary gives those bytes back.
func TestBundleDeterministic(t *testing.T) {
	spec := newSpec("bob property", "bob", 1)
	idKey, err := NewIdentityFromSeed(spec.IdentitySeed)
	if err != nil {
		t.Fatal(err)
	}
	otp, _ := NewOneTimePrekey(0, spec.SignedPrekey.Seed)
	count := 40
	if !thorough() {
		count = 8
	}
	cfg := &quick.Config{MaxCount: count, Rand: rand.New(rand.NewSource(1))}
	prop := func(user []rune, device uint32, mailbox []byte, ids [5]uint32) bool {
		addr := Address{User: string(user), Device: device}
		for len(addr.User) > MaxUserLength {
			_, n := utf8.DecodeLastRuneInString(addr.User)
			addr.User = addr.User[:len(addr.User)-n]
		}
		if addr.User == "" {
			addr.User = "u"
		}
		if len(mailbox) == 0 || len(mailbox) > MaxMailboxLength {
			mailbox = append(mailbox[:0:0], byte(len(mailbox)))
		}
		b := propertyBundle(t, idKey, spec, addr, mailbox, ids, otp)
		raw := marshalBundle(t, b)
		again := marshalBundle(t, propertyBundle(t, idKey, spec, addr, mailbox, ids, otp))
		parsed, err := ParseBundle(raw)
		if err != nil {
			t.Logf("ParseBundle(%v, %x, %v): %v", addr, mailbox, ids, err)
			return false
		}
		return bytes.Equal(raw, again) && bytes.Equal(marshalBundle(t, parsed), raw) &&
			parsed.Address == addr && bytes.Equal(parsed.Mailbox, mailbox) &&
			parsed.SignedPrekey.ID == ids[0] && parsed.PQPrekey.ID == ids[1] &&
			parsed.OneTimePrekeys[0].ID == ids[2] && parsed.OneTimePQPrekeys[0].ID == ids[3] &&
			parsed.MailboxKey.ID == ids[4]
	}
	if err := quick.Check(prop, cfg); err != nil {
		t.Fatal(err)
	}
}

// propertyBundle builds a bundle from fixed seeds with the given address,
// mailbox and ids, signing everything afresh.
func propertyBundle(t testing.TB, id *IdentityPrivateKey, s partySpec, addr Address, mailbox []byte, ids [5]uint32, otp *OneTimePrekey) *Bundle {
	t.Helper()
	spk, err := NewSignedPrekey(ids[0], s.SignedPrekey.Seed, testExpiry, id)
	if err != nil {
		t.Fatal(err)
	}
	pq := propertyPQ(t, ids[1], true, s.PQPrekey.Seed, id)
	otpq := propertyPQ(t, ids[3], false, s.PQPrekey.Seed, id)
	mk, err := NewMailboxKey(ids[4], addr, mailbox, s.MailboxKey.Seed, testExpiry, id)
	if err != nil {
		t.Fatal(err)
	}
	return &Bundle{
		Address: addr, Mailbox: mailbox, Identity: id.Public(),
		SignedPrekey: spk.Public(), PQPrekey: pq.Public(), MailboxKey: mk.Public(),
		OneTimePrekeys:   []PublicOneTimePrekey{{ID: ids[2], key: otp.key.PublicKey()}},
		OneTimePQPrekeys: []PublicPQPrekey{otpq.Public()},
	}
}

func propertyPQ(t testing.TB, id uint32, lastResort bool, seed []byte, identity *IdentityPrivateKey) *PQPrekey {
	t.Helper()
	k, err := NewPQPrekey(id, lastResort, seed, identity)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestBundleNonCanonicalAccepted records a decision: protobuf is not a
// canonical encoding, and ParseBundle accepts other encodings of the same
// values (fields out of order, a longer varint, a repeated scalar). That is
// safe because every signature covers the decoded field values through
// signedMessage, never the protobuf bytes (docs/SPEC.md section 5.4), and
// nothing hashes a bundle's bytes. What must hold, and does, is that
// MarshalBinary of the parsed bundle is the canonical encoding.
func TestBundleNonCanonicalAccepted(t *testing.T) {
	bob := bobSpec().build(t)
	raw := marshalBundle(t, bob.bundle())
	versionField := raw[:2] // tag 1, varint 1
	if !bytes.Equal(versionField, []byte{0x08, BundleVersion}) {
		t.Fatalf("bundle does not start with version %d: %x", BundleVersion, raw[:2])
	}
	cases := []struct {
		name string
		raw  []byte
	}{
		{"version last", append(append([]byte(nil), raw[2:]...), versionField...)},
		{"version as a 2-byte varint", append([]byte{0x08, 0x80 | BundleVersion, 0x00}, raw[2:]...)},
		{"version twice", append([]byte{0x08, 0x07}, raw...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBundle(tc.raw)
			if err != nil {
				t.Fatalf("ParseBundle: %v", err)
			}
			if !bytes.Equal(marshalBundle(t, b), raw) {
				t.Fatal("re-marshal is not the canonical encoding")
			}
		})
	}
}

func TestBundleVersion(t *testing.T) {
	bob := bobSpec().build(t)
	raw := marshalBundle(t, bob.bundle())
	for _, v := range []uint32{0, 1, 3, 255, math.MaxUint32} {
		parseBundleErr(t, mutateBundle(t, raw, func(m *bundlepb.Bundle) { m.Version = v }), ErrUnsupportedVersion)
	}
}

// TestBundleMalformed covers swapped key types, wrong lengths, unknown
// type bytes, unknown protobuf fields, missing parts and bad addresses
// (checklist item 2). Each is ErrMalformed, found before any signature.
func TestBundleMalformed(t *testing.T) {
	bob := bobSpec().build(t)
	raw := marshalBundle(t, bob.bundle())
	var ref bundlepb.Bundle
	if err := proto.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	x25519 := ref.SignedPrekey.Key
	mlkem := ref.PqPrekey.Key
	xwing := ref.MailboxKey.Key
	retype := func(k []byte, t byte) []byte { return append([]byte{t}, k[1:]...) }
	badMLKEM := append([]byte(nil), mlkem...)
	badMLKEM[1], badMLKEM[2] = 0xff, badMLKEM[2]|0x0f // first coefficient 4095 >= q
	badXWing := append([]byte(nil), xwing...)
	badXWing[1], badXWing[2] = 0xff, badXWing[2]|0x0f
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 15, protowire.VarintType), 1)
	setUnknown := func(m proto.Message) { m.ProtoReflect().SetUnknown(unknown) }

	cases := []struct {
		name string
		f    func(m *bundlepb.Bundle)
	}{
		// Swapped key types.
		{"x25519 in pq prekey", func(m *bundlepb.Bundle) { m.PqPrekey.Key = x25519 }},
		{"x25519 in one-time pq prekey", func(m *bundlepb.Bundle) { m.OneTimePqPrekeys[0].Key = x25519 }},
		{"x25519 in mailbox key", func(m *bundlepb.Bundle) { m.MailboxKey.Key = x25519 }},
		{"ml-kem in signed prekey", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = mlkem }},
		{"ml-kem in one-time prekey", func(m *bundlepb.Bundle) { m.OneTimePrekeys[0].Key = mlkem }},
		{"ml-kem in mailbox key", func(m *bundlepb.Bundle) { m.MailboxKey.Key = mlkem }},
		{"x-wing in pq prekey", func(m *bundlepb.Bundle) { m.PqPrekey.Key = xwing }},
		{"x-wing in signed prekey", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = xwing }},
		// Right length, wrong type byte.
		{"ed25519 type on signed prekey", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = retype(x25519, typeEd25519) }},
		{"ml-kem-768 type on pq prekey", func(m *bundlepb.Bundle) { m.PqPrekey.Key = retype(mlkem, typeMLKEM768) }},
		{"x25519 type on pq prekey", func(m *bundlepb.Bundle) { m.PqPrekey.Key = retype(mlkem, typeX25519) }},
		{"ml-kem-1024 type on mailbox key", func(m *bundlepb.Bundle) { m.MailboxKey.Key = retype(xwing, typeMLKEM1024) }},
		{"x-wing type on one-time prekey", func(m *bundlepb.Bundle) { m.OneTimePrekeys[0].Key = retype(x25519, typeXWing) }},
		{"unknown type 0x00 on signed prekey", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = retype(x25519, 0) }},
		{"unknown type 0x06 on one-time prekey", func(m *bundlepb.Bundle) { m.OneTimePrekeys[0].Key = retype(x25519, 6) }},
		{"unknown type 0xff on pq prekey", func(m *bundlepb.Bundle) { m.PqPrekey.Key = retype(mlkem, 0xff) }},
		{"unknown type 0x80 on mailbox key", func(m *bundlepb.Bundle) { m.MailboxKey.Key = retype(xwing, 0x80) }},
		// Wrong lengths.
		{"signed prekey short", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = x25519[:32] }},
		{"signed prekey long", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = append(append([]byte(nil), x25519...), 0) }},
		{"signed prekey type byte only", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = x25519[:1] }},
		{"signed prekey empty", func(m *bundlepb.Bundle) { m.SignedPrekey.Key = nil }},
		{"one-time prekey short", func(m *bundlepb.Bundle) { m.OneTimePrekeys[0].Key = x25519[:20] }},
		{"one-time prekey empty", func(m *bundlepb.Bundle) { m.OneTimePrekeys[0].Key = nil }},
		{"pq prekey short", func(m *bundlepb.Bundle) { m.PqPrekey.Key = mlkem[:len(mlkem)-1] }},
		{"pq prekey long", func(m *bundlepb.Bundle) { m.PqPrekey.Key = append(append([]byte(nil), mlkem...), 0) }},
		{"one-time pq prekey short", func(m *bundlepb.Bundle) { m.OneTimePqPrekeys[0].Key = mlkem[:800] }},
		{"mailbox key short", func(m *bundlepb.Bundle) { m.MailboxKey.Key = xwing[:len(xwing)-1] }},
		{"mailbox key long", func(m *bundlepb.Bundle) { m.MailboxKey.Key = append(append([]byte(nil), xwing...), 0) }},
		{"identity short", func(m *bundlepb.Bundle) { m.Identity = m.Identity[:PublicIdentitySize-1] }},
		{"identity long", func(m *bundlepb.Bundle) { m.Identity = append(m.Identity, 0) }},
		{"identity keys swapped", func(m *bundlepb.Bundle) {
			m.Identity = append(append(append([]byte(nil), m.Identity[33:66]...), m.Identity[:33]...), m.Identity[66:]...)
		}},
		{"identity ed25519 type byte", func(m *bundlepb.Bundle) { m.Identity[0] = typeX25519 }},
		{"identity x25519 type byte", func(m *bundlepb.Bundle) { m.Identity[33] = typeMLKEM1024 }},
		// Key encodings the key type forbids.
		{"ml-kem coefficient >= q", func(m *bundlepb.Bundle) { m.PqPrekey.Key = badMLKEM }},
		{"one-time ml-kem coefficient >= q", func(m *bundlepb.Bundle) { m.OneTimePqPrekeys[0].Key = badMLKEM }},
		{"x-wing ml-kem coefficient >= q", func(m *bundlepb.Bundle) { m.MailboxKey.Key = badXWing }},
		// Signature lengths.
		{"signed prekey signature short", func(m *bundlepb.Bundle) { m.SignedPrekey.Signature = m.SignedPrekey.Signature[:63] }},
		{"signed prekey signature long", func(m *bundlepb.Bundle) { m.SignedPrekey.Signature = append(m.SignedPrekey.Signature, 0) }},
		{"pq prekey signature missing", func(m *bundlepb.Bundle) { m.PqPrekey.Signature = nil }},
		{"one-time pq prekey signature short", func(m *bundlepb.Bundle) { m.OneTimePqPrekeys[0].Signature = m.OneTimePqPrekeys[0].Signature[:1] }},
		{"mailbox key signature long", func(m *bundlepb.Bundle) { m.MailboxKey.Signature = append(m.MailboxKey.Signature, 1, 2) }},
		// Unknown fields, at the top and inside every nested message.
		{"unknown top-level field", func(m *bundlepb.Bundle) { setUnknown(m) }},
		{"unknown field in signed prekey", func(m *bundlepb.Bundle) { setUnknown(m.SignedPrekey) }},
		{"unknown field in pq prekey", func(m *bundlepb.Bundle) { setUnknown(m.PqPrekey) }},
		{"unknown field in one-time prekey", func(m *bundlepb.Bundle) { setUnknown(m.OneTimePrekeys[0]) }},
		{"unknown field in one-time pq prekey", func(m *bundlepb.Bundle) { setUnknown(m.OneTimePqPrekeys[0]) }},
		{"unknown field in mailbox key", func(m *bundlepb.Bundle) { setUnknown(m.MailboxKey) }},
		{"signature field in one-time prekey", func(m *bundlepb.Bundle) {
			m.OneTimePrekeys[0].ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), ref.SignedPrekey.Signature))
		}},
		{"known field with the wrong wire type", func(m *bundlepb.Bundle) {
			m.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), []byte{1}))
		}},
		// Missing parts.
		{"no signed prekey", func(m *bundlepb.Bundle) { m.SignedPrekey = nil }},
		{"no pq prekey", func(m *bundlepb.Bundle) { m.PqPrekey = nil }},
		{"no mailbox key", func(m *bundlepb.Bundle) { m.MailboxKey = nil }},
		{"no identity", func(m *bundlepb.Bundle) { m.Identity = nil }},
		{"empty signed prekey", func(m *bundlepb.Bundle) { m.SignedPrekey = &bundlepb.SignedKey{} }},
		// Addresses and mailbox ids out of bounds.
		{"empty user", func(m *bundlepb.Bundle) { m.User = "" }},
		{"user too long", func(m *bundlepb.Bundle) { m.User = strings.Repeat("u", MaxUserLength+1) }},
		{"empty mailbox", func(m *bundlepb.Bundle) { m.Mailbox = nil }},
		{"mailbox too long", func(m *bundlepb.Bundle) { m.Mailbox = make([]byte, MaxMailboxLength+1) }},
		// Too many one-time prekeys.
		{"too many one-time prekeys", func(m *bundlepb.Bundle) {
			for len(m.OneTimePrekeys) <= MaxOneTimePrekeys {
				m.OneTimePrekeys = append(m.OneTimePrekeys, m.OneTimePrekeys[0])
			}
		}},
		{"too many one-time pq prekeys", func(m *bundlepb.Bundle) {
			for len(m.OneTimePqPrekeys) <= MaxOneTimePrekeys {
				m.OneTimePqPrekeys = append(m.OneTimePqPrekeys, m.OneTimePqPrekeys[0])
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parseBundleErr(t, mutateBundle(t, raw, tc.f), ErrMalformed)
		})
	}

	// Encodings protobuf itself refuses.
	raws := map[string][]byte{
		"truncated":         raw[:len(raw)-1],
		"trailing byte":     append(append([]byte(nil), raw...), 0),
		"invalid utf-8":     append(mutateBundle(t, raw, func(m *bundlepb.Bundle) { m.User = "" }), 0x12, 1, 0xff),
		"oversized":         append(append([]byte(nil), raw...), protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), make([]byte, MaxBundleSize))...),
		"garbage":           bytes.Repeat([]byte{0xff}, 100),
		"session start":     mustStart(t),
		"length past end":   append([]byte{0x22, 0x7f}, 1, 2, 3),
		"group wire type":   {0x0b, 0x0c},
		"field number zero": {0x00, 0x01},
	}
	parseBundleErr(t, nil, ErrUnsupportedVersion) // the empty message is version 0
	for name, r := range raws {
		t.Run(name, func(t *testing.T) {
			parseBundleErr(t, r, ErrMalformed)
		})
	}
}

// mustStart returns a genuine encoded session start, to feed to the wrong
// parser.
func mustStart(t testing.TB) []byte {
	t.Helper()
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	raw, _ := start(t, alice, bob.bundle())
	return raw
}

// TestBundleMaxOneTimePrekeys probes the limit: exactly MaxOneTimePrekeys
// of each kind parse; one more of either is ErrMalformed for both
// MarshalBinary and ParseBundle.
func TestBundleMaxOneTimePrekeys(t *testing.T) {
	bob := bobSpec().build(t)
	b := bob.bundle()
	otp, otpq := b.OneTimePrekeys[0], b.OneTimePQPrekeys[0]
	for len(b.OneTimePrekeys) < MaxOneTimePrekeys {
		b.OneTimePrekeys = append(b.OneTimePrekeys, otp)
		b.OneTimePQPrekeys = append(b.OneTimePQPrekeys, otpq)
	}
	raw := marshalBundle(t, b)
	if len(raw) > MaxBundleSize {
		t.Fatalf("a bundle with %d one-time keys of each kind is %d bytes, over MaxBundleSize", MaxOneTimePrekeys, len(raw))
	}
	got, err := ParseBundle(raw)
	if err != nil {
		t.Fatalf("ParseBundle at the limit: %v", err)
	}
	if len(got.OneTimePrekeys) != MaxOneTimePrekeys || len(got.OneTimePQPrekeys) != MaxOneTimePrekeys {
		t.Fatal("one-time prekeys lost")
	}
	over := *b
	over.OneTimePrekeys = append(over.OneTimePrekeys[:MaxOneTimePrekeys:MaxOneTimePrekeys], otp)
	_, err = over.MarshalBinary()
	wantErr(t, err, ErrMalformed)
	wantErr(t, over.Verify(), ErrMalformed)
	over = *b
	over.OneTimePQPrekeys = append(over.OneTimePQPrekeys[:MaxOneTimePrekeys:MaxOneTimePrekeys], otpq)
	_, err = over.MarshalBinary()
	wantErr(t, err, ErrMalformed)
	parseBundleErr(t, mutateBundle(t, raw, func(m *bundlepb.Bundle) {
		m.OneTimePqPrekeys = append(m.OneTimePqPrekeys, m.OneTimePqPrekeys[0])
	}), ErrMalformed)
}

// TestBundleStructure checks the structural faults of a bundle built in
// code: MarshalBinary and Verify refuse them with ErrMalformed.
func TestBundleStructure(t *testing.T) {
	bob := bobSpec().build(t)
	cases := []struct {
		name string
		f    func(b *Bundle)
	}{
		{"zero bundle", func(b *Bundle) { *b = Bundle{} }},
		{"no identity", func(b *Bundle) { b.Identity = PublicIdentity{} }},
		{"no signed prekey", func(b *Bundle) { b.SignedPrekey = PublicSignedPrekey{} }},
		{"no pq prekey", func(b *Bundle) { b.PQPrekey = PublicPQPrekey{} }},
		{"no mailbox key", func(b *Bundle) { b.MailboxKey = PublicMailboxKey{} }},
		{"one-time pq prekey as last resort", func(b *Bundle) { b.PQPrekey = b.OneTimePQPrekeys[0] }},
		{"last resort as one-time pq prekey", func(b *Bundle) { b.OneTimePQPrekeys[0] = b.PQPrekey }},
		{"empty one-time prekey", func(b *Bundle) { b.OneTimePrekeys[0] = PublicOneTimePrekey{ID: 1} }},
		{"empty one-time pq prekey", func(b *Bundle) { b.OneTimePQPrekeys[0] = PublicPQPrekey{ID: 1} }},
		{"bad address", func(b *Bundle) { b.Address.User = "\xff" }},
		{"bad mailbox", func(b *Bundle) { b.Mailbox = nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := bob.bundle()
			tc.f(b)
			raw, err := b.MarshalBinary()
			if raw != nil {
				t.Error("MarshalBinary returned bytes with an error")
			}
			wantErr(t, err, ErrMalformed)
			wantErr(t, b.Verify(), ErrMalformed)
		})
	}
}

// sigField is one signature in a bundle: where it is and what it covers.
type sigField struct {
	name string
	sig  func(b *Bundle) *[ed25519.SignatureSize]byte
	msg  func(b *Bundle) []byte
}

var bundleSigFields = []sigField{
	{"signed prekey",
		func(b *Bundle) *[64]byte { return &b.SignedPrekey.signature },
		func(b *Bundle) []byte {
			return signedMessage(kdf.LabelSigSignedPrekey, u32(b.SignedPrekey.ID), u64(uint64(b.SignedPrekey.Expires.Unix())), b.SignedPrekey.Bytes())
		}},
	{"last-resort pq prekey",
		func(b *Bundle) *[64]byte { return &b.PQPrekey.signature },
		func(b *Bundle) []byte {
			return signedMessage(kdf.LabelSigPQLastResort, u32(b.PQPrekey.ID), b.PQPrekey.Bytes())
		}},
	{"one-time pq prekey",
		func(b *Bundle) *[64]byte { return &b.OneTimePQPrekeys[0].signature },
		func(b *Bundle) []byte {
			k := b.OneTimePQPrekeys[0]
			return signedMessage(kdf.LabelSigPQOneTime, u32(k.ID), k.Bytes())
		}},
	{"mailbox key",
		func(b *Bundle) *[64]byte { return &b.MailboxKey.signature },
		func(b *Bundle) []byte {
			k := b.MailboxKey
			return signedMessage(kdf.LabelSigMailboxKey, mailboxSigned(k.ID, uint64(k.Expires.Unix()), b.Address, b.Mailbox, k.Bytes())...)
		}},
}

// TestBundleSignatureBitFlips flips bits of each prekey signature
// (checklist item 1): every flip is ErrBadSignature, from Verify on the
// bundle and from ParseBundle on its encoding.
func TestBundleSignatureBitFlips(t *testing.T) {
	bob := bobSpec().build(t)
	for _, f := range bundleSigFields {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			for bit := range 8 * ed25519.SignatureSize {
				if !thorough() && bit%7 != 0 {
					continue
				}
				b := bob.bundle()
				sig := f.sig(b)
				sig[bit/8] ^= 1 << (bit % 8)
				wantErr(t, b.Verify(), ErrBadSignature)
				if bit%64 == 0 {
					parseBundleErr(t, marshalBundle(t, b), ErrBadSignature)
				}
			}
		})
	}
	t.Run("identity", func(t *testing.T) {
		t.Parallel()
		pub := bob.id.Public().Bytes()
		raw := marshalBundle(t, bob.bundle())
		at := bytes.Index(raw, pub)
		for bit := 8 * 66; bit < 8*PublicIdentitySize; bit++ {
			if !thorough() && bit%7 != 0 {
				continue
			}
			_, err := ParsePublicIdentity(flipBit(pub, bit))
			wantErr(t, err, ErrBadSignature)
			if bit%64 == 0 {
				parseBundleErr(t, flipBit(raw, 8*at+bit), ErrBadSignature)
			}
		}
	})
}

// TestBundleSignatureMalleability covers checklist item 48 for each prekey
// signature: S+L (a non-canonical S), a non-canonical R, and a signature
// by another identity are all ErrBadSignature. The R case is built so that
// the canonical form verifies, so the test fails if Verify ever decodes R
// instead of comparing its bytes.
func TestBundleSignatureMalleability(t *testing.T) {
	bob, mallory := bobSpec().build(t), malloryspec().build(t)
	for _, f := range bundleSigFields {
		t.Run(f.name, func(t *testing.T) {
			b := bob.bundle()
			msg := f.msg(b)
			if !ed25519.Verify(bob.id.sign.Public().(ed25519.PublicKey), msg, f.sig(b)[:]) {
				t.Fatal("sigField builds the wrong signed message")
			}
			forged := map[string][]byte{
				"S+L":                     sigPlusL(f.sig(b)[:]),
				"signed by mallory":       ed25519.Sign(mallory.id.sign, msg),
				"R = identity, y = p+1":   sigWithR(t, bob.id, msg, nonCanonicalIdentityY),
				"R = identity, sign bit":  sigWithR(t, bob.id, msg, nonCanonicalIdentitySign),
				"other message, same key": ed25519.Sign(bob.id.sign, append(msg, 0)),
			}
			canonical := sigWithR(t, bob.id, msg, canonicalIdentity)
			*f.sig(b) = [64]byte(canonical)
			if err := b.Verify(); err != nil {
				t.Fatalf("the canonical small-R signature does not verify, so the R cases prove nothing: %v", err)
			}
			for name, sig := range forged {
				t.Run(name, func(t *testing.T) {
					b := bob.bundle()
					*f.sig(b) = [64]byte(sig)
					wantErr(t, b.Verify(), ErrBadSignature)
					parseBundleErr(t, marshalBundle(t, b), ErrBadSignature)
				})
			}
		})
	}
	t.Run("prekeys of another identity", func(t *testing.T) {
		// Mallory's prekeys, correctly signed by Mallory, in Bob's bundle.
		for _, swap := range []func(b, m *Bundle){
			func(b, m *Bundle) { b.SignedPrekey = m.SignedPrekey },
			func(b, m *Bundle) { b.PQPrekey = m.PQPrekey },
			func(b, m *Bundle) { b.OneTimePQPrekeys = []PublicPQPrekey{bobSpecOneTimePQFor(t, mallory)} },
			func(b, m *Bundle) { b.MailboxKey = m.MailboxKey },
			func(b, m *Bundle) { b.Identity = m.Identity },
		} {
			b := bob.bundle()
			swap(b, mallory.bundle())
			wantErr(t, b.Verify(), ErrBadSignature)
			parseBundleErr(t, marshalBundle(t, b), ErrBadSignature)
		}
	})
}

// bobSpecOneTimePQFor returns a one-time PQ prekey signed by p.
func bobSpecOneTimePQFor(t testing.TB, p *party) PublicPQPrekey {
	t.Helper()
	return propertyPQ(t, 200, false, testSeed("otpq of "+p.addr.User, PQPrekeySeedSize), p.id).Public()
}

// TestBundleLowOrderKeys puts each low-order point (checklist item 3) in the
// one-time prekey, the signed prekey (signed by Bob, so the signature is
// not what stops it) and the identity's X25519 key (self-signed). Points
// that are not canonical fail to parse with ErrMalformed; the others
// parse, as X25519 keys carry no proof of order, and Initiate refuses them
// with ErrLowOrderPoint.
func TestBundleLowOrderKeys(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	highBit := bob.otps[0].Public().Bytes()[1:]
	highBit[31] |= 0x80
	points := append(lowOrderPoints,
		lowOrderPoint{"valid key with the high bit set", hexOf(highBit), ErrMalformed},
		lowOrderPoint{"2^255-1", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ErrMalformed},
	)
	places := []struct {
		name string
		set  func(b *Bundle, key *ecdh.PublicKey)
	}{
		{"one-time prekey", func(b *Bundle, key *ecdh.PublicKey) { b.OneTimePrekeys[0].key = key }},
		{"signed prekey", func(b *Bundle, key *ecdh.PublicKey) {
			b.SignedPrekey.key = key
			sig := bob.id.signParts(kdf.LabelSigSignedPrekey, u32(b.SignedPrekey.ID), u64(uint64(b.SignedPrekey.Expires.Unix())), b.SignedPrekey.Bytes())
			b.SignedPrekey.signature = [64]byte(sig)
		}},
		{"identity", func(b *Bundle, key *ecdh.PublicKey) {
			b.Identity = selfSigned(t, bob.id, key.Bytes())
		}},
	}
	for _, place := range places {
		for _, pt := range points {
			t.Run(place.name+"/"+pt.name, func(t *testing.T) {
				key, err := ecdh.X25519().NewPublicKey(pt.bytes(t))
				if err != nil {
					t.Fatal(err)
				}
				b := bob.bundle()
				place.set(b, key)
				parsed, err := ParseBundle(marshalBundle(t, b))
				if pt.want == ErrMalformed {
					if parsed != nil {
						t.Fatal("ParseBundle returned a bundle with an error")
					}
					wantErr(t, err, ErrMalformed)
					return
				}
				if err != nil {
					t.Fatalf("ParseBundle: %v", err)
				}
				m, keys, err := Initiate(alice.id, alice.addr, parsed)
				if m != nil || keys != nil {
					t.Error("Initiate returned results with an error")
				}
				wantErr(t, err, pt.want)
			})
		}
	}
}

// selfSigned returns a public identity with id's Ed25519 key and the given
// X25519 key, signed by id: an identity a hostile owner could publish.
// It bypasses ParsePublicIdentity, which may refuse the key.
func selfSigned(t testing.TB, id *IdentityPrivateKey, x25519 []byte) PublicIdentity {
	t.Helper()
	key, err := ecdh.X25519().NewPublicKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	p := PublicIdentity{signing: id.public.signing, agree: key}
	copy(p.agreement[:], x25519)
	copy(p.signature[:], id.signParts(kdf.LabelSigIdentity, typed(typeX25519, x25519)))
	return p
}

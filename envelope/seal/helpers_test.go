package seal_test

import (
	"crypto/hpke"
	"crypto/sha3"
	"errors"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope"
	"github.com/sealpost/sealpost/envelope/seal"
	"github.com/sealpost/sealpost/keys"
)

// testSeed returns n bytes derived from name. Every fixture key is built from
// such a seed, so the recipients are the same on every run and the golden
// vectors can record them.
func testSeed(name string, n int) []byte {
	return sha3.SumSHAKE128([]byte("sealpost seal test "+name), n)
}

// keySeed is one prekey as the vectors record it: its id and its seed.
type keySeed struct {
	id   uint32
	seed []byte
}

// recipientSpec is everything needed to rebuild a recipient's private keys.
type recipientSpec struct {
	addr         keys.Address
	mailbox      []byte
	identitySeed []byte
	signedPrekey keySeed
	pqPrekey     keySeed // the last-resort ML-KEM-1024 prekey
	mailboxKey   keySeed
}

// newSpec derives every seed of a recipient from name.
func newSpec(name string, addr keys.Address, mailbox []byte) recipientSpec {
	return recipientSpec{
		addr:         addr,
		mailbox:      mailbox,
		identitySeed: testSeed(name+"/identity", keys.IdentitySeedSize),
		signedPrekey: keySeed{1, testSeed(name+"/signed prekey", keys.X25519SeedSize)},
		pqPrekey:     keySeed{2, testSeed(name+"/pq prekey", keys.PQPrekeySeedSize)},
		mailboxKey:   keySeed{3, testSeed(name+"/mailbox key", keys.MailboxKeySeedSize)},
	}
}

// The fixture recipients. Mallory publishes a mailbox key of her own for
// Bob's address and mailbox: envelopes sealed to it are sealed to the wrong
// key as far as Bob is concerned (TESTING.md, checklist item 41).
var (
	bobSpec     = newSpec("bob", keys.Address{User: "bob", Device: 2}, []byte("bob-mailbox"))
	carolSpec   = newSpec("carol", keys.Address{User: "carol", Device: 7}, testSeed("carol/mailbox id", keys.MaxMailboxLength))
	mallorySpec = newSpec("mallory", bobSpec.addr, bobSpec.mailbox)
	aliceAddr   = keys.Address{User: "alice", Device: 1}
	aliceSeed   = testSeed("alice/identity", keys.IdentitySeedSize)
)

// testExpiry is the expiry of the fixtures' signed prekeys and mailbox
// keys (2100-01-01): bundles built from them parse with time.Now.
var testExpiry = time.Unix(4102444800, 0)

// recipient holds one device's private keys: enough to publish a bundle,
// open first-contact envelopes and answer session starts.
type recipient struct {
	addr     keys.Address
	mailbox  []byte
	identity *keys.IdentityPrivateKey
	spk      *keys.SignedPrekey
	pq       *keys.PQPrekey
	mailKey  *keys.MailboxKey
}

// build rebuilds the recipient's keys from its seeds.
func (s recipientSpec) build(t testing.TB) *recipient {
	t.Helper()
	r := &recipient{addr: s.addr, mailbox: s.mailbox}
	var err error
	if r.identity, err = keys.NewIdentityFromSeed(s.identitySeed); err != nil {
		t.Fatalf("identity: %v", err)
	}
	if r.spk, err = keys.NewSignedPrekey(s.signedPrekey.id, s.signedPrekey.seed, testExpiry, r.identity); err != nil {
		t.Fatalf("signed prekey: %v", err)
	}
	if r.pq, err = keys.NewPQPrekey(s.pqPrekey.id, true, s.pqPrekey.seed, r.identity); err != nil {
		t.Fatalf("pq prekey: %v", err)
	}
	if r.mailKey, err = keys.NewMailboxKey(s.mailboxKey.id, s.addr, s.mailbox, s.mailboxKey.seed, testExpiry, r.identity); err != nil {
		t.Fatalf("mailbox key: %v", err)
	}
	return r
}

// bundle returns the recipient's bundle as a sender sees it: encoded and
// parsed back, so every signature in it has been verified.
func (r *recipient) bundle(t testing.TB) *keys.Bundle {
	t.Helper()
	raw, err := (&keys.Bundle{
		Address:      r.addr,
		Mailbox:      r.mailbox,
		Identity:     r.identity.Public(),
		SignedPrekey: r.spk.Public(),
		PQPrekey:     r.pq.Public(),
		MailboxKey:   r.mailKey.Public(),
	}).MarshalBinary()
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	b, err := keys.ParseBundle(raw)
	if err != nil {
		t.Fatalf("ParseBundle: %v", err)
	}
	return b
}

// respond answers a session start with the recipient's prekeys, as the
// device does after opening a first contact.
func (r *recipient) respond(m *keys.SessionStart) (*keys.SessionKeys, error) {
	return keys.Respond(r.identity, r.addr, m, r.spk, r.pq, nil)
}

// alice returns the fixture initiator's identity.
func alice(t testing.TB) *keys.IdentityPrivateKey {
	t.Helper()
	id, err := keys.NewIdentityFromSeed(aliceSeed)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newStart runs Alice's side of the session start against b with the given
// first ratchet message and returns the start and its encoding.
func newStart(t testing.TB, b *keys.Bundle, payload []byte) (*keys.SessionStart, []byte) {
	t.Helper()
	m, _, err := keys.Initiate(alice(t), aliceAddr, b)
	if err != nil {
		t.Fatalf("Initiate: %v", err)
	}
	m.Payload = payload
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	return m, raw
}

// firstContact seals start to b and fails the test on error.
func firstContact(t testing.TB, b *keys.Bundle, start []byte) []byte {
	t.Helper()
	env, err := seal.FirstContact(b, start)
	if err != nil {
		t.Fatalf("FirstContact: %v", err)
	}
	return env
}

// payloadOf returns n deterministic payload bytes.
func payloadOf(n int) []byte { return testSeed("payload", n) }

// checkErr fails the test unless err matches want (nil: no error). Errors
// are told apart by their sentinel only, never by their text.
func checkErr(t testing.TB, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// openExpect opens raw as r and checks the error class, and that a failed
// open returns no session start.
func openExpect(t testing.TB, what string, r *recipient, mailbox, raw []byte, want error) *keys.SessionStart {
	t.Helper()
	m, err := seal.OpenFirstContact(r.mailKey, mailbox, raw)
	checkErr(t, what, err, want)
	if err != nil && m != nil {
		t.Fatalf("%s: OpenFirstContact returned a session start with error %v", what, err)
	}
	if err == nil && m == nil {
		t.Fatalf("%s: OpenFirstContact returned neither a start nor an error", what)
	}
	return m
}

// typed lists every sentinel an open may return for attacker input.
var typed = []error{seal.ErrMalformed, seal.ErrUnsupportedVersion, seal.ErrTooLarge, seal.ErrDecrypt, keys.ErrBadSignature}

// isTyped reports whether err matches one of the documented sentinels.
func isTyped(err error) bool {
	for _, s := range typed {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// sealParams varies one part of a hand-made first-contact seal; the zero
// value is the construction seal.go documents.
type sealParams struct {
	info []byte                     // nil: firstContactLabel || mailbox
	aad  func(header []byte) []byte // nil: the routing header as sent
	kdf  hpke.KDF                   // nil: HKDF-SHA256
	aead hpke.AEAD                  // nil: ChaCha20-Poly1305
	tag  [envelope.TagSize]byte     // the routing tag
}

// handSeal builds a first-contact envelope with crypto/hpke directly, so
// that a test can seal plaintexts FirstContact never would (bad padding, a
// payload that is no session start) or vary the construction. The header
// is written out byte by byte: version 2, mailbox length, mailbox, tag,
// the body's length (3 bytes: the X-Wing encapsulation, the plaintext and
// a 16-byte AEAD tag).
func handSeal(t testing.TB, pk hpke.PublicKey, mailbox []byte, p sealParams, plain []byte) []byte {
	t.Helper()
	header := append([]byte{2, byte(len(mailbox))}, mailbox...)
	header = append(header, p.tag[:]...)
	n := xwingEncSize + len(plain) + 16
	header = append(header, byte(n>>16), byte(n>>8), byte(n))
	info, aad, kdf, aead := p.info, header, p.kdf, p.aead
	if info == nil {
		info = []byte(firstContactLabel + string(mailbox))
	}
	if p.aad != nil {
		aad = p.aad(header)
	}
	if kdf == nil {
		kdf = hpke.HKDFSHA256()
	}
	if aead == nil {
		aead = hpke.ChaCha20Poly1305()
	}
	enc, s, err := hpke.NewSender(pk, kdf, aead, info)
	if err != nil {
		t.Fatalf("hpke.NewSender: %v", err)
	}
	ct, err := s.Seal(aad, plain)
	if err != nil {
		t.Fatalf("hpke Seal: %v", err)
	}
	return append(append(header, enc...), ct...)
}

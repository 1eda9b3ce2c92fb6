package keys

import (
	"crypto/sha3"
	"encoding/hex"
	"errors"
	"math"
	"testing"
	"time"
)

// testExpiry is the expiry of every fixture's signed prekey and mailbox
// key (2100-01-01), far enough that the vectors parse with time.Now; the
// expiry tests use their own clock.
var testExpiry = time.Unix(4102444800, 0)

// testSeed returns n bytes derived from name. Every fixture key is built
// from such a seed, so the keys are the same on every run and the golden
// vectors can record them.
func testSeed(name string, n int) []byte {
	return sha3.SumSHAKE128([]byte("sealpost keys test "+name), n)
}

// hexBytes is a byte string that JSON encodes as lower-case hex.
type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }

func (h *hexBytes) UnmarshalText(text []byte) error {
	b, err := hex.DecodeString(string(text))
	*h = b
	return err
}

// keySeed is one prekey as the vectors record it: its id and its seed.
type keySeed struct {
	ID   uint32   `json:"id"`
	Seed hexBytes `json:"seed"`
}

// partySpec is everything needed to rebuild one party's private keys.
type partySpec struct {
	User         string    `json:"user"`
	Device       uint32    `json:"device"`
	Mailbox      hexBytes  `json:"mailbox"`
	IdentitySeed hexBytes  `json:"identity_seed"`
	SignedPrekey keySeed   `json:"signed_prekey"`
	PQPrekey     keySeed   `json:"pq_prekey"`
	OneTime      []keySeed `json:"one_time_prekeys,omitempty"`
	OneTimePQ    []keySeed `json:"one_time_pq_prekeys,omitempty"`
	MailboxKey   keySeed   `json:"mailbox_key"`
}

// newSpec returns the spec of a party named name with signed prekey 1,
// last-resort PQ prekey 2, mailbox key 3 and no one-time prekeys. The name
// picks the seeds; the same name always gives the same keys.
func newSpec(name, user string, device uint32) partySpec {
	return partySpec{
		User:         user,
		Device:       device,
		Mailbox:      []byte("mbox:" + user),
		IdentitySeed: testSeed(name+"/identity", IdentitySeedSize),
		SignedPrekey: keySeed{1, testSeed(name+"/spk", X25519SeedSize)},
		PQPrekey:     keySeed{2, testSeed(name+"/pq", PQPrekeySeedSize)},
		MailboxKey:   keySeed{3, testSeed(name+"/mailbox key", MailboxKeySeedSize)},
	}
}

// withOneTime adds one-time X25519 prekeys with the given ids.
func (s partySpec) withOneTime(name string, ids ...uint32) partySpec {
	s.OneTime = append([]keySeed(nil), s.OneTime...)
	for _, id := range ids {
		s.OneTime = append(s.OneTime, keySeed{id, testSeed(name+"/otp/"+u32hex(id), X25519SeedSize)})
	}
	return s
}

// withOneTimePQ adds one-time ML-KEM prekeys with the given ids.
func (s partySpec) withOneTimePQ(name string, ids ...uint32) partySpec {
	s.OneTimePQ = append([]keySeed(nil), s.OneTimePQ...)
	for _, id := range ids {
		s.OneTimePQ = append(s.OneTimePQ, keySeed{id, testSeed(name+"/otpq/"+u32hex(id), PQPrekeySeedSize)})
	}
	return s
}

func u32hex(v uint32) string { return hex.EncodeToString(u32(v)) }

// party is one device's private keys.
type party struct {
	addr    Address
	mailbox []byte
	id      *IdentityPrivateKey
	spk     *SignedPrekey
	pq      *PQPrekey
	otps    []*OneTimePrekey
	otpqs   []*PQPrekey
	mk      *MailboxKey
}

// build rebuilds the party's keys from s and registers every secret for
// the hygiene checks.
func (s partySpec) build(t testing.TB) *party {
	t.Helper()
	p := &party{addr: Address{User: s.User, Device: s.Device}, mailbox: s.Mailbox}
	var err error
	if p.id, err = NewIdentityFromSeed(s.IdentitySeed); err != nil {
		t.Fatal(err)
	}
	if p.spk, err = NewSignedPrekey(s.SignedPrekey.ID, s.SignedPrekey.Seed, testExpiry, p.id); err != nil {
		t.Fatal(err)
	}
	if p.pq, err = NewPQPrekey(s.PQPrekey.ID, true, s.PQPrekey.Seed, p.id); err != nil {
		t.Fatal(err)
	}
	for _, k := range s.OneTime {
		otp, err := NewOneTimePrekey(k.ID, k.Seed)
		if err != nil {
			t.Fatal(err)
		}
		p.otps = append(p.otps, otp)
	}
	for _, k := range s.OneTimePQ {
		pq, err := NewPQPrekey(k.ID, false, k.Seed, p.id)
		if err != nil {
			t.Fatal(err)
		}
		p.otpqs = append(p.otpqs, pq)
	}
	if p.mk, err = NewMailboxKey(s.MailboxKey.ID, p.addr, p.mailbox, s.MailboxKey.Seed, testExpiry, p.id); err != nil {
		t.Fatal(err)
	}
	p.registerSecrets()
	return p
}

// registerSecrets records every secret the party holds, in every form the
// package could leak it: seeds and the derived private keys.
func (p *party) registerSecrets() {
	registerSecret("identity seed", p.id.Bytes())
	registerSecret("identity x25519", p.id.agree.Bytes())
	registerSecret("identity ed25519 seed", p.id.sign.Seed())
	registerSecret("signed prekey", p.spk.Bytes())
	registerSecret("pq prekey seed", p.pq.Bytes())
	for _, k := range p.otps {
		registerSecret("one-time prekey", k.Bytes())
	}
	for _, k := range p.otpqs {
		registerSecret("one-time pq prekey seed", k.Bytes())
	}
	registerSecret("mailbox key seed", p.mk.Bytes())
	if b, err := p.mk.key.Bytes(); err == nil {
		registerSecret("mailbox hpke private key", b)
	}
}

// bundle returns the party's full bundle, with every one-time prekey.
func (p *party) bundle() *Bundle {
	b := &Bundle{
		Address:      p.addr,
		Mailbox:      append([]byte(nil), p.mailbox...),
		Identity:     p.id.Public(),
		SignedPrekey: p.spk.Public(),
		PQPrekey:     p.pq.Public(),
		MailboxKey:   p.mk.Public(),
	}
	for _, k := range p.otps {
		b.OneTimePrekeys = append(b.OneTimePrekeys, k.Public())
	}
	for _, k := range p.otpqs {
		b.OneTimePQPrekeys = append(b.OneTimePQPrekeys, k.Public())
	}
	return b
}

// lookup plays the responder's store: it finds the prekeys m names by id,
// and returns nil for any it does not hold.
func (p *party) lookup(m *SessionStart) (*SignedPrekey, *PQPrekey, *OneTimePrekey) {
	var spk *SignedPrekey
	if p.spk.id == m.SignedPrekeyID {
		spk = p.spk
	}
	var pq *PQPrekey
	if !m.PQOneTime && p.pq.id == m.PQPrekeyID {
		pq = p.pq
	}
	for _, k := range p.otpqs {
		if m.PQOneTime && k.id == m.PQPrekeyID {
			pq = k
		}
	}
	var otp *OneTimePrekey
	for _, k := range p.otps {
		if m.HasOneTimePrekey && k.id == m.OneTimePrekeyID {
			otp = k
		}
	}
	return spk, pq, otp
}

// respond runs Respond with the prekeys p's store finds for m.
func (p *party) respond(m *SessionStart) (*SessionKeys, error) {
	spk, pq, otp := p.lookup(m)
	return Respond(p.id, p.addr, m, spk, pq, otp)
}

// prekeyBytes is a snapshot of every private key p holds, to show that a
// failed Respond changed nothing.
func (p *party) prekeyBytes() [][]byte {
	out := [][]byte{p.id.Bytes(), p.spk.Bytes(), p.pq.Bytes(), p.mk.Bytes()}
	for _, k := range p.otps {
		out = append(out, k.Bytes())
	}
	for _, k := range p.otpqs {
		out = append(out, k.Bytes())
	}
	return out
}

// Fixed parties. alice initiates; bob responds and publishes one one-time
// prekey of each kind, as a split bundle does.
func aliceSpec() partySpec { return newSpec("alice", "alice", 1) }

func bobSpec() partySpec {
	return newSpec("bob", "bob", 2).withOneTime("bob", 100).withOneTimePQ("bob", 200)
}

func malloryspec() partySpec { return newSpec("mallory", "mallory", 6) }

// Fixed randomness for initiate.
var (
	testEphSeed = testSeed("ephemeral", 32)
	testKEMSeed = testSeed("kem", 32)
)

// start runs the deterministic initiate from alice to bundle b and
// returns the encoded start and alice's keys.
func start(t testing.TB, alice *party, b *Bundle) ([]byte, *SessionKeys) {
	t.Helper()
	m, keys, err := initiate(alice.id, alice.addr, b, testEphSeed, testKEMSeed)
	if err != nil {
		t.Fatalf("initiate: %v", err)
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatalf("marshal start: %v", err)
	}
	registerSecret("session secret", keys.Secret())
	return raw, keys
}

// sentinels are the errors this package may return.
var sentinels = []error{ErrMalformed, ErrUnsupportedVersion, ErrBadSignature, ErrUnknownPrekey, ErrDecrypt, ErrLowOrderPoint, ErrExpired,
	ErrTooLarge, ErrWrongAccount, ErrRollback, ErrBrokenChain, ErrFork}

// sentinelName returns the name of the sentinel err matches, or "" for an
// untyped error.
func sentinelName(err error) string {
	names := []string{"ErrMalformed", "ErrUnsupportedVersion", "ErrBadSignature", "ErrUnknownPrekey", "ErrDecrypt", "ErrLowOrderPoint", "ErrExpired",
		"ErrTooLarge", "ErrWrongAccount", "ErrRollback", "ErrBrokenChain", "ErrFork"}
	for i, s := range sentinels {
		if errors.Is(err, s) {
			return names[i]
		}
	}
	return ""
}

// sentinelByName is the inverse of sentinelName, for the vector files.
func sentinelByName(name string) error {
	for _, s := range sentinels {
		if sentinelName(s) == name {
			return s
		}
	}
	return nil
}

// wantErr fails unless err matches want, and checks that its text holds no
// registered secret.
func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	checkNoSecret(t, "error", err.Error())
}

// wantTyped fails unless err is non-nil and matches one of the sentinels,
// and checks that its text holds no registered secret.
func wantTyped(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("got success, want a typed error")
	}
	if sentinelName(err) == "" {
		t.Fatalf("got untyped error %v", err)
	}
	checkNoSecret(t, "error", err.Error())
}

// flipBit returns a copy of b with bit i (counting from the first byte's
// least significant bit) inverted.
func flipBit(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i/8] ^= 1 << (i % 8)
	return out
}

// Boundary ids.
const (
	minID uint32 = 0
	maxID uint32 = math.MaxUint32
)

// lowOrderPoint is an X25519 public key that no honest peer sends.
type lowOrderPoint struct {
	name string
	hex  string
	want error // ErrLowOrderPoint where it decodes, ErrMalformed where it is not canonical
}

// lowOrderPoints are the X25519 points of small order and their
// non-canonical encodings, as in libsodium's blocklist and C2SP CCTV's
// age/internal/tests/x25519_low_order.go (RFC 7748 section 6.1 requires the
// all-zero check these trigger).
var lowOrderPoints = []lowOrderPoint{
	{"zero", "0000000000000000000000000000000000000000000000000000000000000000", ErrLowOrderPoint},
	{"one", "0100000000000000000000000000000000000000000000000000000000000000", ErrLowOrderPoint},
	{"order 8 a", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", ErrLowOrderPoint},
	{"order 8 b", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", ErrLowOrderPoint},
	{"p-1", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ErrLowOrderPoint},
	{"p", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ErrMalformed},
	{"p+1", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ErrMalformed},
	{"order 8 a + p", "cdeb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880", ErrMalformed},
	{"order 8 b + p", "4c9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7", ErrMalformed},
	{"2p-1", "d9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", ErrMalformed},
	{"2p", "daffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", ErrMalformed},
	{"2p+1", "dbffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff", ErrMalformed},
}

func (l lowOrderPoint) bytes(t testing.TB) []byte {
	t.Helper()
	b, err := hex.DecodeString(l.hex)
	if err != nil || len(b) != 32 {
		t.Fatalf("bad low-order point %s", l.name)
	}
	return b
}

package keys

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"math/big"
	"slices"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"

	"github.com/sealpost/sealpost/internal/kdf"
)

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// Ed25519 helpers for the malleability cases (checklist item 48).

// edL is the order of the Ed25519 base point.
var edL, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

func leInt(b []byte) *big.Int {
	be := slices.Clone(b)
	slices.Reverse(be)
	return new(big.Int).SetBytes(be)
}

func intLE(x *big.Int, n int) []byte {
	b := x.FillBytes(make([]byte, n))
	slices.Reverse(b)
	return b
}

// sigPlusL returns sig with L added to S: the same signature under a
// verifier that reduces S, which RFC 8032 forbids.
func sigPlusL(sig []byte) []byte {
	s := new(big.Int).Add(leInt(sig[32:]), edL)
	return append(slices.Clone(sig[:32]), intLE(s, 32)...)
}

// Encodings of the identity point, R = [0]B.
var (
	canonicalIdentity        = [32]byte{1}
	nonCanonicalIdentityY    = [32]byte(mustHex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")) // y = p+1
	nonCanonicalIdentitySign = [32]byte(mustHex("0100000000000000000000000000000000000000000000000000000000000080")) // x = -0
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// sigWithR signs msg with id's Ed25519 key using the nonce r = 0, so
// R is the identity point, encoded as given: S = H(R || A || msg) * a. With
// the canonical encoding this is a valid signature; with another encoding
// of the same point only a verifier that decodes R would accept it.
func sigWithR(t testing.TB, id *IdentityPrivateKey, msg []byte, r [32]byte) []byte {
	t.Helper()
	h := sha512.Sum512(id.sign.Seed())
	h[0] &= 248
	h[31] &= 63
	h[31] |= 64
	a := leInt(h[:32])
	d := sha512.New()
	d.Write(r[:])
	d.Write(id.public.signing[:])
	d.Write(msg)
	k := leInt(d.Sum(nil))
	s := new(big.Int).Mul(k, a)
	s.Mod(s, edL)
	return append(r[:], intLE(s, 32)...)
}

// TestRebuildFromBytes rebuilds every private key from its Bytes() and checks
// that the public keys and signatures are the same: a key saved as its bytes
// comes back whole.
func TestRebuildFromBytes(t *testing.T) {
	id := GenerateIdentity()
	again, err := NewIdentityFromSeed(id.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(id.Public().Bytes(), again.Public().Bytes()) || !id.Public().Equal(again.Public()) ||
		id.Public().Fingerprint() != again.Public().Fingerprint() {
		t.Fatal("identity rebuilt from its seed differs")
	}
	if len(id.Bytes()) != IdentitySeedSize {
		t.Fatalf("identity seed is %d bytes", len(id.Bytes()))
	}
	addr := Address{User: "bob", Device: 1}
	mbox := []byte("mbox")
	for _, lr := range []bool{true, false} {
		pq := GeneratePQPrekey(7, lr, id)
		pq2, err := NewPQPrekey(pq.ID(), pq.LastResort(), pq.Bytes(), again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pq.Public().Bytes(), pq2.Public().Bytes()) || !bytes.Equal(pq.Public().Signature(), pq2.Public().Signature()) ||
			pq2.ID() != 7 || pq2.LastResort() != lr || pq2.Public().LastResort != lr {
			t.Errorf("pq prekey (last resort %t) rebuilt from its seed differs", lr)
		}
		if !bytes.Equal(pq2.Bytes(), pq.Bytes()) || len(pq.Bytes()) != PQPrekeySeedSize {
			t.Error("pq prekey Bytes differ")
		}
	}
	spk, err := GenerateSignedPrekey(9, testExpiry, id)
	if err != nil {
		t.Fatal(err)
	}
	spk2, err := NewSignedPrekey(spk.ID(), spk.Bytes(), testExpiry, again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(spk.Public().Bytes(), spk2.Public().Bytes()) || !bytes.Equal(spk.Public().Signature(), spk2.Public().Signature()) || spk2.ID() != 9 {
		t.Error("signed prekey rebuilt from its seed differs")
	}
	otp := GenerateOneTimePrekey(11)
	otp2, err := NewOneTimePrekey(otp.ID(), otp.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(otp.Public().Bytes(), otp2.Public().Bytes()) || otp2.ID() != 11 || otp2.Public().ID != 11 {
		t.Error("one-time prekey rebuilt from its seed differs")
	}
	mk, err := GenerateMailboxKey(13, addr, mbox, testExpiry, id)
	if err != nil {
		t.Fatal(err)
	}
	mk2, err := NewMailboxKey(mk.ID(), addr, mbox, mk.Bytes(), testExpiry, again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mk.Public().Bytes(), mk2.Public().Bytes()) || !bytes.Equal(mk.Public().Signature(), mk2.Public().Signature()) || mk2.ID() != 13 {
		t.Error("mailbox key rebuilt from its seed differs")
	}
	if !bytes.Equal(mk.Public().HPKE().Bytes(), mk.HPKE().PublicKey().Bytes()) || !bytes.Equal(mk.Public().Bytes()[1:], mk.Public().HPKE().Bytes()) {
		t.Error("mailbox key HPKE forms differ")
	}
	// Bytes returns copies.
	for name, k := range map[string]interface{ Bytes() []byte }{"identity": id, "pq": GeneratePQPrekey(1, true, id), "spk": spk, "otp": otp, "mailbox": mk} {
		b := k.Bytes()
		b[0] ^= 0xff
		if bytes.Equal(b, k.Bytes()) {
			t.Errorf("%s: Bytes aliases the key", name)
		}
	}
}

// TestBadSeeds checks that every constructor refuses a seed of the wrong
// length, and the mailbox key a bad owner or mailbox id, with ErrMalformed.
func TestBadSeeds(t *testing.T) {
	id := aliceSpec().build(t).id
	addr := Address{User: "a", Device: 1}
	for _, n := range []int{0, 1, 31, 33, 63, 65} {
		seed := make([]byte, n)
		if n != IdentitySeedSize {
			_, err := NewIdentityFromSeed(seed)
			wantErr(t, err, ErrMalformed)
		}
		if n != X25519SeedSize {
			_, err := NewSignedPrekey(1, seed, testExpiry, id)
			wantErr(t, err, ErrMalformed)
			_, err = NewOneTimePrekey(1, seed)
			wantErr(t, err, ErrMalformed)
		}
		if n != PQPrekeySeedSize {
			_, err := NewPQPrekey(1, true, seed, id)
			wantErr(t, err, ErrMalformed)
		}
		if n != MailboxKeySeedSize {
			_, err := NewMailboxKey(1, addr, []byte("m"), seed, testExpiry, id)
			wantErr(t, err, ErrMalformed)
		}
	}
	seed := make([]byte, MailboxKeySeedSize)
	for name, f := range map[string]func() error{
		"empty user": func() error { _, err := NewMailboxKey(1, Address{}, []byte("m"), seed, testExpiry, id); return err },
		"long user": func() error {
			_, err := NewMailboxKey(1, Address{User: string(make([]byte, 257))}, []byte("m"), seed, testExpiry, id)
			return err
		},
		"invalid utf-8": func() error {
			_, err := NewMailboxKey(1, Address{User: "\xc3"}, []byte("m"), seed, testExpiry, id)
			return err
		},
		"empty mailbox":    func() error { _, err := NewMailboxKey(1, addr, nil, seed, testExpiry, id); return err },
		"long mailbox":     func() error { _, err := NewMailboxKey(1, addr, make([]byte, 65), seed, testExpiry, id); return err },
		"generate, no mbx": func() error { _, err := GenerateMailboxKey(1, addr, nil, testExpiry, id); return err },
	} {
		t.Run(name, func(t *testing.T) { wantErr(t, f(), ErrMalformed) })
	}
}

// TestPublicIdentity covers ParsePublicIdentity, Equal, IsZero and the
// fingerprint.
func TestPublicIdentity(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	pub := alice.id.Public()
	parsed, err := ParsePublicIdentity(pub.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Equal(pub) || parsed.Equal(bob.id.Public()) || parsed.IsZero() || !(PublicIdentity{}).IsZero() {
		t.Fatal("Equal / IsZero")
	}
	if len(pub.Bytes()) != PublicIdentitySize || len(pub.Fingerprint()) != FingerprintSize ||
		pub.Fingerprint() == bob.id.Public().Fingerprint() {
		t.Fatal("sizes or fingerprints")
	}
	b := pub.Bytes()
	b[1] ^= 1
	if bytes.Equal(b, pub.Bytes()) {
		t.Fatal("Bytes aliases the identity")
	}
	for _, n := range []int{0, PublicIdentitySize - 1, PublicIdentitySize + 1} {
		p, err := ParsePublicIdentity(make([]byte, n))
		if !p.IsZero() {
			t.Error("non-zero identity with an error")
		}
		wantErr(t, err, ErrMalformed)
	}
	// Every bit: a type byte is ErrMalformed, a flipped high bit of the
	// X25519 key is ErrMalformed (non-canonical), anything else breaks the
	// signature.
	for bit := range 8 * PublicIdentitySize {
		if !thorough() && bit%5 != 0 {
			continue
		}
		p, err := ParsePublicIdentity(flipBit(pub.Bytes(), bit))
		if !p.IsZero() {
			t.Fatalf("bit %d: non-zero identity with an error", bit)
		}
		switch byteAt := bit / 8; {
		case byteAt == 0 || byteAt == 33 || bit == 8*65+7:
			wantErr(t, err, ErrMalformed)
		default:
			wantErr(t, err, ErrBadSignature)
		}
	}
}

// TestIdentityKeyEncoding checks the identity's X25519 key against
// checklist item 3: an owner can sign any 32 bytes as its key, so parsing
// must refuse a non-canonical encoding itself; a canonical low-order key
// parses and is refused by the exchange (see TestBundleLowOrderKeys).
func TestIdentityKeyEncoding(t *testing.T) {
	alice := aliceSpec().build(t)
	highBit := alice.id.Public().Bytes()[34:66]
	highBit[31] |= 0x80
	cases := append(lowOrderPoints,
		lowOrderPoint{"own key with the high bit set", hexOf(highBit), ErrMalformed},
		lowOrderPoint{"2^255-1", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ErrMalformed},
	)
	for _, pt := range cases {
		t.Run(pt.name, func(t *testing.T) {
			enc := selfSigned(t, alice.id, pt.bytes(t)).Bytes()
			p, err := ParsePublicIdentity(enc)
			if pt.want == ErrMalformed {
				if !p.IsZero() {
					t.Error("non-zero identity with an error")
				}
				wantErr(t, err, ErrMalformed)
				return
			}
			if err != nil {
				t.Fatalf("a canonical self-signed key: %v", err)
			}
		})
	}
}

// TestIdentitySignatureMalleability: S+L and a non-canonical R on the
// identity's self-signature are ErrBadSignature (checklist item 48).
func TestIdentitySignatureMalleability(t *testing.T) {
	alice := aliceSpec().build(t)
	enc := alice.id.Public().Bytes()
	msg := signedMessage(kdf.LabelSigIdentity, enc[33:66])
	withSig := func(sig []byte) []byte { return append(slices.Clone(enc[:66]), sig...) }
	if _, err := ParsePublicIdentity(withSig(sigWithR(t, alice.id, msg, canonicalIdentity))); err != nil {
		t.Fatalf("canonical small-R signature: %v", err)
	}
	for name, sig := range map[string][]byte{
		"S+L":             sigPlusL(enc[66:]),
		"R y = p+1":       sigWithR(t, alice.id, msg, nonCanonicalIdentityY),
		"R sign bit":      sigWithR(t, alice.id, msg, nonCanonicalIdentitySign),
		"zero signature":  make([]byte, 64),
		"other identity":  bobSpec().build(t).id.Public().Bytes()[66:],
		"wrong label too": ed25519.Sign(alice.id.sign, signedMessage(kdf.LabelSigSignedPrekey, enc[33:66])),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParsePublicIdentity(withSig(sig))
			wantErr(t, err, ErrBadSignature)
		})
	}
}

// TestMLKEMCrossCheck checks circl's ML-KEM-1024, which the package uses,
// against crypto/mlkem for the same seeds: the same encapsulation key, the
// same derandomized encapsulation (FIPS 203 ML-KEM.Encaps_internal), and
// decapsulation of each other's ciphertexts.
func TestMLKEMCrossCheck(t *testing.T) {
	seeds := [][]byte{make([]byte, 64), bytes.Repeat([]byte{0xff}, 64), testSeed("mlkem cross check", 64)}
	for range 3 {
		seed := make([]byte, 64)
		rand.Read(seed)
		seeds = append(seeds, seed)
	}
	id := aliceSpec().build(t).id
	for i, seed := range seeds {
		pk, sk := mlkem1024.NewKeyFromSeed(seed)
		ours := make([]byte, mlkem1024.PublicKeySize)
		pk.Pack(ours)
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			t.Fatal(err)
		}
		ek := dk.EncapsulationKey()
		if !bytes.Equal(ours, ek.Bytes()) {
			t.Fatalf("seed %d: circl and crypto/mlkem encapsulation keys differ", i)
		}
		pq, err := NewPQPrekey(1, true, seed, id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pq.Public().Bytes()[1:], ek.Bytes()) {
			t.Fatalf("seed %d: PQPrekey public key differs from crypto/mlkem", i)
		}
		m := testSeed("encaps randomness", 32)
		ct, ss := pq.Public().encapsulate(m)
		ss2, ct2, err := mlkemtest.Encapsulate1024(ek, m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ct, ct2) || !bytes.Equal(ss, ss2) {
			t.Fatalf("seed %d: derandomized encapsulation differs", i)
		}
		if got, err := dk.Decapsulate(ct); err != nil || !bytes.Equal(got, ss) {
			t.Fatalf("seed %d: crypto/mlkem cannot decapsulate circl's ciphertext", i)
		}
		ss3, ct3 := ek.Encapsulate()
		got := make([]byte, mlkem1024.SharedKeySize)
		sk.DecapsulateTo(got, ct3)
		if !bytes.Equal(got, ss3) || !bytes.Equal(pq.decapsulate(ct3), ss3) {
			t.Fatalf("seed %d: circl cannot decapsulate crypto/mlkem's ciphertext", i)
		}
	}
}

// TestConstantSizes checks every exported size against what the code
// and the underlying primitives produce, as crypto/mlkem's test does.
func TestConstantSizes(t *testing.T) {
	alice, bob := aliceSpec().build(t), bobSpec().build(t)
	raw, ak := start(t, alice, bob.bundle())
	m, err := ParseSessionStart(raw)
	if err != nil {
		t.Fatal(err)
	}
	xwing, err := hpke.MLKEM768X25519().NewPrivateKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	xwingSeed, _ := xwing.Bytes()
	x, _ := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	checks := []struct {
		name      string
		got, want int
	}{
		{"IdentitySeedSize", IdentitySeedSize, len(bob.id.Bytes())},
		{"IdentitySeedSize (ed25519)", IdentitySeedSize, ed25519.SeedSize},
		{"PublicIdentitySize", PublicIdentitySize, len(bob.id.Public().Bytes())},
		{"FingerprintSize", FingerprintSize, len(bob.id.Public().Fingerprint())},
		{"X25519SeedSize", X25519SeedSize, len(bob.spk.Bytes())},
		{"X25519SeedSize (ecdh)", X25519SeedSize, len(x.Bytes())},
		{"X25519PublicKeySize", X25519PublicKeySize, len(bob.spk.Public().Bytes()) - 1},
		{"X25519PublicKeySize (one-time)", X25519PublicKeySize, len(bob.otps[0].Public().Bytes()) - 1},
		{"X25519PublicKeySize (ecdh)", X25519PublicKeySize, len(x.PublicKey().Bytes())},
		{"PQPrekeySeedSize", PQPrekeySeedSize, len(bob.pq.Bytes())},
		{"PQPrekeySeedSize (crypto/mlkem)", PQPrekeySeedSize, mlkem.SeedSize},
		{"PQPublicKeySize", PQPublicKeySize, len(bob.pq.Public().Bytes()) - 1},
		{"PQPublicKeySize (crypto/mlkem)", PQPublicKeySize, mlkem.EncapsulationKeySize1024},
		{"PQCiphertextSize", PQCiphertextSize, len(m.kemCiphertext)},
		{"PQCiphertextSize (crypto/mlkem)", PQCiphertextSize, mlkem.CiphertextSize1024},
		{"MailboxKeySeedSize", MailboxKeySeedSize, len(bob.mk.Bytes())},
		{"MailboxKeySeedSize (hpke)", MailboxKeySeedSize, len(xwingSeed)},
		{"MailboxPublicKeySize", MailboxPublicKeySize, len(bob.mk.Public().Bytes()) - 1},
		{"MailboxPublicKeySize (hpke)", MailboxPublicKeySize, len(xwing.PublicKey().Bytes())},
		{"MailboxPublicKeySize (parts)", MailboxPublicKeySize, mlkem.EncapsulationKeySize768 + 32},
		{"SessionSecretSize", SessionSecretSize, len(ak.Secret())},
		{"ScannableSize", ScannableSize, len(Scannable(alice.id.Public(), "a", bob.id.Public(), "b"))},
		{"confirmationSize", confirmationSize, len(m.confirmation)},
		{"signature size", ed25519.SignatureSize, len(bob.spk.Public().Signature())},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, code produces %d", c.name, c.got, c.want)
		}
	}
	if MaxMailboxLength != 64 || MaxUserLength != 256 {
		t.Error("address limits changed: they are part of the wire contract")
	}
}

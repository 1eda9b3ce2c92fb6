package keys

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem1024"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/sealpost/sealpost/internal/kdf"
)

// benchParties returns Alice, Bob and Bob's parsed split bundle with one
// one-time prekey of each kind.
func benchParties(b *testing.B) (alice, bob *party, bundle *Bundle) {
	b.Helper()
	alice, bob = aliceSpec().build(b), bobSpec().build(b)
	bundle, err := ParseBundle(marshalBundle(b, bob.bundle()))
	if err != nil {
		b.Fatal(err)
	}
	return alice, bob, bundle
}

// BenchmarkInitiate measures the initiator from a parsed bundle to the
// encoded start: Verify (4 Ed25519 verifies with a one-time PQ prekey, 3
// without), an X25519 key generation, 4 X25519 exchanges, an ML-KEM-1024
// encapsulation, the transcript hash, HKDF, the confirmation MAC and the
// protobuf encoding.
func BenchmarkInitiate(b *testing.B) {
	alice, _, full := benchParties(b)
	noPQ := *full
	noPQ.OneTimePQPrekeys = nil
	for _, bc := range []struct {
		name   string
		bundle *Bundle
	}{{"one-time x25519 and pq", full}, {"one-time x25519", &noPQ}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m, _, err := Initiate(alice.id, alice.addr, bc.bundle)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.MarshalBinary(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRespond measures the responder from the encoded start to the
// session keys: ParseSessionStart (with the identity's Ed25519 verify),
// the prekey lookup, 4 X25519 exchanges, an ML-KEM-1024 decapsulation, the
// transcript hash, HKDF and the confirmation check.
func BenchmarkRespond(b *testing.B) {
	alice, bob, bundle := benchParties(b)
	raw, _ := start(b, alice, bundle)
	b.ReportAllocs()
	for b.Loop() {
		m, err := ParseSessionStart(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.respond(m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseBundle measures ParseBundle on a split bundle with one
// one-time prekey of each kind: 5 Ed25519 verifies, 2 ML-KEM-1024 key
// unpacks, an X-Wing key parse and the protobuf decoding.
func BenchmarkParseBundle(b *testing.B) {
	_, bob, _ := benchParties(b)
	raw := marshalBundle(b, bob.bundle())
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseBundle(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrimitives measures each primitive a session start performs,
// alone, so that Initiate and Respond can be compared with the sum of
// their parts.
func BenchmarkPrimitives(b *testing.B) {
	alice, bob, bundle := benchParties(b)
	raw, _ := start(b, alice, bundle)
	m, err := ParseSessionStart(raw)
	if err != nil {
		b.Fatal(err)
	}
	priv, pub := alice.id.agree, bob.spk.key.PublicKey()
	seed := testSeed("bench x25519", 32)
	pqPub := bundle.OneTimePQPrekeys[0].key
	pqPriv := bob.otpqs[0].key
	pqRaw := bundle.OneTimePQPrekeys[0].raw
	ct, ss := make([]byte, PQCiphertextSize), make([]byte, mlkem1024.SharedKeySize)
	edPub := bob.id.public.signing[:]
	spkMsg := bundleSigFields[0].msg(bundle)
	pqMsg := bundleSigFields[2].msg(bundle)
	idMsg := signedMessage(kdf.LabelSigIdentity, typed(typeX25519, alice.id.public.agreement[:]))
	ikm := make([]byte, 32*6)
	tr := transcript{
		initiator: alice.id.Public(), responder: bob.id.Public(), initiatorAddr: alice.addr, responderAddr: bob.addr,
		spk: bundle.SignedPrekey.Bytes(), pq: bundle.OneTimePQPrekeys[0].Bytes(), opk: bundle.OneTimePrekeys[0].Bytes(),
		base: m.BaseKey(), ct: m.kemCiphertext,
	}
	h := tr.hash()
	xwing := bundle.MailboxKey.raw

	bench := func(name string, f func()) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f()
			}
		})
	}
	bench("X25519-ECDH", func() {
		if _, err := priv.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	})
	bench("X25519-keygen", func() {
		k, err := ecdh.X25519().NewPrivateKey(seed)
		if err != nil {
			b.Fatal(err)
		}
		_ = k.PublicKey()
	})
	bench("MLKEM1024-encaps", func() { pqPub.EncapsulateTo(ct, ss, seed) })
	bench("MLKEM1024-decaps", func() { pqPriv.DecapsulateTo(ss, m.kemCiphertext) })
	bench("MLKEM1024-unpack", func() {
		var k mlkem1024.PublicKey
		if err := k.Unpack(pqRaw); err != nil {
			b.Fatal(err)
		}
	})
	bench("XWing-parse", func() {
		if _, err := hpke.MLKEM768X25519().NewPublicKey(xwing); err != nil {
			b.Fatal(err)
		}
	})
	bench("Ed25519-verify", func() {
		if !ed25519.Verify(edPub, spkMsg, bundle.SignedPrekey.signature[:]) {
			b.Fatal("verify")
		}
	})
	bench("Ed25519-verify-1.6KB", func() {
		if !ed25519.Verify(edPub, pqMsg, bundle.OneTimePQPrekeys[0].signature[:]) {
			b.Fatal("verify")
		}
	})
	bench("Ed25519-verify-identity", func() {
		if !ed25519.Verify(alice.id.public.signing[:], idMsg, alice.id.public.signature[:]) {
			b.Fatal("verify")
		}
	})
	bench("HKDF-SHA256-64B", func() { _ = kdf.Key(ikm, make([]byte, 32), kdf.LabelSessionSecret, h[:], 64) })
	bench("transcript-hash", func() { _ = tr.hash() })
	bench("confirmation-MAC", func() { _ = kdf.MAC(ikm[:32], kdf.LabelSessionConfirm, h[:]) })
	bench("SessionStart-marshal", func() {
		if _, err := m.MarshalBinary(); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkAccountSignatures compares the account key's Ed25519 with the
// hybrid Ed25519 + ML-DSA-65 it could be (docs/SPEC.md section 22): the
// cost of signing and verifying a device list of eight devices, and the
// sizes (reported as metrics).
func BenchmarkAccountSignatures(b *testing.B) {
	fx := newListFixture(b, MaxDevices)
	l := fx.list(b, nil, fx.devices)
	body := l.Bytes()[:len(l.Bytes())-ed25519.SignatureSize]
	msg := signedMessage(kdf.LabelSigDeviceList, body)
	var seed [mldsa65.SeedSize]byte
	pk, sk := mldsa65.NewKeyFromSeed(&seed)
	dsaSig := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(sk, msg, nil, false, dsaSig); err != nil {
		b.Fatal(err)
	}
	edSig := ed25519.Sign(fx.account.priv, msg)
	edPub := fx.account.Public().key
	b.Run("sign/ed25519", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(fx.account.priv, msg)
		}
		b.ReportMetric(ed25519.SignatureSize, "sig-bytes")
		b.ReportMetric(ed25519.PublicKeySize, "key-bytes")
	})
	b.Run("sign/ed25519+mldsa65", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(fx.account.priv, msg)
			if err := mldsa65.SignTo(sk, msg, nil, false, dsaSig); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(ed25519.SignatureSize+mldsa65.SignatureSize, "sig-bytes")
		b.ReportMetric(ed25519.PublicKeySize+mldsa65.PublicKeySize, "key-bytes")
	})
	b.Run("verify/ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(edPub[:], msg, edSig) {
				b.Fatal("verify")
			}
		}
	})
	b.Run("verify/ed25519+mldsa65", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(edPub[:], msg, edSig) || !mldsa65.Verify(pk, msg, nil, dsaSig) {
				b.Fatal("verify")
			}
		}
	})
}

// BenchmarkParseDeviceList is the whole verification of an eight-device
// list: parsing, eight identity signatures and the account signature. A
// Device does it once per list version, not per message.
func BenchmarkParseDeviceList(b *testing.B) {
	fx := newListFixture(b, MaxDevices)
	raw := fx.list(b, nil, fx.devices).Bytes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDeviceList(raw, WithClock(listNow)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeviceListFollows measures Follows, which a Device runs on every
// list it receives against the one it pinned: the next version (the hash
// of the pinned list, the chain check), the same list (a byte comparison)
// and an older one (a version comparison).
func BenchmarkDeviceListFollows(b *testing.B) {
	fx := newListFixture(b, MaxDevices)
	v1 := fx.list(b, nil, fx.devices)
	v2 := fx.list(b, v1, fx.devices[:MaxDevices-1])
	same, err := ParseDeviceList(v2.Bytes(), WithClock(listNow))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name         string
		list, pinned *DeviceList
		ok           bool
	}{{"next", v2, v1, true}, {"same", same, v2, true}, {"older", v1, v2, false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.list.Follows(bc.pinned); (err == nil) != bc.ok {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseLinkCode measures ParseLinkCode on the valid_laptop
// vector: the decoding, the identity's self-signature (one Ed25519
// verify) and the field checks.
func BenchmarkParseLinkCode(b *testing.B) {
	raw := linkCodeBase(b).raw()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseLinkCode(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinkCodeShort measures Short: the encoding and one hash.
func BenchmarkLinkCodeShort(b *testing.B) {
	c := linkCodeBase(b).code()
	b.ReportAllocs()
	for b.Loop() {
		_ = c.Short()
	}
}

package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// BenchmarkSealOpen is the steady state of one direction: the symmetric
// step only (no DH step), a 100-byte body. wire-bytes is the message's
// overhead; the 16-byte routing tag travels in the envelope header besides.
func BenchmarkSealOpen(b *testing.B) {
	alice, bob := pairFrom(b, "bench")
	pt := make([]byte, 100)
	recv(b, bob, send(b, alice, "warm"))
	b.ReportAllocs()
	for b.Loop() {
		tag, msg, err := alice.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Decrypt(tag, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(Overhead), "wire-bytes")
}

// BenchmarkPingPong alternates the direction every message, so each
// message is a DH ratchet step (key generation and two X25519 exchanges on
// the receiving side).
func BenchmarkPingPong(b *testing.B) {
	alice, bob := pairFrom(b, "pingpong")
	alice.keygen, bob.keygen = nil, nil // real random keys
	pt := make([]byte, 100)
	parties := [2]*Session{alice, bob}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		from, to := parties[i%2], parties[1-i%2]
		i++
		tag, msg, err := from.Encrypt(pt)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := to.Decrypt(tag, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReverse100 delivers 100 messages in reverse order: the first
// delivered skips 99 keys, the others come from the skipped store.
// ns/msg is the cost per message delivered (sealing not timed).
func BenchmarkReverse100(b *testing.B) {
	alice, bob := pairFrom(b, "reverse")
	recv(b, bob, send(b, alice, "warm"))
	pt := make([]byte, 100)
	batch := make([]sealed, 100)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range batch {
			batch[i].tag, batch[i].msg, _ = alice.Encrypt(pt)
		}
		b.StartTimer()
		for i := len(batch) - 1; i >= 0; i-- {
			if _, err := bob.Decrypt(batch[i].tag, batch[i].msg); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/msg")
}

// BenchmarkPrimitives times the primitives one 100-byte seal+open performs,
// alone and summed, for the ratio against BenchmarkSealOpen: four HMACs
// under a fresh key (one chain step, two HMACs, on each side), two routing
// tags (sender's, and the receiver's window), one 40-byte header AEAD seal
// and open under a cached key, one 100-byte body AEAD seal and open under
// a fresh key.
func BenchmarkPrimitives(b *testing.B) {
	var ck, mk [keySize]byte
	hk := newHeaderKeys(&ck)
	hdr, body := make([]byte, headerSize), make([]byte, 100)
	ad := make([]byte, 40+1+TagSize+encHeaderSize)
	var nonce [nonceSize]byte
	buf, out := make([]byte, 0, 256), make([]byte, 0, 256)
	chain := func() { stepChain(&ck, &mk) }
	tag := func() { hk.tag(uint32(ck[0])) }
	header := func() {
		c := hk.aead.Seal(buf[:0], nonce[:], hdr, ad[:57])
		hk.aead.Open(out[:0], nonce[:], c, ad[:57])
	}
	sc := &scratch{mac: sha256.New()}
	var sivNonce [nonceSize]byte
	siv := func() { bodyNonce(sc, &mk, body, sivNonce[:]) }
	bodyAE := func() {
		c := bodyAEAD(&mk).Seal(buf[:0], zeroNonce[:], body, ad)
		bodyAEAD(&mk).Open(out[:0], zeroNonce[:], c, ad)
	}
	for _, p := range []struct {
		name string
		f    func()
	}{
		{"chain-step", chain}, {"tag", tag}, {"header-seal-open", header},
		{"body-nonce", siv}, {"body-seal-open", bodyAE},
		{"sum", func() {
			chain()
			chain()
			tag()
			tag()
			header()
			siv()
			bodyAE()
		}},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p.f()
			}
		})
	}
}

// BenchmarkAEAD compares the two candidate message AEADs with a fresh key
// per message (seal+open), as the ratchet uses them.
func BenchmarkAEAD(b *testing.B) {
	var key [32]byte
	var nonce [12]byte
	ad := make([]byte, 113)
	for _, size := range []int{64, 256, 1024, 4096} {
		pt := make([]byte, size)
		buf, out := make([]byte, 0, size+16), make([]byte, 0, size)
		b.Run(fmt.Sprintf("chacha20poly1305/%d", size), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				key[0]++
				a, _ := chacha20poly1305.New(key[:])
				c := a.Seal(buf[:0], nonce[:], pt, ad)
				a2, _ := chacha20poly1305.New(key[:])
				if _, err := a2.Open(out[:0], nonce[:], c, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("aes256gcm/%d", size), func(b *testing.B) {
			gcm := func() cipher.AEAD {
				c, _ := aes.NewCipher(key[:])
				a, _ := cipher.NewGCM(c)
				return a
			}
			b.ReportAllocs()
			for b.Loop() {
				key[0]++
				c := gcm().Seal(buf[:0], nonce[:], pt, ad)
				if _, err := gcm().Open(out[:0], nonce[:], c, ad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHugeN: a header with N = 2^32-1 is refused in constant time.
func BenchmarkHugeN(b *testing.B) {
	alice, bob := pairFrom(b, "huge bench")
	recv(b, bob, send(b, alice, "start"))
	m := craft(b, alice, 0, math.MaxUint32)
	for b.Loop() {
		if _, err := bob.Decrypt(m.tag, m.msg); err == nil {
			b.Fatal("accepted")
		}
	}
}

// lookupFixture is many responder sessions, built cheaply (one shared
// prekey, secrets from a counter), with the Device-style tag table, and
// initiators for a few of them.
type lookupFixture struct {
	bobs    []*Session
	table   map[[TagSize]byte]*Session
	alices  []*Session // alices[i] talks to bobs[targets[i]]
	targets []int
	pending []sealed // sealed, not yet delivered (kept across b.Run rounds)
}

func newLookupFixture(b *testing.B, n int) *lookupFixture {
	prekey, _ := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	f := &lookupFixture{bobs: make([]*Session, n), table: make(map[[TagSize]byte]*Session, n*TagWindow)}
	secret := func(i int) []byte {
		s := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
		return s[:]
	}
	for i := range n {
		s, err := NewResponder(secret(i), testAD, prekey)
		if err != nil {
			b.Fatal(err)
		}
		f.bobs[i] = s
		f.index(s)
	}
	for i := 0; i < n; i += max(1, n/256) {
		a, err := NewInitiator(secret(i), testAD, prekey.PublicKey())
		if err != nil {
			b.Fatal(err)
		}
		f.alices, f.targets = append(f.alices, a), append(f.targets, i)
	}
	return f
}

func (f *lookupFixture) index(s *Session) {
	for t := range s.ExpectedTags() {
		f.table[t] = s
	}
}

// BenchmarkLookup is the receive cost by routing tag against the number of
// sessions a device holds: "tag" looks the tag up in the table and
// decrypts; "unknown" is an envelope whose tag no session expects (a flood,
// or a message far ahead), tried on every session until all fail, per
// envelope.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1, 1000, 100_000} {
		if n > 1000 && testing.Short() {
			continue
		}
		var f *lookupFixture
		fixture := func(b *testing.B) *lookupFixture {
			if f == nil {
				b.StopTimer()
				f = newLookupFixture(b, n)
				b.StartTimer()
			}
			return f
		}
		b.Run(fmt.Sprintf("sessions=%d/tag", n), func(b *testing.B) {
			f := fixture(b)
			pt := make([]byte, 100)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if len(f.pending) == 0 {
					b.StopTimer()
					f.pending = f.batch(pt)
					b.StartTimer()
				}
				m := f.pending[0]
				f.pending = f.pending[1:]
				s, ok := f.table[m.tag]
				if !ok {
					b.Fatal("tag not in the table")
				}
				if _, err := s.Decrypt(m.tag, m.msg); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("sessions=%d/unknown", n), func(b *testing.B) {
			f := fixture(b)
			m := randomMessage(100)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, s := range f.bobs {
					if _, err := s.Decrypt(m.tag, m.msg); err == nil {
						b.Fatal("a random message decrypted")
					}
				}
			}
		})
	}
}

// batch seals up to 32 messages from every initiator (within the tag
// window), interleaved, and indexes the targets' new tags.
func (f *lookupFixture) batch(pt []byte) []sealed {
	var out []sealed
	for range 32 {
		for _, a := range f.alices {
			var m sealed
			m.tag, m.msg, _ = a.Encrypt(pt)
			out = append(out, m)
		}
	}
	for _, i := range f.targets {
		f.index(f.bobs[i])
	}
	return out
}

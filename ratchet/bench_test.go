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

// kemModes are the two settings the benchmarks compare: the KEM ratchet as
// shipped, and the classical hook (filler in every KEM field, so no KEM
// round ever runs; the wire format is the same).
var kemModes = []struct {
	name      string
	classical bool
}{{"kem=on", false}, {"kem=off", true}}

// BenchmarkSealOpen is the steady state of one direction: the symmetric
// step only (no DH step), a 100-byte body. wire-bytes is the message's
// overhead; the 16-byte routing tag travels in the envelope header besides.
// With the KEM on, the sender streams its encapsulation key, past the 37
// data chunks as parity chunks (a reply would acknowledge it), and the
// receiver's decoder completes once and then ignores them.
func BenchmarkSealOpen(b *testing.B) {
	for _, mode := range kemModes {
		b.Run(mode.name, func(b *testing.B) {
			alice, bob := pairWith(b, "bench", mode.classical)
			pt := make([]byte, 100)
			for range 300 { // past the key's data chunks and the encapsulation
				recv(b, bob, send(b, alice, "warm"))
			}
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
		})
	}
}

// BenchmarkPingPong alternates the direction every message, so each
// message is a DH ratchet step (key generation and two X25519 exchanges on
// the receiving side); with the KEM on, it also carries the KEM rounds
// (about one ML-KEM key generation, encapsulation and decapsulation per
// 74 messages).
func BenchmarkPingPong(b *testing.B) {
	for _, mode := range kemModes {
		b.Run(mode.name, func(b *testing.B) {
			alice, bob := pairWith(b, "pingpong", mode.classical)
			alice.hooks = hooks{classical: mode.classical} // real randomness
			bob.hooks = hooks{classical: mode.classical}
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
			b.ReportMetric(float64(alice.own.declared+bob.own.declared)*1000/float64(max(i, 1)), "epochs/1k-msgs")
		})
	}
}

// BenchmarkConversation is the typical conversation of issue 6: alternating
// turns of 1 to 5 messages (uniform, seeded), 100-byte plaintexts, all
// delivered, real randomness. It reports the wire bytes per message beyond
// the plaintext (message overhead plus the 16-byte routing tag), of which
// the KEM field is 42, the KEM secrets mixed per 1,000 messages, and the
// time per message (seal, open and the session's saved state, as the
// Device writes it after every message).
func BenchmarkConversation(b *testing.B) {
	for _, mode := range kemModes {
		b.Run(mode.name, func(b *testing.B) {
			alice, bob := pairWith(b, "conversation", mode.classical)
			alice.hooks, bob.hooks = hooks{classical: mode.classical}, hooks{classical: mode.classical}
			rnd := newShake("conversation bench")
			pt := make([]byte, 100)
			var msgs, wire, stateBytes int
			turn, left := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				if left == 0 {
					turn++
					left = 1 + rnd.intn(5)
				}
				left--
				from, to := alice, bob
				if turn%2 == 0 {
					from, to = bob, alice
				}
				tag, msg, err := from.Encrypt(pt)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := to.Decrypt(tag, msg); err != nil {
					b.Fatal(err)
				}
				st, err := to.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				msgs++
				wire += len(tag) + len(msg) - len(pt)
				stateBytes += len(st)
			}
			b.ReportMetric(float64(wire)/float64(msgs), "wire-B/msg")
			b.ReportMetric(float64(stateBytes)/float64(msgs), "state-B")
			b.ReportMetric(float64(alice.own.declared+bob.own.declared)*1000/float64(msgs), "epochs/1k-msgs")
		})
	}
}

// BenchmarkMarshal is the saved state's size and cost, which the Device
// pays on every message, after the same 200-message ping-pong: with the KEM
// lanes idle (the classical hook: only the 64-byte seed and counters, the
// least KEM state there is) and in the middle of a round (the peer's answer
// held, 1104 bytes, and the own lane's answer decoder half full, the most
// there is but for a few chunks).
func BenchmarkMarshal(b *testing.B) {
	idle, idleBob := pairWith(b, "marshal idle", true)
	converse(b, idle, idleBob, 1, 200)
	alice, bob := pairFrom(b, "marshal")
	for i := 0; i < 200 || !alice.peer.answered() || alice.own.received() < 17; i++ {
		recv(b, bob, send(b, alice, "a"))
		recv(b, alice, send(b, bob, "b"))
	}
	for _, c := range []struct {
		name string
		s    *Session
	}{{"kem-idle", idle}, {"mid-round", alice}} {
		b.Run(c.name, func(b *testing.B) {
			var n int
			b.ReportAllocs()
			for b.Loop() {
				st, err := c.s.MarshalBinary()
				if err != nil {
					b.Fatal(err)
				}
				n = len(st)
			}
			b.ReportMetric(float64(n), "state-B")
		})
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
// a fresh key, and the message nonce's HMAC over the 82-byte header and
// the 100-byte body.
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
	siv := func() { messageNonce(sc, &mk, hdr, body, sivNonce[:]) }
	bodyAE := func() {
		c := bodyAEAD(&mk).Seal(buf[:0], zeroNonce[:], body, ad)
		bodyAEAD(&mk).Open(out[:0], zeroNonce[:], c, ad)
	}
	for _, p := range []struct {
		name string
		f    func()
	}{
		{"chain-step", chain}, {"tag", tag}, {"header-seal-open", header},
		{"message-nonce", siv}, {"body-seal-open", bodyAE},
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

package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"fmt"
	"testing"
)

// The security property of the KEM ratchet (issue 6, item 4): a snapshot of
// all of one party's classical secrets, held by an attacker who can also
// compute every X25519 private key (a quantum computer), stops deriving
// message keys once one KEM secret generated after the snapshot is mixed;
// without a KEM round it derives them forever.

// shadowRun plays a conversation of alternating turns of 1 to 5 messages
// between Alice and Bob, snapshots Alice at message snapAt, and follows
// her with a shadow session built from the snapshot with every KEM secret
// withheld (the ML-KEM seed, the decapsulated and the encapsulated shared
// secret zeroed). The shadow is the attacker: it gets every X25519 key
// Alice generates later (it can compute discrete logs) and every public
// KEM value (keys, ciphertexts, transcripts: it syncs the lanes' public
// parts from Alice after each step), sees every wire message, and skips
// the KEM chunks it cannot use. For each message after the snapshot it
// records whether the shadow derived its key: for Alice's messages, the
// shadow seals the same plaintext to the same bytes; for Bob's, the shadow
// decrypts it.
type shadowResult struct {
	mixEvent  int    // message index at which Alice first mixed a KEM secret after the snapshot (-1: never)
	derived   []bool // per message after the snapshot
	fromBob   []bool
	oldChain  []bool // Bob's message belongs to a chain Alice received before mixEvent
	rootEqual []bool // shadow root key equals Alice's after the message
}

func shadowRun(t *testing.T, label string, classical bool, snapAt, total int) shadowResult {
	alice, bob := pairWith(t, label, classical)
	var keys []*ecdh.PrivateKey // Alice's X25519 keys after the snapshot, for the attacker
	gen := alice.keygen
	alice.keygen = func() (*ecdh.PrivateKey, error) {
		k, err := gen()
		keys = append(keys, k)
		return k, err
	}
	rnd := newShake(label)
	var shadow *Session
	res := shadowResult{mixEvent: -1}
	var declOwn, declPeer uint32
	chains := map[*window]bool{} // Bob's chains Alice received before the mix event
	sent, turn := 0, 0
	for sent < total {
		from, to := alice, bob
		if turn%2 == 1 {
			from, to = bob, alice
		}
		turn++
		for range 1 + rnd.intn(5) {
			if sent == snapAt {
				shadow = snapshotClassical(t, alice)
				keys = nil // from now on
				shadow.keygen = func() (*ecdh.PrivateKey, error) {
					if len(keys) == 0 {
						return ecdh.X25519().GenerateKey(bytes.NewReader(make([]byte, 64)))
					}
					k := keys[0]
					keys = keys[1:]
					return k, nil
				}
				declOwn, declPeer = alice.own.declared, alice.peer.declared
			}
			pt := fmt.Sprintf("%s %d", label, sent)
			m := send(t, from, pt)
			if shadow != nil && from == alice {
				tag, msg, err := shadow.Encrypt([]byte(pt))
				res.derived = append(res.derived, err == nil && tag == m.tag && bytes.Equal(msg, m.msg))
				res.fromBob = append(res.fromBob, false)
				res.oldChain = append(res.oldChain, false)
			}
			recv(t, to, m)
			if shadow != nil && to == alice {
				got, err := shadow.Decrypt(m.tag, m.msg)
				res.derived = append(res.derived, err == nil && bytes.Equal(got, m.pt))
				res.fromBob = append(res.fromBob, true)
				if res.mixEvent < 0 {
					chains[alice.recv.win] = true
				}
				res.oldChain = append(res.oldChain, chains[alice.recv.win])
			}
			if shadow != nil {
				if res.mixEvent < 0 && (alice.own.declared > declOwn || alice.peer.declared > declPeer) {
					res.mixEvent = len(res.derived) - 1
					if to == alice && alice.peer.declared > declPeer {
						// Mixed in this message's receiving half: its
						// chain is new.
						res.oldChain[len(res.oldChain)-1] = false
					}
				}
				syncPublicKEM(shadow, alice)
				res.rootEqual = append(res.rootEqual, shadow.rk == alice.rk)
			}
			sent++
		}
	}
	return res
}

// snapshotClassical copies s through its saved state and withholds every
// KEM secret: what an attacker holding all classical secrets has.
func snapshotClassical(t *testing.T, s *Session) *Session {
	var c Session
	if err := c.UnmarshalBinary(state(t, s)); err != nil {
		t.Fatal(err)
	}
	c.blind, c.classical = true, s.classical
	syncPublicKEM(&c, s)
	return &c
}

// syncPublicKEM gives the shadow the public state of s's KEM lanes, with
// the secrets zeroed: the attacker sees every key and ciphertext, and every
// declaration, but learns no shared secret.
func syncPublicKEM(shadow, s *Session) {
	if !s.own.ready {
		s.own.encoder() // the public encapsulation key's chunks
	}
	shadow.own, shadow.peer = s.own, s.peer
	shadow.own.seed, shadow.own.secret, shadow.peer.secret = [kemSeedSize]byte{}, [32]byte{}, [32]byte{}
	shadow.peer.seed = [keySize]byte{} // the encapsulation secret
	shadow.sent = s.sent
}

// TestKEMSnapshotHeals is issue 6's security test: after the first KEM
// secret mixed after the snapshot, the snapshot derives no key of any
// later chain, in either direction, and its root key never again equals
// Alice's; before it, it derives every key (the snapshot is complete, so
// the test is not vacuous).
func TestKEMSnapshotHeals(t *testing.T) {
	for _, snapAt := range []int{40, 170} {
		r := shadowRun(t, fmt.Sprint("heal ", snapAt), false, snapAt, 600)
		if r.mixEvent < 0 {
			t.Fatalf("snapshot at %d: no KEM secret mixed in 600 messages", snapAt)
		}
		for i := range r.derived {
			switch {
			case i < r.mixEvent:
				if !r.derived[i] || !r.rootEqual[i] {
					t.Fatalf("snapshot at %d: message %d before the KEM round not derived", snapAt, i)
				}
			case r.fromBob[i] && r.oldChain[i]:
				// Bob's chain that Alice received before the mix: its
				// keys were derived before, the snapshot may read it.
			default:
				if r.derived[i] {
					t.Fatalf("snapshot at %d: message %d (bob %t) after the KEM round (at %d) derived", snapAt, i, r.fromBob[i], r.mixEvent)
				}
			}
			if i >= r.mixEvent && r.rootEqual[i] {
				t.Fatalf("snapshot at %d: root key equal again at %d", snapAt, i)
			}
		}
		checked := [2]int{}
		for i := r.mixEvent; i < len(r.derived); i++ {
			if !r.fromBob[i] {
				checked[0]++
			} else if !r.oldChain[i] {
				checked[1]++
			}
		}
		if checked[0] < 50 || checked[1] < 50 {
			t.Fatalf("snapshot at %d: only %v messages checked after the KEM round", snapAt, checked)
		}
		t.Logf("snapshot at message %d: healed %d messages later", snapAt, r.mixEvent)
	}
}

// TestKEMSnapshotConverse: with the KEM round prevented (both parties send
// filler only), the same snapshot derives every key to the end.
func TestKEMSnapshotConverse(t *testing.T) {
	r := shadowRun(t, "converse", true, 40, 600)
	if r.mixEvent >= 0 {
		t.Fatal("a KEM secret was mixed with filler only")
	}
	for i, ok := range r.derived {
		if !ok || !r.rootEqual[i] {
			t.Fatalf("classical snapshot lost track at message %d", i)
		}
	}
}

package benchmarks

import (
	"crypto/rand"

	dr "github.com/status-im/doubleratchet"
)

// StatusMsg is a status-im/doubleratchet message as it travels: the
// header in the library's own 40-byte binary encoding and the ciphertext
// (16-byte IV, body, 32-byte HMAC-SHA-256).
type StatusMsg struct {
	Header []byte
	Body   []byte
}

// StatusPair is a status-im/doubleratchet conversation in the leanest
// configuration that is safe: no SessionStorage (nothing is saved), the
// default in-memory key storage, and each message key deleted with DeleteMk
// as soon as its message decrypted.
//
// The library's defaults are not safe: RatchetDecrypt keeps the key of
// every message it decrypted "waiting for confirmation", so a replayed
// message decrypts again until the app calls DeleteMk, and the in-memory
// key storage keeps one (eventually empty) table per peer ratchet key, so
// it grows without bound over a long ping-pong conversation
// (TestStatusDRDefaults shows both). With DeleteMk after each message the
// replay is refused and the tables of consumed chains are removed.
type StatusPair struct {
	s    [2]dr.Session
	ad   []byte
	safe bool
}

// statusAD is the associated data given to status-im on both sides: the
// same size as a sealpost session's (both identities and addresses), so
// the MACs cover as much.
func statusAD() ([]byte, error) {
	a, _, err := sessionKeys()
	if err != nil {
		return nil, err
	}
	ad := a.AssociatedData()
	return ad[:len(ad):len(ad)], nil // the library appends to it
}

// NewStatusPair starts a status-im conversation from a random shared key
// and Bob's published key pair, as its README does. With safe false it
// keeps the library's defaults and never calls DeleteMk (the tests use it
// to show why that is unsafe).
func NewStatusPair(safe bool) (*StatusPair, error) {
	ad, err := statusAD()
	if err != nil {
		return nil, err
	}
	sk := make(dr.Key, 32)
	rand.Read(sk)
	bobPair, err := dr.DefaultCrypto{}.GenerateDH()
	if err != nil {
		return nil, err
	}
	id := []byte("alice-bob")
	bob, err := dr.New(id, sk, bobPair, nil)
	if err != nil {
		return nil, err
	}
	alice, err := dr.NewWithRemoteKey(id, sk, bobPair.PublicKey(), nil)
	if err != nil {
		return nil, err
	}
	return &StatusPair{s: [2]dr.Session{alice, bob}, ad: ad, safe: safe}, nil
}

func (p *StatusPair) Seal(from int, pt []byte) (StatusMsg, error) {
	m, err := p.s[from].RatchetEncrypt(pt, p.ad)
	if err != nil {
		return StatusMsg{}, err
	}
	return StatusMsg{m.Header.Encode(), m.Ciphertext}, nil
}

func (p *StatusPair) Open(to int, m StatusMsg) ([]byte, error) {
	return statusOpen(p.s[to], p.ad, m, p.safe)
}

// statusOpen decodes the header, decrypts and, when deleteKey is set,
// deletes the message key so that a replay is refused.
func statusOpen(s dr.Session, ad []byte, m StatusMsg, deleteKey bool) ([]byte, error) {
	h, err := dr.MessageEncHeader(m.Header).Decode()
	if err != nil {
		return nil, err
	}
	pt, err := s.RatchetDecrypt(dr.Message{Header: h, Ciphertext: m.Body}, ad)
	if err != nil {
		return nil, err
	}
	if deleteKey {
		if err := s.DeleteMk(h.DH, h.N); err != nil {
			return nil, err
		}
	}
	return pt, nil
}

func (p *StatusPair) Wire(m StatusMsg) int { return len(m.Header) + len(m.Body) }

// statusEstablish is status-im's session creation. The library has no key
// agreement (no X3DH, no signatures, no identities): it starts from a
// shared key the app agreed on somehow and the responder's key pair. This
// measures both sessions' creation (one key generation and one X25519 for
// Alice), the first message, and Bob's decrypt (a DH ratchet step: two
// X25519 and a key generation).
type statusEstablish struct {
	ad      []byte
	sk      dr.Key
	bobPair dr.DHPair
	bobPub  []byte // what Bob published
}

// NewStatusEstablish returns the status-im session-start workload.
func NewStatusEstablish() (Establisher, error) {
	ad, err := statusAD()
	if err != nil {
		return nil, err
	}
	sk := make(dr.Key, 32)
	rand.Read(sk)
	bobPair, err := dr.DefaultCrypto{}.GenerateDH()
	if err != nil {
		return nil, err
	}
	return &statusEstablish{ad: ad, sk: sk, bobPair: bobPair, bobPub: bobPair.PublicKey()}, nil
}

func (e *statusEstablish) Reset() error { return nil }

func (e *statusEstablish) Establish(pt []byte) ([]byte, int, error) {
	id := []byte("alice-bob")
	alice, err := dr.NewWithRemoteKey(id, e.sk, append(dr.Key(nil), e.bobPub...), nil)
	if err != nil {
		return nil, 0, err
	}
	m, err := alice.RatchetEncrypt(pt, e.ad)
	if err != nil {
		return nil, 0, err
	}
	msg := StatusMsg{m.Header.Encode(), m.Ciphertext}
	bob, err := dr.New(id, e.sk, e.bobPair, nil)
	if err != nil {
		return nil, 0, err
	}
	got, err := statusOpen(bob, e.ad, msg, true)
	return got, len(msg.Header) + len(msg.Body), err
}

package benchmarks

import (
	"context"
	"errors"
	"fmt"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/logger"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/keyhelper"
	"go.mau.fi/libsignal/util/optional"
)

// quietLogger drops libsignal's log lines. Its default logger prints every
// debug line to standard output; it cannot be switched off, only replaced,
// and the library still formats each line (fmt.Sprint of sessions and
// keys, runtime.Caller) before calling the logger. This is the cheapest
// configuration the library allows.
type quietLogger struct{}

func (quietLogger) Debug(string, string)   {}
func (quietLogger) Info(string, string)    {}
func (quietLogger) Warning(string, string) {}
func (quietLogger) Error(string, string)   {}
func (quietLogger) Configure(string)       {}

func init() {
	var l logger.Loggable = quietLogger{}
	logger.Setup(&l)
}

// lsSerializer is libsignal's standard serializer: protobuf for messages,
// JSON for session records (what whatsmeow stores).
var lsSerializer = serialize.NewProtoBufSerializer()

// SignalMsg is a libsignal message as it travels: its type (prekey or
// whisper, which Signal's envelope carries) and its serialised bytes.
type SignalMsg struct {
	Type uint32
	Raw  []byte
}

// lsUser is one libsignal device: identity, prekeys and stores.
type lsUser struct {
	addr     *protocol.SignalAddress
	id       *identity.KeyPair
	regID    uint32
	otp      *record.PreKey
	spk      *record.SignedPreKey
	sessions *lsSessionStore
	prekeys  *lsPreKeyStore
	signed   *lsSignedPreKeyStore
	idStore  *lsIdentityStore
}

func newLSUser(name string, saved bool) (*lsUser, error) {
	id, err := keyhelper.GenerateIdentityKeyPair()
	if err != nil {
		return nil, err
	}
	otps, err := keyhelper.GeneratePreKeys(1, 1, lsSerializer.PreKeyRecord)
	if err != nil {
		return nil, err
	}
	spk, err := keyhelper.GenerateSignedPreKey(id, 1, lsSerializer.SignedPreKeyRecord)
	if err != nil {
		return nil, err
	}
	u := &lsUser{addr: protocol.NewSignalAddress(name, 1), id: id, regID: keyhelper.GenerateRegistrationID(), otp: otps[0], spk: spk}
	u.reset(saved)
	return u, nil
}

// reset gives the user empty session and identity stores and puts its
// one-time prekey back (a session start consumes it).
func (u *lsUser) reset(saved bool) {
	u.sessions = newLSSessionStore(saved)
	u.prekeys = &lsPreKeyStore{m: map[uint32]*record.PreKey{u.otp.ID().Value: u.otp}}
	u.signed = &lsSignedPreKeyStore{m: map[uint32]*record.SignedPreKey{u.spk.ID(): u.spk}}
	u.idStore = &lsIdentityStore{id: u.id, regID: u.regID, trusted: map[string]string{}}
}

func (u *lsUser) builder(peer *protocol.SignalAddress) *session.Builder {
	return session.NewBuilder(u.sessions, u.prekeys, u.signed, u.idStore, peer, lsSerializer)
}

// lsBundle is the published prekey bundle as bytes (libsignal has no
// bundle encoding of its own; the server hands these fields out).
type lsBundle struct {
	regID, deviceID, otpID, spkID uint32
	otp, spk, identity            []byte // serialised public keys (type byte, 32 bytes)
	sig                           [64]byte
}

func (u *lsUser) publish() *lsBundle {
	return &lsBundle{
		regID: u.regID, deviceID: u.addr.DeviceID(), otpID: u.otp.ID().Value, spkID: u.spk.ID(),
		otp: u.otp.KeyPair().PublicKey().Serialize(), spk: u.spk.KeyPair().PublicKey().Serialize(),
		identity: u.id.PublicKey().Serialize(), sig: u.spk.Signature(),
	}
}

// parse decodes the published keys into libsignal's bundle.
func (b *lsBundle) parse() (*prekey.Bundle, error) {
	otp, err := ecc.DecodePoint(b.otp, 0)
	if err != nil {
		return nil, err
	}
	spk, err := ecc.DecodePoint(b.spk, 0)
	if err != nil {
		return nil, err
	}
	id, err := ecc.DecodePoint(b.identity, 0)
	if err != nil {
		return nil, err
	}
	return prekey.NewBundle(b.regID, b.deviceID, optional.NewOptionalUint32(b.otpID), b.spkID,
		otp, spk, b.sig, identity.NewKey(id)), nil
}

// LibsignalPair is a libsignal conversation: Alice processed Bob's bundle.
type LibsignalPair struct {
	u [2]*lsUser
	c [2]*session.Cipher
}

// NewLibsignalPair builds the two users and Alice's session from Bob's
// bundle. With saved, the session stores keep serialised records.
func NewLibsignalPair(saved bool) (*LibsignalPair, error) {
	alice, err := newLSUser("alice", saved)
	if err != nil {
		return nil, err
	}
	bob, err := newLSUser("bob", saved)
	if err != nil {
		return nil, err
	}
	b, err := bob.publish().parse()
	if err != nil {
		return nil, err
	}
	ab := alice.builder(bob.addr)
	if err := ab.ProcessBundle(ctx, b); err != nil {
		return nil, err
	}
	return &LibsignalPair{
		u: [2]*lsUser{alice, bob},
		c: [2]*session.Cipher{session.NewCipher(ab, bob.addr), session.NewCipher(bob.builder(alice.addr), alice.addr)},
	}, nil
}

func (p *LibsignalPair) Seal(from int, pt []byte) (SignalMsg, error) {
	m, err := p.c[from].Encrypt(ctx, pt)
	if err != nil {
		return SignalMsg{}, err
	}
	return SignalMsg{m.Type(), m.Serialize()}, nil
}

func (p *LibsignalPair) Open(to int, m SignalMsg) ([]byte, error) {
	return lsOpen(p.c[to], m)
}

// lsOpen parses and decrypts a message of either type.
func lsOpen(c *session.Cipher, m SignalMsg) ([]byte, error) {
	switch m.Type {
	case protocol.PREKEY_TYPE:
		pm, err := protocol.NewPreKeySignalMessageFromBytes(m.Raw, lsSerializer.PreKeySignalMessage, lsSerializer.SignalMessage)
		if err != nil {
			return nil, err
		}
		return c.DecryptMessage(ctx, pm)
	case protocol.WHISPER_TYPE:
		sm, err := protocol.NewSignalMessageFromBytes(m.Raw, lsSerializer.SignalMessage)
		if err != nil {
			return nil, err
		}
		return c.Decrypt(ctx, sm)
	}
	return nil, fmt.Errorf("libsignal message type %d", m.Type)
}

// Wire counts the serialised message; the one-byte type travels in
// Signal's envelope and is not counted.
func (p *LibsignalPair) Wire(m SignalMsg) int { return len(m.Raw) }

// lsEstablish is libsignal's session start: decode the published keys,
// ProcessBundle (XEdDSA signature check, X3DH with a one-time prekey: two
// key generations, four X25519), Encrypt and serialise the prekey
// message; then parse it, DecryptMessage (X3DH on Bob's side, the first
// ratchet step) and remove the one-time prekey.
type lsEstablish struct {
	saved      bool
	alice, bob *lsUser
	bundle     *lsBundle
	ac, bc     *session.Cipher
}

// NewLibsignalEstablish returns the libsignal session-start workload.
func NewLibsignalEstablish(saved bool) (Establisher, error) {
	alice, err := newLSUser("alice", saved)
	if err != nil {
		return nil, err
	}
	bob, err := newLSUser("bob", saved)
	if err != nil {
		return nil, err
	}
	return &lsEstablish{saved: saved, alice: alice, bob: bob, bundle: bob.publish()}, nil
}

// Reset empties both users' session and identity stores and gives Bob his
// one-time prekey back.
func (e *lsEstablish) Reset() error {
	e.alice.reset(e.saved)
	e.bob.reset(e.saved)
	e.bc = session.NewCipher(e.bob.builder(e.alice.addr), e.alice.addr)
	return nil
}

func (e *lsEstablish) Establish(pt []byte) ([]byte, int, error) {
	b, err := e.bundle.parse()
	if err != nil {
		return nil, 0, err
	}
	ab := e.alice.builder(e.bob.addr)
	if err := ab.ProcessBundle(ctx, b); err != nil {
		return nil, 0, err
	}
	m, err := session.NewCipher(ab, e.bob.addr).Encrypt(ctx, pt)
	if err != nil {
		return nil, 0, err
	}
	if m.Type() != protocol.PREKEY_TYPE {
		return nil, 0, errors.New("first libsignal message is not a prekey message")
	}
	raw := m.Serialize()
	got, err := lsOpen(e.bc, SignalMsg{m.Type(), raw})
	return got, len(raw), err
}

// lsSessionStore is an in-memory session store. Unsaved, it keeps the
// record objects (the library's own test store does the same); saved, it
// keeps each record serialised (JSON, libsignal's record encoding) and
// parses it on every load, which is what a persistent store does.
type lsSessionStore struct {
	saved bool
	obj   map[string]*record.Session
	raw   map[string][]byte
}

func newLSSessionStore(saved bool) *lsSessionStore {
	return &lsSessionStore{saved: saved, obj: map[string]*record.Session{}, raw: map[string][]byte{}}
}

func (s *lsSessionStore) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	k := a.String()
	if !s.saved {
		if r, ok := s.obj[k]; ok {
			return r, nil
		}
		return record.NewSession(lsSerializer.Session, lsSerializer.State), nil
	}
	raw, ok := s.raw[k]
	if !ok {
		return record.NewSession(lsSerializer.Session, lsSerializer.State), nil
	}
	return record.NewSessionFromBytes(raw, lsSerializer.Session, lsSerializer.State)
}

func (s *lsSessionStore) GetSubDeviceSessions(context.Context, string) ([]uint32, error) {
	return nil, nil
}

func (s *lsSessionStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	if s.saved {
		s.raw[a.String()] = r.Serialize()
	} else {
		s.obj[a.String()] = r
	}
	return nil
}

func (s *lsSessionStore) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok1 := s.obj[a.String()]
	_, ok2 := s.raw[a.String()]
	return ok1 || ok2, nil
}

func (s *lsSessionStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	delete(s.obj, a.String())
	delete(s.raw, a.String())
	return nil
}

func (s *lsSessionStore) DeleteAllSessions(context.Context) error {
	clear(s.obj)
	clear(s.raw)
	return nil
}

type lsPreKeyStore struct{ m map[uint32]*record.PreKey }

func (s *lsPreKeyStore) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	return s.m[id], nil
}

func (s *lsPreKeyStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	s.m[id] = r
	return nil
}

func (s *lsPreKeyStore) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.m[id]
	return ok, nil
}

func (s *lsPreKeyStore) RemovePreKey(_ context.Context, id uint32) error {
	delete(s.m, id)
	return nil
}

type lsSignedPreKeyStore struct {
	m map[uint32]*record.SignedPreKey
}

func (s *lsSignedPreKeyStore) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	return s.m[id], nil
}

func (s *lsSignedPreKeyStore) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	var out []*record.SignedPreKey
	for _, r := range s.m {
		out = append(out, r)
	}
	return out, nil
}

func (s *lsSignedPreKeyStore) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	s.m[id] = r
	return nil
}

func (s *lsSignedPreKeyStore) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := s.m[id]
	return ok, nil
}

func (s *lsSignedPreKeyStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	delete(s.m, id)
	return nil
}

// lsIdentityStore trusts on first use and pins the identity by its
// fingerprint, as the library's own test store does.
type lsIdentityStore struct {
	id      *identity.KeyPair
	regID   uint32
	trusted map[string]string
}

func (s *lsIdentityStore) GetIdentityKeyPair() *identity.KeyPair { return s.id }
func (s *lsIdentityStore) GetLocalRegistrationID() uint32        { return s.regID }

func (s *lsIdentityStore) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	s.trusted[a.String()] = k.Fingerprint()
	return nil
}

func (s *lsIdentityStore) IsTrustedIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	fp, ok := s.trusted[a.String()]
	return !ok || fp == k.Fingerprint(), nil
}

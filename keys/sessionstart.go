package keys

import (
	"crypto/ecdh"
	"fmt"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

// SessionStartVersion is the session-start format this build writes and
// reads; any other version is ErrUnsupportedVersion. Version 1 always
// carries an ML-KEM-1024 ciphertext: there is no classical-only variant to
// downgrade to.
const SessionStartVersion = 1

// MaxSessionStartSize bounds an encoded session start, payload included.
const MaxSessionStartSize = 128 << 10

// confirmationSize is the size of the key-confirmation MAC.
const confirmationSize = 32

// SessionStart is the initiator's first message (docs/SPEC.md section 7.6):
// who it is, which of the responder's prekeys it used, its ephemeral base
// key, the ML-KEM ciphertext, a key-confirmation MAC and the first ratchet
// message. It travels sealed to the responder's mailbox key; nothing in it is
// secret once sealed, but all of it is authenticated by the key agreement.
type SessionStart struct {
	Initiator        Address
	Identity         PublicIdentity
	SignedPrekeyID   uint32
	PQPrekeyID       uint32
	PQOneTime        bool // PQPrekeyID names a one-time PQ prekey, not the last resort
	HasOneTimePrekey bool
	OneTimePrekeyID  uint32
	// Payload is the first ratchet message; the key agreement does not
	// read it.
	Payload []byte

	baseKey       *ecdh.PublicKey
	kemCiphertext []byte
	confirmation  [confirmationSize]byte
}

// BaseKey returns the initiator's typed ephemeral X25519 key. A responder
// remembers it to refuse a replayed start that used only last-resort keys.
func (m *SessionStart) BaseKey() []byte { return typed(typeX25519, m.baseKey.Bytes()) }

// MarshalBinary encodes the session start (version SessionStartVersion).
func (m *SessionStart) MarshalBinary() ([]byte, error) {
	if m.baseKey == nil || m.Identity.IsZero() {
		return nil, fmt.Errorf("%w: session start is incomplete", ErrMalformed)
	}
	pb := &sealedpb.SessionStart{
		Version:           SessionStartVersion,
		InitiatorUser:     m.Initiator.User,
		InitiatorDevice:   m.Initiator.Device,
		InitiatorIdentity: m.Identity.Bytes(),
		BaseKey:           m.BaseKey(),
		SignedPrekeyId:    m.SignedPrekeyID,
		PqPrekeyId:        m.PQPrekeyID,
		PqOneTime:         m.PQOneTime,
		KemCiphertext:     m.kemCiphertext,
		Confirmation:      m.confirmation[:],
		Payload:           m.Payload,
	}
	if m.HasOneTimePrekey {
		id := m.OneTimePrekeyID
		pb.OneTimePrekeyId = &id
	}
	return pbstrict.Marshal(pb)
}

// ParseSessionStart decodes a session start. It verifies the initiator's
// identity self-signature but nothing else: [Respond] authenticates the
// rest. It returns ErrUnsupportedVersion for another version, ErrBadSignature
// for a bad identity and ErrMalformed for anything else that does not decode.
func ParseSessionStart(data []byte) (*SessionStart, error) {
	if len(data) > MaxSessionStartSize {
		return nil, fmt.Errorf("%w: session start larger than %d bytes", ErrMalformed, MaxSessionStartSize)
	}
	var pb sealedpb.SessionStart
	if err := pbstrict.Unmarshal(data, &pb); err != nil {
		return nil, fmt.Errorf("%w: session start encoding", ErrMalformed)
	}
	if pb.Version != SessionStartVersion {
		return nil, fmt.Errorf("%w: session start version %d", ErrUnsupportedVersion, pb.Version)
	}
	m := &SessionStart{
		Initiator:      Address{User: pb.InitiatorUser, Device: pb.InitiatorDevice},
		SignedPrekeyID: pb.SignedPrekeyId,
		PQPrekeyID:     pb.PqPrekeyId,
		PQOneTime:      pb.PqOneTime,
		Payload:        pb.Payload,
	}
	if err := m.Initiator.validate(); err != nil {
		return nil, err
	}
	if pb.OneTimePrekeyId != nil {
		m.HasOneTimePrekey, m.OneTimePrekeyID = true, *pb.OneTimePrekeyId
	}
	if len(pb.KemCiphertext) != PQCiphertextSize {
		return nil, fmt.Errorf("%w: kem ciphertext must be %d bytes", ErrMalformed, PQCiphertextSize)
	}
	if len(pb.Confirmation) != confirmationSize {
		return nil, fmt.Errorf("%w: confirmation must be %d bytes", ErrMalformed, confirmationSize)
	}
	m.kemCiphertext = pb.KemCiphertext
	copy(m.confirmation[:], pb.Confirmation)
	var err error
	if m.baseKey, err = parseX25519(pb.BaseKey, "base key"); err != nil {
		return nil, err
	}
	if m.Identity, err = ParsePublicIdentity(pb.InitiatorIdentity); err != nil {
		return nil, err
	}
	return m, nil
}

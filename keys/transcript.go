package keys

import (
	"github.com/sealpost/sealpost/internal/kdf"
)

// transcript is everything public that a session start binds into its
// secret: both identities and addresses, every prekey with its id and kind,
// the base key and the KEM ciphertext. Binding the PQ prekey and ciphertext
// closes the re-encapsulation gap found in the formal analysis of PQXDH;
// binding typed keys closes the key-confusion gap.
type transcript struct {
	initiator, responder         PublicIdentity
	initiatorAddr, responderAddr Address
	spk                          []byte
	spkID                        uint32
	pq                           []byte
	pqID                         uint32
	pqOneTime                    bool
	opk                          []byte // nil when no one-time prekey was used
	opkID                        uint32
	base                         []byte
	ct                           []byte
}

// hash returns SHA-256 over the label and every field, each with a 2-byte
// length prefix so the encoding is unambiguous.
func (t *transcript) hash() [32]byte {
	var flags byte
	if t.pqOneTime {
		flags |= 1
	}
	if t.opk != nil {
		flags |= 2
	}
	b := make([]byte, 0, 4096)
	for _, p := range [][]byte{
		t.initiator.keyBytes(), t.responder.keyBytes(),
		appendAddress(nil, t.initiatorAddr), appendAddress(nil, t.responderAddr),
		{flags}, t.spk, u32(t.spkID), t.pq, u32(t.pqID), t.opk, u32(t.opkID),
		t.base, t.ct,
	} {
		b = appendBytes16(b, p)
	}
	return kdf.Hash(kdf.LabelSessionTranscript, b)
}

// associatedData returns the session's associated data (docs/SPEC.md section
// 7.5): a label, the initiator's then the responder's identity keys, then the
// initiator's then the responder's address.
func (t *transcript) associatedData() []byte {
	b := appendBytes16(nil, []byte(kdf.LabelAssociatedData))
	b = appendBytes16(b, t.initiator.keyBytes())
	b = appendBytes16(b, t.responder.keyBytes())
	b = appendAddress(b, t.initiatorAddr)
	return appendAddress(b, t.responderAddr)
}

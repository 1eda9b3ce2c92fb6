package kdf

// Every KDF label and domain-separation string of protocol version 1. Each is
// distinct (a test checks) and starts with "sealpost v1 ", so that a value
// derived for one purpose can never be mistaken for one derived for another,
// and a later protocol version can never collide with this one.
const (
	// envelope/seal: first contact and the sealed body.

	// LabelFirstContact is the HPKE info prefix of a first-contact envelope;
	// the recipient's mailbox id follows it.
	LabelFirstContact = "sealpost v1 first contact"

	// keys: identity and signatures.

	// LabelIdentityAgreement derives the X25519 identity key from the 32-byte
	// identity seed (the same seed that is the Ed25519 key).
	LabelIdentityAgreement = "sealpost v1 identity agreement key"
	// LabelSigIdentity prefixes the Ed25519 signature over the X25519
	// identity key.
	LabelSigIdentity = "sealpost v1 sig identity agreement key"
	// LabelSigSignedPrekey prefixes the signature over a signed X25519 prekey.
	LabelSigSignedPrekey = "sealpost v1 sig signed prekey"
	// LabelSigPQLastResort prefixes the signature over the last-resort
	// ML-KEM-1024 prekey.
	LabelSigPQLastResort = "sealpost v1 sig pq prekey last resort"
	// LabelSigPQOneTime prefixes the signature over a one-time ML-KEM-1024
	// prekey.
	LabelSigPQOneTime = "sealpost v1 sig pq prekey one-time"
	// LabelSigMailboxKey prefixes the signature over the X-Wing mailbox key,
	// which also covers the owner's address and mailbox id.
	LabelSigMailboxKey = "sealpost v1 sig mailbox key"
	// LabelSigDeviceList prefixes the account key's signature over a device
	// list's encoding.
	LabelSigDeviceList = "sealpost v1 sig device list"
	// LabelDeviceListHash hashes a device list's whole encoding into the
	// hash its successor names.
	LabelDeviceListHash = "sealpost v1 device list hash"
	// LabelAccountFingerprint hashes an account public key into its
	// fingerprint.
	LabelAccountFingerprint = "sealpost v1 account fingerprint"
	// LabelLinkCodeShort hashes a link code into the digits people compare
	// on both screens.
	LabelLinkCodeShort = "sealpost v1 link code short form"
	// LabelLinkProvision is the MAC label of a provisioning content, keyed
	// with the link code's one-time secret.
	LabelLinkProvision = "sealpost v1 link provisioning mac"

	// keys: fingerprints and safety numbers.

	// LabelFingerprint hashes a public identity into its 32-byte fingerprint.
	LabelFingerprint = "sealpost v1 fingerprint"
	// LabelSafetyNumber is the iterated-hash prefix of one party's half of a
	// safety number.
	LabelSafetyNumber = "sealpost v1 safety number"
	// LabelAccountSafetyNumber is the same for a half computed over an
	// account key.
	LabelAccountSafetyNumber = "sealpost v1 account safety number"

	// keys: hybrid session start.

	// LabelSessionTranscript prefixes the hash of everything a session start
	// binds: both identities and addresses, every prekey, the base key and
	// the KEM ciphertext.
	LabelSessionTranscript = "sealpost v1 session start transcript"
	// LabelSessionSecret is the HKDF info prefix of the session secret.
	LabelSessionSecret = "sealpost v1 session secret"
	// LabelSessionConfirm derives the key of the initiator's key-confirmation
	// MAC, which lets the responder reject a bad start before any state.
	LabelSessionConfirm = "sealpost v1 session confirm"
	// LabelAssociatedData prefixes the associated data of a session.
	LabelAssociatedData = "sealpost v1 associated data"

	// ratchet: the Double Ratchet with header encryption (ratchet package).

	// LabelRatchetInit is the HKDF info that turns the session secret into
	// the first root key, the shared header key HKa and the next header
	// key NHKb (Signal's RatchetInitAliceHE / RatchetInitBobHE).
	LabelRatchetInit = "sealpost v1 ratchet init"
	// LabelRatchetRoot is the HKDF info of the root KDF (KDF_RK_HE): salt
	// the root key, input the DH output, output root, chain and next
	// header keys.
	LabelRatchetRoot = "sealpost v1 ratchet root"
	// LabelRatchetMessageKey is the HMAC input under a chain key that
	// gives the message key (KDF_CK).
	LabelRatchetMessageKey = "sealpost v1 ratchet message key"
	// LabelRatchetChainKey is the HMAC input under a chain key that gives
	// the next chain key (KDF_CK).
	LabelRatchetChainKey = "sealpost v1 ratchet chain key"
	// LabelRatchetHeaderAEAD is the HMAC input under a header key that
	// gives the ChaCha20-Poly1305 key sealing that chain's headers.
	LabelRatchetHeaderAEAD = "sealpost v1 ratchet header aead key"
	// LabelRatchetTagKey is the HMAC input under a header key that gives
	// the key of that chain's routing tags.
	LabelRatchetTagKey = "sealpost v1 ratchet tag key"

	// ratchet, format version 2: the post-quantum KEM ratchet
	// (ratchet/doc.go, "The KEM ratchet").

	// LabelRatchetDHRoot is the HKDF info prefix of the version-2 root KDF
	// for a DH step that mixes no KEM secret; the sending lane and its
	// declared epoch follow.
	LabelRatchetDHRoot = "sealpost v1 ratchet v2 dh root"
	// LabelRatchetKEMRoot is the HKDF info prefix of the version-2 root KDF
	// for a DH step that mixes an ML-KEM-768 shared secret; the lane, the
	// epoch and the epoch's KEM transcript hash follow.
	LabelRatchetKEMRoot = "sealpost v1 ratchet v2 kem root"
	// LabelRatchetKEMTranscript prefixes the hash of one KEM epoch: its
	// lane, number, the hash of the encapsulation key and the ciphertext.
	LabelRatchetKEMTranscript = "sealpost v1 ratchet v2 kem transcript"
	// LabelRatchetKEMConfirm is the HMAC input, under the epoch's shared
	// secret, of the key confirmation sent with the ciphertext.
	LabelRatchetKEMConfirm = "sealpost v1 ratchet v2 kem confirm"

	// ratchet, format version 3: one synthetic nonce per message, and
	// derived encapsulation randomness (ratchet/doc.go, decisions 4, 6
	// and 16).

	// LabelRatchetMessageNonce prefixes the plaintext header and body when
	// a message's nonce is derived from its message key (SIV style): the
	// nonce of both the header and the body, so that a session restored
	// from an old backup never seals two plaintexts under one (key, nonce)
	// pair. It replaces version 2's "sealpost v1 ratchet body nonce",
	// which covered the body only.
	LabelRatchetMessageNonce = "sealpost v1 ratchet v3 message nonce"
	// LabelRatchetKEMEncapsSeed is the HKDF info prefix that turns the
	// encapsulation secret of an epoch of the peer's KEM lane into the
	// 32-byte randomness of the encapsulation to the peer's key; the
	// peer's lane, the epoch and SHA-256 of the encapsulation key follow.
	LabelRatchetKEMEncapsSeed = "sealpost v1 ratchet v3 kem encapsulation seed"
)

// root package: the optional encrypted store (store_encrypted.go).
const (
	// LabelStoreNames is the HKDF info that derives, from the app's store
	// key, the HMAC key hashing store key names.
	LabelStoreNames = "sealpost v1 store names"
	// LabelStoreValues is the HKDF info that derives, from the app's store
	// key, the XChaCha20-Poly1305 key sealing store values.
	LabelStoreValues = "sealpost v1 store values"
)

// transcript labels.
const (
	// LabelTranscriptContent prefixes the exact bytes of a content when the
	// transcript hashes it into its direction's chain.
	LabelTranscriptContent = "sealpost v1 transcript content"
	// LabelTranscriptReceipt prefixes the hash a receipt carries over the
	// ids, sequence numbers and content hashes of the contents it names.
	LabelTranscriptReceipt = "sealpost v1 transcript receipt"
)

// envelope/attach labels: the streaming encryption of files.
const (
	// LabelAttachPayload is the HKDF info that turns a file key (with the
	// blob header's version and nonce as salt) into the ChaCha20-Poly1305
	// key of the blob's chunks.
	LabelAttachPayload = "sealpost v1 attach payload key"
	// LabelAttachCommitment is the HKDF info of the key commitment in the
	// blob header, so that one blob opens under one file key only.
	LabelAttachCommitment = "sealpost v1 attach key commitment"
)

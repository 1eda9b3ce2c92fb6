// Package benchmarks runs identical messaging workloads on sealpost and on
// the two Double Ratchet libraries Go already has, so that a team choosing
// a library can compare them in one run on one machine:
//
//   - impl=sealpost: the bare ratchet (package ratchet) and, for session
//     starts, package keys (hybrid X25519 + ML-KEM-1024 agreement);
//   - impl=sealpost-device: the whole Device API (content encoding,
//     transcript, padding, ratchet, sealed envelope, one store Apply per
//     side) on memory stores;
//   - impl=libsignal: go.mau.fi/libsignal v0.2.1 (the Go port used by
//     whatsmeow) with in-memory stores that keep session objects, and
//     impl=libsignal-saved, whose session store serialises the session on
//     every store and parses it on every load, as a real store must;
//   - impl=statusdr: github.com/status-im/doubleratchet v3.0.0+incompatible
//     in its leanest safe configuration (no session storage, each message
//     key deleted after use so that a replay is refused).
//
// The benchmarks live in bench_test.go; README.md has the latest results
// and what each implementation does that the others do not. This module
// is separate from the library's so that the library never depends on its
// peers.
package benchmarks

// Body is the size of the plaintext every workload sends.
const Body = 100

// Alice and Bob are the two sides of every conversation: Alice starts it.
const (
	Alice = 0
	Bob   = 1
)

// Pair is one conversation between Alice and Bob in one implementation. M
// is what travels from the sender to the recipient.
type Pair[M any] interface {
	// Seal encrypts pt as the next message from side from.
	Seal(from int, pt []byte) (M, error)
	// Open decrypts m at side to and returns the plaintext.
	Open(to int, m M) ([]byte, error)
	// Wire returns how many bytes m takes on the wire.
	Wire(m M) int
}

// Establisher measures one session start: from the responder's published
// bundle to the responder accepting the initiator's first message.
type Establisher interface {
	// Reset prepares a fresh start (new initiator state, a fresh one-time
	// prekey where the implementation consumes it). It is not timed.
	Reset() error
	// Establish runs the start with pt as the first message and returns
	// what the responder decrypted and the first message's wire size.
	Establish(pt []byte) (got []byte, wire int, err error)
}

// Warm exchanges one message each way, so that both sides have a sending
// and a receiving chain and the start is acknowledged (libsignal stops
// sending prekey messages, sealpost's Device stops sending the session
// start).
func Warm[M any](p Pair[M]) error {
	for _, from := range []int{Alice, Bob} {
		m, err := p.Seal(from, []byte("warm"))
		if err != nil {
			return err
		}
		if _, err := p.Open(1-from, m); err != nil {
			return err
		}
	}
	return nil
}

package transcript

import "fmt"

// Kind is what a [Finding] reports. The values are stored in saved state
// and never renumbered.
type Kind uint8

// The kinds of finding.
const (
	// Gap: peer seqs Seq..ToSeq are missing below one that arrived. It is
	// open until they arrive (Findings stops reporting it) or are given up
	// (it becomes Lost). IDs are unknown.
	Gap Kind = iota + 1
	// Drop: our contents Seq..ToSeq had not reached the peer, by its newest
	// report, although a later one had: the relay dropped or is withholding
	// them. IDs are their exact message ids (those still in the sent log).
	// It is open until a newer report no longer names them.
	Drop
	// Fork: the two sides' views of the conversation disagree: a sign of a
	// relay serving two histories, of contents injected with stolen
	// session keys, or of restored (rolled back) state. Sticky. The shapes
	// are listed on [Finding].
	Fork
	// Lost: peer seqs Seq..ToSeq were given up after MaxMissing later seqs
	// went missing too; the ratchet can no longer read them either. Sticky.
	Lost
	// ReceiptMismatch: a receipt names contents we never sent (or older than
	// the sent log), or carries a hash other than ours for the contents it
	// names. Nothing it names may be marked delivered or read. Returned by
	// CheckReceipt, not kept.
	ReceiptMismatch
	// IdentityChanged: the peer's identity key changed. The transcript never
	// produces it; the Device reports it alongside transcript findings.
	IdentityChanged
	// PeerRestored: the peer restored its state from a backup, which held
	// our contents only up to Seq-1 (Outgoing set); Seq..ToSeq never
	// reached the restored state. IDs are those still in the sent log
	// (SentAfter). The transcript never produces it; the Device reports it
	// when the peer says so in-band, so that the app sends those messages
	// again under the same ids.
	PeerRestored
	// Unanswered: our contents Seq..ToSeq on the current session have gone
	// unacknowledged for longer than the Device's limits (count and time),
	// with nothing received on the session since: the peer may have lost
	// the session (a restore or a reinstall it did not report). IDs are
	// those still in the sent log. The transcript never produces it; the
	// Device's Findings computes it.
	Unanswered
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Gap:
		return "gap"
	case Drop:
		return "drop"
	case Fork:
		return "fork"
	case Lost:
		return "lost"
	case ReceiptMismatch:
		return "receipt mismatch"
	case IdentityChanged:
		return "identity changed"
	case PeerRestored:
		return "peer restored"
	case Unanswered:
		return "unanswered"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Finding is one thing a transcript noticed. Findings are data, not errors:
// the content that revealed one was accepted.
//
// Seq..ToSeq (inclusive) is a range of seqs of our contents when Outgoing is
// set, of the peer's otherwise. The Fork shapes are:
//   - peer contents Seq and ToSeq=Seq+1 do not chain: the Prev that ToSeq
//     carries is not the hash of Seq as we received it (Seq 0: content 1
//     carried a non-zero Prev); IDs are those of the two contents still in
//     the received log;
//   - Seq=ToSeq, not Outgoing: a peer content arrived with the seq of one
//     received before but other bytes (the peer's state was restored from
//     a backup or cloned); IDs are the first content's and the new one's;
//   - Outgoing, Seq=ToSeq: the peer's hash of our content Seq is not ours;
//     IDs holds our id of Seq;
//   - Outgoing, Seq > the number we sent: the peer acknowledges our
//     contents up to ToSeq, which we never sent;
//   - Outgoing, Seq < ToSeq: the peer acknowledged our contents up to ToSeq
//     and later claims it lacks Seq..ToSeq (its state went back).
type Finding struct {
	Kind     Kind
	Outgoing bool
	Seq      uint64
	ToSeq    uint64
	IDs      [][16]byte
}

// String describes the finding in one line, without ids.
func (f Finding) String() string {
	side := "peer"
	if f.Outgoing {
		side = "our"
	}
	switch {
	case f.Kind == ReceiptMismatch && f.Seq == 0:
		return fmt.Sprintf("%v: %d ids", f.Kind, len(f.IDs))
	case f.Kind == IdentityChanged:
		return f.Kind.String()
	case f.Seq == f.ToSeq:
		return fmt.Sprintf("%v: %s seq %d", f.Kind, side, f.Seq)
	}
	return fmt.Sprintf("%v: %s seqs %d-%d", f.Kind, side, f.Seq, f.ToSeq)
}

// sticky reports whether f is kept by the conversation once found.
func (f *Finding) sticky() bool { return f.Kind == Fork || f.Kind == Lost }

// same reports whether f and g report the same thing.
func (f Finding) same(g Finding) bool {
	return f.Kind == g.Kind && f.Outgoing == g.Outgoing && f.Seq == g.Seq && f.ToSeq == g.ToSeq
}

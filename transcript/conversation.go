package transcript

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/internal/kdf"
)

// Bounds. Each keeps a Conversation's memory and saved state bounded
// whatever the peer or the relay sends.
const (
	// MaxLog is how many of our newest contents, and of the peer's newest
	// contents, are remembered by id and hash. It bounds how far back a
	// receipt can be checked or made, and which Drop ids can be named.
	// The Device saves a session's transcript with every message, so this
	// bound trades receipt reach for per-message cost: 256 contents cover a
	// usual reading backlog at 48 and 56 bytes per entry (about 26 KiB of
	// state when both logs are full; 1024 made every send and receive
	// rewrite about 104 KiB, measured at ~370 µs per message on a memory
	// store). Receipts for older messages are dropped, not misbound.
	MaxLog = 256
	// MaxMissing is how many peer seqs may be missing below the highest
	// that arrived. It equals the ratchet's bound on stored skipped message
	// keys per session (2000, oldest evicted first): once more are
	// missing, the ratchet can no longer read the oldest of them. A content
	// that would open a larger gap by itself is ErrTooManySkipped; older
	// gaps beyond the bound are given up as Lost.
	MaxMissing = 2000
	// MaxSticky bounds the kept Fork and Lost findings. One Fork already
	// means the conversation is suspect, so when the list is full the
	// oldest Lost is dropped first and Forks are never dropped; a Fork
	// found with the list full of Forks is returned but not kept.
	MaxSticky = 32
)

// Conversation is the transcript of one conversation with one peer: a hash
// chain of our contents, one of the peer's, and what each side has told
// the other about the chain it received (docs/SPEC.md section 13).
//
// Sent and Received change the Conversation in place, and only when they
// succeed. A caller that must not expose a change before it is stored (the
// Device commits only after its store write succeeds) calls them on a
// Clone and keeps the clone once the write has succeeded. The other
// methods do not change it. A Conversation must not be used by a changing
// call concurrently with any other call.
//
// The zero value is an empty conversation, like New's result.
type Conversation struct {
	out    outgoing
	in     incoming
	sticky []Finding // Fork and Lost findings, oldest first
}

// New returns the transcript of a conversation with nothing sent or
// received.
func New() *Conversation { return &Conversation{} }

// Next returns the transcript fields of our next content. It changes
// nothing: the caller encodes them into the content and, once the content
// is sealed, records it with Sent.
func (c *Conversation) Next() Fields {
	f := Fields{Seq: c.out.sent + 1, Prev: c.out.head, AckCount: c.in.count, AckHash: c.in.head}
	if len(c.in.segs) > 0 {
		f.AckAbove = c.in.segs[0].from
	}
	return f
}

// Sent records our content with id, whose exact encoded bytes are content
// and whose transcript fields are f. f must be what Next returned with no
// change to c since; otherwise Sent returns ErrMalformed and changes
// nothing. id should be unique (a random message id), since receipts name
// contents by id.
func (c *Conversation) Sent(f Fields, id [16]byte, content []byte) error {
	if f != c.Next() {
		return fmt.Errorf("%w: transcript: sent fields are not those of Next", ErrMalformed)
	}
	if err := f.check(); err != nil {
		return err
	}
	c.out.record(id, kdf.Hash(kdf.LabelTranscriptContent, content))
	return nil
}

// Received records a peer content with id, whose exact bytes as decrypted
// are content and whose decoded transcript fields are f, and returns the
// findings it newly reveals (nil when there are none). It returns
// ErrMalformed for impossible fields, ErrDuplicate for a seq already
// received with the same content, ErrExpiredKey for one given up as Lost,
// and ErrTooManySkipped for one more than MaxMissing past the highest
// received; then it changes nothing. A content whose seq was received with
// other contents (still in the received log) is accepted with a Fork
// finding and leaves the chain as it was: the peer's state went back or
// was cloned, and its new contents must not be lost.
func (c *Conversation) Received(f Fields, id [16]byte, content []byte) ([]Finding, error) {
	// 1. Check everything before anything changes.
	if err := f.check(); err != nil {
		return nil, err
	}
	err := c.in.admit(f.Seq, c.sticky)
	// 2. Hash the bytes exactly as received; never a re-encoding.
	cur := receivedEntry{seq: f.Seq, id: id, hash: kdf.Hash(kdf.LabelTranscriptContent, content)}
	if err != nil {
		if errors.Is(err, ErrDuplicate) {
			if e, ok := c.in.lookupSeq(f.Seq); ok && e.hash != cur.hash {
				// Not the content we received under this seq, and only a
				// holder of the session keys could send it: the peer's
				// state went back (a restored backup) or was cloned. It is
				// a new content; refusing it would lose a message.
				fork := Finding{Kind: Fork, Seq: f.Seq, ToSeq: f.Seq, IDs: [][16]byte{e.id, id}}
				c.in.log.push(cur)
				return c.keep([]Finding{fork}), nil
			}
		}
		return nil, err
	}
	// 3. Our chain as the peer saw it: forks in its report, drops.
	var found []Finding
	found = c.out.ack(&f, found)
	// 4. The peer's chain: link checks, a new gap.
	oldHighest := c.in.highest
	found = c.in.add(cur, f.Prev, found)
	// 5. Give up the oldest gaps beyond MaxMissing.
	if f.Seq > oldHighest && f.Seq-oldHighest > 1 {
		found = c.in.giveUp(found)
	}
	c.in.log.push(cur)
	// 6. Keep the sticky findings; report only what is new.
	return c.keep(found), nil
}

// Findings returns the findings open now: the kept Forks and Lost ranges,
// oldest first, then a Gap for each range of peer seqs still missing, then
// the Drop that the peer's newest report names.
func (c *Conversation) Findings() []Finding {
	out := cloneFindings(c.sticky)
	out = c.in.gaps(out)
	if from, to, ok := c.out.drops(); ok {
		out = append(out, c.out.dropFinding(from, to))
	}
	return out
}

// Clone returns a deep copy of c.
func (c *Conversation) Clone() *Conversation {
	d := &Conversation{out: c.out, in: c.in, sticky: cloneFindings(c.sticky)}
	d.out.log = c.out.log.clone()
	d.in.log = c.in.log.clone()
	d.in.segs = slices.Clone(c.in.segs)
	return d
}

// keep stores the sticky findings in found, removes those already kept
// (a peer repeats a bad report until it moves on), and returns the rest.
func (c *Conversation) keep(found []Finding) []Finding {
	out := found[:0]
	for _, f := range found {
		if f.sticky() {
			if slices.ContainsFunc(c.sticky, f.same) {
				continue
			}
			c.addSticky(f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// addSticky keeps f within MaxSticky, dropping the oldest Lost first and
// never a Fork.
func (c *Conversation) addSticky(f Finding) {
	if len(c.sticky) >= MaxSticky {
		i := slices.IndexFunc(c.sticky, func(g Finding) bool { return g.Kind != Fork })
		if i < 0 {
			return
		}
		c.sticky = slices.Delete(c.sticky, i, i+1)
	}
	f.IDs = slices.Clone(f.IDs)
	c.sticky = append(c.sticky, f)
}

func cloneFindings(fs []Finding) []Finding {
	if len(fs) == 0 {
		return nil
	}
	out := make([]Finding, len(fs))
	for i, f := range fs {
		f.IDs = slices.Clone(f.IDs)
		out[i] = f
	}
	return out
}

// SentAfter returns the ids of our contents with seqs above n, oldest
// first, as far as the sent log still holds them, and how many of those
// contents it no longer holds (the oldest, past MaxLog entries). It is
// what to send again when the peer says that it holds our contents only up
// to n (it restored its state from a backup).
func (c *Conversation) SentAfter(n uint64) (ids [][16]byte, missing uint64) {
	o := &c.out
	if n >= o.sent {
		return nil, 0
	}
	from := max(n+1, o.first())
	missing = from - (n + 1)
	for seq := from; seq <= o.sent; seq++ {
		e, _ := o.entry(seq)
		ids = append(ids, e.id)
	}
	return ids, missing
}

// HasReceived reports whether a peer content with id is in the received
// log (the newest MaxLog contents received), so that a content the peer
// sends again under the same id can be told from a new one.
func (c *Conversation) HasReceived(id [16]byte) bool {
	l := &c.in.log
	for i := range l.len() {
		if l.at(i).id == id {
			return true
		}
	}
	return false
}

// Unacknowledged returns the range of our contents, from..to, that the
// peer's newest report does not say it holds in sequence (from > to: none).
func (c *Conversation) Unacknowledged() (from, to uint64) {
	return c.out.ackCount + 1, c.out.sent
}

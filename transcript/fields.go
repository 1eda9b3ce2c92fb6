package transcript

import "fmt"

// Fields are the transcript fields every content carries (docs/SPEC.md section 13.2).
// The sender takes them from [Conversation.Next] and encodes them into the
// content; the receiver decodes them and passes them to
// [Conversation.Received] with the exact content bytes.
type Fields struct {
	// Seq numbers the sender's contents in this direction, from 1.
	Seq uint64
	// Prev is the hash of the sender's content Seq-1 (zero for Seq 1).
	// Because every content carries it, the hash of a content commits to
	// the whole history before it.
	Prev [32]byte
	// AckCount is how many of the peer's contents the sender holds as a
	// contiguous prefix (received, or given up as Lost).
	AckCount uint64
	// AckHash is the hash of the peer's content AckCount as the sender
	// received it (zero when AckCount is 0).
	AckHash [32]byte
	// AckAbove is the lowest seq above AckCount of the peer's contents that
	// the sender has received, or 0 when it has none: the peer's contents
	// AckCount+1 .. AckAbove-1 are then exactly the ones missing below the
	// first that arrived out of order. It is never AckCount+1.
	AckAbove uint64
}

// check rejects fields no conforming sender produces.
func (f *Fields) check() error {
	switch {
	case f.Seq == 0:
		return fmt.Errorf("%w: transcript seq 0", ErrMalformed)
	case f.AckCount == 0 && f.AckHash != [32]byte{}:
		return fmt.Errorf("%w: transcript ack hash without ack count", ErrMalformed)
	case f.AckAbove != 0 && (f.AckAbove <= f.AckCount || f.AckAbove-f.AckCount < 2):
		return fmt.Errorf("%w: transcript ack above %d leaves no gap after %d", ErrMalformed, f.AckAbove, f.AckCount)
	}
	return nil
}

package transcript

import (
	"encoding/binary"
	"fmt"
)

// A split save keeps a conversation as a small head (MarshalHead: counters,
// chain heads, gaps, findings) plus its two logs in fixed blocks of
// LogBlockSize entries, each block under its own slot. Sent and Received
// each add one entry to one log, so a caller that saves after every
// message writes the head and one block (ChangedBlocks) instead of the whole
// state: a few hundred bytes instead of up to 26 KiB with full logs.

// Log names one of a conversation's two logs in a split save.
type Log uint8

const (
	SentLog     Log = 1 // our contents: id and hash
	ReceivedLog Log = 2 // the peer's contents: seq, id and hash
)

const (
	// LogBlockSize is the number of log entries per saved block. A
	// message rewrites its block whole, so smaller blocks write fewer
	// bytes per message (about 4 entries, ~200 bytes, on average with 8;
	// 16 cost the Device ~5% more per message pair) at the price of more
	// records to read when a conversation is loaded.
	LogBlockSize = 8
	// LogSlots is the number of block slots per log: the newest MaxLog
	// entries span at most this many blocks. Block k (entries
	// k*LogBlockSize to k*LogBlockSize+LogBlockSize-1 by absolute index)
	// is saved in slot k mod LogSlots.
	LogSlots = MaxLog/LogBlockSize + 1
	// MaxBlockSize bounds an encoded block.
	MaxBlockSize = blockFixed + LogBlockSize*receivedRecord
	// blockFixed is a block's size without its entries.
	blockFixed = 1 + 8
)

func (l Log) record() int {
	if l == SentLog {
		return sentRecord
	}
	return receivedRecord
}

// MarshalHead encodes c without its logs, for a split save: with the
// blocks ChangedBlocks has returned since, it is the whole conversation.
// It does not fail.
func (c *Conversation) MarshalHead() ([]byte, error) {
	return c.AppendHead(make([]byte, 0, c.HeadSize())), nil
}

// AppendHead appends the head MarshalHead returns to b: the layout of
// AppendBinary with received_logged set to the received log's total and
// both log counts 0. A caller that encodes it into a larger record sizes
// its buffer with HeadSize.
func (c *Conversation) AppendHead(b []byte) []byte {
	return c.appendState(b, false, c.in.log.total)
}

// HeadSize returns the size of the head AppendHead appends.
func (c *Conversation) HeadSize() int { return c.stateSize(false) }

// ChangedBlocks calls fn with the slot and encoding of every block that
// holds an entry of log l added after its first since entries (since is
// LogTotal(l) as last saved). After one Sent or Received that is one
// block: what a split save writes besides the head. Each block is a new
// buffer with room spare bytes of capacity past its end, for what the
// caller appends (the Device's record checksum) without a copy. A block's
// layout (integers big-endian):
//
//	version  1   StateVersion
//	first    8   absolute index of the block's first entry: k*LogBlockSize
//	             for block k
//	entries  as in AppendBinary's logs (48 bytes per sent entry, 56 per
//	             received entry), min(LogBlockSize, total-first) of them
func (c *Conversation) ChangedBlocks(l Log, since uint64, room int, fn func(slot int, block []byte)) {
	total := c.LogTotal(l)
	if since >= total {
		return
	}
	since = max(since, total-min(total, MaxLog))
	for k := since / LogBlockSize; k <= (total-1)/LogBlockSize; k++ {
		from, to := k*LogBlockSize, min(total, (k+1)*LogBlockSize)
		b := make([]byte, 0, blockFixed+int(to-from)*l.record()+max(room, 0))
		b = append(b, StateVersion)
		b = binary.BigEndian.AppendUint64(b, from)
		for a := from; a < to; a++ {
			b = c.appendEntry(b, l, a)
		}
		fn(int(k%LogSlots), b)
	}
}

// LogTotal returns how many entries were ever added to log l: a caller
// compares it before and after an operation to know which blocks changed.
func (c *Conversation) LogTotal(l Log) uint64 {
	if l == SentLog {
		return c.out.log.total
	}
	return c.in.log.total
}

// appendEntry appends the entry with absolute index a of log l.
func (c *Conversation) appendEntry(b []byte, l Log, a uint64) []byte {
	if l == SentLog {
		e := c.out.log.abs(a)
		b = append(b, e.id[:]...)
		return append(b, e.hash[:]...)
	}
	e := c.in.log.abs(a)
	b = binary.BigEndian.AppendUint64(b, e.seq)
	b = append(b, e.id[:]...)
	return append(b, e.hash[:]...)
}

// UnmarshalSplit replaces c with a split save: head from MarshalHead, and
// block(l, slot) returning the saved block in that slot of log l (only the
// slots the head's logs need are asked for). Errors are as for
// UnmarshalBinary, or block's own; then c is unchanged.
func (c *Conversation) UnmarshalSplit(head []byte, block func(l Log, slot int) ([]byte, error)) error {
	m, err := decodeHead(head)
	if err != nil {
		return err
	}
	for _, l := range []Log{SentLog, ReceivedLog} {
		total, held := logWindow(m, l)
		var packed []byte
		for k := (total - held) / LogBlockSize; held > 0 && k <= (total-1)/LogBlockSize; k++ {
			b, err := block(l, int(k%LogSlots))
			if err != nil {
				return err
			}
			entries, err := blockEntries(b, l, k, total)
			if err != nil {
				return err
			}
			if lo := total - held; lo > k*LogBlockSize {
				entries = entries[int(lo-k*LogBlockSize)*l.record():]
			}
			packed = append(packed, entries...)
		}
		setLog(m, l, packed)
	}
	d, err := decode(m, true)
	if err != nil {
		return err
	}
	*c = *d
	return nil
}

// RestoreHead returns c to the state saved as head, which must be c's
// own head from before at most one Sent and one Received since (a caller
// whose save failed). It returns ErrMalformed, with c unchanged, for a
// head that is not such a state.
func (c *Conversation) RestoreHead(head []byte) error {
	m, err := decodeHead(head)
	if err != nil {
		return err
	}
	for _, l := range []Log{SentLog, ReceivedLog} {
		total, held := logWindow(m, l)
		if ok := (l == SentLog && c.out.log.canRewind(total)) || (l == ReceivedLog && c.in.log.canRewind(total)); !ok {
			return malformed("head is not from this conversation")
		}
		packed := make([]byte, 0, int(held)*l.record())
		for a := total - held; a < total; a++ {
			packed = c.appendEntry(packed, l, a)
		}
		setLog(m, l, packed)
	}
	d, err := decode(m, true)
	if err != nil {
		return err
	}
	*c = *d
	return nil
}

// decodeHead decodes a head from MarshalHead.
func decodeHead(head []byte) (*saved, error) {
	m, err := decodeState(head)
	if err != nil {
		return nil, err
	}
	if len(m.sentLog)+len(m.receivedLog) != 0 {
		return nil, malformed("head holds log entries")
	}
	return m, nil
}

// logWindow returns how many entries log l ever had and how many it holds.
func logWindow(m *saved, l Log) (total, held uint64) {
	if l == SentLog {
		total = m.sent
	} else {
		total = m.receivedLogged
	}
	return total, min(total, MaxLog)
}

func setLog(m *saved, l Log, packed []byte) {
	if l == SentLog {
		m.sentLog = packed
	} else {
		m.receivedLog = packed
	}
}

// blockEntries checks block k of log l, whose log has total entries, and
// returns its packed entries.
func blockEntries(b []byte, l Log, k, total uint64) ([]byte, error) {
	if len(b) > 0 && b[0] != StateVersion {
		return nil, fmt.Errorf("%w: transcript log block %d version %d", ErrUnsupportedVersion, k, b[0])
	}
	want := min(total-k*LogBlockSize, LogBlockSize)
	if len(b) < blockFixed || len(b) > MaxBlockSize || binary.BigEndian.Uint64(b[1:]) != k*LogBlockSize ||
		uint64(len(b)-blockFixed) != want*uint64(l.record()) {
		return nil, fmt.Errorf("%w: transcript log block %d", ErrMalformed, k)
	}
	return b[blockFixed:], nil
}

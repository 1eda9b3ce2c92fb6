package ratchet

import (
	"bytes"
	"encoding/binary"

	"github.com/sealpost/sealpost/internal/erasure"
	"github.com/sealpost/sealpost/internal/fixed"
	"github.com/sealpost/sealpost/proto/statepb"
)

// The split save: the same state as MarshalBinary, cut into parts so that
// a caller that saves after every message writes a few hundred bytes
// instead of the whole state (up to ~4 KB: the replay record alone is
// 2 KB, a KEM key in transit up to 1.2 KB).
//
//   - PartHead, written on every save: every key, counter and bound, in a
//     fixed layout (no protobuf on the per-message path), appended to a
//     buffer of the caller's rather than put on its own.
//   - PartAD: the session's associated data, written by the first save only.
//   - PartCold: the skipped keys and the record of evicted ones, written
//     when they change (rare in order; their size is bounded by the
//     session's caps).
//   - PartCiphertext: the answer to the peer's KEM key while this party
//     streams it, written once per KEM epoch.
//   - the replay record in ConsumedSlots blocks of consumedBlock entries,
//     addressed by the entry's absolute number, so a message rewrites one
//     block; one slot more than the record spans, as the transcript's log.
//   - the two KEM decoders (the peer's key, the answer to ours) in
//     DecoderSlots blocks of decoderBlock chunks each, in arrival order.
//
// The head says which parts hold the state: the replay record's absolute
// count, each decoder's epoch and chunk count, whether the cold part and
// the ciphertext exist. Blocks carry their number (or epoch and index), so
// a block left over from an older state is refused rather than read. A part
// the head does not name may be stale and is never read; parts are never
// deleted except with the whole session.

// A Part names one stored part of a split save.
type Part int

// The parts. SplitParts is how many there are: a caller that deletes a
// session deletes parts 0 to SplitParts-1.
const (
	PartHead       Part = 0
	PartAD         Part = 1
	PartCold       Part = 2
	PartCiphertext Part = 3
	partConsumed   Part = 4
	partOwnAnswer  Part = partConsumed + ConsumedSlots
	partPeerKey    Part = partOwnAnswer + DecoderSlots
	SplitParts          = int(partPeerKey + DecoderSlots)

	// consumedBlock entries of the replay record per block, in
	// ConsumedSlots blocks (the record spans at most ReplayRecord /
	// consumedBlock + 1 of them).
	consumedBlock = 16
	ConsumedSlots = ReplayRecord/consumedBlock + 1
	// decoderBlock chunks per block of a KEM decoder; a decoder holds at
	// most 37 chunks (the key), so DecoderSlots blocks.
	decoderBlock = 8
	DecoderSlots = 5

	splitFormat = 1 // second byte of the head: the split layout's version
)

const (
	flagDHr = 1 << iota
	flagSend
	flagRecv
	flagInitiator
	flagOwnReady
	flagPeerAnswered
	flagCold
)

// SplitHeadSize is the largest head SaveSplit appends (every optional
// field present), so that a caller can size the record it embeds it in.
const SplitHeadSize = 3 + 4*4 + 8 + 8 + 5*keySize + 2*(2*keySize+4) +
	(4 + 4 + kemSeedSize + 2*keySize + 1) + (4 + 4 + 2*keySize + 1)

// SplitMark records what a split save wrote, so that the next save writes
// only the parts changed since. The zero SplitMark means nothing was saved.
// A mark belongs to the Session that returned it.
type SplitMark struct {
	ad        bool   // the AD is saved
	consumed  uint64 // replay-record entries ever pushed, as saved
	cold, ct  []byte // the cold part and the ciphertext as saved
	own, peer decoderMark
}

// decoderMark is what was saved of a KEM decoder: which decoder, and how
// many of its chunks.
type decoderMark struct {
	d *erasure.Decoder
	n int
}

// SaveSplit appends the head (PartHead, which changes with every message,
// at most SplitHeadSize bytes) to head and returns the extended slice, and
// calls put with every other part that changed since mark. It returns the
// mark of this save. The head goes to the caller's buffer so that it can
// be stored inside a record the caller writes anyway (the Device's session
// record). Each value given to put is newly allocated with room bytes of
// spare capacity (for a checksum the caller appends) and is not used by
// the session afterwards. The caller commits the head and the parts
// together and keeps the returned mark only if that succeeds; after a
// failed commit it either keeps the session and the old mark (the next
// save then writes everything changed since the old mark) or reloads the
// session from what was committed. Everything saved must be kept secret.
func (s *Session) SaveSplit(head []byte, mark SplitMark, room int, put func(Part, []byte)) ([]byte, SplitMark, error) {
	if s.dhs == nil {
		return head, SplitMark{}, errorf(ErrNoSession, "zero session")
	}
	cold := s.appendCold(s.scratch.cold[:0])
	s.scratch.cold = cold
	hasCold := len(cold) > 0
	head = s.appendHead(head, hasCold)
	next := SplitMark{ad: true, consumed: s.consumed.total, cold: mark.cold, ct: mark.ct}
	if !mark.ad {
		put(PartAD, append(make([]byte, 0, len(s.ad)+room), s.ad...))
	}
	if hasCold && !bytes.Equal(cold, mark.cold) {
		next.cold = append(make([]byte, 0, len(cold)+room), cold...)
		put(PartCold, next.cold)
	}
	if ct := s.peer.answer; ct != nil && !bytes.Equal(ct, mark.ct) {
		next.ct = ct // never changed in place: a new epoch sets a new slice
		put(PartCiphertext, append(make([]byte, 0, len(ct)+room), ct...))
	}
	s.saveConsumed(mark.consumed, room, put)
	next.own = saveDecoder(s.own.answer, s.own.epoch(), mark.own, partOwnAnswer, room, put)
	next.peer = saveDecoder(s.peer.key, s.peer.declared+1, mark.peer, partPeerKey, room, put)
	return head, next, nil
}

// appendHead appends the head: the layout in order, big-endian.
//
//	version u8 (StateVersion), format u8 (splitFormat), flags u8
//	max skip, max skipped keys, tag window, PN: u32 each
//	messages sent u64, replay-record entries ever pushed u64
//	RK, DHs (private), NHKs, NHKr: 32 bytes each; DHr: 32 (zero if none)
//	sending chain: CK 32, HK 32, N u32 (flagSend)
//	receiving chain: CK 32, HK 32, N u32 (flagRecv)
//	own lane: declared u32, key chunks sent u32, seed 64, then secret 32
//	  and transcript 32 (flagOwnReady) or answer chunks held u8
//	peer lane: declared u32, answer chunks sent u32, secret 32 (the shared
//	  secret once answered, the encapsulation secret before), then
//	  transcript 32 (flagPeerAnswered) or key chunks held u8
func (s *Session) appendHead(b []byte, hasCold bool) []byte {
	var flags byte
	if s.hasDHr {
		flags |= flagDHr
	}
	if s.send != nil {
		flags |= flagSend
	}
	if s.recv != nil {
		flags |= flagRecv
	}
	if s.initiator {
		flags |= flagInitiator
	}
	if s.own.ready {
		flags |= flagOwnReady
	}
	if s.peer.answered() {
		flags |= flagPeerAnswered
	}
	if hasCold {
		flags |= flagCold
	}
	b = append(b, StateVersion, splitFormat, flags)
	b = binary.BigEndian.AppendUint32(b, s.cfg.maxSkip)
	b = binary.BigEndian.AppendUint32(b, s.cfg.maxSkipped)
	b = binary.BigEndian.AppendUint32(b, s.cfg.tagWindow)
	b = binary.BigEndian.AppendUint32(b, s.pn)
	b = binary.BigEndian.AppendUint64(b, s.sent)
	b = binary.BigEndian.AppendUint64(b, s.consumed.total)
	b = append(b, s.rk[:]...)
	b = append(b, s.dhsPriv[:]...)
	b = append(b, s.nhks[:]...)
	b = append(b, s.next.hk.hk[:]...)
	b = append(b, s.dhr[:]...)
	if c := s.send; c != nil {
		b = append(append(b, c.ck[:]...), c.hk.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, c.n)
	}
	if c := s.recv; c != nil {
		b = append(append(b, c.ck[:]...), c.win.hk.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, c.n)
	}
	b = binary.BigEndian.AppendUint32(b, s.own.declared)
	b = binary.BigEndian.AppendUint32(b, s.own.ekSent)
	b = append(b, s.own.seed[:]...)
	if s.own.ready {
		b = append(append(b, s.own.secret[:]...), s.own.th[:]...)
	} else {
		b = append(b, byte(s.own.received()))
	}
	b = binary.BigEndian.AppendUint32(b, s.peer.declared)
	b = binary.BigEndian.AppendUint32(b, s.peer.ctSent)
	if s.peer.answered() {
		b = append(append(b, s.peer.secret[:]...), s.peer.th[:]...)
	} else {
		b = append(append(b, s.peer.seed[:]...), byte(s.peer.received()))
	}
	return b
}

// appendCold appends the cold part, or nothing when there are no skipped
// keys and no evicted ones:
//
//	skipped chains u32, each: HK 32, keys u32, each: N u32, MK 32
//	evicted tags u32, each 16 bytes, oldest first
func (s *Session) appendCold(b []byte) []byte {
	if len(s.skipped.chains) == 0 && s.expired.len() == 0 {
		return b
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.skipped.chains)))
	for _, c := range s.skipped.chains {
		b = append(b, c.hk.hk[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(c.keys)))
		for i := range c.keys {
			b = binary.BigEndian.AppendUint32(b, c.keys[i].n)
			b = append(b, c.keys[i].mk[:]...)
		}
	}
	b = binary.BigEndian.AppendUint32(b, uint32(s.expired.len()))
	for i := range s.expired.len() {
		t := s.expired.at(i)
		b = append(b, t[:]...)
	}
	return b
}

// saveConsumed puts the replay-record blocks holding the entries pushed
// since saved. A block is the absolute number of its first entry (u64) and
// its entries in order (tag 16, authenticator 16) up to the newest. Block
// b holds entries 16b to 16b+15 and is stored in slot b mod ConsumedSlots;
// it starts later than 16b only if the ring had already dropped the
// block's first entries when it was written.
func (s *Session) saveConsumed(saved uint64, room int, put func(Part, []byte)) {
	r := &s.consumed
	if r.total == saved {
		return
	}
	oldest := r.total - uint64(r.len()) // absolute number of r.at(0)
	for blk := max(saved, oldest) / consumedBlock; blk*consumedBlock < r.total; blk++ {
		first, end := max(blk*consumedBlock, oldest), min((blk+1)*consumedBlock, r.total)
		b := make([]byte, 0, 8+(end-first)*2*TagSize+uint64(room))
		b = binary.BigEndian.AppendUint64(b, first)
		for n := first; n < end; n++ {
			e := r.at(int(n - oldest))
			b = append(append(b, e.tag[:]...), e.mac[:]...)
		}
		put(partConsumed+Part(blk%ConsumedSlots), b)
	}
}

// saveDecoder puts the blocks of d holding chunks added since m, and
// returns d's new mark. A block is the lane epoch (u32), its index (u8)
// and its chunks in arrival order (point u8, chunk 32).
func saveDecoder(d *erasure.Decoder, epoch uint32, m decoderMark, first Part, room int, put func(Part, []byte)) decoderMark {
	if d == nil {
		return decoderMark{}
	}
	n := d.Received()
	from := 0
	if m.d == d {
		from = m.n
	}
	if from == n {
		return decoderMark{d: d, n: n}
	}
	var b []byte
	blk, j := -1, 0
	for point, chunk := range d.All() {
		if j/decoderBlock >= from/decoderBlock {
			if j/decoderBlock != blk {
				if b != nil {
					put(first+Part(blk), b)
				}
				blk = j / decoderBlock
				size := min(decoderBlock, n-blk*decoderBlock)
				b = make([]byte, 0, 5+size*(1+kemChunkSize)+room)
				b = binary.BigEndian.AppendUint32(b, epoch)
				b = append(b, byte(blk))
			}
			b = append(append(b, byte(point)), chunk...)
		}
		j++
	}
	if b != nil {
		put(first+Part(blk), b)
	}
	return decoderMark{d: d, n: n}
}

// LoadSplit rebuilds a session from the parts of a split save: head is
// PartHead, and get returns any other part the head names. It checks
// everything UnmarshalBinary checks, and that every block is the one the
// head expects. It returns the session and the mark of the save it was
// loaded from, ErrUnsupportedVersion for another version and ErrMalformed
// for anything else wrong; errors from get are returned as they are.
func LoadSplit(head []byte, get func(Part) ([]byte, error)) (*Session, SplitMark, error) {
	h, err := parseHead(head)
	if err != nil {
		return nil, SplitMark{}, err
	}
	m, cold, ct := h.m, []byte(nil), []byte(nil)
	if m.AssociatedData, err = get(PartAD); err != nil {
		return nil, SplitMark{}, err
	}
	if h.flags&flagCold != 0 {
		if cold, err = get(PartCold); err != nil {
			return nil, SplitMark{}, err
		}
		if err := parseCold(cold, m); err != nil {
			return nil, SplitMark{}, err
		}
	}
	if h.flags&flagPeerAnswered != 0 {
		if ct, err = get(PartCiphertext); err != nil {
			return nil, SplitMark{}, err
		}
		m.PeerLane.Ciphertext = ct
	}
	if m.Consumed, err = loadConsumed(h.consumed, get); err != nil {
		return nil, SplitMark{}, err
	}
	own, peer := m.OwnLane, m.PeerLane
	if own.CtPoints, own.CtChunks, err = readDecoderBlocks(own.Declared+1, h.ownChunks, partOwnAnswer, get); err != nil {
		return nil, SplitMark{}, err
	}
	if peer.EkPoints, peer.EkChunks, err = readDecoderBlocks(peer.Declared+1, h.peerChunks, partPeerKey, get); err != nil {
		return nil, SplitMark{}, err
	}
	t, err := loadSession(m)
	if err != nil {
		return nil, SplitMark{}, err
	}
	t.consumed.total = h.consumed
	mark := SplitMark{ad: true, consumed: h.consumed, cold: cold, ct: t.peer.answer,
		own: decoderMark{d: t.own.answer, n: t.own.received()}, peer: decoderMark{d: t.peer.key, n: t.peer.received()}}
	return t, mark, nil
}

// splitHead is a parsed head: the state message without its parts, and what
// the head says the parts hold.
type splitHead struct {
	m                     *statepb.RatchetSession
	flags                 byte
	consumed              uint64
	ownChunks, peerChunks int
}

// key reads a 32-byte key, copied out of the input.
func key(r *fixed.Reader) []byte { return bytes.Clone(r.Bytes(keySize)) }

func parseHead(b []byte) (splitHead, error) {
	r := fixed.NewReader(b)
	if len(b) < 2 {
		return splitHead{}, errorf(ErrMalformed, "split state head of %d bytes", len(b))
	}
	if v := r.U8(); v != StateVersion {
		if v == 0 {
			return splitHead{}, errorf(ErrMalformed, "split state has no version")
		}
		return splitHead{}, errorf(ErrUnsupportedVersion, "state version %d", v)
	}
	if f := r.U8(); f != splitFormat {
		return splitHead{}, errorf(ErrUnsupportedVersion, "split state format %d", f)
	}
	h := splitHead{flags: r.U8()}
	if h.flags >= flagCold<<1 {
		return splitHead{}, errorf(ErrMalformed, "split state flags")
	}
	m := &statepb.RatchetSession{Version: StateVersion,
		MaxSkip: r.U32(), MaxSkippedKeys: r.U32(), TagWindow: r.U32(), PreviousSendingCount: r.U32(),
		Sent: r.U64(), Initiator: h.flags&flagInitiator != 0}
	h.consumed = r.U64()
	m.RootKey, m.OwnRatchetKey, m.NextSendingHeaderKey, m.NextReceivingHeaderKey = key(&r), key(&r), key(&r), key(&r)
	dhr := key(&r)
	if h.flags&flagDHr != 0 {
		m.PeerRatchetKey = dhr
	} else if r.Ok() && !bytes.Equal(dhr, make([]byte, keySize)) {
		return splitHead{}, errorf(ErrMalformed, "split state peer ratchet key without its flag")
	}
	if h.flags&flagSend != 0 {
		m.Sending = &statepb.RatchetChain{ChainKey: key(&r), HeaderKey: key(&r), Count: r.U32()}
	}
	if h.flags&flagRecv != 0 {
		m.Receiving = &statepb.RatchetChain{ChainKey: key(&r), HeaderKey: key(&r), Count: r.U32()}
	}
	o := &statepb.RatchetKemOwnLane{Declared: r.U32(), EkSent: r.U32(), Seed: bytes.Clone(r.Bytes(kemSeedSize))}
	if h.flags&flagOwnReady != 0 {
		o.Secret, o.Transcript = key(&r), key(&r)
	} else {
		h.ownChunks = int(r.U8())
	}
	p := &statepb.RatchetKemPeerLane{Declared: r.U32(), CtSent: r.U32(), Secret: key(&r)}
	if h.flags&flagPeerAnswered != 0 {
		p.Transcript = key(&r)
	} else {
		h.peerChunks = int(r.U8())
	}
	m.OwnLane, m.PeerLane = o, p
	if !r.Done() {
		return splitHead{}, errorf(ErrMalformed, "split state head size")
	}
	h.m = m
	return h, nil
}

// parseCold fills m's skipped keys and evicted tags from the cold part,
// which holds at least one of them.
func parseCold(b []byte, m *statepb.RatchetSession) error {
	r := fixed.NewReader(b)
	chains := r.U32()
	for range chains {
		c := &statepb.RatchetSkippedChain{HeaderKey: key(&r)}
		n := r.Count(uint64(r.U32()), maxSkippedCap, 4+keySize)
		if !r.Ok() || n == 0 {
			return errorf(ErrMalformed, "split state skipped keys size")
		}
		c.Numbers = make([]uint32, n)
		c.MessageKeys = make([]byte, 0, n*keySize)
		for i := range n {
			c.Numbers[i] = r.U32()
			c.MessageKeys = append(c.MessageKeys, r.Bytes(keySize)...)
		}
		m.Skipped = append(m.Skipped, c)
	}
	n := r.Count(uint64(r.U32()), ExpiredRecord, TagSize)
	m.Expired = bytes.Clone(r.Bytes(n * TagSize))
	if !r.Done() || (chains == 0 && n == 0) {
		return errorf(ErrMalformed, "split state cold part size")
	}
	return nil
}

// loadConsumed reads the replay-record blocks holding the newest entries
// of total, and returns them as the state message holds them. Each block
// must end at its block's end or at total, and start no later than the
// first entry needed from it.
func loadConsumed(total uint64, get func(Part) ([]byte, error)) ([]byte, error) {
	const entry = 2 * TagSize
	oldest := total - min(total, ReplayRecord)
	out := make([]byte, 0, (total-oldest)*entry)
	for blk := oldest / consumedBlock; blk*consumedBlock < total; blk++ {
		b, err := get(partConsumed + Part(blk%ConsumedSlots))
		if err != nil {
			return nil, err
		}
		need, end := max(blk*consumedBlock, oldest), min((blk+1)*consumedBlock, total)
		if len(b) < 8 || (len(b)-8)%entry != 0 {
			return nil, errorf(ErrMalformed, "split state replay block %d size", blk)
		}
		first := binary.BigEndian.Uint64(b)
		if first < blk*consumedBlock || first > need || uint64(len(b)-8)/entry != end-first {
			return nil, errorf(ErrMalformed, "split state replay block %d is not the one expected", blk)
		}
		out = append(out, b[8+(need-first)*entry:]...)
	}
	return out, nil
}

// readDecoderBlocks reads the blocks of a decoder holding n chunks of the given
// epoch, and returns its points and chunks as the state message holds them.
func readDecoderBlocks(epoch uint32, n int, first Part, get func(Part) ([]byte, error)) (points, chunks []byte, err error) {
	if n == 0 {
		return nil, nil, nil
	}
	if n > DecoderSlots*decoderBlock {
		return nil, nil, errorf(ErrMalformed, "split state decoder of %d chunks", n)
	}
	const entry = 1 + kemChunkSize
	for blk := 0; blk*decoderBlock < n; blk++ {
		b, err := get(first + Part(blk))
		if err != nil {
			return nil, nil, err
		}
		size := min(decoderBlock, n-blk*decoderBlock)
		if len(b) != 5+size*entry || binary.BigEndian.Uint32(b) != epoch || b[4] != byte(blk) {
			return nil, nil, errorf(ErrMalformed, "split state decoder block %d", blk)
		}
		for e := b[5:]; len(e) > 0; e = e[entry:] {
			points = append(points, e[0])
			chunks = append(chunks, e[1:entry]...)
		}
	}
	return points, chunks, nil
}

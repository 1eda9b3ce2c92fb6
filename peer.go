package sealpost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/sealpost/sealpost/internal/kept"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/internal/receiptq"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/statepb"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// peer is everything a Device holds about one peer device with one
// identity: that identity, its sessions (current first, each with its
// transcript and receipt queue) and the index of results kept until Done.
// An address has at most one pinned peer, the one Send uses, and any
// number of unconfirmed ones: other identities that claimed the address
// (rec.Unconfirmed), whose messages are delivered marked Unconfirmed and to
// which nothing is sent until the app trusts them (identity.go).
//
// A peer is saved as several records (statepb.Peer, and the fixed
// layouts of internal/sessrec, internal/kept and internal/receiptq): the peer record
// (identity, mailbox, the list of sessions), one record per session
// (transcript head, the ratchet's head, receipt queue bounds), the
// ratchet's other parts, the transcript's log blocks and queued-receipt
// blocks, and the kept index. A message on a
// session rewrites only that session's record and the blocks it changed.
// After a failed commit the peer is rebuilt from what it last committed:
// raw and saved here, each session's raw, and the transcript and receipt
// queue rewound to their saved bounds.
type peer struct {
	addr Address
	// name is the tail of every store key of the peer: its address, or for
	// a second identity at an address already held, the address, "#" and
	// the identity's fingerprint prefix (peerName). It never changes, so
	// Trust moves no record.
	name     string
	key      string // record.KeyPeerPrefix + name
	raw      []byte // the peer record as last committed; nil if never
	identity keys.PublicIdentity
	fp       [keys.FingerprintSize]byte // identity.Fingerprint(), for the blocklist
	rec      *statepb.Peer              // identity, mailbox, times, flags; not the session list
	sessions []*session
	saved    []*session // the sessions as last committed, in order
	// The peer record's other fields as last committed, to tell without
	// encoding it whether it changed.
	savedIdentity    keys.PublicIdentity
	savedMailbox     []byte
	savedChanged     int64
	savedPending     int64
	savedUnconfirmed bool
	savedSeen        bool
	savedDismissed   [][]byte
	savedListKnown   uint64
	savedReply       replyState // as last committed: a change rewrites the record
	// replyIn are the mailboxes of ours this peer is indexed under in
	// Device.replies.
	replyIn      []string
	replyIndexed uint64 // the reply_gen replyIn is of
	// slot is the peer's entry in the peer directory (peerdir.go), -1
	// before its first commit; inPending is whether it is in
	// Device.pending; gone is set once it is forgotten or evicted.
	slot      int
	inPending bool
	gone      bool
	kept      []kept.Entry
	// keptSaved is the kept index as last committed. p.kept shares its
	// backing array: entries are only ever appended past it or resliced
	// off its front, never changed in place, so a rewind is p.kept =
	// keptSaved. keptDirty: a ReceiveBatch has not written the index yet.
	keptSaved  []kept.Entry
	keptDirty  bool
	keptIn     []keptRef  // what this peer has in Device.kept and keptEnv
	keptIdxKey string     // keptIndexKey(name), built on first use
	indexed    []*session // the sessions whose tags are in Device.tags
}

// session is one ratchet session and its transcript.
type session struct {
	id    [16]byte // the first 16 bytes of SHA-256(base key)
	keyID string   // "<peer address>/<id in hex>", the tail of its store keys
	r     *ratchet.Session
	conv  *transcript.Conversation
	meta  *sessionMeta // base key, initiator, pending, times, read receipts
	// delivered are the queued delivery receipts.
	delivered receiptq.Queue
	// pending is our session start and the peer's bundle while the peer
	// has not replied (nil after); start and bundle cache them parsed.
	pending *statepb.PendingStart
	start   *keys.SessionStart
	bundle  *keys.Bundle

	// What was last committed: the session record, the ratchet's parts and
	// the mark of their save, the pending start (nil when its record does
	// not exist), the transcript's log totals and the receipt queue's end.
	raw                  []byte
	ratParts             [ratchet.SplitParts][]byte
	ratMark              ratchet.SplitMark
	savedPending         *statepb.PendingStart
	sentSaved, recvSaved uint64
	queueSaved           uint64

	// The ratchet's parts put by the last put, and their mark, committed
	// by committed.
	ratStaged     [ratchet.SplitParts][]byte
	ratStagedMark ratchet.SplitMark

	tags    [][16]byte       // the expected tags last put in Device.tags
	tagsOf  *ratchet.Session // the ratchet they are from (nil: not indexed)
	tagsGen uint64           // and its TagGeneration then
	spare   [][16]byte       // a buffer for the next ExpectedTags, reused

	keys sessionKeys // its other store keys, each built on first use
}

// sessionKeys caches a session's store keys, so that the per-message
// path does not rebuild them.
type sessionKeys struct {
	record, start string
	ratchet       [ratchet.SplitParts]string
	logs          [2][transcript.LogSlots]string
	queue         [receiptq.Blocks]string
}

// newSession returns a session of the peer named name, not yet committed.
func newSession(name string, r *ratchet.Session, meta *sessionMeta) *session {
	sum := sha256.Sum256(meta.BaseKey)
	s := &session{id: [16]byte(sum[:16]), r: r, conv: transcript.New(), meta: meta}
	s.keyID = name + "/" + hex.EncodeToString(s.id[:])
	return s
}

// confirmed reports whether the peer has shown it holds this session: we
// responded to its start, or it replied to ours.
func (s *session) confirmed() bool { return s.pending == nil }

// Store keys of a session's records, each built once.
func (s *session) recordKey() string {
	return cachedKey(&s.keys.record, record.KeySessionPrefix, s.keyID, -1, -1)
}

// ratchetKey is the store key of a part of the ratchet's split save.
func (s *session) ratchetKey(p ratchet.Part) string {
	return cachedKey(&s.keys.ratchet[p], record.KeyRatchetPrefix, s.keyID, -1, int(p))
}
func (s *session) startKey() string {
	return cachedKey(&s.keys.start, record.KeyStartPrefix, s.keyID, -1, -1)
}
func (s *session) logKey(l transcript.Log, slot int) string {
	if l != transcript.SentLog && l != transcript.ReceivedLog || slot < 0 || slot >= transcript.LogSlots {
		return record.KeyLogPrefix + s.keyID + "/" + strconv.Itoa(int(l)) + "/" + strconv.Itoa(slot)
	}
	return cachedKey(&s.keys.logs[l-1][slot], record.KeyLogPrefix, s.keyID, int(l), slot)
}
func (s *session) queueKey(slot int) string {
	if slot < 0 || slot >= receiptq.Blocks {
		return record.KeyQueuePrefix + s.keyID + "/" + strconv.Itoa(slot)
	}
	return cachedKey(&s.keys.queue[slot], record.KeyQueuePrefix, s.keyID, -1, slot)
}

// cachedKey returns *cache, first setting it to prefix, id, then "/a"
// and "/b" for those not negative.
func cachedKey(cache *string, prefix, id string, a, b int) string {
	if *cache == "" {
		k := make([]byte, 0, len(prefix)+len(id)+2*21)
		k = append(append(k, prefix...), id...)
		for _, n := range []int{a, b} {
			if n >= 0 {
				k = strconv.AppendInt(append(k, '/'), int64(n), 10)
			}
		}
		*cache = string(k)
	}
	return *cache
}

func keptIndexKey(name string) string { return record.KeyKeptIndexPrefix + name }

// keptIndexKey returns the peer's kept index key, built once.
func (p *peer) keptIndexKey() string {
	if p.keptIdxKey == "" {
		p.keptIdxKey = keptIndexKey(p.name)
	}
	return p.keptIdxKey
}

// unconfirmed reports whether the peer is an identity other than the one
// pinned at its address.
func (p *peer) unconfirmed() bool { return p.rec.Unconfirmed }

// pending reports whether the peer contacted us and we have neither
// answered nor trusted it (every unconfirmed peer is pending).
func (p *peer) pending() bool { return p.rec.PendingSinceUnixNano != 0 }

// changed reports whether the peer record differs from what was last
// committed (or was never committed).
func (p *peer) changed() bool {
	return p.raw == nil || !slices.Equal(p.sessions, p.saved) || !p.identity.Equal(p.savedIdentity) ||
		!bytes.Equal(p.rec.Mailbox, p.savedMailbox) || p.rec.IdentityChangedUnixNano != p.savedChanged ||
		p.rec.PendingSinceUnixNano != p.savedPending || p.rec.Unconfirmed != p.savedUnconfirmed ||
		p.rec.IdentitySeen != p.savedSeen || !slices.EqualFunc(p.rec.Dismissed, p.savedDismissed, bytes.Equal) ||
		p.rec.ListKnown != p.savedListKnown || p.replyState() != p.savedReply
}

// saveFields records the peer record's fields as committed.
func (p *peer) saveFields() {
	p.savedIdentity, p.savedMailbox, p.savedChanged = p.identity, p.rec.Mailbox, p.rec.IdentityChangedUnixNano
	p.savedPending, p.savedUnconfirmed = p.rec.PendingSinceUnixNano, p.rec.Unconfirmed
	p.savedSeen, p.savedDismissed = p.rec.IdentitySeen, slices.Clone(p.rec.Dismissed)
	p.savedListKnown = p.rec.ListKnown
	p.savedReply = p.replyState()
}

// encode returns the peer record from its live state.
func (p *peer) encode() ([]byte, error) {
	rec := &statepb.Peer{
		Version: record.Layout, User: p.addr.User, Device: p.addr.Device,
		Identity:                p.identity.Bytes(),
		Mailbox:                 p.rec.Mailbox,
		IdentityChangedUnixNano: p.rec.IdentityChangedUnixNano,
		PendingSinceUnixNano:    p.rec.PendingSinceUnixNano,
		Unconfirmed:             p.rec.Unconfirmed,
		IdentitySeen:            p.rec.IdentitySeen,
		Dismissed:               p.rec.Dismissed,
		ListKnown:               p.rec.ListKnown,
		ReplyMailbox:            p.rec.ReplyMailbox,
		ReplyOwner:              p.rec.ReplyOwner,
		ReplyCreatedUnixNano:    p.rec.ReplyCreatedUnixNano,
		ReplyGen:                p.rec.ReplyGen,
		OldReplyMailbox:         p.rec.OldReplyMailbox,
		OldReplyOwner:           p.rec.OldReplyOwner,
		OldReplyExpiresUnixNano: p.rec.OldReplyExpiresUnixNano,
		PeerMailboxGen:          p.rec.PeerMailboxGen,
	}
	for _, s := range p.sessions {
		rec.Sessions = append(rec.Sessions, s.id[:])
	}
	return pbstrict.MarshalRoom(rec, record.ChecksumSize)
}

// decodePeerRecord decodes a peer record.
func decodePeerRecord(raw []byte) (*statepb.Peer, keys.PublicIdentity, error) {
	rec := new(statepb.Peer)
	if err := record.DecodeVersioned(raw, rec, func() uint32 { return rec.Version }, "saved peer"); err != nil {
		return nil, keys.PublicIdentity{}, err
	}
	id, err := keys.ParsePublicIdentity(rec.Identity)
	if err != nil {
		return nil, keys.PublicIdentity{}, fmt.Errorf("%w: saved peer identity", ErrMalformed)
	}
	if len(rec.Sessions) > maxSessions {
		return nil, keys.PublicIdentity{}, fmt.Errorf("%w: saved peer has %d sessions", ErrMalformed, len(rec.Sessions))
	}
	for i, sid := range rec.Sessions {
		if len(sid) != 16 || slices.ContainsFunc(rec.Sessions[:i], func(o []byte) bool { return bytes.Equal(o, sid) }) {
			return nil, keys.PublicIdentity{}, fmt.Errorf("%w: saved peer session id", ErrMalformed)
		}
	}
	if len(rec.Dismissed) > maxDismissed || slices.ContainsFunc(rec.Dismissed, func(b []byte) bool { return len(b) != dismissedSize }) {
		return nil, keys.PublicIdentity{}, fmt.Errorf("%w: saved peer dismissed findings", ErrMalformed)
	}
	if !validReplyFields(rec) {
		return nil, keys.PublicIdentity{}, fmt.Errorf("%w: saved peer reply mailboxes", ErrMalformed)
	}
	return rec, id, nil
}

// loadPeer reads the peer named name and all its sessions from the store.
func (d *Device) loadPeer(ctx context.Context, name string, slot int) (*peer, error) {
	key := record.KeyPeerPrefix + name
	raw, err := getRecord(ctx, d.store, key)
	if err != nil {
		return nil, fmt.Errorf("sealpost: loading %s: %w", key, err)
	}
	rec, id, err := decodePeerRecord(raw)
	if err != nil {
		return nil, err
	}
	p := newPeerObject(Address{User: rec.User, Device: rec.Device}, name, id, rec)
	p.raw, p.slot = raw, slot
	p.saveFields()
	if name != p.addr.String() && name != peerName(p.addr, id, true) {
		return nil, fmt.Errorf("%w: peer record %q is for %s", ErrMalformed, key, p.addr)
	}
	if rec.Unconfirmed && rec.PendingSinceUnixNano == 0 {
		return nil, fmt.Errorf("%w: peer record %q is unconfirmed but not pending", ErrMalformed, key)
	}
	for _, sid := range rec.Sessions {
		s, err := d.loadSession(ctx, name, [16]byte(sid))
		if err != nil {
			return nil, err
		}
		p.sessions = append(p.sessions, s)
	}
	rec.Sessions = nil
	p.saved = slices.Clone(p.sessions)
	kraw, err := getRecord(ctx, d.store, p.keptIndexKey())
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := p.decodeKept(kraw); err != nil {
		return nil, err
	}
	return p, nil
}

// loadSession reads one session's records from the store.
func (d *Device) loadSession(ctx context.Context, name string, id [16]byte) (*session, error) {
	s := &session{id: id, keyID: name + "/" + hex.EncodeToString(id[:])}
	raw, err := getRecord(ctx, d.store, s.recordKey())
	if err != nil {
		return nil, fmt.Errorf("sealpost: loading session %s: %w", s.keyID, err)
	}
	if err := s.decode(raw); err != nil {
		return nil, err
	}
	var parts [ratchet.SplitParts][]byte
	err = s.loadRatchet(func(p ratchet.Part) ([]byte, error) {
		v, err := getRecord(ctx, d.store, s.ratchetKey(p))
		parts[p] = v
		return v, err
	})
	if err != nil {
		return nil, fmt.Errorf("sealpost: loading the ratchet of session %s: %w", s.keyID, err)
	}
	s.ratParts = parts
	if sum := sha256.Sum256(s.meta.BaseKey); [16]byte(sum[:16]) != id {
		return nil, fmt.Errorf("%w: session record %s is for another session", ErrMalformed, s.keyID)
	}
	conv := transcript.New()
	err = conv.UnmarshalSplit(s.meta.Transcript, func(l transcript.Log, slot int) ([]byte, error) {
		return getRecord(ctx, d.store, s.logKey(l, slot))
	})
	if err != nil {
		return nil, fmt.Errorf("sealpost: loading the transcript of session %s: %w", s.keyID, err)
	}
	s.conv = conv
	if q := s.meta.Receipts; q != nil {
		err := s.delivered.Load(q.DeliveredFrom, q.DeliveredTo, func(slot int) ([]byte, error) {
			return getRecord(ctx, d.store, s.queueKey(slot))
		})
		if err != nil {
			return nil, fmt.Errorf("sealpost: loading the receipt queue of session %s: %w", s.keyID, err)
		}
	}
	if s.meta.Pending {
		sraw, err := getRecord(ctx, d.store, s.startKey())
		if err != nil {
			return nil, fmt.Errorf("sealpost: loading the session start of %s: %w", s.keyID, err)
		}
		ps := new(statepb.PendingStart)
		if err := record.DecodeVersioned(sraw, ps, func() uint32 { return ps.Version }, "saved session start"); err != nil {
			return nil, err
		}
		s.pending = ps
	}
	s.committed(raw)
	return s, nil
}

// loadRatchet sets the session's ratchet from its split save (the head,
// kept in the session record, and the other parts), with the mark of that
// save.
func (s *session) loadRatchet(get func(ratchet.Part) ([]byte, error)) error {
	r, mark, err := ratchet.LoadSplit(s.meta.RatchetHead, get)
	if err != nil {
		return err
	}
	s.r, s.ratMark = r, mark
	return nil
}

// decode sets the session's metadata from its record; the ratchet,
// transcript and receipt queue are loaded or rewound by the caller.
func (s *session) decode(raw []byte) error {
	m, err := decodeSessionRecord(raw)
	if err != nil {
		return err
	}
	s.meta = m
	return nil
}

// committed records raw and the ratchet parts put last as the session's
// committed records, with its transcript, queue and start as they are now.
func (s *session) committed(raw []byte) {
	s.raw = raw
	for p, v := range s.ratStaged {
		if v != nil {
			s.ratParts[p] = v
		}
	}
	s.ratMark = s.ratStagedMark
	s.ratStaged = [ratchet.SplitParts][]byte{}
	s.savedPending = s.pending
	s.sentSaved = s.conv.LogTotal(transcript.SentLog)
	s.recvSaved = s.conv.LogTotal(transcript.ReceivedLog)
	s.queueSaved = s.delivered.To
}

// rewind returns the session to what it last committed, keeping its
// ratchet when keepRatchet is set (a failed send spent a key, which must
// stay spent).
func (s *session) rewind(keepRatchet bool) {
	s.ratStaged = [ratchet.SplitParts][]byte{}
	if err := s.decode(s.raw); err != nil {
		panic("sealpost: committed session record does not decode: " + err.Error())
	}
	if !keepRatchet {
		err := s.loadRatchet(func(p ratchet.Part) ([]byte, error) { return s.ratParts[p], nil })
		if err != nil {
			panic("sealpost: committed ratchet does not load: " + err.Error())
		}
	}
	if err := s.conv.RestoreHead(s.meta.Transcript); err != nil {
		panic("sealpost: committed transcript head does not restore: " + err.Error())
	}
	if q := s.meta.Receipts; q != nil {
		s.delivered.From, s.delivered.To = q.DeliveredFrom, q.DeliveredTo
	} else {
		s.delivered.From, s.delivered.To = 0, 0
	}
	if s.pending != s.savedPending {
		s.pending, s.start, s.bundle = s.savedPending, nil, nil
	}
}

// put adds the session's changed records to b: the session record (with
// the ratchet's head), the ratchet's other changed parts, the transcript
// and receipt-queue blocks written since the last commit, and the pending
// start when it appears or goes. It returns the new session record.
func (s *session) put(b *Batch) (raw []byte, err error) {
	// The session record, with the ratchet's head inside it; the ratchet's
	// other changed parts as records of their own, encoded with room for
	// the checksum, which putRecord appends in place.
	s.ratStaged = [ratchet.SplitParts][]byte{}
	raw, err = s.encode(func(rec []byte) ([]byte, error) {
		var err error
		rec, s.ratStagedMark, err = s.r.SaveSplit(rec, s.ratMark, record.ChecksumSize, func(p ratchet.Part, v []byte) {
			putRecord(b, s.ratchetKey(p), v)
			s.ratStaged[p] = v
		})
		return rec, err
	})
	if err != nil {
		return nil, err
	}
	putRecord(b, s.recordKey(), raw)
	s.conv.ChangedBlocks(transcript.SentLog, s.sentSaved, record.ChecksumSize, func(slot int, block []byte) {
		putRecord(b, s.logKey(transcript.SentLog, slot), block)
	})
	s.conv.ChangedBlocks(transcript.ReceivedLog, s.recvSaved, record.ChecksumSize, func(slot int, block []byte) {
		putRecord(b, s.logKey(transcript.ReceivedLog, slot), block)
	})
	s.delivered.ChangedBlocks(s.queueSaved, func(slot int, block []byte) {
		putRecord(b, s.queueKey(slot), block)
	})
	switch {
	case s.pending != nil && s.savedPending == nil:
		sraw, err := pbstrict.Marshal(&statepb.PendingStart{Version: record.Layout,
			SessionStart: s.pending.SessionStart, PeerBundle: s.pending.PeerBundle})
		if err != nil {
			return nil, err
		}
		putRecord(b, s.startKey(), sraw)
	case s.pending == nil && s.savedPending != nil:
		b.Delete(s.startKey())
	}
	return raw, nil
}

// deleteAll adds the deletion of every record of the session to b: the
// transcript and queue blocks as far as the committed totals say any were
// written (block k lives in slot k mod the slot count, and every block up
// to the total's was written once), every other record whether or not it
// exists.
func (s *session) deleteAll(b *Batch) {
	b.Delete(s.recordKey())
	for p := range ratchet.SplitParts {
		b.Delete(s.ratchetKey(ratchet.Part(p)))
	}
	b.Delete(s.startKey())
	for slot := range usedSlots(s.sentSaved, transcript.LogBlockSize, transcript.LogSlots) {
		b.Delete(s.logKey(transcript.SentLog, slot))
	}
	for slot := range usedSlots(s.recvSaved, transcript.LogBlockSize, transcript.LogSlots) {
		b.Delete(s.logKey(transcript.ReceivedLog, slot))
	}
	for slot := range usedSlots(s.queueSaved, receiptq.BlockSize, receiptq.Blocks) {
		b.Delete(s.queueKey(slot))
	}
}

// usedSlots returns how many of slots block slots have held a block of a
// log of total entries in blocks of size: slots 0 to the result - 1.
func usedSlots(total uint64, size, slots int) int {
	if total == 0 || size <= 0 || slots <= 0 {
		return 0
	}
	n := (total-1)/uint64(size) + 1
	if n >= uint64(slots) {
		return slots
	}
	return int(n)
}

// sessionByBaseKey returns the session a session start created.
func (p *peer) sessionByBaseKey(base []byte) *session {
	for _, s := range p.sessions {
		if bytes.Equal(s.meta.BaseKey, base) {
			return s
		}
	}
	return nil
}

// unindex removes the peer's tags and kept ids from the device's maps.
func (d *Device) unindex(p *peer) {
	for _, s := range p.indexed {
		for _, t := range s.tags {
			if d.tags[t] == p {
				delete(d.tags, t)
			}
		}
		s.tags, s.tagsOf = s.tags[:0], nil
	}
	p.indexed = p.indexed[:0]
	d.unindexKept(p)
}

// unindexKept removes the peer's kept results from the device's maps.
func (d *Device) unindexKept(p *peer) {
	for _, k := range p.keptIn {
		if d.kept[k.id] == p {
			delete(d.kept, k.id)
		}
		if d.keptEnv[k.env] == p {
			delete(d.keptEnv, k.env)
		}
	}
	p.keptIn = p.keptIn[:0]
}

// index registers the peer's expected tags and kept ids with the device.
// Only sessions whose expected tags changed since they were last indexed
// touch the map: a send or a Done changes none.
func (d *Device) index(p *peer) {
	for _, old := range p.indexed {
		if !slices.Contains(p.sessions, old) {
			for _, t := range old.tags {
				if d.tags[t] == p {
					delete(d.tags, t) // a session that is gone
				}
			}
			old.tags, old.tagsOf = old.tags[:0], nil
		}
	}
	for _, s := range p.sessions {
		if s.tagsOf == s.r && s.tagsGen == s.r.TagGeneration() {
			continue // no message decrypted since: the same tags
		}
		if s.tagsOf == s.r {
			// One message in order since: one tag in, at most one out.
			if tags, gone, hasGone, fresh, ok := s.r.StepExpectedTags(s.tags, s.tagsGen); ok {
				if hasGone && d.tags[gone] == p {
					delete(d.tags, gone)
				}
				d.tags[fresh] = p
				s.tags, s.tagsGen = tags, s.tagsGen+1
				continue
			}
		}
		s.tagsOf, s.tagsGen = s.r, s.r.TagGeneration()
		next := s.r.AppendExpectedTags(s.spare[:0])
		if slices.Equal(next, s.tags) {
			s.spare = next // unchanged: keep the buffer for next time
		} else {
			gone, fresh := diffTags(s.tags, next, d.gone[:0], d.fresh[:0])
			d.gone, d.fresh = gone, fresh
			for _, t := range gone {
				if d.tags[t] == p {
					delete(d.tags, t)
				}
			}
			for _, t := range fresh {
				d.tags[t] = p
			}
			s.tags, s.spare = next, s.tags
		}
	}
	p.indexed = append(p.indexed[:0], p.sessions...)
	d.indexKept(p)
}

// indexKept registers the peer's kept ids with the device. The kept list
// only loses entries (Done, eviction) and gains them at its end (Receive),
// so it is matched against what is registered in one pass, and only the
// entries that changed touch the maps: a backlog received without Done in
// between costs a comparison per kept result, not two map writes.
func (d *Device) indexKept(p *peer) {
	if d.indexKeptFast(p) {
		return
	}
	old, i, j := p.keptIn, 0, 0
	var keep []keptRef
	for ; i < len(old); i++ {
		if j < len(p.kept) && old[i].env == p.kept[j].Env {
			j++
			continue
		}
		k := old[i]
		if d.kept[k.id] == p {
			delete(d.kept, k.id)
		}
		if d.keptEnv[k.env] == p {
			delete(d.keptEnv, k.env)
		}
	}
	// What matched is p.kept[:j], in order; rebuild keptIn in place.
	keep = old[:0]
	for _, k := range p.kept[:j] {
		keep = append(keep, keptRef{id: k.ID, env: k.Env})
	}
	for _, k := range p.kept[j:] {
		ref := keptRef{id: k.ID, env: k.Env}
		d.kept[ref.id], d.keptEnv[ref.env] = p, p
		keep = append(keep, ref)
	}
	p.keptIn = keep
}

// indexKeptFast handles the usual change in O(changes): some of the
// oldest entries evicted and new ones appended. With ids unique and order
// kept, if p.kept starts with registered entry k and holds the newest
// registered entry at position len-k-1, then p.kept begins with exactly
// the registered entries from k on; otherwise it reports false.
func (d *Device) indexKeptFast(p *peer) bool {
	old := p.keptIn
	k := 0
	for k < len(old) && (len(p.kept) == 0 || old[k].env != p.kept[0].Env) {
		k++
	}
	m := len(old) - k // registered entries that stay
	if m > len(p.kept) || (m > 0 && p.kept[m-1].Env != old[len(old)-1].env) {
		return false
	}
	for _, r := range old[:k] {
		if d.kept[r.id] == p {
			delete(d.kept, r.id)
		}
		if d.keptEnv[r.env] == p {
			delete(d.keptEnv, r.env)
		}
	}
	keep := old[k:]
	if k > 0 && m <= 64 {
		// Keep the array's room (a long list is resliced instead, so that
		// a backlog does not copy it for every result).
		keep = append(old[:0], keep...)
	}
	for _, e := range p.kept[m:] {
		ref := keptRef{id: e.ID, env: e.Env}
		d.kept[ref.id], d.keptEnv[ref.env] = p, p
		keep = append(keep, ref)
	}
	p.keptIn = keep
	return true
}

// keptRef is how a kept result is found: by message id (Done) and by
// envelope id (a redelivery in Receive).
type keptRef struct {
	id  MessageID
	env [32]byte
}

// tagLookahead bounds how far diffTags looks ahead for a tag: a window
// slides by the number of messages received, usually one.
const tagLookahead = 80

// diffTags returns the tags of old missing from next and those of next
// missing from old, appended to gone and fresh (buffers the caller
// reuses). Both lists come from ExpectedTags in the same order
// (the receiving window, the next chain's window, skipped keys), and
// between two calls a window slides by a few, so a merge with a short
// lookahead finds the difference in about len(next) comparisons instead
// of a map operation per tag. A tag it cannot match within the lookahead
// is reported as both gone and fresh, which the caller's delete-then-add
// order makes harmless.
func diffTags(old, next, gone, fresh [][16]byte) ([][16]byte, [][16]byte) {
	i, j := 0, 0
	for i < len(old) && j < len(next) {
		if old[i] == next[j] {
			i, j = i+1, j+1
			continue
		}
		if k := indexAhead(next, j, old[i]); k >= 0 {
			fresh = append(fresh, next[j:k]...)
			j = k
			continue
		}
		gone = append(gone, old[i])
		i++
	}
	gone = append(gone, old[i:]...)
	return gone, append(fresh, next[j:]...)
}

// indexAhead returns the index of t in s[from:from+tagLookahead], or -1.
func indexAhead(s [][16]byte, from int, t [16]byte) int {
	for k := from; k < len(s) && k < from+tagLookahead; k++ {
		if s[k] == t {
			return k
		}
	}
	return -1
}

// commitPeer writes p's changes in one Apply: the peer record when it
// changed (or the peer is new), the records of the sessions given and of
// any new session, the deletion of sessions dropped since the last commit,
// the peer's directory entry when it is new, and the device record when pre
// is given; extra holds more of the same operation. On success the new
// state is adopted; on failure p is rewound to what it last committed and
// the error returned.
func (d *Device) commitPeer(ctx context.Context, p *peer, isNew bool, pre *prekeys, extra *Batch, touched ...*session) error {
	return d.commitPeerKeeping(ctx, p, isNew, pre, extra, nil, nil, touched...)
}

// commitPeerKeeping is commitPeer that, on failure, keeps the ratchet of
// spent (a session whose send key is spent), and that also commits tx (nil:
// nothing more): peers evicted in the same Apply, an accepted start.
func (d *Device) commitPeerKeeping(ctx context.Context, p *peer, isNew bool, pre *prekeys, extra *Batch, tx *txn, spent *session, touched ...*session) error {
	b := extra
	if b == nil {
		b = d.newBatch()
	}
	if isNew && tx == nil {
		tx = &txn{} // for its directory entry
	}
	var st staged
	err := d.stage(b, p, touched, &st)
	if err == nil && tx != nil {
		d.stageTxn(b, p, isNew, tx)
	}
	if err == nil && pre != nil {
		err = d.putDevice(b, pre)
	}
	if err == nil {
		err = d.store.Apply(ctx, b)
	}
	d.recycle(b)
	if err != nil {
		d.restore(p, spent)
		d.restoreTxn(tx)
		return err
	}
	if pre != nil {
		d.pre = pre
	}
	d.adoptTxn(tx)
	d.adopt(&st)
	return nil
}

// staged is one peer's part of a commit, adopted once Apply succeeds. It
// holds its sessions inline (a peer has at most maxSessions), so that the
// per-message commit allocates nothing for it.
type staged struct {
	p     *peer
	raw   []byte // the peer record committed
	n     int
	write [maxSessions]*session // write[:n]: the sessions whose records were put
	sraw  [maxSessions][]byte   // and their session records
}

// stage adds p's changed records to b and records them in st (see
// commitPeer).
func (d *Device) stage(b *Batch, p *peer, touched []*session, st *staged) error {
	st.p, st.raw, st.n = p, p.raw, 0
	if p.changed() {
		var err error
		if st.raw, err = p.encode(); err != nil {
			return err
		}
		putRecord(b, p.key, st.raw)
	}
	for _, s := range p.sessions {
		if s.raw != nil && !slices.Contains(touched, s) {
			continue
		}
		if st.n == len(st.write) {
			return fmt.Errorf("%w: peer %s holds more than %d sessions", ErrMalformed, p.addr, maxSessions)
		}
		var err error
		if st.sraw[st.n], err = s.put(b); err != nil {
			return err
		}
		st.write[st.n] = s
		st.n++
	}
	for _, s := range p.saved {
		if !slices.Contains(p.sessions, s) {
			s.deleteAll(b)
		}
	}
	return nil
}

// adopt makes a staged peer's state the committed one.
func (d *Device) adopt(st *staged) {
	p := st.p
	p.saveFields()
	p.raw = st.raw
	for i, s := range st.write[:st.n] {
		s.committed(st.sraw[i])
		d.used(p, s)
	}
	p.saved = append(p.saved[:0], p.sessions...)
	d.place(p)
	d.index(p)
	d.indexReplies(p)
	d.syncPending(p)
}

// restore rewinds p to what it last committed (or forgets it if it was
// never committed). The ratchet of spent, if given, is kept: a failed send
// spent its key, which must never be used again.
func (d *Device) restore(p *peer, spent *session) {
	d.unindex(p)
	if p.raw == nil {
		d.unplace(p)
		return
	}
	rec, id, err := decodePeerRecord(p.raw)
	if err != nil {
		panic("sealpost: committed peer record does not decode: " + err.Error())
	}
	rec.Sessions = nil
	p.rec, p.identity = rec, id
	p.saveFields()
	p.sessions = slices.Clone(p.saved)
	for _, s := range p.sessions {
		s.rewind(s == spent)
	}
	p.kept = p.keptSaved
	d.place(p)
	d.index(p)
}

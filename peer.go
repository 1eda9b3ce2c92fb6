package sealpost

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/statepb"
	"github.com/sealpost/sealpost/ratchet"
	"github.com/sealpost/sealpost/transcript"
)

// peer is everything a Device holds about one peer device: the pinned
// identity, its sessions (current first, each with its transcript and
// receipt queue) and the index of results kept until Done. raw is the record as last committed; after a
// failed commit the peer is rebuilt from it.
type peer struct {
	addr     Address
	key      string
	raw      []byte
	identity keys.PublicIdentity
	rec      *statepb.Peer // everything but sessions and transcripts
	kept     []*statepb.Kept
	keptRaw  []byte // the kept index as last committed
	sessions []*session
	keptIn   []keptRef  // what this peer has in Device.kept and keptHash
	indexed  []*session // the sessions whose tags are in Device.tags
}

// session is one ratchet session and its transcript.
type session struct {
	r    *ratchet.Session
	conv *transcript.Conversation
	// start and bundle cache the parsed PendingStart and PeerBundle while
	// the peer has not replied (built on first use after a reload).
	start  *keys.SessionStart
	bundle *keys.Bundle
	meta   *statepb.PeerSession // base key, initiator, pending start, times
	tags   [][16]byte           // the expected tags last put in Device.tags
	spare  [][16]byte           // a buffer for the next ExpectedTags, reused
}

// confirmed reports whether the peer has shown it holds this session: we
// responded to its start, or it replied to ours.
func (s *session) confirmed() bool { return len(s.meta.PendingStart) == 0 }

func peerKey(a Address) string { return keyPeerPrefix + a.String() }

func keptIndexKey(a Address) string { return keyKeptIndexPrefix + a.String() }

// encodeKept returns the kept index record.
func (p *peer) encodeKept() ([]byte, error) {
	return pbstrict.Marshal(&statepb.KeptIndex{Version: deviceVersion, Kept: p.kept})
}

// decodeKept loads the kept index record (absent: empty).
func (p *peer) decodeKept(raw []byte) error {
	p.keptRaw = raw
	if raw == nil {
		p.kept = nil
		return nil
	}
	rec := new(statepb.KeptIndex)
	if err := decodeVersioned(raw, rec, func() uint32 { return rec.Version }, "saved kept index"); err != nil {
		return err
	}
	for _, k := range rec.Kept {
		if len(k.Id) != 16 || len(k.EnvelopeHash) != 32 {
			return fmt.Errorf("%w: saved kept entry", ErrMalformed)
		}
	}
	p.kept = rec.Kept
	return nil
}

// encode returns the peer's record bytes from its live state.
func (p *peer) encode() ([]byte, error) {
	rec := &statepb.Peer{
		Version: deviceVersion, User: p.addr.User, Device: p.addr.Device,
		Identity:                p.identity.Bytes(),
		Mailbox:                 p.rec.Mailbox,
		IdentityChangedUnixNano: p.rec.IdentityChangedUnixNano,
	}
	for _, s := range p.sessions {
		r, err := s.r.MarshalBinary()
		if err != nil {
			return nil, err
		}
		t, err := s.conv.MarshalBinary()
		if err != nil {
			return nil, err
		}
		m := s.meta
		rec.Sessions = append(rec.Sessions, &statepb.PeerSession{
			Ratchet: r, Transcript: t, BaseKey: m.BaseKey, Initiator: m.Initiator,
			PendingStart: m.PendingStart, PeerBundle: m.PeerBundle, Receipts: m.Receipts,
			CreatedUnixNano: m.CreatedUnixNano, LastReceivedUnixNano: m.LastReceivedUnixNano,
		})
	}
	return pbstrict.MarshalRoom(rec, checksumSize)
}

// decodePeer rebuilds a peer from its record bytes.
func decodePeer(raw []byte) (*peer, error) {
	rec := new(statepb.Peer)
	if err := decodeVersioned(raw, rec, func() uint32 { return rec.Version }, "saved peer"); err != nil {
		return nil, err
	}
	id, err := keys.ParsePublicIdentity(rec.Identity)
	if err != nil {
		return nil, fmt.Errorf("%w: saved peer identity", ErrMalformed)
	}
	p := &peer{addr: Address{User: rec.User, Device: rec.Device}, raw: raw, identity: id, rec: rec}
	p.key = peerKey(p.addr)
	for _, m := range rec.Sessions {
		s := &session{r: new(ratchet.Session), conv: transcript.New(), meta: m}
		if err := s.r.UnmarshalBinary(m.Ratchet); err != nil {
			return nil, err
		}
		if err := s.conv.UnmarshalBinary(m.Transcript); err != nil {
			return nil, err
		}
		m.Ratchet, m.Transcript = nil, nil
		p.sessions = append(p.sessions, s)
	}
	rec.Sessions = nil
	return p, nil
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
		if d.keptHash[k.hash] == p {
			delete(d.keptHash, k.hash)
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
		}
	}
	for _, s := range p.sessions {
		next := slices.AppendSeq(s.spare[:0], s.r.ExpectedTags())
		if slices.Equal(next, s.tags) {
			s.spare = next // unchanged: keep the buffer for next time
		} else {
			gone, fresh := diffTags(s.tags, next)
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

// indexKept registers the peer's kept ids with the device.
func (d *Device) indexKept(p *peer) {
	d.unindexKept(p)
	for _, k := range p.kept {
		ref := keptRef{id: MessageID(k.Id), hash: [32]byte(k.EnvelopeHash)}
		d.kept[ref.id], d.keptHash[ref.hash] = p, p
		p.keptIn = append(p.keptIn, ref)
	}
}

// keptRef is how a kept result is found: by message id (Done) and by
// envelope hash (a redelivery in Receive).
type keptRef struct {
	id   MessageID
	hash [32]byte
}

// tagLookahead bounds how far diffTags looks ahead for a tag: a window
// slides by the number of messages received, usually one.
const tagLookahead = 80

// diffTags returns the tags of old missing from next and those of next
// missing from old. Both lists come from ExpectedTags in the same order
// (the receiving window, the next chain's window, skipped keys), and
// between two calls a window slides by a few, so a merge with a short
// lookahead finds the difference in about len(next) comparisons instead
// of a map operation per tag. A tag it cannot match within the lookahead
// is reported as both gone and fresh, which the caller's delete-then-add
// order makes harmless.
func diffTags(old, next [][16]byte) (gone, fresh [][16]byte) {
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

package sealpost

import (
	"context"

	"github.com/sealpost/sealpost/internal/kept"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/internal/seen"
	"github.com/sealpost/sealpost/internal/sessrec"
)

// The glue between the Device and the records its internal packages
// encode: checksums (internal/record), accepted starts (internal/seen),
// kept results (internal/kept) and the session record (internal/sessrec).

// Every record a Device writes ends with a checksum of its key and value
// (internal/record has the layout and the reason).

// putRecord adds value to b under key, with its checksum appended (in
// place when value has room for it; value itself is unchanged).
func putRecord(b *Batch, key string, value []byte) {
	b.Put(key, record.Frame(value, record.SumScratch(b.key[:], key, value)))
}

// getRecord reads key and checks its checksum. It returns the store's
// error (ErrNotFound when absent) or ErrMalformed for a corrupt record.
func getRecord(ctx context.Context, s Store, key string) ([]byte, error) {
	raw, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return record.Unframe(key, raw)
}

// seenFor returns the accepted starts of a signed prekey (internal/seen),
// reading them from the store the first time.
func (d *Device) seenFor(ctx context.Context, signedPrekeyID uint32) (*seen.Starts, error) {
	if s := d.seen[signedPrekeyID]; s != nil {
		return s, nil
	}
	s, err := seen.Load(signedPrekeyID, func(key string) ([]byte, error) { return getRecord(ctx, d.store, key) })
	if err != nil {
		return nil, err
	}
	d.seen[signedPrekeyID] = s
	return s, nil
}

// A Device keeps every result until Done (internal/kept has the records
// and their layouts); these connect them to the peer and to Incoming.

// encodeKept returns the peer's kept index record.
func (p *peer) encodeKept() ([]byte, error) { return kept.EncodeIndex(p.kept), nil }

// decodeKept loads the kept index record (absent: empty).
func (p *peer) decodeKept(raw []byte) error {
	if raw == nil {
		p.kept, p.keptSaved = nil, nil
		return nil
	}
	entries, err := kept.DecodeIndex(raw)
	if err != nil {
		return err
	}
	p.kept, p.keptSaved = entries, entries
	return nil
}

// encodeKeptResult returns the kept result record of in.
func encodeKeptResult(in *Incoming) ([]byte, error) {
	ptrs, err := encodePointers(in.Attachments)
	if err != nil {
		return nil, err
	}
	return kept.EncodeResult(&kept.Result[MessageID]{Kind: uint8(in.Kind), From: in.From, ID: in.ID, Body: in.Body,
		Delivered: in.Delivered, Read: in.Read, Findings: in.Findings, Attachments: ptrs, Repeated: in.Repeated,
		SyncFor: in.SyncFor}, MaxBodySize)
}

// decodeKeptResult decodes a kept result record, marked Redelivered.
func decodeKeptResult(raw []byte) (*Incoming, error) {
	r, err := kept.DecodeResult[MessageID](raw, MaxBodySize)
	if err != nil {
		return nil, err
	}
	ptrs, err := decodePointers(r.Attachments)
	if err != nil {
		return nil, err
	}
	c := &content{kind: Kind(r.Kind), id: r.ID, body: r.Body, delivered: r.Delivered, read: r.Read, attachments: ptrs}
	c.pb.SyncFor = r.SyncFor
	in := incomingFrom(r.From, c, r.Findings)
	in.Redelivered, in.Repeated = true, r.Repeated
	return in, nil
}

// The session record's codec lives in internal/sessrec; these are its
// names here.
type (
	sessionMeta  = sessrec.Meta
	receiptQueue = sessrec.ReceiptQueue
)

const (
	baseKeySize  = sessrec.BaseKeySize
	sessReceipts = sessrec.FlagReceipts
)

var decodeSessionRecord = sessrec.Decode

// encode returns the session record from its live state, the ratchet's
// head appended by appendRatchet.
func (s *session) encode(appendRatchet func([]byte) ([]byte, error)) ([]byte, error) {
	return sessrec.Encode(s.meta, s.conv, s.pending != nil, s.delivered, appendRatchet)
}

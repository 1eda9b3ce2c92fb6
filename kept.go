package sealpost

import (
	"github.com/sealpost/sealpost/internal/kept"
)

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
		Delivered: in.Delivered, Read: in.Read, Findings: in.Findings, Attachments: ptrs, Repeated: in.Repeated}, MaxBodySize)
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
	in := incomingFrom(r.From, c, r.Findings)
	in.Redelivered, in.Repeated = true, r.Repeated
	return in, nil
}

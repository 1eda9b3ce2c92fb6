package sealpost

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/internal/record"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/statepb"
	"github.com/sealpost/sealpost/transcript"
)

// TestPeerRecordDecode: the peer record round-trips with every field of
// layout 6 set, and each bad value is a typed error.
func TestPeerRecordDecode(t *testing.T) {
	id := keys.GenerateIdentity().Public()
	valid := func() *statepb.Peer {
		return &statepb.Peer{Version: record.Layout, User: "bob", Device: 1, Identity: id.Bytes(), Mailbox: []byte("m"),
			IdentityChangedUnixNano: 5, Sessions: [][]byte{bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)},
			PendingSinceUnixNano: 7, Unconfirmed: true, IdentitySeen: true,
			Dismissed: [][]byte{dismissedKey(transcript.Finding{Kind: transcript.Gap, Seq: 2, ToSeq: 3})}}
	}
	raw, err := pbstrict.Marshal(valid())
	if err != nil {
		t.Fatal(err)
	}
	rec, got, err := decodePeerRecord(raw)
	if err != nil || !got.Equal(id) || !rec.IdentitySeen || len(rec.Dismissed) != 1 || len(rec.Sessions) != 2 {
		t.Fatalf("round trip: %v, %+v", err, rec)
	}
	tests := []struct {
		name string
		edit func(*statepb.Peer)
		want error
	}{
		{"layout 5", func(p *statepb.Peer) { p.Version = 5 }, ErrUnsupportedVersion},
		{"layout 7", func(p *statepb.Peer) { p.Version = 7 }, ErrUnsupportedVersion},
		{"bad identity", func(p *statepb.Peer) { p.Identity = p.Identity[:129] }, ErrMalformed},
		{"five sessions", func(p *statepb.Peer) {
			for i := range 3 {
				p.Sessions = append(p.Sessions, bytes.Repeat([]byte{byte(3 + i)}, 16))
			}
		}, ErrMalformed},
		{"session id of 15 bytes", func(p *statepb.Peer) { p.Sessions[1] = p.Sessions[1][:15] }, ErrMalformed},
		{"a session twice", func(p *statepb.Peer) { p.Sessions[1] = p.Sessions[0] }, ErrMalformed},
		{"dismissed entry of 17 bytes", func(p *statepb.Peer) { p.Dismissed[0] = p.Dismissed[0][:17] }, ErrMalformed},
		{"dismissed entry of 19 bytes", func(p *statepb.Peer) { p.Dismissed[0] = append(p.Dismissed[0], 0) }, ErrMalformed},
		{"65 dismissed findings", func(p *statepb.Peer) {
			for range maxDismissed {
				p.Dismissed = append(p.Dismissed, p.Dismissed[0])
			}
		}, ErrMalformed},
		{"64 dismissed findings", func(p *statepb.Peer) {
			for range maxDismissed - 1 {
				p.Dismissed = append(p.Dismissed, p.Dismissed[0])
			}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := valid()
			tc.edit(p)
			raw, err := pbstrict.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := decodePeerRecord(raw); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("decodePeerRecord: %v, want %v", err, tc.want)
			}
		})
	}
}

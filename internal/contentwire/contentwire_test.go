package contentwire

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

func id16(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

// baseContent is a message content with every field the Device sets.
func baseContent() *sealedpb.Content {
	return &sealedpb.Content{Version: 1, Id: id16(1), Kind: 1, Body: []byte("hello"), Delivered: [][]byte{id16(2)},
		Read: [][]byte{id16(3)}, ReceiptHash: id16(4), Seq: 7, Prev: bytes.Repeat([]byte{5}, 32), AckCount: 3,
		AckHash: bytes.Repeat([]byte{6}, 32), AckAbove: 2, SenderMailbox: []byte("mailbox")}
}

// FuzzContentCodec holds the hand-written Content codec to the protobuf
// library: Parse accepts exactly what pbstrict.Unmarshal accepts,
// with the same fields, and Append re-encodes what it accepted to
// the library's deterministic bytes.
func FuzzContentCodec(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/content/*.bin")
	for _, name := range files {
		raw, _ := os.ReadFile(name)
		f.Add(raw)
	}
	f.Add(protowire.AppendVarint(protowire.AppendTag(nil, fieldKind, protowire.VarintType), 1<<32+2))
	f.Add(protowire.AppendVarint(protowire.AppendTag(nil, fieldID, protowire.VarintType), 1))
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldDelivered, protowire.BytesType), nil))
	f.Add(protowire.AppendFixed32(protowire.AppendTag(nil, 20, protowire.Fixed32Type), 1))
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldAttachments, protowire.BytesType), []byte("p")))
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldResume, protowire.BytesType), make([]byte, 24)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var mine, lib sealedpb.Content
		errMine, errLib := Parse(raw, &mine), pbstrict.Unmarshal(raw, &lib)
		if (errMine == nil) != (errLib == nil) {
			t.Fatalf("Parse: %v, the protobuf library: %v", errMine, errLib)
		}
		if errMine != nil {
			return
		}
		if !proto.Equal(&mine, &lib) {
			t.Fatal("Parse and the protobuf library decode different fields")
		}
		want, err := pbstrict.Marshal(&lib)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, &mine); !bytes.Equal(got, want) || Size(&mine) != len(want) {
			t.Fatalf("Append: %d bytes (size %d), the protobuf library: %d", len(got), Size(&mine), len(want))
		}
	})
}

// TestContentCodecMatchesProtobuf: Append writes the protobuf
// library's deterministic encoding, and Size its length, for every
// shape of content the Device sends and for random field values.
func TestContentCodecMatchesProtobuf(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 5))
	randBytes := func(max int) []byte {
		if rnd.IntN(4) == 0 {
			return nil
		}
		b := make([]byte, rnd.IntN(max+1))
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	randVarint := func() uint64 {
		switch rnd.IntN(4) {
		case 0:
			return 0
		case 1:
			return uint64(rnd.IntN(200))
		}
		return rnd.Uint64() >> rnd.IntN(64)
	}
	cases := []*sealedpb.Content{baseContent(), {}, {Version: 1, Delivered: [][]byte{nil, id16(2)}, Read: [][]byte{{}}}}
	for range 3000 {
		c := &sealedpb.Content{Version: uint32(randVarint()), Id: randBytes(20), Kind: uint32(randVarint()),
			Body: randBytes(300), ReceiptHash: randBytes(40), Seq: randVarint(), Prev: randBytes(40),
			AckCount: randVarint(), AckHash: randBytes(40), AckAbove: randVarint(), SenderMailbox: randBytes(70)}
		for range rnd.IntN(4) {
			c.Delivered = append(c.Delivered, randBytes(20))
		}
		for range rnd.IntN(4) {
			c.Read = append(c.Read, randBytes(20))
		}
		for range rnd.IntN(3) {
			c.Attachments = append(c.Attachments, randBytes(120))
		}
		for range rnd.IntN(3) {
			c.Resume = append(c.Resume, randBytes(30))
		}
		cases = append(cases, c)
	}
	for i, c := range cases {
		want, err := pbstrict.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := Append(nil, c); !bytes.Equal(got, want) || Size(c) != len(want) {
			t.Fatalf("case %d: Append gives %x (size %d), the protobuf library %x", i, got, Size(c), want)
		}
		var back sealedpb.Content
		if err := Parse(want, &back); err != nil || !proto.Equal(&back, c) {
			t.Fatalf("case %d: Parse: %v", i, err)
		}
	}
}

package sealpost

import (
	"bytes"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

var updateContent = flag.Bool("update-content", false, "rewrite testdata/content golden files")

func id16(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

func baseContent() *sealedpb.Content {
	return &sealedpb.Content{Version: contentVersion, Id: id16(1), Kind: uint32(KindMessage),
		Body: []byte("hello"), Seq: 1, Prev: make([]byte, 32), AckHash: make([]byte, 32)}
}

func TestDecodeContent(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *sealedpb.Content)
		want error
	}{
		{"message", func(c *sealedpb.Content) {}, nil},
		{"message with receipts", func(c *sealedpb.Content) { c.Read = [][]byte{id16(2)}; c.ReceiptHash = make([]byte, 32) }, nil},
		{"delivery receipt", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.Delivered, c.ReceiptHash = uint32(KindDelivered), nil, [][]byte{id16(2)}, make([]byte, 32)
		}, nil},
		{"read receipt", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.Read, c.ReceiptHash = uint32(KindRead), nil, [][]byte{id16(2)}, make([]byte, 32)
		}, nil},
		{"version 0", func(c *sealedpb.Content) { c.Version = 0 }, ErrUnsupportedVersion},
		{"version 2", func(c *sealedpb.Content) { c.Version = 2 }, ErrUnsupportedVersion},
		{"short id", func(c *sealedpb.Content) { c.Id = c.Id[:15] }, ErrMalformed},
		{"kind 0", func(c *sealedpb.Content) { c.Kind = 0 }, ErrMalformed},
		{"kind 4", func(c *sealedpb.Content) { c.Kind = 4 }, ErrMalformed},
		{"kind 257 (1 mod 256)", func(c *sealedpb.Content) { c.Kind = 257 }, ErrMalformed},
		{"receipt with a body", func(c *sealedpb.Content) {
			c.Kind, c.Delivered, c.ReceiptHash = uint32(KindDelivered), [][]byte{id16(2)}, make([]byte, 32)
		}, ErrMalformed},
		{"receipt without ids", func(c *sealedpb.Content) { c.Kind, c.Body = uint32(KindRead), nil }, ErrMalformed},
		{"bad receipt id", func(c *sealedpb.Content) { c.Read, c.ReceiptHash = [][]byte{id16(2)[:3]}, make([]byte, 32) }, ErrMalformed},
		{"receipts without hash", func(c *sealedpb.Content) { c.Read = [][]byte{id16(2)} }, ErrMalformed},
		{"hash without receipts", func(c *sealedpb.Content) { c.ReceiptHash = make([]byte, 32) }, ErrMalformed},
		{"too many ids", func(c *sealedpb.Content) {
			for range maxReceiptBatch + 1 {
				c.Read = append(c.Read, id16(3))
			}
			c.ReceiptHash = make([]byte, 32)
		}, ErrMalformed},
		{"seq 0", func(c *sealedpb.Content) { c.Seq = 0 }, ErrMalformed},
		{"short prev", func(c *sealedpb.Content) { c.Prev = c.Prev[:31] }, ErrMalformed},
		{"body too large", func(c *sealedpb.Content) { c.Body = make([]byte, MaxBodySize+1) }, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := baseContent()
			tt.edit(c)
			raw, err := pbstrict.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeContent(raw)
			if !errors.Is(err, tt.want) {
				t.Fatalf("decodeContent: %v, want %v", err, tt.want)
			}
			if err == nil && (got.kind != Kind(c.Kind) || !bytes.Equal(got.body, c.Body)) {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
	if _, err := decodeContent([]byte{0xff, 0xff}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("garbage: %v", err)
	}
}

// TestContentGolden pins the Content encoding: a change of the wire format
// fails here. Regenerate with -update-content.
func TestContentGolden(t *testing.T) {
	cases := map[string]*sealedpb.Content{"message": baseContent()}
	r := baseContent()
	r.Kind, r.Body, r.Read, r.Delivered, r.ReceiptHash = uint32(KindRead), nil, [][]byte{id16(2)}, [][]byte{id16(3)}, bytes.Repeat([]byte{9}, 32)
	r.Seq, r.AckCount, r.AckAbove, r.SenderMailbox = 7, 5, 7, []byte("mbx")
	cases["read_receipt"] = r
	v0 := baseContent()
	v0.Version = 2
	cases["version_unsupported"] = v0
	for name, c := range cases {
		raw, err := pbstrict.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "content", name+".bin")
		if *updateContent {
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(raw, want) {
			t.Fatalf("%s: encoding differs from %s (%v)", name, path, err)
		}
		_, err = decodeContent(want)
		if (name == "version_unsupported") != errors.Is(err, ErrUnsupportedVersion) || (name != "version_unsupported" && err != nil) {
			t.Fatalf("%s: decode: %v", name, err)
		}
	}
}

// FuzzDecodeContent checks the content decoder never panics, returns typed
// errors, and that what it accepts re-encodes to an equivalent content.
func FuzzDecodeContent(f *testing.F) {
	files, _ := filepath.Glob("testdata/content/*.bin")
	for _, name := range files {
		raw, _ := os.ReadFile(name)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := decodeContent(raw)
		if err != nil {
			if c != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrTooLarge)) {
				t.Fatalf("untyped error or non-nil result: %v", err)
			}
			return
		}
		again, err := pbstrict.Marshal(&c.pb)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := decodeContent(again)
		if err != nil || c2.id != c.id || c2.kind != c.kind || !bytes.Equal(c2.body, c.body) {
			t.Fatalf("re-encoded content does not decode the same: %v", err)
		}
	})
}

// FuzzContentCodec holds the hand-written Content codec to the protobuf
// library: parseContent accepts exactly what pbstrict.Unmarshal accepts,
// with the same fields, and appendContent re-encodes what it accepted to
// the library's deterministic bytes.
func FuzzContentCodec(f *testing.F) {
	files, _ := filepath.Glob("testdata/content/*.bin")
	for _, name := range files {
		raw, _ := os.ReadFile(name)
		f.Add(raw)
	}
	f.Add(protowire.AppendVarint(protowire.AppendTag(nil, fieldKind, protowire.VarintType), 1<<32+2))
	f.Add(protowire.AppendVarint(protowire.AppendTag(nil, fieldID, protowire.VarintType), 1))
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, fieldDelivered, protowire.BytesType), nil))
	f.Add(protowire.AppendFixed32(protowire.AppendTag(nil, 20, protowire.Fixed32Type), 1))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var mine, lib sealedpb.Content
		errMine, errLib := parseContent(raw, &mine), pbstrict.Unmarshal(raw, &lib)
		if (errMine == nil) != (errLib == nil) {
			t.Fatalf("parseContent: %v, the protobuf library: %v", errMine, errLib)
		}
		if errMine != nil {
			return
		}
		if !proto.Equal(&mine, &lib) {
			t.Fatal("parseContent and the protobuf library decode different fields")
		}
		want, err := pbstrict.Marshal(&lib)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendContent(nil, &mine); !bytes.Equal(got, want) || contentSize(&mine) != len(want) {
			t.Fatalf("appendContent: %d bytes (size %d), the protobuf library: %d", len(got), contentSize(&mine), len(want))
		}
	})
}

// TestContentCodecMatchesProtobuf: appendContent writes the protobuf
// library's deterministic encoding, and contentSize its length, for every
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
		cases = append(cases, c)
	}
	for i, c := range cases {
		want, err := pbstrict.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendContent(nil, c); !bytes.Equal(got, want) || contentSize(c) != len(want) {
			t.Fatalf("case %d: appendContent gives %x (size %d), the protobuf library %x", i, got, contentSize(c), want)
		}
		var back sealedpb.Content
		if err := parseContent(want, &back); err != nil || !proto.Equal(&back, c) {
			t.Fatalf("case %d: parseContent: %v", i, err)
		}
	}
}

package sealpost

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sealpost/sealpost/envelope/attach"
	"github.com/sealpost/sealpost/internal/pbstrict"
	"github.com/sealpost/sealpost/keys"
	"github.com/sealpost/sealpost/proto/sealedpb"
)

var updateContent = flag.Bool("update-content", false, "rewrite testdata/content golden files")

func id16(b byte) []byte { return bytes.Repeat([]byte{b}, 16) }

// pointerBytes is a valid attachment pointer's encoding.
func pointerBytes(name string) []byte {
	raw, err := (&attach.Pointer{ID: "blob-" + name, Key: attach.GenerateKey(), Length: 10, Name: name}).MarshalBinary()
	if err != nil {
		panic(err)
	}
	return raw
}

// testAccount returns a deterministic account key.
func testAccount(b byte) *keys.AccountKey {
	k, err := keys.NewAccountKey(bytes.Repeat([]byte{b}, keys.AccountKeySize))
	if err != nil {
		panic(err)
	}
	return k
}

// testList returns a deterministic signed device list of one device.
func testList() []byte {
	id, err := keys.NewIdentityFromSeed(bytes.Repeat([]byte{3}, keys.IdentitySeedSize))
	if err != nil {
		panic(err)
	}
	l, err := keys.NewDeviceList(testAccount(1), nil, time.Unix(1_800_000_000, 0), time.Unix(1_900_000_000, 0),
		[]keys.ListedDevice{{ID: 1, Identity: id.Public(), Name: "phone"}})
	if err != nil {
		panic(err)
	}
	return l.Bytes()
}

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
		{"kind 5", func(c *sealedpb.Content) { c.Kind = 5 }, ErrMalformed},
		{"account notice", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.DeviceList, c.OwnList, c.PeerList = uint32(KindAccount), nil, testList(), 2, 1
		}, nil},
		{"account content without a list", func(c *sealedpb.Content) { c.Kind, c.Body = uint32(KindAccount), nil }, ErrMalformed},
		{"account content with a body", func(c *sealedpb.Content) { c.Kind, c.DeviceList = uint32(KindAccount), testList() }, ErrMalformed},
		{"account content with receipts", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.DeviceList = uint32(KindAccount), nil, testList()
			c.Read, c.ReceiptHash = [][]byte{id16(2)}, make([]byte, 32)
		}, ErrMalformed},
		{"provisioning", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.DeviceList, c.Provision, c.ProvisionMac = uint32(KindAccount), nil, testList(), []byte{8, 1}, make([]byte, 32)
		}, nil},
		{"provisioning without a MAC", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.DeviceList, c.Provision = uint32(KindAccount), nil, testList(), []byte{8, 1}
		}, ErrMalformed},
		{"provisioning on a message", func(c *sealedpb.Content) { c.Provision, c.ProvisionMac = []byte{8, 1}, make([]byte, 32) }, ErrMalformed},
		{"sync copy", func(c *sealedpb.Content) { c.SyncFor = "bob" }, nil},
		{"reply mailbox", func(c *sealedpb.Content) { c.ReplyMailbox = append(make([]byte, 8), id16(1)...) }, nil},
		{"reply mailbox without an id", func(c *sealedpb.Content) { c.ReplyMailbox = make([]byte, 8) }, ErrMalformed},
		{"reply mailbox id over 64 bytes", func(c *sealedpb.Content) { c.ReplyMailbox = make([]byte, 8+65) }, ErrMalformed},
		{"sync user over the bound", func(c *sealedpb.Content) { c.SyncFor = strings.Repeat("b", 257) }, ErrMalformed},
		{"read sync", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.SyncFor, c.ReadSync = uint32(KindRead), nil, "bob", [][]byte{id16(4)}
		}, nil},
		{"read sync without a user", func(c *sealedpb.Content) { c.Kind, c.Body, c.ReadSync = uint32(KindRead), nil, [][]byte{id16(4)} }, ErrMalformed},
		{"read sync on a message", func(c *sealedpb.Content) { c.SyncFor, c.ReadSync = "bob", [][]byte{id16(4)} }, ErrMalformed},
		{"read sync id of 15 bytes", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.SyncFor, c.ReadSync = uint32(KindRead), nil, "bob", [][]byte{id16(4)[:15]}
		}, ErrMalformed},
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
		{"message with attachments", func(c *sealedpb.Content) { c.Attachments = [][]byte{pointerBytes("a"), pointerBytes("b")} }, nil},
		{"receipt with an attachment", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.Delivered, c.ReceiptHash = uint32(KindDelivered), nil, [][]byte{id16(2)}, make([]byte, 32)
			c.Attachments = [][]byte{pointerBytes("a")}
		}, ErrMalformed},
		{"bad attachment", func(c *sealedpb.Content) { c.Attachments = [][]byte{pointerBytes("a")[:20]} }, ErrMalformed},
		{"empty attachment", func(c *sealedpb.Content) { c.Attachments = [][]byte{{}} }, ErrMalformed},
		{"too many attachments", func(c *sealedpb.Content) {
			for range MaxAttachments + 1 {
				c.Attachments = append(c.Attachments, pointerBytes("a"))
			}
		}, ErrMalformed},
		{"resume of four sessions", func(c *sealedpb.Content) {
			for i := range maxSessions {
				c.Resume = append(c.Resume, resumePoint{session: [16]byte(id16(byte(i + 1))), held: uint64(i)}.encode())
			}
		}, nil},
		{"receipt with a resume", func(c *sealedpb.Content) {
			c.Kind, c.Body, c.Delivered, c.ReceiptHash = uint32(KindDelivered), nil, [][]byte{id16(2)}, make([]byte, 32)
			c.Resume = [][]byte{resumePoint{session: [16]byte(id16(1))}.encode()}
		}, nil},
		{"resume of five sessions", func(c *sealedpb.Content) {
			for i := range maxSessions + 1 {
				c.Resume = append(c.Resume, resumePoint{session: [16]byte(id16(byte(i + 1)))}.encode())
			}
		}, ErrMalformed},
		{"resume entry of 23 bytes", func(c *sealedpb.Content) { c.Resume = [][]byte{make([]byte, 23)} }, ErrMalformed},
		{"resume entry of 25 bytes", func(c *sealedpb.Content) { c.Resume = [][]byte{make([]byte, 25)} }, ErrMalformed},
		{"resume naming a session twice", func(c *sealedpb.Content) {
			e := resumePoint{session: [16]byte(id16(1)), held: 3}
			c.Resume = [][]byte{e.encode(), e.encode()}
		}, ErrMalformed},
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
	key, err := attach.NewKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ptr, err := (&attach.Pointer{ID: "blob-0001", Key: key, Length: 70000, Digest: [32]byte{1, 2, 3},
		MediaType: "application/pdf", Name: "plan.pdf"}).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	a := baseContent()
	a.Attachments = [][]byte{ptr}
	cases["message_attachment"] = a
	res := baseContent()
	res.Resume = [][]byte{resumePoint{session: [16]byte(id16(5)), held: 41}.encode(), resumePoint{session: [16]byte(id16(6)), held: 0}.encode()}
	cases["message_resume"] = res
	notice := baseContent()
	notice.Kind, notice.Body, notice.DeviceList, notice.OwnList, notice.PeerList = uint32(KindAccount), nil, testList(), 1, 3
	cases["account_notice"] = notice
	syncCopy := baseContent()
	syncCopy.SyncFor, syncCopy.OwnList, syncCopy.PeerList = "bob", 1, 1
	cases["sync_copy"] = syncCopy
	readSync := baseContent()
	readSync.Kind, readSync.Body, readSync.SyncFor, readSync.ReadSync = uint32(KindRead), nil, "bob", [][]byte{id16(4), id16(5)}
	cases["read_sync"] = readSync
	prov := baseContent()
	pv, err := pbstrict.Marshal(&sealedpb.Provision{Version: 1, Accounts: []*sealedpb.PinnedAccount{
		{User: "bob", AccountKey: testAccount(2).Public().Bytes(), Version: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	prov.Kind, prov.Body, prov.DeviceList, prov.Provision, prov.ProvisionMac = uint32(KindAccount), nil, testList(), pv, bytes.Repeat([]byte{6}, 32)
	cases["provisioning"] = prov
	reply := baseContent()
	reply.ReplyMailbox = append([]byte{0, 0, 0, 0, 0, 0, 0, 2}, id16(8)...)
	cases["message_reply_mailbox"] = reply
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

// FuzzDecodeProvision checks the provisioning decoder never panics and
// returns typed errors, and that what it accepts names each account once.
func FuzzDecodeProvision(f *testing.F) {
	raw, _ := os.ReadFile(filepath.Join("testdata", "content", "provisioning.bin"))
	var c sealedpb.Content
	if err := pbstrict.Unmarshal(raw, &c); err == nil {
		f.Add(c.Provision)
	}
	f.Add([]byte{8, 1})
	f.Fuzz(func(t *testing.T, raw []byte) {
		pv, err := decodeProvision(raw, "alice")
		if err != nil {
			if pv != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrTooLarge)) {
				t.Fatalf("untyped error or non-nil result: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, a := range pv.accounts {
			if seen[a.user] || a.user == "alice" || a.key.IsZero() {
				t.Fatalf("accepted account %q twice, ours, or without a key", a.user)
			}
			seen[a.user] = true
		}
	})
}

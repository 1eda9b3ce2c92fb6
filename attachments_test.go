package sealpost_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/sealpost/sealpost"
	"github.com/sealpost/sealpost/envelope/attach"
)

// memBlobs is an attach.BlobStore in memory, as a relay's blob store.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
	size  map[string]int64
}

func newMemBlobs() *memBlobs { return &memBlobs{blobs: map[string][]byte{}, size: map[string]int64{}} }

func (m *memBlobs) Create(_ context.Context, size int64) (string, string, error) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	m.size[id] = size
	return id, id, nil
}

func (m *memBlobs) Put(_ context.Context, upload string, off int64, r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if int64(len(m.blobs[upload])) != off {
		return fmt.Errorf("offset %d, have %d", off, len(m.blobs[upload]))
	}
	m.blobs[upload] = append(m.blobs[upload], data...)
	return nil
}

func (m *memBlobs) Offset(_ context.Context, upload string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.blobs[upload])), nil
}

func (m *memBlobs) Get(_ context.Context, id string, off, n int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := m.blobs[id]
	if int64(len(b)) != m.size[id] || off < 0 || off+n > int64(len(b)) {
		return nil, errors.New("no such range")
	}
	return io.NopCloser(bytes.NewReader(b[off : off+n])), nil
}

// testPointer returns a valid pointer to nothing in particular.
func testPointer(name string) *attach.Pointer {
	return &attach.Pointer{ID: "blob-" + name, Key: attach.GenerateKey(), Length: 1234, MediaType: "text/plain", Name: name}
}

// TestSendAttachments (issue 17): a message carries its attachment
// pointers inside the seal; the receiver gets them in Incoming, also on
// a redelivery (from the kept result) and after a restart; the file they
// point to downloads to the same bytes. A receipt never carries any; too
// many, or an invalid pointer, is refused before anything is spent.
func TestSendAttachments(t *testing.T) {
	c := newClock()
	alice, bob := newParty(t, "alice", c), newParty(t, "bob", c)
	connect(t, alice, bob)
	blobs := newMemBlobs()
	file := bytes.Repeat([]byte("a document line\n"), 10_000)
	p, err := attach.Upload(ctx, blobs, bytes.NewReader(file), attach.WithName("doc.txt"), attach.WithMediaType("text/plain"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := alice.Send(ctx, bob.addr, []byte("see attached"), p, testPointer("second.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out.Envelope, []byte("doc.txt")) || bytes.Contains(out.Envelope, []byte(p.ID)) {
		t.Fatal("the envelope shows the attachment in clear")
	}
	in, err := bob.Receive(ctx, out.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	check := func(in *sealpost.Incoming, what string) {
		t.Helper()
		if len(in.Attachments) != 2 || in.Attachments[0].ID != p.ID || in.Attachments[0].Name != "doc.txt" ||
			!in.Attachments[0].Key.Equal(p.Key) || in.Attachments[0].Digest != p.Digest || in.Attachments[1].Name != "second.txt" {
			t.Fatalf("%s: attachments %v", what, in.Attachments)
		}
	}
	check(in, "received")
	var got bytes.Buffer
	if err := attach.Download(ctx, blobs, in.Attachments[0], &got); err != nil || !bytes.Equal(got.Bytes(), file) {
		t.Fatalf("download: %v, %d bytes", err, got.Len())
	}
	again, err := bob.Receive(ctx, out.Envelope)
	if err != nil || !again.Redelivered {
		t.Fatalf("redelivery: %v", err)
	}
	check(again, "redelivered")
	bob = dmReopen(t, bob, c)
	after, err := bob.Receive(ctx, out.Envelope)
	if err != nil || !after.Redelivered {
		t.Fatalf("redelivery after a restart: %v", err)
	}
	check(after, "redelivered after a restart")

	// Refused before a key is spent: the next message still arrives in
	// order with no gap.
	many := make([]*attach.Pointer, sealpost.MaxAttachments+1)
	for i := range many {
		many[i] = testPointer(fmt.Sprint("f", i))
	}
	bad := testPointer("x")
	bad.Name = "../etc/passwd"
	for name, ptrs := range map[string][]*attach.Pointer{
		"too many":    many,
		"nil":         {nil},
		"bad name":    {bad},
		"empty id":    {{Key: attach.GenerateKey(), Name: "a"}},
		"missing key": {{ID: "blob", Name: "a"}},
	} {
		if _, err := alice.Send(ctx, bob.addr, []byte("x"), ptrs...); !errors.Is(err, sealpost.ErrMalformed) && !errors.Is(err, sealpost.ErrTooLarge) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := bob.Done(ctx, in.ID); err != nil {
		t.Fatal(err)
	}
	next := receive(t, bob, send(t, alice, bob, "no attachments"))
	if len(next.Attachments) != 0 || len(next.Findings) != 0 || !strings.HasPrefix(string(next.Body), "no") {
		t.Fatalf("the next message: %d attachments, findings %v", len(next.Attachments), next.Findings)
	}
}

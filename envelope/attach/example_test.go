package attach_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/sealpost/sealpost/envelope/attach"
)

// Alice uploads a file and sends the pointer inside a sealed message; Bob
// parses the pointer and downloads the file. The store (here in memory; a
// relay's blob store in an app) sees one encrypted blob of a padded size.
func Example() {
	ctx := context.Background()
	store := newMemStore()

	// Alice: encrypt and upload, then marshal the pointer into her message.
	photo := strings.NewReader(strings.Repeat("pixels ", 10_000))
	p, err := attach.Upload(ctx, store, photo, attach.WithMediaType("image/png"), attach.WithName("cat.png"))
	if err != nil {
		log.Fatal(err)
	}
	msg, err := p.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("store: one blob of %d bytes\n", len(store.stored(p.ID)))

	// Bob: the pointer arrives in a message he opened.
	q, err := attach.ParsePointer(msg)
	if err != nil {
		log.Fatal(err)
	}
	var file bytes.Buffer
	if err := attach.Download(ctx, store, q, &file); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob: %s, %s, %d bytes\n", q.Name, q.MediaType, file.Len())
	// Output:
	// store: one blob of 72826 bytes
	// bob: cat.png, image/png, 70000 bytes
}

// Encrypting with a Writer and reading back with a Reader: the file is
// known complete only when Read returns io.EOF.
func ExampleNewWriter() {
	key := attach.GenerateKey()
	var blob bytes.Buffer
	w, err := attach.NewWriter(&blob, key)
	if err != nil {
		log.Fatal(err)
	}
	io.WriteString(w, "meeting notes")
	if err := w.Close(); err != nil { // pads and writes the final chunk
		log.Fatal(err)
	}
	size, _ := attach.EncryptedSize(13)
	fmt.Println("blob bytes:", blob.Len(), size)

	r, err := attach.NewReader(&blob, key)
	if err != nil {
		log.Fatal(err)
	}
	file, err := io.ReadAll(r) // nil only once the final chunk checked out
	fmt.Printf("%q %v\n", file, err)
	// Output:
	// blob bytes: 4185 4185
	// "meeting notes" <nil>
}

// A blob cut short is never passed off as the file: the reader fails at
// its end.
func ExampleNewReader() {
	key := attach.GenerateKey()
	var blob bytes.Buffer
	w, _ := attach.NewWriter(&blob, key)
	w.Write(make([]byte, 200_000))
	w.Close()

	cut := blob.Bytes()[:blob.Len()-attach.TrailerCTSize]
	r, err := attach.NewReader(bytes.NewReader(cut), key)
	if err != nil {
		log.Fatal(err)
	}
	_, err = io.Copy(io.Discard, r)
	fmt.Println("truncated:", errors.Is(err, attach.ErrTruncated))
	// Output:
	// truncated: true
}

// Random access decrypts only the chunks that hold the bytes asked for,
// here the last 5 bytes of a 1 MB file.
func ExampleNewReaderAt() {
	key := attach.GenerateKey()
	var blob bytes.Buffer
	w, _ := attach.NewWriter(&blob, key)
	w.Write(bytes.Repeat([]byte("0123456789"), 100_000))
	w.Close()

	r, err := attach.NewReaderAt(bytes.NewReader(blob.Bytes()), int64(blob.Len()), key)
	if err != nil {
		log.Fatal(err)
	}
	tail := make([]byte, 5)
	if _, err := r.ReadAt(tail, r.Size()-5); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes, ending %q\n", r.Size(), tail)
	// Output:
	// 1000000 bytes, ending "56789"
}

// Upload resumes a failed transfer where the store stopped, with progress
// reports along the way.
func ExampleUpload() {
	ctx := context.Background()
	store := newMemStore()
	store.putFail = []int64{100_000} // the connection drops once
	var last int64
	p, err := attach.Upload(ctx, store, bytes.NewReader(make([]byte, 300_000)),
		attach.WithProgress(func(done, total int64) { last = done }))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("length:", p.Length, "progress at the end:", last, "of", len(store.stored(p.ID)))
	// Output:
	// length: 300000 progress at the end: 314416 of 314416
}

// Download checks every chunk and, at the end, the blob's digest: a store
// that serves another blob under the id is caught.
func ExampleDownload() {
	ctx := context.Background()
	store := newMemStore()
	p, _ := attach.Upload(ctx, store, strings.NewReader("the real file"))
	q, _ := attach.Upload(ctx, store, strings.NewReader("another file!"))
	store.serve = map[string][]byte{p.ID: store.stored(q.ID)} // a lying store

	var out bytes.Buffer
	err := attach.Download(ctx, store, p, &out)
	fmt.Println("wrong blob:", errors.Is(err, attach.ErrWrongBlob), "bytes written:", out.Len())
	// Output:
	// wrong blob: true bytes written: 0
}

// Pointers have one strict encoding; a pointer prints no secrets.
func ExampleParsePointer() {
	key, _ := attach.NewKey(bytes.Repeat([]byte{1}, attach.KeySize))
	p := &attach.Pointer{ID: "blob-1", Key: key, Length: 1234, MediaType: "text/plain", Name: "a.txt"}
	b, _ := p.MarshalBinary()
	q, err := attach.ParsePointer(b)
	fmt.Println(q, err)
	_, err = attach.ParsePointer(append(b, 0))
	fmt.Println("trailing byte:", errors.Is(err, attach.ErrMalformed))
	// Output:
	// attach.Pointer{1234 bytes, "text/plain", digest 00000000…} <nil>
	// trailing byte: true
}

// Sizes: every file pads to a bucket; the blob adds a header, a trailer
// and a tag per chunk.
func ExampleEncryptedSize() {
	for _, n := range []int64{0, 5000, 1 << 20} {
		size, _ := attach.EncryptedSize(n)
		fmt.Println(n, attach.PaddedLength(n), size)
	}
	// Output:
	// 0 4096 4185
	// 5000 5225 5314
	// 1048576 1064182 1064527
}

// Keys are made fresh per file; NewKey takes back what Bytes gave.
func ExampleGenerateKey() {
	k := attach.GenerateKey()
	k2, err := attach.NewKey(k.Bytes())
	fmt.Println(k2.Equal(k), err, k)
	// Output:
	// true <nil> attach.Key{…}
}

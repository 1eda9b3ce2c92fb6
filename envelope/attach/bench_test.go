package attach_test

import (
	"bytes"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/sealpost/sealpost/envelope/attach"
)

// The throughput benchmarks encrypt and decrypt an 8 MiB file; compare
// them with BenchmarkRawChaCha20Poly1305, which seals and opens 64 KiB
// chunks with one key and nothing else (the floor of the format):
//
//	go test -run '^$' -bench . -benchtime 2s ./envelope/attach

const benchLength = 8 << 20

func BenchmarkRawChaCha20Poly1305(b *testing.B) {
	aead, _ := chacha20poly1305.New(make([]byte, 32))
	nonce := make([]byte, chacha20poly1305.NonceSize)
	buf := make([]byte, attach.ChunkSize, attach.ChunkSize+16)
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(benchLength)
		for b.Loop() {
			for i := range benchLength / attach.ChunkSize {
				nonce[0] = byte(i)
				aead.Seal(buf[:0], nonce, buf[:attach.ChunkSize], nil)
			}
		}
	})
	sealed := aead.Seal(nil, nonce, buf[:attach.ChunkSize], nil)
	b.Run("open", func(b *testing.B) {
		b.SetBytes(benchLength)
		for b.Loop() {
			for range benchLength / attach.ChunkSize {
				copy(buf[:cap(buf)], sealed)
				if _, err := aead.Open(buf[:0], nonce, buf[:cap(buf)], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	key := attach.GenerateKey()
	file := fileOf("bench", benchLength)
	b.SetBytes(benchLength)
	b.ReportAllocs()
	for b.Loop() {
		w, err := attach.NewWriter(io.Discard, key)
		if err != nil {
			b.Fatal(err)
		}
		w.Write(file)
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	key := attach.GenerateKey()
	blob := encrypt(b, key, fileOf("bench", benchLength))
	buf := make([]byte, 256<<10)
	b.SetBytes(benchLength)
	b.ReportAllocs()
	for b.Loop() {
		r, err := attach.NewReader(bytes.NewReader(blob), key)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.CopyBuffer(io.Discard, r, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadAt(b *testing.B) {
	key := attach.GenerateKey()
	blob := encrypt(b, key, fileOf("bench", benchLength))
	r, err := attach.NewReaderAt(bytes.NewReader(blob), int64(len(blob)), key)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, attach.ChunkSize)
	b.SetBytes(benchLength)
	b.ReportAllocs()
	for b.Loop() {
		for off := int64(0); off < benchLength; off += attach.ChunkSize {
			if _, err := r.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
}

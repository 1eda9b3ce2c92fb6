package attach_test

import (
	"bytes"
	"crypto/cipher"
	"io"
	"testing"
	"time"

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
	sealed := rawSealed(aead, fileOf("bench", benchLength))
	b.Run("open", func(b *testing.B) {
		b.SetBytes(benchLength)
		for b.Loop() {
			for i := range benchLength / attach.ChunkSize {
				nonce[0] = byte(i)
				copy(buf[:cap(buf)], sealed[i*(attach.ChunkSize+16):])
				if _, err := aead.Open(buf[:0], nonce, buf[:cap(buf)], nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// rawSealed seals file in 64 KiB chunks, chunk i under a nonce starting
// with byte i: the raw open reads a stream of 8 MiB as Reader does (not
// one chunk again and again, which would stay in the CPU cache).
func rawSealed(aead cipher.AEAD, file []byte) []byte {
	nonce := make([]byte, chacha20poly1305.NonceSize)
	var out []byte
	for i := range len(file) / attach.ChunkSize {
		nonce[0] = byte(i)
		out = aead.Seal(out, nonce, file[i*attach.ChunkSize:(i+1)*attach.ChunkSize], nil)
	}
	return out
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

// BenchmarkVsRaw alternates, within each iteration, the package's
// Encrypt (Decrypt) of 8 MiB with raw ChaCha20-Poly1305 seal (open) of the
// same bytes in 64 KiB chunks (the raw open reads the 8 MiB of sealed
// chunks as Reader reads the blob), and reports throughput as a fraction of
// raw: on a shared machine the ratio holds where the absolute figures
// swing with the load.
//
//	go test -run '^$' -bench VsRaw -count 6 ./envelope/attach
//
// On the 2-vCPU development machine (shared, benchstat medians of 6):
// encrypt 0.99 of raw, decrypt 0.97 (io.Copy, so Reader.WriteTo; 0.89
// through Read into io.Discard's 8 KiB buffer, which copies every chunk
// out). What is left of decrypt is the copy of the blob from its source
// into the Reader's buffer, which the raw open makes too, and per-chunk
// bookkeeping. Before the raw open read a stream (it reread one 64 KiB
// chunk, which stayed in the CPU cache) decrypt measured 0.81 of it.
func BenchmarkVsRaw(b *testing.B) {
	aead, _ := chacha20poly1305.New(make([]byte, 32))
	nonce := make([]byte, chacha20poly1305.NonceSize)
	buf := make([]byte, attach.ChunkSize+16)
	file := fileOf("bench", benchLength)
	key := attach.GenerateKey()
	blob := encrypt(b, key, file)
	sealed := rawSealed(aead, file)
	out := make([]byte, 256<<10)
	var raw, ours [2]time.Duration
	for b.Loop() {
		t := time.Now()
		for i := range benchLength / attach.ChunkSize {
			aead.Seal(buf[:0], nonce, file[i*attach.ChunkSize:(i+1)*attach.ChunkSize], nil)
		}
		raw[0] += time.Since(t)
		t = time.Now()
		w, _ := attach.NewWriter(io.Discard, key)
		w.Write(file)
		w.Close()
		ours[0] += time.Since(t)
		t = time.Now()
		for i := range benchLength / attach.ChunkSize {
			nonce[0] = byte(i)
			copy(buf, sealed[i*len(buf):])
			if _, err := aead.Open(buf[:0], nonce, buf, nil); err != nil {
				b.Fatal(err)
			}
		}
		raw[1] += time.Since(t)
		t = time.Now()
		r, _ := attach.NewReader(bytes.NewReader(blob), key)
		if _, err := io.CopyBuffer(io.Discard, r, out); err != nil {
			b.Fatal(err)
		}
		ours[1] += time.Since(t)
	}
	b.ReportMetric(raw[0].Seconds()/ours[0].Seconds(), "encrypt/raw")
	b.ReportMetric(raw[1].Seconds()/ours[1].Seconds(), "decrypt/raw")
	b.ReportMetric(float64(b.N)*benchLength/ours[0].Seconds()/1e6, "encrypt-MB/s")
	b.ReportMetric(float64(b.N)*benchLength/ours[1].Seconds()/1e6, "decrypt-MB/s")
	b.ReportMetric(float64(b.N)*benchLength/raw[0].Seconds()/1e6, "raw-seal-MB/s")
	b.ReportMetric(float64(b.N)*benchLength/raw[1].Seconds()/1e6, "raw-open-MB/s")
}

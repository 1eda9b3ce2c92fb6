// Package erasure splits a message into fixed-size chunks so that any k
// distinct chunks, in any order, give the message back: a systematic
// Reed-Solomon code over GF(2^8) with a Cauchy generator matrix.
//
// It exists for the post-quantum ratchet (ratchet/PQ_RATCHET.md): an
// ML-KEM-768 encapsulation key (1184 bytes) or ciphertext (1088 bytes) is
// cut into k data chunks of ChunkSize bytes (the last one zero-padded),
// followed by parity chunks, one riding in the encrypted header of each
// message. A receiver that gets any k of them, whichever messages were lost
// or reordered, has the whole key; a lost message never stalls the round.
//
// # The code
//
// A message of L bytes and chunk size c has k = ceil(L/c) data chunks.
// Every chunk index i is mapped to a point p = i mod Period in GF(2^8).
// Points 0..k-1 are the data chunks themselves (the code is systematic).
// A point p in k..255 is a parity chunk: byte j of it is the sum over the
// data chunks d of d[j]/(p + d's point), a row of a Cauchy matrix.
// Because every square submatrix of a Cauchy matrix is invertible, any k
// distinct points determine the data: the code is MDS. GF(2^8) has only
// 256 points, so the stream of chunks is periodic: index i and i+Period
// carry the same chunk, and a decoder treats them as one. A sender that
// numbers chunks by its message counter therefore offers 256-k parity
// chunks before any repeats; the receiver needs any k of the 256.
//
// # Cost and constant time
//
// Encoding a parity chunk costs k·c field multiplications; Add copies one
// chunk; the one linear solve (Gaussian elimination on the m×m Cauchy
// submatrix of the m missing data chunks) runs once, in Message. Field
// multiplication uses log/exp tables and branches on zero, so timing
// depends on the data. That is acceptable here and only here: the chunks
// are public values (KEM encapsulation keys and ciphertexts) and travel
// inside encrypted, authenticated headers. Do not code secrets with it.
//
// # Integrity
//
// The code corrects erasures, not errors: a wrong chunk gives a wrong
// message. The caller authenticates every chunk (the ratchet's header
// AEAD) and the reassembled message (the KEM binds it). The decoder keeps
// the first chunk it sees for each point and ignores later ones.
package erasure

import (
	"bytes"
	"iter"
)

const (
	// Period is the number of distinct chunks: the points of GF(2^8).
	// Index i and i+Period carry the same chunk.
	Period = 256

	// MaxDataChunks bounds k, so that at least as many parity chunks as
	// data chunks exist (Period - k >= k): any loss of up to half of a
	// full period is survivable. An ML-KEM-768 key at 32-byte chunks has
	// k = 37.
	MaxDataChunks = Period / 2

	// MaxChunkSize bounds the chunk size, so that a Decoder never holds
	// more than MaxDataChunks·MaxChunkSize (128 KiB) of chunks.
	MaxChunkSize = 1024
)

// dataChunks returns k for a message of msgLen bytes in chunks of size
// bytes, or ErrMalformed / ErrTooLarge.
func dataChunks(msgLen, size int) (int, error) {
	if size < 1 || size > MaxChunkSize {
		return 0, errorf(ErrMalformed, "chunk size %d outside [1, %d]", size, MaxChunkSize)
	}
	if msgLen < 1 {
		return 0, errorf(ErrMalformed, "empty message")
	}
	k := (msgLen + size - 1) / size
	if k > MaxDataChunks {
		return 0, errorf(ErrTooLarge, "%d data chunks, more than %d", k, MaxDataChunks)
	}
	return k, nil
}

// Encoder produces the chunks of one message. It holds a copy of the
// message; it is safe for concurrent use once made.
type Encoder struct {
	k, size int
	data    []byte // the message, zero-padded to k·size
}

// NewEncoder returns an Encoder for msg in chunks of chunkSize bytes. It
// copies msg. It returns ErrMalformed for an empty message or a chunk size
// outside [1, MaxChunkSize], and ErrTooLarge when msg needs more than
// MaxDataChunks chunks.
func NewEncoder(msg []byte, chunkSize int) (*Encoder, error) {
	k, err := dataChunks(len(msg), chunkSize)
	if err != nil {
		return nil, err
	}
	data := make([]byte, k*chunkSize)
	copy(data, msg)
	return &Encoder{k: k, size: chunkSize, data: data}, nil
}

// DataChunks returns k: how many distinct chunks a decoder needs.
func (e *Encoder) DataChunks() int { return e.k }

// Chunk appends the chunk of the given index to dst and returns the
// extended slice, as append does. Every index is valid; index i and
// i+Period give the same chunk. Indexes below k give the data chunks (the
// message itself, the last one zero-padded), the others parity chunks.
func (e *Encoder) Chunk(index uint32, dst []byte) []byte {
	ret, out := grow(dst, e.size)
	p := int(index % Period)
	if p < e.k {
		copy(out, e.chunk(p))
		return ret
	}
	clear(out)
	for i := range e.k {
		mulAdd(out, e.chunk(i), coef(p, i))
	}
	return ret
}

func (e *Encoder) chunk(i int) []byte { return e.data[i*e.size : (i+1)*e.size] }

// grow extends dst by n bytes and returns the whole and the new part.
func grow(dst []byte, n int) (whole, tail []byte) {
	whole = append(dst, make([]byte, n)...)
	return whole, whole[len(dst):]
}

// Decoder collects the chunks of one message until it has k distinct ones.
// It holds at most k chunks (k·chunkSize bytes, allocated up front), so
// its memory is fixed whatever it is fed. It is not safe for concurrent use.
type Decoder struct {
	msgLen, k, size int
	have            [Period / 64]uint64 // the points received
	points          []uint8             // in arrival order, at most k
	chunks          []byte              // chunk of points[j] at j·size
	msg             []byte              // the solved message, once asked for
}

// NewDecoder returns a Decoder for a message of msgLen bytes in chunks of
// chunkSize bytes, with the errors of NewEncoder.
func NewDecoder(msgLen, chunkSize int) (*Decoder, error) {
	k, err := dataChunks(msgLen, chunkSize)
	if err != nil {
		return nil, err
	}
	return &Decoder{
		msgLen: msgLen, k: k, size: chunkSize,
		points: make([]uint8, 0, k),
		chunks: make([]byte, k*chunkSize),
	}, nil
}

// Add records the chunk of the given index and reports whether the decoder
// now has k distinct chunks, so that Message will succeed. It copies the
// chunk. A chunk for a point it already has (a duplicate, or an index Period
// apart) and any chunk after done change nothing. A chunk of the wrong size,
// or a last data chunk whose padding bytes are not zero, is ErrMalformed,
// and also changes nothing; done still reports the decoder's state. Add
// costs one copy; the solve waits for Message.
func (d *Decoder) Add(index uint32, chunk []byte) (done bool, err error) {
	fresh, err := d.Check(index, chunk)
	if err != nil || !fresh {
		return d.Done(), err
	}
	p := uint8(index % Period)
	d.have[p/64] |= 1 << (p % 64)
	copy(d.chunks[len(d.points)*d.size:], chunk)
	d.points = append(d.points, p)
	return d.Done(), nil
}

// Check reports what Add(index, chunk) would do, without changing d: fresh
// is true when Add would store the chunk (a new point on an unfinished
// decoder), and err is the error Add would return. A receive path that must
// not change state before a message authenticates checks the chunk while it
// plans and adds it on commit, where Add then cannot fail; it needs Clone
// only for the chunk that completes the message (Received() == k-1 and
// fresh), whose result it must verify first.
func (d *Decoder) Check(index uint32, chunk []byte) (fresh bool, err error) {
	if len(chunk) != d.size {
		return false, errorf(ErrMalformed, "chunk of %d bytes, want %d", len(chunk), d.size)
	}
	p := uint8(index % Period)
	if d.Done() || d.has(p) {
		return false, nil
	}
	if int(p) == d.k-1 && !zero(chunk[d.msgLen-(d.k-1)*d.size:]) {
		return false, errorf(ErrMalformed, "padding of the last data chunk is not zero")
	}
	return true, nil
}

// DataChunks returns k: how many distinct chunks complete the message.
func (d *Decoder) DataChunks() int { return d.k }

// Done reports whether the decoder has k distinct chunks.
func (d *Decoder) Done() bool { return len(d.points) == d.k }

// Received returns how many distinct chunks the decoder holds (at most k).
func (d *Decoder) Received() int { return len(d.points) }

// Message returns a copy of the message once Add has reported done, and
// ErrIncomplete before. The first call solves for the missing data chunks;
// later calls return the same bytes. It returns ErrMalformed if the chunks
// were inconsistent in a way the code can see (nonzero padding in a solved
// last chunk); in general a wrong chunk gives a wrong message, so the
// caller authenticates chunks and message.
func (d *Decoder) Message() ([]byte, error) {
	if !d.Done() {
		return nil, errorf(ErrIncomplete, "%d of %d chunks", len(d.points), d.k)
	}
	if d.msg == nil {
		out := d.solve()
		if !zero(out[d.msgLen:]) {
			return nil, errorf(ErrMalformed, "inconsistent chunks")
		}
		d.msg = out[:d.msgLen]
	}
	return bytes.Clone(d.msg), nil
}

// Clone returns an independent copy of the decoder. A receive path that
// must not change state before a message authenticates (docs/SPEC.md section 20, rule 1) adds the
// message's chunk to a clone, and keeps the clone only on commit; it needs
// to clone only when the chunk would complete the message.
func (d *Decoder) Clone() *Decoder {
	c := *d
	c.points = append(make([]uint8, 0, d.k), d.points...)
	c.chunks = bytes.Clone(d.chunks)
	c.msg = bytes.Clone(d.msg)
	return &c
}

// All yields the chunks held, in the order they were added, each with an
// index in [0, Period). Adding them to a new Decoder with the same
// parameters rebuilds this one: that is how a saved state stores a decoder.
// The chunks yielded alias the decoder's memory and must not be changed.
func (d *Decoder) All() iter.Seq2[uint32, []byte] {
	return func(yield func(uint32, []byte) bool) {
		for j, p := range d.points {
			if !yield(uint32(p), d.chunk(j)) {
				return
			}
		}
	}
}

func (d *Decoder) has(p uint8) bool { return d.have[p/64]&(1<<(p%64)) != 0 }

func (d *Decoder) chunk(j int) []byte { return d.chunks[j*d.size : (j+1)*d.size] }

func zero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}

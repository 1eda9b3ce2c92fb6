package sealpost

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	"github.com/sealpost/sealpost/internal/pbstrict"
)

// Every record a Device writes ends with a CRC-32C of its store key and
// value. The store is trusted, so this is not a MAC; it turns storage
// corruption (a flipped bit, a torn or truncated write, a value copied
// under another key) into ErrMalformed at read time instead of a silently
// different state (ADVERSARIAL 37). CRC-32C runs at memory speed on current
// CPUs, so it costs little on the per-message path.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const checksumSize = 4

// checksum returns the CRC-32C of key then value. Converting key
// allocates (crc32.Update's slice escapes), which is fine where records
// are read; the per-message writes use Batch.checksum.
func checksum(key string, value []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, []byte(key)), castagnoli, value)
}

// putRecord adds value to b under key, with its checksum appended. When
// value has room for the checksum (every per-message record is encoded
// into a buffer of its exact size plus checksumSize) it is appended in
// place, past value's length, so value itself is unchanged.
func putRecord(b *Batch, key string, value []byte) {
	out := value
	if cap(value)-len(value) < checksumSize {
		out = make([]byte, len(value), len(value)+checksumSize)
		copy(out, value)
	}
	b.Put(key, binary.BigEndian.AppendUint32(out, b.checksum(key, value)))
}

// checksum is checksum(key, value), with the key copied into the batch's
// scratch space instead of converted, so that writing a record allocates
// nothing for its checksum.
func (b *Batch) checksum(key string, value []byte) uint32 {
	if len(key) > len(b.key) {
		return checksum(key, value)
	}
	n := copy(b.key[:], key)
	return crc32.Update(crc32.Update(0, castagnoli, b.key[:n]), castagnoli, value)
}

// getRecord reads key and checks its checksum. It returns the store's
// error (ErrNotFound when absent) or ErrMalformed for a corrupt record.
func getRecord(ctx context.Context, s Store, key string) ([]byte, error) {
	raw, err := s.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	n := len(raw) - checksumSize
	if n < 0 || binary.BigEndian.Uint32(raw[n:]) != checksum(key, raw[:n]) {
		return nil, fmt.Errorf("%w: stored record %q fails its checksum", ErrMalformed, key)
	}
	return raw[:n:n], nil
}

// decodeVersioned decodes a saved record: the version is checked before
// unknown fields, so a record from a newer build is ErrUnsupportedVersion
// rather than ErrMalformed.
func decodeVersioned(raw []byte, m proto.Message, version func() uint32, what string) error {
	if err := proto.Unmarshal(raw, m); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	if v := version(); v != deviceVersion {
		return fmt.Errorf("%w: %s version %d", ErrUnsupportedVersion, what, v)
	}
	if pbstrict.Unknown(m) {
		return fmt.Errorf("%w: %s has unknown fields", ErrMalformed, what)
	}
	return nil
}

// Package record is the store layout of a Device: the key of every record
// it writes, the layout version, and the framing every record carries (a
// CRC-32C of its key and value). The Device's state is saved as many small
// records so that a message rewrites only what it changed; each record's
// byte layout is documented on its encoder in the package that owns it
// (internal/sessrec, internal/receiptq, internal/seen, internal/blocklist,
// internal/kept, internal/outbox, and the root package's peer record).
// docs/SPEC.md §17 lists them all.
//
// What is saved, per peer: the peer record (identity, mailbox, session
// list, pending and unconfirmed flags), listed in the peer directory; per
// session a record (transcript head, the ratchet's head, receipt-queue
// bounds) and the other parts of the ratchet's split save
// (ratchet.SaveSplit: the replay record and KEM decoders in blocks,
// skipped keys only when they change), the transcript's logs in fixed
// blocks of 8 entries and the queued delivery receipts in blocks of 16,
// the pending session start until the peer replies, and the kept results
// with their index. The records written with every message (session
// record, transcript head and log blocks, receipt-queue blocks, kept
// results and kept index) are fixed binary layouts: a version byte first
// (Layout), big-endian integers, explicit lengths, encoded into a buffer
// of exactly their size plus ChecksumSize, decoded strictly (a truncation,
// trailing bytes or a count past its bound is ErrMalformed, another
// version ErrUnsupportedVersion). In a steady one-way conversation a Send
// writes about 0.9 KB in 2 records and a Receive plus its Done about
// 1.6 KB in 8, where the whole peer (up to ~35 KB) used to be rewritten.
//
// The checksum is not a MAC: the store is trusted. It turns storage
// corruption (a flipped bit, a torn or truncated write, a value copied
// under another key) into ErrMalformed at read time instead of a silently
// different state (TESTING.md item 37). CRC-32C runs at memory speed, so
// it costs little on the per-message path.
package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"google.golang.org/protobuf/proto"

	"github.com/sealpost/sealpost/internal/errs"
	"github.com/sealpost/sealpost/internal/pbstrict"
)

// Layout is the version of every record a Device writes: the first byte
// of each fixed layout and the version field of each protobuf record. Any
// other is ErrUnsupportedVersion; a later version will migrate this one.
// Layout 6 added the stale and announce flags of the session record (a
// restore from a backup, docs/SPEC.md §15.10) and the repeated flag of a
// kept result. Layout 5 added the outbox (internal/outbox) and the attachments of a
// kept result (internal/kept). Layout 4 moved the list of peers out of the
// device record into the peer directory, saved accepted starts in blocks,
// added the pending and unconfirmed flags to the peer record, the expiry
// to saved prekeys (PrivateKey version 2) and the block record; it holds
// ratchet state version 3, whose sessions speak ratchet message version 3.
const Layout = 6

// Store keys. Every record a Device writes lives under one of these.
const (
	KeyDevice     = "device"
	KeyBlock      = "block"  // the blocklist (internal/blocklist)
	KeyDirPrefix  = "peers/" // the peer directory, one slot a record
	KeyPeerPrefix = "peer/"
	KeyKeptPrefix = "kept/"
	KeySeenPrefix = "seen/" // accepted session starts (internal/seen)
	// KeyAccountPrefix holds each pinned account, ours and peers'
	// (docs/SPEC.md section 22.4).
	KeyAccountPrefix = "account/"
	// KeyKeptIndexPrefix holds each peer's list of kept results.
	KeyKeptIndexPrefix = "keptidx/"
	// A session's records: the session itself, its ratchet state, its
	// pending start, its transcript log blocks and its queued-receipt
	// blocks.
	KeySessionPrefix = "sess/"
	KeyRatchetPrefix = "rat/"
	KeyStartPrefix   = "start/"
	KeyLogPrefix     = "tlog/"
	KeyQueuePrefix   = "rq/"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ChecksumSize is the size of the checksum that ends every record.
const ChecksumSize = 4

// Sum returns the CRC-32C of key then value. Converting key allocates
// (crc32.Update's slice escapes), which is fine where records are read;
// the per-message writes use SumScratch.
func Sum(key string, value []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, []byte(key)), castagnoli, value)
}

// SumScratch is Sum(key, value), with the key copied into scratch instead
// of converted when it fits, so that writing a record allocates nothing
// for its checksum.
func SumScratch(scratch []byte, key string, value []byte) uint32 {
	if len(key) > len(scratch) {
		return Sum(key, value)
	}
	n := copy(scratch, key)
	return crc32.Update(crc32.Update(0, castagnoli, scratch[:n]), castagnoli, value)
}

// Frame returns value with sum appended: in place, past value's length,
// when value has room for it (every per-message record is encoded into a
// buffer of its exact size plus ChecksumSize), so value itself is
// unchanged; in a copy otherwise.
func Frame(value []byte, sum uint32) []byte {
	out := value
	if cap(value)-len(value) < ChecksumSize {
		out = make([]byte, len(value), len(value)+ChecksumSize)
		copy(out, value)
	}
	return binary.BigEndian.AppendUint32(out, sum)
}

// Unframe checks the checksum of raw, read under key, and returns the
// value without it (capacity trimmed, so an append cannot overwrite the
// checksum), or ErrMalformed.
func Unframe(key string, raw []byte) ([]byte, error) {
	n := len(raw) - ChecksumSize
	if n < 0 || binary.BigEndian.Uint32(raw[n:]) != Sum(key, raw[:n]) {
		return nil, fmt.Errorf("%w: stored record %q fails its checksum", errs.ErrMalformed, key)
	}
	return raw[:n:n], nil
}

// CheckVersion checks the version byte a fixed layout starts with: an
// empty record is ErrMalformed, another version ErrUnsupportedVersion.
// what names the record in the error.
func CheckVersion(raw []byte, what string) error {
	if len(raw) == 0 {
		return fmt.Errorf("%w: empty %s", errs.ErrMalformed, what)
	}
	if raw[0] != Layout {
		return fmt.Errorf("%w: %s version %d", errs.ErrUnsupportedVersion, what, raw[0])
	}
	return nil
}

// DecodeVersioned decodes a saved protobuf record: the version is checked
// before unknown fields, so a record from a newer build is
// ErrUnsupportedVersion rather than ErrMalformed.
func DecodeVersioned(raw []byte, m proto.Message, version func() uint32, what string) error {
	if err := proto.Unmarshal(raw, m); err != nil {
		return fmt.Errorf("%w: %s", errs.ErrMalformed, what)
	}
	if v := version(); v != Layout {
		return fmt.Errorf("%w: %s version %d", errs.ErrUnsupportedVersion, what, v)
	}
	if pbstrict.Unknown(m) {
		return fmt.Errorf("%w: %s has unknown fields", errs.ErrMalformed, what)
	}
	return nil
}

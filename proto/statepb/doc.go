// Package statepb holds the generated Go code of sealpost's saved state in
// protobuf form: the device record (identity seed, prekeys, mailbox keys,
// the list of peers), peer records, pending session starts, saved private
// keys (device.proto, keys.proto), and the whole saved form of a ratchet
// session (ratchet.proto).
//
// What it protects: nothing; it is what must be protected. These messages
// hold private keys, root, chain, header and message keys, and KEM secrets.
// They belong only in the app's Store, which must be as private as the
// device itself. Nothing that runs on a server may link this package: the
// envelope package's import test fails if it ever does.
//
// What it does not do: it checks no version, size or invariant. The root
// and ratchet packages decode these messages strictly (unknown fields
// refused, versions checked first, every key length and bound checked) and
// add a CRC-32C per stored record. The records a Device rewrites with every
// message (session records, transcript blocks, receipt blocks, kept
// results) are fixed binary layouts, not messages of this package.
//
// Every stored record, with its store key and layout, is in section 17 of
// the specification, docs/SPEC.md in the repository
// (https://github.com/sealpost/sealpost/blob/main/docs/SPEC.md).
//
// This file is written by hand; the .pb.go files beside it are generated
// by "bash proto/gen.sh" (protoc 3.21.12, protoc-gen-go pinned in go.mod)
// and must not be edited.
package statepb

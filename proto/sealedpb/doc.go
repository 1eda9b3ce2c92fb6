// Package sealedpb holds the generated Go code of the formats that only
// ever travel inside a sealed body: SessionStart (session_start.proto), the
// initiator's half of the hybrid session start, and Content
// (content.proto), every decrypted payload, message or receipt.
//
// What it protects: nothing by itself. These messages are confidential
// only because sealpost encrypts them (a session start under HPKE X-Wing to
// the recipient's mailbox key, contents under the Double Ratchet) and pads
// them first, so that the relay sees neither their fields nor their kind.
// A relay must never need this package; the envelope package, which is all
// a relay links, does not import it.
//
// What it does not do: it validates nothing. Sender identities, key
// confirmations, transcript fields and receipt hashes in these messages are
// only meaningful after the keys, transcript and root packages have checked
// them. The root package encodes Content with its own deterministic codec
// that produces and accepts exactly these messages' bytes.
//
// Field by field meanings and the rules a receiver applies are in sections
// 7.6 and 12 of the specification, docs/SPEC.md in the repository
// (https://github.com/sealpost/sealpost/blob/main/docs/SPEC.md).
//
// This file is written by hand; the .pb.go files beside it are generated
// by "bash proto/gen.sh" (protoc 3.21.12, protoc-gen-go pinned in go.mod)
// and must not be edited.
package sealedpb

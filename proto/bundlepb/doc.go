// Package bundlepb holds the generated Go code of the prekey bundle format
// (bundle.proto): what a sealpost device publishes so that others can start
// a session with it, one blob per one-time prekey plus a last-resort blob.
//
// Everything in this package is public data: identity and prekey public
// keys, their signatures, an address and a mailbox id. A relay may store
// and hand out these messages as opaque bytes; it never needs to parse
// them, and this package holds no secret.
//
// What it does not do: it checks nothing. A decoded Bundle may carry keys
// of the wrong type or size, forged signatures or unknown fields. Use
// keys.ParseBundle, which decodes strictly, refuses any version but
// keys.BundleVersion, and verifies every signature; never act on a Bundle
// decoded here directly.
//
// The byte layout, the signed messages and how bundles are split are in
// section 6 of the specification, docs/SPEC.md in the repository
// (https://github.com/sealpost/sealpost/blob/main/docs/SPEC.md).
//
// This file is written by hand; the .pb.go files beside it are generated
// by "bash proto/gen.sh" (protoc 3.21.12, protoc-gen-go pinned in go.mod)
// and must not be edited.
package bundlepb

#!/usr/bin/env bash
# Regenerates the Go code for every .proto file under proto/.
# Needs protoc 3.21.12 (Debian's protobuf-compiler); protoc-gen-go is the
# version pinned by the tool line in go.mod. Run from anywhere:
#   bash proto/gen.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
for dir in proto/*/; do
  files=("$dir"*.proto)
  [ -e "${files[0]}" ] || continue
  protoc --plugin=protoc-gen-go="$bin/protoc-gen-go" \
    -I proto --go_out=proto --go_opt=paths=source_relative "${files[@]#proto/}"
done

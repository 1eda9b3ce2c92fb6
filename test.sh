#!/usr/bin/env bash
# The test command: every package of both modules, with the race detector.
# Usage: ./test.sh   (README and .ci/run call exactly this)
set -euo pipefail
cd "$(dirname "$0")"
go test -race -count=1 ./...
(cd examples && go test -race -count=1 ./...)

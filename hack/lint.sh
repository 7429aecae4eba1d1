#!/usr/bin/env bash
# make lint: gofmt (no diff allowed) and go vet.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then
  echo "gofmt would change these files (run gofmt -w):" >&2
  echo "$bad" >&2
  exit 1
fi
go vet ./...

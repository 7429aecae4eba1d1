#!/usr/bin/env bash
# make verify: regenerate everything generated, fail if the tree changed; check import boundaries.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
make --no-print-directory generate
if ! git diff --exit-code; then
  echo "generated files are out of date: run 'make generate' and commit the result" >&2
  exit 1
fi
hack/verify-imports.sh

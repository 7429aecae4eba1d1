#!/usr/bin/env bash
# Regenerates the gRPC code of gridgateway/api/v1 from its .proto with protoc (installed with apt-get if
# missing), protoc-gen-go (the protobuf version of go.mod) and protoc-gen-go-grpc.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
if ! command -v protoc >/dev/null 2>&1; then
  apt-get install -y protobuf-compiler >/dev/null || { echo "protoc is missing: apt-get install protobuf-compiler" >&2; exit 1; }
fi
tools="$(pwd)/bin/tools"
mkdir -p "$tools"
go build -o "$tools/protoc-gen-go" google.golang.org/protobuf/cmd/protoc-gen-go
if ! "$tools/protoc-gen-go-grpc" --version 2>/dev/null | grep -q "${PROTOC_GEN_GO_GRPC_VERSION#v}"; then
  # Built outside this module so that its dependencies do not change go.mod.
  GOBIN="$tools" GOFLAGS= go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
fi
PATH="$tools:$PATH" protoc -I gridgateway/api/v1 -I /usr/include \
  --go_out=paths=source_relative:gridgateway/api/v1 \
  --go-grpc_out=paths=source_relative:gridgateway/api/v1 \
  gridgateway/api/v1/gateway.proto

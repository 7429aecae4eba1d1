#!/usr/bin/env bash
# make test: every test of the repository, unit and integration. Integration tests start the embedded
# control plane themselves (one per test binary), so nothing needs to be running beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go

start=$(date +%s)
echo "== lint"
hack/lint.sh
hack/ensure-lazypull-deps.sh # containerd, runc, fuse3, registry for snapshotter/integration
hack/ensure-realnode-deps.sh   # containerd, runc, CNI plugins, the kubelet for internal/localcluster/realnode
bash hack/ensure-arc-client.sh   # the real NorduGrid ARC client for gridgateway/arcrest/integration
hack/ensure-helm.sh              # the helm CLI for deploy/deploytest (chart rendering)
echo "== go test ./... (unit + integration + e2e)"
# One compile of the shared Kubernetes packages serves every test binary (the build cache).
go test -count=1 -timeout 25m "$@" ./...
echo "== make test passed in $(( $(date +%s) - start )) s"

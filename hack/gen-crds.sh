#!/usr/bin/env bash
# Regenerates the deepcopy functions of apis/kubehtc/ and the CRD YAML in deploy/crds/ with controller-gen.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
CONTROLLER_GEN_VERSION=v0.23.0
tools="$(pwd)/bin/tools"
if ! "$tools/controller-gen" --version 2>/dev/null | grep -q "$CONTROLLER_GEN_VERSION"; then
  # Built outside this module so that its dependencies do not change go.mod.
  GOBIN="$tools" GOFLAGS= go install "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_GEN_VERSION"
fi
"$tools/controller-gen" object paths=./apis/kubehtc/...
rm -f deploy/crds/*.yaml
"$tools/controller-gen" crd paths=./apis/kubehtc/... output:crd:artifacts:config=deploy/crds

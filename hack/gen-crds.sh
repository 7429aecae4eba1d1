#!/usr/bin/env bash
# Regenerates the deepcopy functions of apis/kubehtc/ and the CRD YAML in deploy/crds/ (ours and the imported
# PodGroup) with controller-gen.
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
# The gang API is scheduler-plugins' PodGroup (scheduling.x-k8s.io/v1alpha1), generated from its Go types so that
# the CRD matches the version we import. Its package also holds ElasticQuota, which kubehtc does not serve.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$tools/controller-gen" crd paths=sigs.k8s.io/scheduler-plugins/apis/scheduling/v1alpha1 output:crd:artifacts:config="$tmp"
cp "$tmp/scheduling.x-k8s.io_podgroups.yaml" deploy/crds/

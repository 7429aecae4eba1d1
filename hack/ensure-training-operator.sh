#!/usr/bin/env bash
# Builds Kubeflow's training operator into bin/tools from its own module at a fixed version (go install
# pkg@version: its go.mod, not ours, so its Kubernetes 0.29 dependencies never touch go.mod), for the Kubeflow
# end-to-end test, which runs it out of cluster against the local cluster. Prints nothing when the binary of
# that version is already there; Go's build cache makes a rebuild cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
TRAINING_OPERATOR_VERSION=v1.8.1
tools="$(pwd)/bin/tools"
stamp="$tools/training-operator.version"
if [ ! -x "$tools/training-operator.v1" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TRAINING_OPERATOR_VERSION" ]; then
  echo "== building Kubeflow training-operator $TRAINING_OPERATOR_VERSION into bin/tools"
  GOBIN="$tools" GOFLAGS= go install "github.com/kubeflow/training-operator/cmd/training-operator.v1@$TRAINING_OPERATOR_VERSION"
  echo "$TRAINING_OPERATOR_VERSION" >"$stamp"
fi

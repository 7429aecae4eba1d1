#!/usr/bin/env bash
# Builds the helm CLI into bin/tools (outside this module, like controller-gen in hack/gen-crds.sh, so that its
# dependencies do not change go.mod). Prints nothing when the right version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
HELM_VERSION=v3.22.0
tools="$(pwd)/bin/tools"
if ! "$tools/helm" version --template '{{.Version}}' 2>/dev/null | grep -qx "$HELM_VERSION"; then
  echo "== building helm $HELM_VERSION into bin/tools"
  GOBIN="$tools" GOFLAGS= go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

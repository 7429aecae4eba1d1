#!/usr/bin/env bash
# Prints the -ldflags that stamp a build's versions (make build, make kubectl, the end-to-end test):
#   - k8s.io/component-base/version: the Kubernetes version go.mod requires (the embedded kube-apiserver
#     reports it at /version; kubectl parses it), with kubehtc's commit and tree state;
#   - github.com/kubehtc/kubehtc/internal/version.version: kubehtc's own version, `git describe --always
#     --dirty` (a bare commit on a clone without tags; "devel" outside a git checkout).
# Usage: go build -ldflags "$(hack/version.sh)" ./cmd/...
set -euo pipefail
cd "$(dirname "$0")/.."
k8s=$(sed -n 's/^[[:space:]]*k8s\.io\/kubernetes \(v[^[:space:]]*\).*/\1/p' go.mod | head -n1)
[ -n "$k8s" ] || { echo "hack/version.sh: go.mod does not require k8s.io/kubernetes" >&2; exit 1; }
major=${k8s#v}; major=${major%%.*}
minor=${k8s#v*.}; minor=${minor%%.*}
kubehtc=devel commit="" tree="" date=1970-01-01T00:00:00Z
if git rev-parse --git-dir >/dev/null 2>&1; then
  kubehtc=$(git describe --always --dirty 2>/dev/null || echo devel)
  commit=$(git rev-parse HEAD 2>/dev/null || true)
  # The commit's date, not the clock's: the same commit builds the same binary.
  date=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ HEAD 2>/dev/null || echo "$date")
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then tree=dirty; else tree=clean; fi
fi
cb=k8s.io/component-base/version
printf -- '-X %s.gitVersion=%s -X %s.gitMajor=%s -X %s.gitMinor=%s -X %s.gitCommit=%s -X %s.gitTreeState=%s -X %s.buildDate=%s -X github.com/kubehtc/kubehtc/internal/version.version=%s\n' \
  "$cb" "$k8s" "$cb" "$major" "$cb" "$minor" "$cb" "$commit" "$cb" "$tree" "$cb" "$date" "$kubehtc"

#!/usr/bin/env bash
# Checks the import boundaries of STYLE.md:
#  - apis/ imports only k8s.io/api and k8s.io/apimachinery (and the standard library);
#  - only scheduler/, internal/localcluster, internal/benchmarks and cmd/ import k8s.io/kubernetes/...;
#  - scheduler plugins (scheduler/<plugin>) do not import each other.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
mod=$(go list -m)
fail=0
while read -r pkg imports; do
  rel=${pkg#"$mod"/}
  for imp in $imports; do
    case "$rel" in
      apis/*)
        case "$imp" in
          k8s.io/api/*|k8s.io/apimachinery/*|"$mod"/apis/*) ;;
          *.*/*) echo "boundary: $rel imports $imp (apis/ may import only k8s.io/api and apimachinery)"; fail=1 ;;
        esac ;;
    esac
    case "$imp" in
      k8s.io/kubernetes/*)
        case "$rel" in
          scheduler|scheduler/*|internal/localcluster|internal/localcluster/*|internal/benchmarks|cmd/*) ;;
          *) echo "boundary: $rel imports $imp (only scheduler/, internal/localcluster and cmd/ may import k8s.io/kubernetes)"; fail=1 ;;
        esac ;;
    esac
    if [[ "$rel" == scheduler/* && "$rel" != scheduler/internal* && "$imp" == "$mod"/scheduler/* && "$imp" != "$mod"/scheduler/internal* ]]; then
      if [ "${imp#"$mod"/}" != "$rel" ]; then
        echo "boundary: plugin $rel imports plugin ${imp#"$mod"/} (share code through scheduler/internal)"; fail=1
      fi
    fi
  done
done < <(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./...)
[ "$fail" = 0 ] && echo "import boundaries: ok"
exit "$fail"

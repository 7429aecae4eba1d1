#!/usr/bin/env bash
# make bench-<name>: runs Benchmark<Name> of internal/benchmarks once and ends with its `BENCH <name> ...`
# line. Usage: hack/bench.sh <name> [benchmark flags, e.g. -nodes=1000 -pods=10000]
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/lib.sh
ensure_go
name=${1:?usage: hack/bench.sh <name> [flags]}
shift
# scheduling -> BenchmarkScheduling, gateway-grpc -> BenchmarkGatewayGrpc: capitalise each dash-separated part.
fn=Benchmark
IFS=- read -ra parts <<<"$name"
for p in "${parts[@]}"; do fn+="$(tr '[:lower:]' '[:upper:]' <<<"${p:0:1}")${p:1}"; done
log=$(mktemp)
trap 'rm -f "$log"' EXIT
go test -run '^$' -bench "^${fn}\$" -benchtime=1x -timeout 60m ./internal/benchmarks -args "$@" 2>&1 | tee "$log"
line=$(grep "^BENCH ${name} " "$log" | tail -n1 || true)
[ -n "$line" ] || { echo "bench-${name}: no BENCH line was printed" >&2; exit 1; }
echo "$line"

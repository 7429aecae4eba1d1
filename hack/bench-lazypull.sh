#!/usr/bin/env bash
# make bench-lazypull: container start-up with a normal pull vs a lazy pull through kubehtc-snapshotter, on
# this machine (root, FUSE). Installs containerd, runc, fuse3 and a registry from Debian if missing, then runs
# BenchmarkLazypull (internal/benchmarks), which starts everything on private sockets and loopback ports and
# cleans up. Takes minutes (a 2 GiB image is built, converted to eStargz and pulled 6 times).
# Usage: hack/bench-lazypull.sh [-image-mb=2048] [-layers=4] [-runs=3]
set -euo pipefail
cd "$(dirname "$0")/.."
hack/ensure-lazypull-deps.sh
# Write back dirty pages first so that dropping caches between runs is quick.
sync
exec hack/bench.sh lazypull "$@"

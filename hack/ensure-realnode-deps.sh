#!/usr/bin/env bash
# Installs what real nodes of the local cluster (internal/localcluster/realnode, `kubehtc up --real-nodes`)
# need, from Debian's archive: containerd, runc, the CNI plugins (bridge, host-local, loopback), iproute2,
# iptables, docker-registry (the nodes' image registry) and busybox-static (the images' shell); then builds the
# kubelet of the k8s.io/kubernetes version in go.mod into the user cache, where realnode looks for it.
# Idempotent; prints nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=(containerd runc containernetworking-plugins iproute2 iptables docker-registry busybox-static)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-realnode-deps: missing Debian packages ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "ensure-realnode-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Installing must not start the packaged containerd: each real node starts its own on a private socket.
  policy=/usr/sbin/policy-rc.d
  created_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  trap 'if [ -n "$created_policy" ]; then rm -f "$policy"; fi' EXIT
  if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
# The kubelet: realnode.findKubelet looks for kubelet-<version> here (or $KUBEHTC_KUBELET).
version=$(sed -n 's/^[[:space:]]*k8s\.io\/kubernetes \(v1\.[0-9.]*\).*/\1/p' go.mod | head -n1)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kubehtc
if [ ! -x "$cache/kubelet-$version" ]; then
  echo "ensure-realnode-deps: building the kubelet $version into $cache"
  mkdir -p "$cache"
  minor=${version#v1.}; minor=${minor%%.*}
  go build -o "$cache/kubelet-$version.tmp" \
    -ldflags "-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
    k8s.io/kubernetes/cmd/kubelet
  mv "$cache/kubelet-$version.tmp" "$cache/kubelet-$version"
fi

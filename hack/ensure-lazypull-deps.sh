#!/usr/bin/env bash
# Installs what the lazy-pulling integration test and `make bench-lazypull` need, from Debian's archive:
# containerd (1.6), runc, fuse3 (fusermount3, /dev/fuse helpers), docker-registry (distribution 2.8) and
# busybox-static (the test image's shell and cat). Idempotent; prints nothing when everything is installed.
set -euo pipefail
pkgs=(containerd runc fuse3 docker-registry busybox-static)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-lazypull-deps: missing Debian packages ${missing[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
echo "ensure-lazypull-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing must not start the packaged services: the tests start their own instances on private sockets.
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

#!/usr/bin/env bash
# Installs the real NorduGrid ARC client that the ARC REST integration test drives (gridgateway/arcrest/
# integration): nordugrid-arc-client and nordugrid-arc-plugins-arcrest from Debian's archive (6.17), and
# openssl. Idempotent; prints nothing when everything is installed.
set -euo pipefail
pkgs=(nordugrid-arc-client nordugrid-arc-plugins-arcrest openssl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-arc-client: missing Debian packages ${missing[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
echo "ensure-arc-client: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq "${missing[@]}" >/dev/null; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

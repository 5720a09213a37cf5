#!/usr/bin/env bash
# Debian packages the lab and the tests need, installed once and idempotently (root).
# Nothing here names a package mirror: apt uses the machine's own sources.
set -euo pipefail

PACKAGES=(
  podman runc debootstrap uidmap slirp4netns fuse-overlayfs
  openssh-client openssl ca-certificates
  nginx postgresql-15
  prometheus prometheus-alertmanager prometheus-blackbox-exporter prometheus-node-exporter
  chromium
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-system-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "install-system-deps: ${#PACKAGES[@]} packages present"

#!/usr/bin/env bash
# Debian packages the lab and the tests need, installed once and idempotently (root).
# When everything is already installed it only checks (well under a second) and touches nothing,
# so it also runs as a normal user then. Nothing here names a package mirror: apt uses the
# machine's own sources.
set -euo pipefail

PACKAGES=(
  # the lab: systemd containers from an image built locally with debootstrap (govops/lab)
  podman runc debootstrap uidmap slirp4netns fuse-overlayfs
  openssh-client openssl ca-certificates
  # services the tests run themselves on loopback
  nginx postgresql-15
  bind9 bind9-dnsutils
  prometheus prometheus-alertmanager prometheus-blackbox-exporter prometheus-node-exporter
  # headless browser for the smoke scenarios
  chromium
)

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null || true)
  [[ ${status} == "install ok installed" ]] || missing+=("${package}")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-system-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-system-deps: must run as root to install: ${missing[*]}" >&2
  exit 1
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# Tests start nginx, PostgreSQL and Prometheus themselves on free loopback ports; daemons that
# apt would start on a systemd machine would only hold ports 80 and 9090. A policy-rc.d that
# says "no" keeps them stopped during the install; an existing one is left as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e ${policy} ]]; then
  printf '#!/bin/sh\nexit 101\n' >"${policy}"
  chmod 755 "${policy}"
  trap 'rm -f "${policy}"' EXIT
fi

apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-system-deps: done"

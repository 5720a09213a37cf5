#!/usr/bin/env bash
# Compressed swap in memory (zram, lz4) for the whole-nation lab: its 274 hosts need more than
# 24 GiB at the cutover's peak, and most of their pages are idle and compress ~4:1
# (docs/converge-speed.md). Root. Idempotent: `lab-swap.sh SIZE` adds one device if none is
# swapping yet; `lab-swap.sh off` removes the ones it added.
set -euo pipefail
size="${1:-8G}"
# Only the devices this script labelled: a machine's own zram swap is not ours to remove.
active() { swapon --noheadings --raw --show=NAME,LABEL | awk '$2 == "govops-lab" {print $1}'; }
if [[ "$size" == off ]]; then
    for dev in $(active); do swapoff "$dev" && zramctl --reset "$dev" && echo "removed $dev"; done
    exit 0
fi
if [[ -n "$(active)" ]]; then
    echo "zram swap already on: $(active | tr '\n' ' ')"; exit 0
fi
[[ -e /sys/class/zram-control ]] || modprobe zram 2>/dev/null || {
    echo "lab-swap: the kernel has no zram module (modprobe zram failed)" >&2; exit 1; }
dev=$(zramctl --find --size "$size" --algorithm lz4)
mkswap --label govops-lab "$dev" >/dev/null
swapon --priority 100 "$dev"
echo "zram swap on: $dev ($size, lz4)"

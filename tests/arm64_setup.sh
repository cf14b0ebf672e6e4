#!/usr/bin/env bash
# Build .arm64/, an aarch64 Python for the ARM64 int8 test (tests/test_int8_arm64.py), run with
# qemu-aarch64-static on any x86 machine: Debian bookworm's arm64 python3.11 (its packages, unpacked
# by debootstrap's first stage: no chroot, no second stage, no binfmt) and the aarch64 wheels of
# the runtime's three dependencies, at the versions requirements/constraints.txt pins for x86.
# Idempotent: a second call returns at once while the stamp is newer than this script and the
# constraints. Needs root (apt-get), debootstrap and network access to Debian and PyPI.
#
#   bash tests/arm64_setup.sh              # create or update (about a minute)
#   bash tests/arm64_setup.sh --force      # rebuild from scratch
#   PYTHON=.venv/bin/python bash tests/arm64_setup.sh   # the pip that downloads the wheels
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$repo/.arm64"
root="$dir/root"
site="$dir/site"
stamp="$dir/.installed"
constraints="$repo/requirements/constraints.txt"
python="${PYTHON:-$repo/.venv/bin/python}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$dir"
fi
if [[ -f "$stamp" && "$stamp" -nt "${BASH_SOURCE[0]}" && "$stamp" -nt "$constraints" ]]; then
    exit 0
fi
command -v debootstrap >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap)
rm -rf "$dir"
mkdir -p "$dir"

# First stage only: it downloads the packages and unpacks the required ones. The --include ones
# (python3.11 and its libraries) are only downloaded; unpack them too, keeping /lib a link to
# usr/lib (bookworm's packages still ship files under /lib, and plain extraction would replace
# the merged-/usr link with a directory the loader does not look in).
debootstrap --arch=arm64 --variant=minbase --foreign --include=python3.11-minimal,libpython3.11-stdlib \
    bookworm "$root" "$mirror" >"$dir/debootstrap.log" 2>&1 || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
for package in $(cat "$root/debootstrap/base"); do
    deb="$(awk -v p="$package" '$1 == p { print $2 }' "$root/debootstrap/debpaths")"
    dpkg-deb --fsys-tarfile "$root/$deb" | tar -x --keep-directory-symlink -C "$root"
done
rm -rf "$root/var/cache/apt/archives"/*.deb

# qemu-user (7.2) passes the host's x86 /proc/cpuinfo through, on which the cpuinfo library in
# ONNX Runtime crashes at import (no MIDR). QEMU opens /proc/cpuinfo under its -L prefix first, so
# an ARM one here replaces it: one entry per host CPU, Cortex-A57's MIDR, no Features line (ONNX
# Runtime and cpuinfo read the instruction sets from the HWCAPs, which QEMU sets per -cpu model).
rm -f "$root/proc" && mkdir -p "$root/proc"
for ((cpu = 0; cpu < $(nproc --all); cpu++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd07\nCPU revision\t: 0\n\n' "$cpu"
done >"$root/proc/cpuinfo"

"$python" -m pip install --quiet --disable-pip-version-check --target "$site" --no-deps --only-binary=:all: \
    --platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64 --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 -c "$constraints" numpy onnxruntime tokenizers

qemu-aarch64-static -L "$root" "$root/usr/bin/python3.11" -c "import sys; sys.path.insert(0, '$site'); import numpy, onnxruntime, tokenizers"
touch "$stamp"

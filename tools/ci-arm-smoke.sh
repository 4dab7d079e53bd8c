#!/usr/bin/env bash
# CI hook: cross-build cconv for aarch64 and run tools/arm_smoke.py under qemu
# (tools/test-arm.sh aarch64 --smoke). As root on Debian/Ubuntu it first installs what is
# missing with apt-get: qemu-user-static, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross,
# debian-archive-keyring, python3-venv (the Cython for the build comes from PyPI into the
# cache when the host Python lacks it). The cache (CCONV_ARM_CACHE, default
# <repository>/../arm-cache) keeps the sysroot and the build between runs.
#
# Measured on a 2-core x86-64 Debian bookworm machine: 90 s from nothing (23 s apt-get of the
# host tools, 9 s a venv with Cython, 21 s the arm64 sysroot, 24 s the cross build, 11 s the
# tests), 16 s warm (cache kept, kernels unchanged; about 40 s when they changed and are
# rebuilt). The cache takes about 310 MB. See README.md, "Checking ARM without a board".
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
    [ -e /usr/aarch64-linux-gnu/include/stdlib.h ] || missing+=(libc6-dev-arm64-cross)
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "ci-arm-smoke: apt-get install ${missing[*]}"
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
fi

start=$SECONDS
tools/test-arm.sh aarch64 --smoke "$@"
echo "ci-arm-smoke: passed in $((SECONDS - start)) s"

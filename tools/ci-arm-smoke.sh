#!/usr/bin/env bash
# CI hook: cross-build cconv for aarch64 and run tools/arm_smoke.py under qemu
# (tools/test-arm.sh aarch64 --smoke). As root on Debian/Ubuntu it first installs what is
# missing with apt-get: qemu-user-static, gcc-aarch64-linux-gnu, debian-archive-keyring,
# python3-venv (the Cython for the build comes from PyPI into the cache when the host Python
# lacks it). The cache (CCONV_ARM_CACHE, default <repository>/../arm-cache) keeps the sysroot
# and the build between runs.
#
# Measured on a 2-core x86-64 Debian bookworm machine: about 2.5 min from nothing (host tools
# not installed, empty cache), about 15 s warm (cache kept, sources unchanged; ~45 s when the
# kernels changed and are rebuilt). See tools/README-arm.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
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

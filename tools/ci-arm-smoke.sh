#!/usr/bin/env bash
# CI hook: cross-build cconv for aarch64 and armv7 and run tools/arm_smoke.py under qemu on
# each (tools/test-arm.sh TARGET --smoke). As root on Debian/Ubuntu it first installs what is
# missing with apt-get, in one go: qemu-user-static, gcc-aarch64-linux-gnu,
# libc6-dev-arm64-cross, gcc-arm-linux-gnueabihf, libc6-dev-armhf-cross,
# debian-archive-keyring, python3-venv (the Cython for the build comes from PyPI into the
# cache when the host Python lacks it). The cache (CCONV_ARM_CACHE, default
# <repository>/../arm-cache) keeps the sysroots and the builds between runs.
#
#   tools/ci-arm-smoke.sh [-- PYTEST_ARGS...]       CCONV_ARM_TARGETS="aarch64 armv7" (default)
#
# aarch64 alone, measured on a 2-core x86-64 Debian bookworm machine: 90 s from nothing (23 s
# apt-get of the host tools, 9 s a venv with Cython, 21 s the arm64 sysroot, 24 s the cross
# build, 11 s the tests), 16 s warm (cache kept, kernels unchanged; about 40 s when they
# changed and are rebuilt). Both targets together: see README.md, "Checking ARM without a
# board". The cache takes about 310 MB per target.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=${CCONV_ARM_TARGETS:-aarch64 armv7}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for target in $TARGETS; do
        case "$target" in
            aarch64) qemu=qemu-aarch64-static; triplet=aarch64-linux-gnu; deb_arch=arm64 ;;
            armv7) qemu=qemu-arm-static; triplet=arm-linux-gnueabihf; deb_arch=armhf ;;
            *) echo "ci-arm-smoke: unknown target $target (aarch64, armv7)" >&2; exit 2 ;;
        esac
        command -v "$qemu" >/dev/null || missing+=(qemu-user-static)
        command -v "$triplet-gcc" >/dev/null || missing+=("gcc-$triplet")
        [ -e "/usr/$triplet/include/stdlib.h" ] || missing+=("libc6-dev-$deb_arch-cross")
    done
    [ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
    python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
    if [ ${#missing[@]} -gt 0 ]; then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
        echo "ci-arm-smoke: apt-get install ${missing[*]}"
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
fi

start=$SECONDS
for target in $TARGETS; do
    t0=$SECONDS
    tools/test-arm.sh "$target" --smoke "$@"
    echo "ci-arm-smoke: $target passed in $((SECONDS - t0)) s"
done
echo "ci-arm-smoke: all passed ($TARGETS) in $((SECONDS - start)) s"

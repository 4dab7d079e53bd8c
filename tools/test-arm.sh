#!/usr/bin/env bash
# Cross-build cconv for 64-bit or 32-bit ARM with Debian bookworm's toolchain and Python, and
# run its tests under qemu user-mode emulation (no ARM machine, no binfmt_misc, no chroot).
#
#   tools/test-arm.sh aarch64|armv7 [--smoke] [--numpy VERSION] [-- PYTEST_ARGS...]
#
#   aarch64   Debian arm64: one "neon" variant (the baseline).
#   armv7     Debian armhf, built for its baseline (-march=armv7-a -mfpu=vfpv3-d16
#             -mfloat-abi=hard): variants "scalar" and "neon" (chosen at import from HWCAP).
#             Run on an emulated Cortex-A15 (NEON + VFPv4: both variants, every test runs on
#             each), then checked on a Cortex-A9 (NEON without VFPv4: "scalar" only) and with
#             CCONV_ISA=scalar.
#   --smoke   only tools/arm_smoke.py (every kernel path, ISA variant, dtype, size limits,
#             1 vs 2 threads); without it, also the repository's tests/ when there is one.
#   --numpy   (aarch64) also run the tests with numpy VERSION from PyPI's manylinux wheel
#             in place of Debian's numpy 1.24, e.g. --numpy 2.4.6 (the host venv's version).
#
# Steps, each reused when its inputs have not changed:
#   1. host tools: qemu-user-static, gcc-<triplet>, libc6-dev-<arch>-cross,
#      debian-archive-keyring (apt-get install, if root and missing);
#      a Python with Cython >= 3 (PYTHON, else python3, else a venv made in the cache).
#   2. sysroot: Debian's python3.11, libpython3.11-dev, python3-numpy, python3-pytest,
#      python3-hypothesis, libgomp1 and their dependencies for the target, resolved and
#      downloaded by apt-get with a private state directory (the host's dpkg is not touched),
#      unpacked with dpkg -x, with the BLAS/LAPACK links a real install would make, and the
#      Python files compiled to .pyc once (the emulated Python would otherwise recompile
#      them on every start).
#   3. build: from an sdist of the repository (setup.py sdist), tools/arm_cross_build.py
#      (Cython here, <triplet>-gcc with setup.py's flags and the target Python's).
#   4. test: the package and tests staged in a temporary directory, pytest run by the target's
#      python3.11 under qemu-<arch>-static -L <sysroot>.
#
# Cache: CCONV_ARM_CACHE, default <repository>/../arm-cache (outside the repository).
# Debian mirror: CCONV_ARM_MIRROR (default http://deb.debian.org).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit "${1:-2}"; }

REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-}
[ -n "$TARGET" ] || usage
shift
SMOKE=0
NUMPY=""
PYTEST_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SMOKE=1 ;;
        --numpy) NUMPY=${2:?--numpy needs a version}; shift ;;
        -h|--help) usage 0 ;;
        --) shift; PYTEST_ARGS=("$@"); break ;;
        *) echo "test-arm.sh: unknown argument $1" >&2; usage ;;
    esac
    shift
done

case "$TARGET" in
    aarch64)
        DEB_ARCH=arm64; TRIPLET=aarch64-linux-gnu; QEMU=qemu-aarch64-static
        ARCH_FLAGS=""; CPU=""; WHEEL_PLATFORM=aarch64 ;;
    armv7)
        DEB_ARCH=armhf; TRIPLET=arm-linux-gnueabihf; QEMU=qemu-arm-static
        ARCH_FLAGS="-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard"; CPU=cortex-a15
        WHEEL_PLATFORM="" ;;
    -h|--help) usage 0 ;;
    *) echo "test-arm.sh: target must be aarch64 or armv7, got $TARGET" >&2; usage ;;
esac
if [ -n "$NUMPY" ] && [ -z "$WHEEL_PLATFORM" ]; then
    echo "test-arm.sh: --numpy: PyPI has no numpy wheels for $TARGET" >&2; exit 2
fi

CACHE=${CCONV_ARM_CACHE:-$(dirname "$REPO")/arm-cache}
MIRROR=${CCONV_ARM_MIRROR:-http://deb.debian.org}
# libstdc++6: for --numpy (PyPI's numpy wheels link it; Debian's numpy does not).
SYSROOT_PACKAGES="python3.11 libpython3.11-dev python3-numpy python3-pytest python3-hypothesis libgomp1 libstdc++6"
JOBS=$(nproc 2>/dev/null || echo 2)
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

T0=$SECONDS
step() { printf '[test-arm %s %3ds] %s\n' "$TARGET" $((SECONDS - T0)) "$*"; }

# ---- 1. host tools ------------------------------------------------------------------------
need_apt=()
command -v "$QEMU" >/dev/null || need_apt+=(qemu-user-static)
command -v "$TRIPLET-gcc" >/dev/null || need_apt+=("gcc-$TRIPLET")
# Only a Recommends of the cross gcc: without it <stdlib.h> resolves to the host's.
[ -e "/usr/$TRIPLET/include/stdlib.h" ] || need_apt+=("libc6-dev-$DEB_ARCH-cross")
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || need_apt+=(debian-archive-keyring)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        step "installing ${need_apt[*]}"
        apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${need_apt[@]}" >/dev/null
    else
        echo "test-arm.sh: missing ${need_apt[*]}; install them (apt-get install" \
             "${need_apt[*]}) or run as root" >&2
        exit 1
    fi
fi

has_cython() { "$1" -c 'import sys, Cython, setuptools; sys.exit(int(Cython.__version__.split(".")[0]) < 3)' 2>/dev/null; }
HOST_PY=""
for py in "${PYTHON:-}" python3 "$CACHE/host-venv/bin/python"; do
    if [ -n "$py" ] && command -v "$py" >/dev/null && has_cython "$py"; then HOST_PY=$py; break; fi
done
if [ -z "$HOST_PY" ]; then
    step "making $CACHE/host-venv with Cython >= 3"
    base=${PYTHON:-python3}
    if ! "$base" -m venv "$CACHE/host-venv" 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$CACHE/host-venv"; "$base" -m venv "$CACHE/host-venv"
        else
            echo "test-arm.sh: $base cannot make a venv (install python3-venv)" >&2; exit 1
        fi
    fi
    "$CACHE/host-venv/bin/python" -m pip install -q "Cython>=3.0" "setuptools>=64"
    HOST_PY=$CACHE/host-venv/bin/python
fi

# ---- 2. sysroot ---------------------------------------------------------------------------
APT=$CACHE/$DEB_ARCH/apt
SYSROOT=$CACHE/$DEB_ARCH/sysroot
SYSROOT_KEY="bookworm $MIRROR $SYSROOT_PACKAGES v1"
if [ "$(cat "$SYSROOT.stamp" 2>/dev/null)" != "$SYSROOT_KEY" ]; then
    step "sysroot: resolving and downloading Debian bookworm $DEB_ARCH packages"
    mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc/sources.list.d" \
             "$APT/etc/preferences.d"
    : > "$APT/status"
    key=/usr/share/keyrings/debian-archive-keyring.gpg
    cat > "$APT/etc/sources.list" <<EOF
deb [signed-by=$key] $MIRROR/debian bookworm main
deb [signed-by=$key] $MIRROR/debian bookworm-updates main
deb [signed-by=$key] $MIRROR/debian-security bookworm-security main
EOF
    apt_opts=(-o "APT::Architecture=$DEB_ARCH" -o "APT::Architectures::=$DEB_ARCH"
              -o "Dir::State=$APT" -o "Dir::State::Lists=$APT/lists"
              -o "Dir::State::status=$APT/status" -o "Dir::Cache=$APT/cache"
              -o "Dir::Etc::SourceList=$APT/etc/sources.list"
              -o "Dir::Etc::SourceParts=$APT/etc/sources.list.d"
              -o "Dir::Etc::Preferences=$APT/etc/preferences"
              -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d"
              -o "Debug::NoLocking=1" -o "APT::Install-Recommends=0" -o "APT::Get::Quiet=2")
    # A mirror in mid-sync can fail one index (seen: bookworm-security armhf): carry on with
    # the others; the install below fails if anything needed is really missing.
    apt-get "${apt_opts[@]}" update || step "apt-get update reported errors; continuing"
    apt-get "${apt_opts[@]}" install -y --download-only $SYSROOT_PACKAGES >/dev/null
    step "sysroot: unpacking"
    rm -rf "$SYSROOT.new" "$SYSROOT"
    mkdir -p "$SYSROOT.new"
    for deb in "$APT"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$SYSROOT.new"; done
    # What update-alternatives would do on the board: numpy links libblas.so.3 / liblapack.so.3.
    lib=$SYSROOT.new/usr/lib/$TRIPLET
    for l in blas lapack; do
        [ -e "$lib/lib$l.so.3" ] || ln -s "$l/lib$l.so.3" "$lib/lib$l.so.3"
    done
    mv "$SYSROOT.new" "$SYSROOT"
    step "sysroot: compiling its Python files to .pyc (once)"
    # .pyc files are the same on every platform: a host Python 3.11 writes them fast; else the
    # emulated one does (slower).
    pyc_py=("$QEMU" -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11")
    for py in "$HOST_PY" python3.11; do
        if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
            pyc_py=("$py"); break
        fi
    done
    "${pyc_py[@]}" -m compileall -q -j "$JOBS" "$SYSROOT/usr/lib/python3.11" \
        "$SYSROOT/usr/lib/python3/dist-packages" >/dev/null 2>&1 || true
    echo "$SYSROOT_KEY" > "$SYSROOT.stamp"
fi
run_py() { env -u PYTHONPATH -u PYTHONHOME -u PYTHONSTARTUP "$@"; }
TARGET_PY=("$QEMU" -L "$SYSROOT" "$SYSROOT/usr/bin/python3.11")

# ---- 3. build -----------------------------------------------------------------------------
BUILD=$CACHE/build/$TARGET
SRC_LIST=(setup.py pyproject.toml cconv)
# What the shared objects are made from (the package's .py files are copied at test time).
src_hash=$(cd "$REPO" && { { echo setup.py; echo pyproject.toml; find cconv -type f \( \
    -name '*.pyx' -o -name '*.pxd' -o -name '*.h' \); } | LC_ALL=C sort | xargs sha256sum;
    sha256sum tools/arm_cross_build.py; echo "$ARCH_FLAGS $("$TRIPLET-gcc" --version | head -1)";
    } | sha256sum | cut -c1-16)
if [ "$(cat "$BUILD/stamp" 2>/dev/null)" = "$src_hash" ]; then
    step "build: reusing $BUILD (sources unchanged)"
else
    step "build: cross-compiling with $TRIPLET-gcc ${ARCH_FLAGS:-(default flags)}"
    rm -rf "$BUILD"
    mkdir -p "$BUILD/tree" "$BUILD/src"
    (cd "$REPO" && tar -c --exclude='*.so' --exclude='*.c' --exclude=__pycache__ \
        "${SRC_LIST[@]}" README.md) | tar -x -C "$BUILD/tree"
    b0=$SECONDS
    # Built from the sdist, as on a board: a file the sdist leaves out fails here.
    (cd "$BUILD/tree" && run_py "$HOST_PY" setup.py -q sdist -d "$BUILD/dist" >/dev/null 2>&1) \
        || { echo "test-arm.sh: setup.py sdist failed" >&2; exit 1; }
    tar -xzf "$BUILD"/dist/*.tar.gz -C "$BUILD/src" --strip-components=1
    run_py "$HOST_PY" "$REPO/tools/arm_cross_build.py" "$BUILD/src" "$SYSROOT" "$TRIPLET" \
        "$BUILD/out" --arch-flags "$ARCH_FLAGS" -j "$JOBS"
    echo "$src_hash" > "$BUILD/stamp"
    step "build: done in $((SECONDS - b0)) s"
fi

# ---- 4. test ------------------------------------------------------------------------------
RUN=$(mktemp -d "${TMPDIR:-/tmp}/cconv-arm-$TARGET.XXXXXX")
trap 'rm -rf "$RUN"' EXIT
(cd "$REPO" && tar -c --exclude='*.so' --exclude='*.c' --exclude=__pycache__ \
    cconv pyproject.toml tools/arm_smoke.py $( [ -d tests ] && echo tests ) \
    $( [ -d benchmarks ] && echo benchmarks )) | tar -x -C "$RUN"
cp "$BUILD"/out/cconv/_kernels/*.so "$RUN/cconv/_kernels/"
"$HOST_PY" -m compileall -q "$RUN" >/dev/null 2>&1 || true
TESTS=(tools/arm_smoke.py)
if [ "$SMOKE" = 0 ] && [ -d "$RUN/tests" ]; then
    TESTS+=(tests)
fi
# Tests that start a child Python skip: sys.executable is an ARM binary the host cannot exec
# without binfmt_misc (tests/conftest.py: run_python).
export CCONV_TEST_NO_CHILD_PYTHON=1

export QEMU_CPU=$CPU
[ -n "$CPU" ] || unset QEMU_CPU
cd "$RUN"
step "test: $(run_py "${TARGET_PY[@]}" -c 'import cconv, numpy, platform; c = cconv._config.config(); print("%s, numpy %s, isa %s of %s, thread pool %s" % (platform.machine(), numpy.__version__, c["isa"], c["isa_supported"], c["thread_pool"]))')${CPU:+ (qemu -cpu $CPU)}"
t0=$SECONDS
run_py "${TARGET_PY[@]}" -m pytest -q -p no:cacheprovider "${TESTS[@]}" "${PYTEST_ARGS[@]}"
step "test: pytest ${TESTS[*]} took $((SECONDS - t0)) s"

# The variant chosen at import follows the CPU and CCONV_ISA.
isa_check() {  # expected-current expected-supported
    run_py "${TARGET_PY[@]}" - "$1" "$2" <<'EOF'
import sys
import numpy as np
import cconv
from cconv import _isa
want_current, want_supported = sys.argv[1], tuple(sys.argv[2].split(","))
assert _isa.current_name() == want_current, (_isa.current_name(), want_current)
assert _isa.SUPPORTED == want_supported, (_isa.SUPPORTED, want_supported)
x = np.arange(2 * 3 * 5 * 6, dtype=np.float32).reshape(2, 3, 5, 6) / 100
w = np.ones((4, 3, 3, 3), np.float32)
y = cconv.conv2d(x, w, padding=1)
ref = cconv.conv2d(x.astype(np.float64), w.astype(np.float64), padding=1)
assert np.allclose(y, ref, rtol=1e-5, atol=1e-5)
print(f"  isa check: {_isa.current_name()} in use, supported {_isa.SUPPORTED}: ok")
EOF
}
if [ "$TARGET" = armv7 ]; then
    isa_check neon scalar,neon
    CCONV_ISA=scalar isa_check scalar scalar,neon
    QEMU_CPU=cortex-a9 isa_check scalar scalar    # NEON but no VFPv4: the neon variant is off
else
    CCONV_ISA=neon isa_check neon neon
fi

if [ -n "$NUMPY" ]; then
    WHEELS=$CACHE/wheels
    wheel() { ls "$WHEELS"/numpy-"$NUMPY"-cp311-*"$WHEEL_PLATFORM"*.whl 2>/dev/null | head -1; }
    if [ -z "$(wheel)" ]; then
        step "downloading numpy $NUMPY for $WHEEL_PLATFORM (PyPI)"
        # Bookworm has glibc 2.36: any manylinux wheel up to 2_36 runs on it.
        "$HOST_PY" -m pip download -q --only-binary=:all: --no-deps --python-version 3.11 \
            --platform "manylinux_2_28_$WHEEL_PLATFORM" --platform "manylinux2014_$WHEEL_PLATFORM" \
            -d "$WHEELS" "numpy==$NUMPY"
    fi
    mkdir -p "$RUN/np"
    "$HOST_PY" -m zipfile -e "$(wheel)" "$RUN/np"
    "$HOST_PY" -m compileall -q "$RUN/np" >/dev/null 2>&1 || true
    t0=$SECONDS
    PYTHONPATH=$RUN/np "${TARGET_PY[@]}" -c 'import numpy; print("  numpy", numpy.__version__)'
    PYTHONPATH=$RUN/np "${TARGET_PY[@]}" -m pytest -q -p no:cacheprovider "${TESTS[@]}" \
        "${PYTEST_ARGS[@]}"
    step "test: with numpy $NUMPY took $((SECONDS - t0)) s"
fi
step "all done"

#!/usr/bin/env bash
# CI: the whole test suite (the fuzz tests included) against an AddressSanitizer +
# UndefinedBehaviorSanitizer build of cconv, made in a scratch copy (tools/sanitize.sh asan).
# Measured on the 2-core CI machine: ~85 s to build, ~85-110 s to test (about 3 minutes).
#
#   tools/ci-sanitize.sh            # asan (set CCONV_SANITIZE_MODES="asan debug" for both)
#
# Installs what it needs when missing: gcc with its sanitizer runtimes (apt-get, as root),
# and the build and test packages (pip, into the Python it runs: $PYTHON, default python3;
# run it inside the venv .ci/run made). torch is optional: its tests skip without it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MODES=${CCONV_SANITIZE_MODES:-asan}

apt_install() {
    if [[ $(id -u) != 0 ]]; then
        echo "ci-sanitize.sh: missing $*; run as root or install them" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v gcc >/dev/null || [[ ! -e $(gcc -print-file-name=libasan.so) ]] \
        || [[ ! -e $(gcc -print-file-name=libubsan.so) ]]; then
    apt_install gcc
fi
if ! "$PY" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(
        sysconfig.get_paths()["include"], "Python.h")))'; then
    apt_install python3-dev
fi
missing=$("$PY" - <<'EOF'
import importlib.util
need = {"numpy": "numpy", "pytest": "pytest", "hypothesis": "hypothesis",
        "Cython": "Cython>=3.0", "setuptools": "setuptools>=64"}
print(" ".join(spec for mod, spec in need.items() if importlib.util.find_spec(mod) is None))
EOF
)
if [[ -n $missing ]]; then
    # shellcheck disable=SC2086
    "$PY" -m pip install --quiet $missing
fi

status=0
for mode in $MODES; do
    PYTHON=$PY tools/sanitize.sh "$mode" || status=$?
done
exit "$status"

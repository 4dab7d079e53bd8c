#!/usr/bin/env bash
# Run cconv's test suite against an instrumented build, made in a scratch copy of the tree
# (the working tree and its in-place build are never touched).
#
#   tools/sanitize.sh [MODE] [-- PYTEST ARGS...]
#
# MODE
#   asan      (default) gcc -fsanitize=address,undefined, -fno-sanitize-recover=all; the ASan
#             runtime is LD_PRELOADed into Python (it must come first), PYTHONMALLOC=malloc
#             so that Python's own objects get red zones too. Leak detection is off:
#             CPython, numpy and torch keep memory alive until exit by design, and the
#             suite's RSS test (tests/test_threads.py::test_no_memory_growth) is the leak
#             check (skipped here: ASan's quarantine holds freed memory). A report fails
#             the run (halt_on_error, exit code 99 for UBSan too). allocator_may_return_null:
#             an impossible request returns NULL and numpy raises MemoryError, as it does
#             without ASan (ASan's default is to abort on requests over 1 TiB).
#   debug     CCONV_DEBUG=1: Cython's boundscheck/wraparound/initializedcheck back on,
#             -O1 -g. The kernels are `noexcept`, so a failed check inside them is printed as
#             an "unraisable" exception and would otherwise be ignored: pytest turns those
#             into errors (-W error::pytest.PytestUnraisableExceptionWarning).
#   valgrind  the debug build under valgrind memcheck, on a subset (tests/test_errors.py and
#             tests/test_layouts.py on the avx2 variant: valgrind cannot execute AVX-512, so
#             CCONV_ISA=avx2 and tests forcing other variants are deselected), with
#             tools/valgrind-python.supp for CPython's own reports. ~50x slower.
#
# Environment: PYTHON (default: python3; numpy, pytest, hypothesis needed, torch optional),
# CC (default: gcc), KEEP=1 keeps the scratch copy, SCRATCH_DIR (default: $TMPDIR or /tmp).
# Prints the build and test wall times. Exit status: pytest's (or 1 if the build failed).
set -euo pipefail

MODE=${1:-asan}
[[ $# -gt 0 ]] && shift
if [[ ${1:-} == "--" ]]; then shift; fi
case "$MODE" in
    asan|debug|valgrind) ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) echo "sanitize.sh: unknown mode '$MODE' (asan, debug, valgrind)" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
export CC=${CC:-gcc}
SCRATCH=$(mktemp -d "${SCRATCH_DIR:-${TMPDIR:-/tmp}}/cconv-$MODE.XXXXXX")
cleanup() {
    if [[ ${KEEP:-0} == 1 ]]; then echo "sanitize.sh: scratch copy kept in $SCRATCH"
    else rm -rf "$SCRATCH"; fi
}
trap cleanup EXIT

# The tree as git sees it (tracked and untracked-but-not-ignored files, so uncommitted work
# is tested too), without build outputs; a plain copy where this is not a git checkout.
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard \
        | (cd "$ROOT" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) \
        | tar -xf - -C "$SCRATCH"
else
    (cd "$ROOT" && tar --exclude='*.so' --exclude='*.c' --exclude=build \
        --exclude=__pycache__ -cf - cconv tests benchmarks setup.py pyproject.toml \
        README.md) | tar -xf - -C "$SCRATCH"
fi
cd "$SCRATCH"

case "$MODE" in
    asan) export CCONV_SANITIZE=address,undefined ;;
    debug) export CCONV_DEBUG=1 ;;
    valgrind) export CCONV_DEBUG=1 ;;   # -O1 -g (and the bounds checks) for readable stacks
esac

SECONDS=0
if ! "$PYTHON" setup.py build_ext --inplace -q -j "$(nproc 2>/dev/null || echo 2)" >build.log 2>&1; then
    tail -40 build.log >&2
    echo "sanitize.sh: build failed" >&2
    exit 1
fi
build_s=$SECONDS

# --capture=sys: a sanitizer report goes to file descriptor 2 just before the process
# exits; pytest's default fd capture would swallow it.
PYTEST=("$PYTHON" -m pytest -q -p no:cacheprovider --capture=sys
        -W error::pytest.PytestUnraisableExceptionWarning)
export PYTHONPATH="$SCRATCH${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONFAULTHANDLER=1

case "$MODE" in
    asan)
        ASAN_LIB=$("$CC" -print-file-name=libasan.so)
        if [[ ! -e $ASAN_LIB ]]; then
            echo "sanitize.sh: $CC has no libasan.so (apt-get install libasan8 / gcc)" >&2
            exit 1
        fi
        # libstdc++ too: ASan's __cxa_throw interceptor needs it loaded before any C++
        # library (torch) throws, or ASan aborts on its own CHECK.
        STDCXX=$("$PYTHON" -c "import ctypes.util; print(ctypes.util.find_library('stdc++') or '')")
        export LD_PRELOAD="$ASAN_LIB${STDCXX:+:$STDCXX}${LD_PRELOAD:+:$LD_PRELOAD}"
        # alloc_dealloc_mismatch/new_delete_type_mismatch: torch (a test-only peer) trips
        # them in its own C++ code; they cannot come from cconv, which is C.
        export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=0:exitcode=99:\
alloc_dealloc_mismatch=0:new_delete_type_mismatch=0:detect_odr_violation=0:\
strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1:\
print_summary=1"
        export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99"
        export PYTHONMALLOC=malloc
        CMD=("${PYTEST[@]}" "${@:-tests}")
        ;;
    debug)
        CMD=("${PYTEST[@]}" "${@:-tests}")
        ;;
    valgrind)
        export CCONV_ISA=avx2 PYTHONMALLOC=malloc
        SUPP="$SCRATCH/tools/valgrind-python.supp"     # CPython's and ld.so's own noise
        if [[ $# -eq 0 ]]; then
            set -- -k "not avx512 and not torch and not sse2 and not every_isa" \
                tests/test_errors.py tests/test_layouts.py
        fi
        CMD=(valgrind --tool=memcheck --error-exitcode=99 --track-origins=no
             --suppressions="$SUPP" --errors-for-leak-kinds=none --leak-check=no
             "${PYTEST[@]}" "$@")
        ;;
esac

"$PYTHON" -c "import cconv, sys; cconv.show_config(); \
assert cconv.__file__.startswith(sys.argv[1]), cconv.__file__" "$SCRATCH" | sed 's/^/  /'
set +e
"${CMD[@]}"
status=$?
set -e
echo "sanitize.sh $MODE: build ${build_s} s, tests $((SECONDS - build_s)) s, exit status $status"
exit "$status"

"""python -m cconv: show the configuration and run the founding example with its timing.

python -m cconv bench [...]: benchmark cconv against its peers on named layers of real
networks (cconv/_bench.py; `python -m cconv bench --help`).

`cconv` and `cconv bench [...]` (the console script pip installs) do the same from any
directory: `python -m` puts the working directory first on sys.path, so in a checkout of
cconv's sources it would import their unbuilt package instead of the installed one.
"""
import os
import sys
import time

import numpy as np

import cconv


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        from . import _bench
        return _bench.main(argv[1:])
    if argv:
        print(f"usage: python -m cconv            show the configuration, run the founding "
              f"example\n       python -m cconv bench ...  benchmarks (--help)\n"
              f"python -m cconv: unknown argument {argv[0]!r}", file=sys.stderr)
        return 2
    cconv.show_config()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256, 24, 24), dtype=np.float32)
    conv = cconv.Conv2d(256, 128, 3, padding=1, rng=0)
    y = conv(x)
    best = float("inf")
    for _ in range(20):
        t0 = time.perf_counter()
        conv(x)
        best = min(best, time.perf_counter() - t0)
    flops = 2 * 128 * 24 * 24 * 256 * 9
    print(f"\nfounding example: input {x.shape[1:]} * 128 kernels of 3x3x256, padding 1 -> "
          f"{y.shape[1:]}: {best * 1e3:.2f} ms ({flops / best / 1e9:.1f} GFLOP/s)")
    return 0


def _reexec_without_slow_blas_env():
    """`bench` only: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE slow numpy's matmul (a peer) and
    are read when numpy is imported, so re-run this command in a fresh process without
    them (unless --keep-env). The removed values are recorded in the benchmark's metadata."""
    from ._bench import SLOW_BLAS_ENV
    found = {k: os.environ[k] for k in SLOW_BLAS_ENV if k in os.environ}
    if not found or "--keep-env" in sys.argv or os.name != "posix":
        return
    env = {k: v for k, v in os.environ.items() if k not in SLOW_BLAS_ENV}
    env["CCONV_BENCH_UNSET"] = " ".join(f"{k}={v}" for k, v in found.items())
    print(f"cconv bench: re-running without {env['CCONV_BENCH_UNSET']} (they "
          f"slow numpy's matmul; --keep-env keeps them)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # The new process imports this very cconv, whatever its working directory holds.
    home = os.path.dirname(os.path.dirname(os.path.abspath(cconv.__file__)))
    code = f"import sys; sys.path.insert(0, {home!r}); from cconv.__main__ import run; run()"
    os.execve(sys.executable, [sys.executable, "-c", code, *sys.argv[1:]], env)


def run():
    """The command line: `python -m cconv ...` or the `cconv` console script."""
    if sys.argv[1:2] == ["bench"]:
        _reexec_without_slow_blas_env()
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()

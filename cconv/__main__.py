"""python -m cconv: show the configuration and run the founding example with its timing.

python -m cconv bench [...]: benchmark cconv against its peers on named layers of real
networks (the cconv.bench package; `python -m cconv bench --help`).

`cconv` and `cconv bench [...]` (the console script pip installs) do the same from any
directory: `python -m` puts the working directory first on sys.path, so in a checkout of
cconv's sources it would import their unbuilt package instead of the installed one.
"""
import sys
import time

import numpy as np

import cconv


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        from .bench import main as bench
        return bench(argv[1:])
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


def run():
    """The command line: `python -m cconv ...` or the `cconv` console script. `bench` first
    re-runs itself without settings that slow a peer (cconv.bench.cli.run)."""
    if sys.argv[1:2] == ["bench"]:
        from .bench import cli
        sys.exit(cli.run(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    run()

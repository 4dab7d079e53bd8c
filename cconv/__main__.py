"""python -m cconv: show the configuration and run the founding example with its timing."""
import sys
import time

import numpy as np

import cconv


def main(argv=None):
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

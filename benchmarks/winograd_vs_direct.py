"""Winograd (forced) against the planner's direct plan on 3x3 stride-1 layers, alternating
the two in one run (read the ratio, not the times):

    PYTHONPATH=. python benchmarks/winograd_vs_direct.py [CPB TILES PPB] [--f64]

Prints per layer the best of 7 times of each, the speedup and Winograd's error
max|y - ref| / max|ref| against the float64 reference, next to its bound.
"""
import sys
import time

import numpy as np

from cconv import _engine, _isa, _params, _planner
from cconv._kernels import _winograd
from cconv.testing import conv2d_ref

LAYERS = [(256, 24, 128), (64, 56, 64), (128, 28, 128), (256, 14, 256)]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    cpb, tc, ppb = (int(a) for a in args) if args else (256, 32, 100)
    dtype = np.float64 if "--f64" in sys.argv else np.float32
    bound = 1e-13 if dtype == np.float64 else 1e-5
    rng = np.random.default_rng(0)
    print(f"m={_winograd.M_TILE} cpb={cpb} tiles={tc} ppb={ppb} {np.dtype(dtype).name}")
    for c, h, k in LAYERS:
        x = rng.standard_normal((1, c, h, h)).astype(dtype)
        w = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(dtype)
        params = _params.conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
        kernel = _winograd.Winograd(params, _isa.current(), x.itemsize, cpb, tc, ppb)
        packed = np.empty(kernel.packed_size, dtype)
        kernel.pack(w.reshape(-1), packed)
        direct = _engine.bind(_planner.plan(params, dtype), params)
        direct_w = _engine.prepare_weight(direct, w)
        y = np.empty(params.output_shape, dtype)
        y_direct = np.empty_like(y)
        tw, td = [], []
        for _ in range(7):
            t = time.perf_counter()
            kernel.run(x, packed, True, None, y, 2)
            tw.append(time.perf_counter() - t)
            t = time.perf_counter()
            _engine.execute(direct, x, direct_w, None, y_direct)
            td.append(time.perf_counter() - t)
        ref = conv2d_ref(x.astype(np.float64), w.astype(np.float64), padding=1)
        err = np.abs(y - ref).max() / np.abs(ref).max()
        print(f"{c}@{h}->{k}: winograd {min(tw) * 1e3:.2f} ms, direct {min(td) * 1e3:.2f} ms, "
              f"speedup {min(td) / min(tw):.2f}, error {err:.2g} (bound {bound:g})")


if __name__ == "__main__":
    main()

"""Winograd against the direct plan (the planner's choice with Winograd turned off) on 3x3
stride-1 layers, at 1 and 2 threads, alternating the two in rounds within one run (read the
ratios, not the times):

    PYTHONPATH=. python benchmarks/winograd_vs_direct.py [--rounds R] [--f64]
                                                         [--set NAME=VALUE ...]

--set overrides a planner constant for the Winograd plan (WINOGRAD_KC,
WINOGRAD_TILE_COLUMNS). Prints per layer and thread count the median time per call of each,
the ratio direct / winograd (median of the rounds' ratios, and its range) and Winograd's error
max|y - ref| / max|ref| against the float64 reference, next to its bound.
"""
import argparse
import time

import numpy as np

import cconv
from cconv import _engine, _params, _planner
from cconv.testing import conv2d_ref

# (batch, C_in, size, C_out): the bench's 3x3 stride-1 layers with 64 channels or more.
LAYERS = [(1, 256, 24, 128), (1, 64, 56, 64), (1, 128, 28, 128), (1, 256, 14, 256),
          (1, 512, 7, 512), (8, 64, 56, 64)]


def bound_call(x, w, algorithm):
    params = _params.conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    if algorithm == "direct":
        cconv.set_winograd(False)
        plan = _planner.plan(params, x.dtype)
        cconv.set_winograd(True)
    else:
        plan = _planner.plan(params, x.dtype, "winograd")
    bound = _engine.bind(plan, params)
    packed = _engine.prepare_weight(bound, w)
    y = np.empty(params.output_shape, x.dtype)
    return lambda: _engine.execute(bound, x, packed, None, y), y, plan.algorithm.value


def per_call(fn, n):
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--f64", action="store_true")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--layers", default="")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    for s in args.set:
        name, value = s.split("=")
        setattr(_planner, name, int(value))
    dtype = np.float64 if args.f64 else np.float32
    bound = 1e-13 if dtype == np.float64 else 1e-5
    rng = np.random.default_rng(0)
    layers = [LAYERS[int(i)] for i in args.layers.split(",")] if args.layers else LAYERS
    for n, c, h, k in layers:
        x = rng.standard_normal((n, c, h, h)).astype(dtype)
        w = (rng.standard_normal((k, c, 3, 3)) / np.sqrt(9 * c)).astype(dtype)
        ref = conv2d_ref(x.astype(np.float64), w.astype(np.float64), padding=1)
        for threads in (int(t) for t in args.threads.split(",")):
            cconv.set_num_threads(threads)
            fw, y, _ = bound_call(x, w, "winograd")
            fd, _, direct_name = bound_call(x, w, "direct")
            fw()
            fd()
            calls = max(1, int(0.03 / max(per_call(fw, 1), 1e-6)))
            tw, td = [], []
            for _ in range(args.rounds):
                tw.append(per_call(fw, calls))
                td.append(per_call(fd, calls))
            ratios = sorted(d / w_ for d, w_ in zip(td, tw))
            err = np.abs(y - ref).max() / np.abs(ref).max()
            print(f"{n}x{c}@{h}->{k} t{threads}: winograd {np.median(tw) * 1e3:.2f} ms, "
                  f"{direct_name} {np.median(td) * 1e3:.2f} ms, direct/winograd "
                  f"{np.median(ratios):.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f}), error "
                  f"{err:.2g} (bound {bound:g})", flush=True)
    cconv.set_num_threads(None)


if __name__ == "__main__":
    main()

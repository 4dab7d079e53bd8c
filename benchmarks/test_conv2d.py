"""cconv (functional and module) and its peers on named layers of real networks.

Each benchmark first checks its contender's output against the float64 reference (a wrong
benchmark fails instead of timing), then times one call per iteration; `extra_info` records
the layer, threads, contender, FLOPs, GFLOP/s (from the median) and what cconv's planner
chose (algorithm, threads it uses, workspace bytes). Compare ratios within one run
(benchmarks/summary.py), never absolute times.
"""
import functools

import numpy as np
import pytest
import shapes

from cconv.bench import harness, peers


@functools.lru_cache(maxsize=4)
def _arrays_and_reference(name):
    layer = shapes.by_name(name)
    x, w, b = harness.make_arrays(layer, np.float32)
    return x, w, b, harness.reference(layer, x, w, b)


def test_conv2d(benchmark, layer, threads, contender):
    x, w, b, ref = _arrays_and_reference(layer.name)
    with harness.ThreadSettings(threads):
        try:
            c = peers.make_contender(contender, layer, x, w, b, threads)
        except peers.UnavailableError as exc:
            pytest.skip(str(exc))
        ok, diff = harness.check(c.to_numpy(c.call()), ref)
        assert ok, (f"{contender} on {layer.name}: max abs diff {diff:.3g} from the reference "
                    f"(tolerance {harness.TOLERANCE:g} x max(1, max|ref|))")
        for _ in range(2):
            c.call()
        plan = harness.plan_info(layer, np.float32)
        benchmark.group = f"{layer.name} ({layer.describe()}) t={threads}"
        benchmark.extra_info.update(layer=layer.name, network=layer.network,
                                    kind=layer.kind, threads=threads, contender=contender,
                                    flops=layer.flops, max_abs_diff=diff, **plan)
        benchmark(c.call)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["gflops"] = layer.flops / stats.stats.median / 1e9

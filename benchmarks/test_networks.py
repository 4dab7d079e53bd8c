"""Whole networks of cconv.models end to end at batch 1: cconv fused (cconv.nn.fuse) and as
loaded, torch eager and onnxruntime, the same random weights for all (cconv.bench.networks).
Each contender's output is checked against torch's before it is timed; compare ratios within
one run, as `cconv bench --networks` prints them."""
import functools

import pytest

from cconv.bench import harness, networks
from cconv.bench.peers import UnavailableError


@functools.lru_cache(maxsize=1)
def _contenders(name, threads):
    x = networks.example(name, 1)
    return networks.contenders(name, threads, x)


def test_network(benchmark, network, threads, net_contender):
    with harness.ThreadSettings(threads):
        try:
            live, want = _contenders(network, threads)
        except UnavailableError as exc:
            pytest.skip(str(exc))
        c = live[net_contender]
        if isinstance(c, UnavailableError):
            pytest.skip(str(c))
        ok, diff = networks.check(c.to_numpy(c.call()), want)
        assert ok, f"{net_contender} on {network}: max abs diff {diff:.3g} from torch's output"
        benchmark.group = f"{network} batch 1 t={threads}"
        benchmark.extra_info.update(network=network, threads=threads,
                                    contender=net_contender, max_abs_diff=diff)
        benchmark(c.call)

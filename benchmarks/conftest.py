"""pytest-benchmark suite: `pytest benchmarks --benchmark-only` (see README.md).

Parametrized over layers x threads x contenders, chosen with --bench-layers (quick, all or
names/substrings; default all), --bench-threads (default 1,2) and --bench-contenders
(default all: cconv's two paths, torch, onnxruntime, numpy, ncnn, tflite). Peers that are
not installed are skipped. test_networks.py: whole networks (--bench-networks, default all)
x threads x (cconv fused and unfused, torch, onnxruntime), at batch 1.
"""
import os

import pytest
import shapes

from cconv.bench import peers, report


def pytest_addoption(parser):
    group = parser.getgroup("cconv benchmarks")
    group.addoption("--bench-layers", default="all",
                    help="layers: quick, all (default) or comma-separated names or substrings")
    group.addoption("--bench-threads", default="1,2",
                    help="comma-separated thread counts (default 1,2)")
    group.addoption("--bench-networks", default="all",
                    help="networks of test_networks.py: all (default) or comma-separated names")
    group.addoption("--bench-contenders", default=",".join(peers.CONTENDERS),
                    help=f"comma-separated among {','.join(peers.CONTENDERS)} (default all)")


def pytest_generate_tests(metafunc):
    config = metafunc.config
    if "layer" in metafunc.fixturenames:
        layers = shapes.select(config.getoption("--bench-layers"))
        metafunc.parametrize("layer", layers, ids=[layer.name for layer in layers])
    if "threads" in metafunc.fixturenames:
        threads = [int(t) for t in config.getoption("--bench-threads").split(",")]
        metafunc.parametrize("threads", threads, ids=[f"t{t}" for t in threads])
    if "network" in metafunc.fixturenames:
        from cconv.bench import networks
        names = networks.select(config.getoption("--bench-networks"))
        metafunc.parametrize("network", names)
    if "net_contender" in metafunc.fixturenames:
        from cconv.bench import networks
        metafunc.parametrize("net_contender", networks.CONTENDERS)
    if "contender" in metafunc.fixturenames:
        names = [c.strip() for c in config.getoption("--bench-contenders").split(",")]
        bad = [c for c in names if c not in peers.CONTENDERS]
        if bad:
            raise pytest.UsageError(f"--bench-contenders: unknown {bad}; expected some of "
                                    f"{', '.join(peers.CONTENDERS)}")
        metafunc.parametrize("contender", names)


def pytest_report_header(config):
    info = report.machine_info()
    lines = [f"cconv {info['cconv']}: {info['cpu']}, {info['cpus_usable']} usable CPUs; "
             f"torch {info['torch']}, onnxruntime {info['onnxruntime']}, numpy {info['numpy']}, "
             f"ncnn {info['ncnn']}, ai-edge-litert {info['tflite']}"]
    slow = {k: os.environ[k] for k in peers.SLOW_BLAS_ENV if k in os.environ}
    if slow:
        lines.append(f"WARNING: {slow} slows the numpy peer's matmul; run with "
                     f"env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE")
    return lines

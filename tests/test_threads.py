"""Threads: bitwise-identical results for any thread count, concurrent callers, the GIL
released during the kernels, fork safety, OpenMP compiled in, and no memory growth."""
import gc
import io
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import (
    HAS_TRANSPOSED,
    applicable_algorithms,
    check,
    operation,
    random_arrays,
    requires_transposed,
)

import cconv
from cconv import _isa, _planner
from cconv._kernels import _runtime

THREAD_COUNTS = (1, 2, 3, 4)

# Problems large enough to be split (well above the planner's serial threshold), each run
# with every algorithm that applies: (operation, x shape, w shape, kwargs).
SPLIT_PROBLEMS = {
    "3x3": ("conv2d", (2, 32, 30, 30), (48, 32, 3, 3), dict(padding=1)),
    "K576-strided": ("conv2d", (1, 64, 33, 35), (40, 64, 3, 3), dict(stride=2)),
    "1x1": ("conv2d", (2, 96, 20, 20), (80, 96, 1, 1), {}),
    "many-channels-few-pixels": ("conv2d", (1, 256, 6, 6), (256, 256, 3, 3), dict(padding=1)),
    "grouped": ("conv2d", (3, 24, 25, 27), (36, 6, 3, 5), dict(groups=4, padding=(1, 2))),
    "depthwise": ("conv2d", (2, 32, 40, 40), (64, 1, 3, 3), dict(padding=1, groups=32)),
    "depthwise-row-bands": ("conv2d", (1, 2, 200, 200), (2, 1, 5, 5), dict(groups=2)),
    "depthwise-strided": ("conv2d", (1, 32, 61, 67), (32, 1, 7, 7),
                          dict(stride=2, dilation=(1, 2), groups=32)),
    "transposed-stride2": ("conv_transpose2d", (2, 32, 20, 20), (32, 24, 4, 4),
                           dict(stride=2, padding=1)),
    "transposed-stride3-dilated": ("conv_transpose2d", (1, 48, 17, 19), (48, 16, 3, 3),
                                   dict(stride=3, dilation=2, output_padding=1, groups=2)),
}
PLANNERS = {"conv2d": "plan_for_conv2d", "conv_transpose2d": "plan_for_conv_transpose2d"}
PROBLEM_ALGORITHMS = [
    pytest.param(k, a, id=f"{k}-{a}", marks=requires_transposed if op != "conv2d" else ())
    for k, (op, x, _, kw) in SPLIT_PROBLEMS.items()
    for a in applicable_algorithms(x[1], kw.get("groups", 1), op == "conv_transpose2d")]


def test_every_algorithm_is_exercised():
    assert {p.values[1] for p in PROBLEM_ALGORITHMS} == set(_planner.ALGORITHMS)


@pytest.mark.parametrize(("problem", "algorithm"), PROBLEM_ALGORITHMS)
def test_bitwise_identical_for_any_thread_count(problem, algorithm, dtype, isa):
    op, x_shape, w_shape, kwargs = SPLIT_PROBLEMS[problem]
    channels = w_shape[1] * kwargs.get("groups", 1) if op == "conv_transpose2d" else None
    x, w, b = random_arrays(11, x_shape, w_shape, True, dtype, channels)
    results = {}
    for n in THREAD_COUNTS:
        cconv.set_num_threads(n)
        plan = getattr(_planner, PLANNERS[op])(x_shape, w_shape, **kwargs, dtype=dtype,
                                               algorithm=algorithm)
        assert plan.threads == 1 if n == 1 else plan.threads > 1, (n, plan)
        results[n] = operation(op)(x, w, b, **kwargs, algorithm=algorithm)
    check(op, results[1], x, w, b, algorithm=algorithm, **kwargs)
    for n in THREAD_COUNTS[1:]:
        assert np.array_equal(results[n], results[1]), f"{n} threads differ from 1"


def test_concurrent_python_threads():
    """16 Python threads convolving at once (functional and one shared module) all get
    exactly their sequential results."""
    cconv.set_num_threads(2)
    conv = cconv.Conv2d(8, 16, 3, padding=1, rng=0)
    shapes = [((2, 8, 24, 24), (16, 8, 3, 3), {}),
              ((1, 12, 30, 20), (12, 1, 3, 3), dict(groups=12, padding=1)),
              ((3, 6, 17, 19), (12, 2, 5, 3), dict(groups=3, stride=2))]
    tasks = []
    for i in range(48):
        if i % 4 == 3:
            x, _, _ = random_arrays(100 + i, (2, 8, 16, 16), (1, 1, 1, 1), False, np.float32)
            tasks.append((conv, (x,), {}))
            continue
        x_shape, w_shape, kwargs = shapes[i % 3]
        x, w, b = random_arrays(100 + i, x_shape, w_shape, True, np.float32)
        tasks.append((cconv.conv2d, (x, w, b), kwargs))
    expected = [fn(*args, **kw) for fn, args, kw in tasks]
    barrier = threading.Barrier(16)

    def run(i):
        if i < 16:
            barrier.wait(timeout=60)
        fn, args, kw = tasks[i]
        return fn(*args, **kw)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, range(len(tasks))))
    for i, (got, want) in enumerate(zip(results, expected)):
        assert np.array_equal(got, want), f"task {i}"


def _long_call(algorithm, target_seconds=0.3, max_bytes=64 << 20):
    """A conv2d call of `algorithm` lasting about target_seconds on one thread (the batch
    doubled until it does, within max_bytes of output): returns (run, its output shape)."""
    if algorithm == "depthwise":
        image, w_shape, kwargs = (32, 48, 48), (256, 1, 7, 7), dict(groups=32, padding=3)
    else:
        image, w_shape, kwargs = (256, 8, 8), (256, 256, 3, 3), dict(padding=1)
    x1, w, b = random_arrays(0, (1, *image), w_shape, True, np.float64)
    n = 1
    while True:
        x = np.repeat(x1, n, axis=0)

        def run(x=x):
            return cconv.conv2d(x, w, b, **kwargs, algorithm=algorithm)
        start = time.perf_counter()
        y = run()
        if time.perf_counter() - start >= target_seconds or 2 * y.nbytes > max_bytes:
            return run, y.shape
        n *= 2


@pytest.mark.parametrize("algorithm", _planner.ALGORITHMS)
def test_gil_is_released_during_the_kernel(algorithm):
    """A Python thread keeps running (appending timestamps) while another thread is inside
    a long conv2d: some of its timestamps fall in the middle third of the call."""
    cconv.set_num_threads(1)
    with _isa.forced(_isa.SUPPORTED[0]):      # the slowest variant: a long call, little memory
        run, _ = _long_call(algorithm)
        stamps, stop = [], threading.Event()

        def ticker():
            while not stop.is_set():
                stamps.append(time.perf_counter())
                time.sleep(0.0005)

        thread = threading.Thread(target=ticker)
        thread.start()
        try:
            while not stamps:
                time.sleep(0.001)
            t0 = time.perf_counter()
            run()
            t1 = time.perf_counter()
        finally:
            stop.set()
            thread.join()
    third = (t1 - t0) / 3
    inside = [t for t in stamps if t0 + third < t < t1 - third]
    assert inside, f"no Python thread ran during the middle {third * 1e3:.0f} ms of the call"


def _convolve_in_child(queue, x, w, b):
    try:
        cconv.set_num_threads(2)
        queue.put(("ok", cconv.conv2d(x, w, b, padding=1)))
    except BaseException as exc:  # report anything to the parent
        queue.put(("error", repr(exc)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_forked_child_can_convolve_after_parent_used_threads():
    x, w, b = random_arrays(3, (2, 32, 30, 30), (48, 32, 3, 3), True, np.float32)
    cconv.set_num_threads(2)
    assert _planner.plan_for_conv2d(x.shape, w.shape, padding=1).threads == 2
    expected = cconv.conv2d(x, w, b, padding=1)       # the parent's thread pool now runs
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_convolve_in_child, args=(queue, x, w, b))
    child.start()
    try:
        status, result = queue.get(timeout=120)
    except Exception:
        status, result = "hung", "no result within 120 s"
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join()
    assert status == "ok", result
    assert child.exitcode == 0
    assert np.array_equal(result, expected)


def test_openmp_is_compiled_in():
    """A normal build must not silently lose OpenMP; CCONV_EXPECT_SERIAL=1 declares a serial
    build (then OpenMP must be absent)."""
    serial = os.environ.get("CCONV_EXPECT_SERIAL", "") == "1"
    assert _runtime.openmp is not serial, (
        "cconv was built without OpenMP" if not serial else "CCONV_EXPECT_SERIAL=1 but "
        "this build has OpenMP")


def test_show_config_reports_openmp_and_threads():
    cconv.set_num_threads(3)
    buf = io.StringIO()
    cconv.show_config(file=buf)
    text = buf.getvalue()
    assert f"openmp:         {'on' if _runtime.openmp else 'OFF'}" in text
    assert "threads:        3" in text
    assert _isa.current_name() in text and cconv.__version__ in text


def test_show_config_survives_invalid_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    buf = io.StringIO()
    cconv.show_config(file=buf)
    assert "invalid" in buf.getvalue() and "openmp" in buf.getvalue()


def test_default_thread_count(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert cconv.get_num_threads() == cpus
    cconv.set_num_threads(5)
    assert cconv.get_num_threads() == 5
    cconv.set_num_threads(None)
    assert cconv.get_num_threads() == cpus


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _mixed_calls(conv, arrays):
    """One round of good and failing calls through every path."""
    x, w, b, xd, wd = arrays
    cconv.conv2d(x, w, b, padding=1)
    cconv.conv2d(xd, wd, groups=4, algorithm="depthwise")
    cconv.conv2d(xd, wd, groups=4, algorithm="igemm", out=np.empty((2, 8, 10, 10), np.float32))
    for algorithm in applicable_algorithms(x.shape[1], 1):
        cconv.conv2d(x, w, b, stride=2, algorithm=algorithm)
    if HAS_TRANSPOSED:
        cconv.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    conv(x)
    conv.weight = w
    conv.load_state_dict({"weight": w, "bias": b})
    failing = [
        lambda: cconv.conv2d(x.astype(np.int32), w),
        lambda: cconv.conv2d(x[:, :, :2], w),
        lambda: cconv.conv2d(x, w, out=np.empty(3, np.float32)),
        lambda: cconv.conv2d(x, w, algorithm="depthwise"),
        lambda: cconv.conv2d(x, w, padding=2**31),
        lambda: conv(x[:, :3]),
    ] + ([lambda: cconv.conv_transpose2d(x, w, stride=2, output_padding=2)]
         if HAS_TRANSPOSED else [])
    for call in failing:
        try:
            call()
        except (TypeError, ValueError, MemoryError):
            pass
        else:
            raise AssertionError("expected a failure")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
def test_no_memory_growth():
    x, w, b = random_arrays(1, (2, 6, 12, 12), (6, 6, 3, 3), True, np.float32)
    xd, wd, _ = random_arrays(2, (2, 4, 12, 12), (8, 1, 3, 3), False, np.float32)
    conv = cconv.Conv2d(6, 6, 3, padding=1, rng=0)
    arrays = (x, w, b, xd, wd)
    for _ in range(200):
        _mixed_calls(conv, arrays)
    gc.collect()
    before = _rss_bytes()
    for _ in range(2000):
        _mixed_calls(conv, arrays)
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 4 << 20, f"RSS grew by {growth / 2**20:.1f} MiB over 2000 rounds"


def test_weight_swaps_during_calls_are_atomic():
    """While one thread swaps a module's weights back and forth, calls in other threads
    compute entirely with the old or entirely with the new weights."""
    cconv.set_num_threads(2)
    conv = cconv.Conv2d(16, 32, 3, padding=1, rng=0)
    x, _, _ = random_arrays(5, (2, 16, 20, 20), (1, 1, 1, 1), False, np.float32)
    states = [conv.state_dict(), cconv.Conv2d(16, 32, 3, padding=1, rng=1).state_dict()]
    states[1]["bias"] = states[0]["bias"]        # so a weight assignment alone swaps too
    expected = []
    for state in states:
        conv.load_state_dict(state)
        expected.append(conv(x))
    stop = threading.Event()

    def swap():
        i = 0
        while not stop.is_set():
            i += 1
            if i % 4 < 2:
                conv.load_state_dict(states[i % 2])
            else:
                conv.weight = states[i % 2]["weight"]

    def call(_):
        y = conv(x)
        return any(np.array_equal(y, e) for e in expected)

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            ok = list(pool.map(call, range(200)))
    finally:
        stop.set()
        swapper.join()
    assert all(ok), f"{ok.count(False)} of {len(ok)} calls mixed old and new weights"

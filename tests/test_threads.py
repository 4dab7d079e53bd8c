"""Threads: bitwise-identical results for any thread count, concurrent callers, a call that
does not wait for workers that never start, the GIL released during the kernels, fork
safety, the thread pool really running, and no memory growth."""
import ctypes
import gc
import io
import multiprocessing
import os
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import (
    ASAN,
    applicable_algorithms,
    check,
    operation,
    random_arrays,
    run_python,
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
    pytest.param(k, a, id=f"{k}-{a}")
    for k, (op, x, _, kw) in SPLIT_PROBLEMS.items()
    for a in applicable_algorithms(x[1], kw.get("groups", 1), op == "conv_transpose2d")] + [
    # Winograd needs 3x3 stride 1, which APPLIES cannot see.
    pytest.param(k, "winograd", id=f"{k}-winograd") for k in ("3x3", "many-channels-few-pixels")]


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


@pytest.mark.parametrize("shape", [((1, 1, 28, 28), (8, 1, 3, 3)),       # depthwise
                                   ((1, 3, 20, 20), (16, 3, 3, 3))])     # igemm
def test_small_problems_are_planned_for_the_one_thread_they_run_on(shape):
    """A call below the serial threshold runs on one thread whatever the thread count, and
    is planned as on one (not with the bands of a split it will not make)."""
    x_shape, w_shape = shape
    plans = []
    for n in (1, 2, 4):
        cconv.set_num_threads(n)
        plans.append(_planner.plan_for_conv2d(x_shape, w_shape, padding=1))
    for plan in plans:
        assert plan.threads == 1
        assert (plan.algorithm, plan.rows, plan.ppb, plan.workspace_elems) == (
            plans[0].algorithm, plans[0].rows, plans[0].ppb, plans[0].workspace_elems)


def test_concurrent_python_threads():
    """16 Python threads convolving at once (conv2d of several shapes and algorithms,
    unbatched, conv_transpose2d, and one shared module) all get exactly their sequential
    results."""
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
        if i % 8 == 5:
            x, w, b = random_arrays(100 + i, (2, 8, 9, 11), (8, 3, 4, 4), True, np.float64, 6)
            tasks.append((cconv.conv_transpose2d, (x, w, b), dict(stride=2, padding=1,
                                                                 groups=2)))
            continue
        x_shape, w_shape, kwargs = shapes[i % 3]
        x, w, b = random_arrays(100 + i, x_shape, w_shape, True, np.float32)
        if i % 8 == 6:
            x = x[0]                      # unbatched
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
    if algorithm.startswith("depthwise"):
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
    status, result, exitcode = _result_of_forked(_convolve_in_child, x, w, b)
    assert status == "ok", result
    assert exitcode == 0
    assert np.array_equal(result, expected)


def _convolve_in_grandchild(queue, x, w, b):
    """A forked child forks again; the grandchild convolves (asking for 2 threads)."""
    try:
        status, result, _ = _result_of_forked(_convolve_in_child, x, w, b)
        queue.put((status, result))
    except BaseException as exc:  # report anything to the parent
        queue.put(("error", repr(exc)))


def _result_of_forked(target, *args):
    """(status, result, exit code) of target(queue, *args) run in a forked child."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=target, args=(queue, *args))
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
    return status, result, child.exitcode


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork")
def test_fork_while_another_thread_convolves():
    """Fork while another thread of the parent is inside a multi-threaded call (the pool's
    workers running): the child, and a grandchild it forks, convolve correctly."""
    x, w, b = random_arrays(4, (2, 32, 30, 30), (48, 32, 3, 3), True, np.float32)
    cconv.set_num_threads(2)
    expected = cconv.conv2d(x, w, b, padding=1)
    stop, running = threading.Event(), threading.Event()

    def busy():
        while not stop.is_set():
            cconv.conv2d(x, w, b, padding=1)
            running.set()

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        assert running.wait(timeout=60)
        results = [_result_of_forked(_convolve_in_child, x, w, b),
                   _result_of_forked(_convolve_in_grandchild, x, w, b)]
    finally:
        stop.set()
        thread.join()
    for status, result, _ in results:
        assert status == "ok", result
        assert np.array_equal(result, expected)


def _has_libgomp():
    try:
        ctypes.CDLL("libgomp.so.1")
        return True
    except OSError:
        return False


@pytest.mark.skipif(not hasattr(os, "fork") or not _has_libgomp(),
                    reason="needs fork and GNU libgomp")
def test_fork_after_another_libgomp_user_ran_threads():
    """Another library in the process (a BLAS, scikit-learn) ran an OpenMP parallel region;
    cconv never did. A forked child convolves correctly (cconv's threads are its own pool's,
    and a forked child runs on one thread)."""
    code = textwrap.dedent("""
        import ctypes, os, signal, numpy as np, cconv
        gomp, libc = ctypes.CDLL("libgomp.so.1"), ctypes.CDLL(None)
        gomp.GOMP_parallel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint,
                                       ctypes.c_uint]
        # another library's parallel region: free(NULL) on 2 threads
        gomp.GOMP_parallel(ctypes.cast(libc.free, ctypes.c_void_p), None, 2, 0)
        cconv.set_num_threads(2)
        x, w = np.ones((2, 32, 30, 30), np.float32), np.ones((48, 32, 3, 3), np.float32)
        pid = os.fork()
        if pid == 0:
            signal.alarm(5)           # a hung child is killed (a good one takes ms)
            y = cconv.conv2d(x, w, padding=1)
            os._exit(0 if float(y[0, 0, 1, 1]) == 288.0 else 1)
        print("child", os.waitpid(pid, 0)[1])
    """)
    proc = run_python(["-c", code], timeout=60)
    assert "child 0" in proc.stdout, f"child status: {proc.stdout} {proc.stderr[-300:]}"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_a_multi_threaded_call_really_runs_on_pool_threads():
    """The trap of a parallel loop that quietly runs serially: a 2-thread call starts the
    pool's workers (threads named cconv-pool)."""
    assert _runtime.thread_pool
    x, w, b = random_arrays(5, (2, 32, 30, 30), (48, 32, 3, 3), True, np.float32)
    cconv.set_num_threads(2)
    assert _planner.plan_for_conv2d(x.shape, w.shape, padding=1).threads == 2
    cconv.conv2d(x, w, b, padding=1)
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                names.append(f.read().strip())
        except OSError:
            pass
    assert "cconv-pool" in names, names


def test_show_config_reports_thread_pool_and_threads():
    cconv.set_num_threads(3)
    buf = io.StringIO()
    cconv.show_config(file=buf)
    text = buf.getvalue()
    assert f"thread pool:    {'on' if _runtime.thread_pool else 'OFF'}" in text
    assert "threads:        3" in text
    assert _isa.current_name() in text and cconv.__version__ in text


def test_show_config_survives_invalid_omp_num_threads(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    buf = io.StringIO()
    cconv.show_config(file=buf)
    assert "invalid" in buf.getvalue() and "thread pool" in buf.getvalue()


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


def _mixed_calls(modules, arrays):
    """One round of good and failing calls through every path (functional and modules,
    every algorithm, out=, unbatched, weight updates; errors of type, value and size).
    Returns the number of calls."""
    conv, convt, reflect = modules
    x, w, b, xd, wd = arrays
    cconv.conv2d(x, w, b, padding=1)
    cconv.conv2d(x[0], w, b, padding="same")
    cconv.conv2d(xd, wd, groups=4, algorithm="depthwise")
    cconv.conv2d(xd, wd, groups=4, algorithm="igemm", out=np.empty((2, 8, 10, 10), np.float32))
    for algorithm in applicable_algorithms(x.shape[1], 1):
        cconv.conv2d(x, w, b, stride=2, algorithm=algorithm)
    calls = 4 + len(applicable_algorithms(x.shape[1], 1))
    cconv.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    convt(x)
    convt(x[0], output_size=(26, 26))
    calls += 3
    conv(x)
    conv(x[:1, :, :7])              # another input size: another cached plan
    reflect(x)
    conv.weight = w
    conv.load_state_dict({"weight": w, "bias": b})
    calls += 5
    failing = [
        lambda: cconv.conv2d(x.astype(np.int32), w),
        lambda: cconv.conv2d(None, w),
        lambda: cconv.conv2d([[1.0], [1.0, 2.0]], w),
        lambda: cconv.conv2d(x, w, stride="2"),
        lambda: cconv.conv2d(x[:, :, :2], w),
        lambda: cconv.conv2d(x, w, out=np.empty(3, np.float32)),
        lambda: cconv.conv2d(x, w, algorithm="depthwise"),
        lambda: cconv.conv2d(x, w, padding=2**31),          # numpy cannot allocate it
        lambda: cconv.conv2d(x, w, padding=2**62),          # too large to try
        lambda: conv(x[:, :3]),
        lambda: conv(x.astype(np.int64)),
        lambda: setattr(conv, "weight", np.zeros(3)),
        lambda: conv.load_state_dict({"weight": w}),
        lambda: cconv.Conv2d(6, 6, 0),
        lambda: cconv.Conv2d(2**40, 2**40, 1),              # weights that cannot exist
        lambda: cconv.conv_transpose2d(x, w, stride=2, output_padding=2),
        lambda: convt(x, output_size=(99, 99)),
    ]
    for call in failing:
        try:
            call()
        except (TypeError, ValueError, MemoryError):
            pass
        else:
            raise AssertionError("expected a failure")
    return calls + len(failing)


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.skipif(ASAN, reason="AddressSanitizer's quarantine keeps freed memory")
def test_no_memory_growth():
    """10,000 calls, good and failing, through every path, after a warm-up (caches filled):
    the process's resident memory does not grow beyond noise."""
    x, w, b = random_arrays(1, (2, 6, 12, 12), (6, 6, 3, 3), True, np.float32)
    xd, wd, _ = random_arrays(2, (2, 4, 12, 12), (8, 1, 3, 3), False, np.float32)
    modules = (cconv.Conv2d(6, 6, 3, padding=1, rng=0),
               cconv.ConvTranspose2d(6, 6, 3, stride=2, rng=0),
               cconv.Conv2d(6, 4, 3, padding=2, padding_mode="reflect", rng=0))
    arrays = (x, w, b, xd, wd)
    for _ in range(100):
        _mixed_calls(modules, arrays)
    gc.collect()
    before = _rss_bytes()
    calls = 0
    while calls < 10_000:
        calls += _mixed_calls(modules, arrays)
    gc.collect()
    growth = _rss_bytes() - before
    assert growth < 4 << 20, f"RSS grew by {growth / 2**20:.1f} MiB over {calls} calls"


def _swap_states(cls, transposed):
    """A module and three weight states A, B, C: B differs from A in the weight only, C in
    the bias only (so single assignments move A<->B and A<->C, load_state_dict any)."""
    args = (16, 24, 3)
    kwargs = dict(stride=2, padding=1) if transposed else dict(padding=1)
    module = cls(*args, **kwargs, rng=0)
    a = module.state_dict()
    other = cls(*args, **kwargs, rng=1).state_dict()
    states = [a, {"weight": other["weight"], "bias": a["bias"]},
              {"weight": a["weight"], "bias": other["bias"]}]
    return module, states


@pytest.mark.parametrize("cls", ["Conv2d", "ConvTranspose2d"])
def test_weight_swaps_during_calls_are_atomic(cls):
    """Eight Python threads call one module (two input sizes, so plans and packed weights are
    made while the weights change) while another thread moves its weights between three
    states by load_state_dict, .weight and .bias assignment, and a third changes the thread
    count: every call returns bitwise the result of one whole state, never a mixture."""
    transposed = cls == "ConvTranspose2d"
    module, states = _swap_states(getattr(cconv, cls), transposed)
    inputs = [random_arrays(5, (4, 16, 32, 32), (1, 1, 1, 1), False, np.float32)[0],
              random_arrays(6, (16, 13, 17), (1, 1, 1, 1), False, np.float32)[0]]
    cconv.set_num_threads(2)
    expected = []                                 # expected[state][input]
    for state in states:
        module.load_state_dict(state)
        expected.append([module(x) for x in inputs])
    module.load_state_dict(states[0])
    stop = threading.Event()
    swaps = [0]

    def swap():
        rng = np.random.default_rng(0)
        current = 0
        while not stop.is_set():
            target = int(rng.integers(3))
            if {current, target} == {0, 1} and rng.random() < 0.7:
                module.weight = states[target]["weight"]
            elif {current, target} == {0, 2} and rng.random() < 0.7:
                module.bias = states[target]["bias"]
            else:
                module.load_state_dict(states[target])
            current = target
            swaps[0] += 1
            time.sleep(0.0002)

    def threads():
        while not stop.is_set():
            cconv.set_num_threads(1)
            time.sleep(0.003)
            cconv.set_num_threads(2)
            time.sleep(0.003)

    def call(i):
        x = inputs[i % 2]
        y = module(x)
        return [s for s in range(3) if np.array_equal(y, expected[s][i % 2])]

    helpers = [threading.Thread(target=swap), threading.Thread(target=threads)]
    for t in helpers:
        t.start()
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            matches = list(pool.map(call, range(240)))
    finally:
        stop.set()
        for t in helpers:
            t.join()
    mixed = [i for i, m in enumerate(matches) if not m]
    assert not mixed, f"{len(mixed)} of {len(matches)} calls match no whole state"
    seen = {m[0] for m in matches}
    assert swaps[0] > 10 and len(seen) > 1, (swaps[0], seen)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or sys.platform != "linux",
                    reason="needs Linux CPU affinity")
def test_workers_on_the_callers_cpu_leave_the_call_to_it():
    """With the process confined to one CPU, every worker that runs runs in place of its
    caller and has no other CPU to move to: it must leave the call to the caller rather than
    compete with it (threadpool.h), and the result is still the one-thread result, bit for
    bit."""
    code = textwrap.dedent("""
        import os, numpy as np, cconv
        from cconv._kernels import _runtime
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        rng = np.random.default_rng(0)
        x = rng.standard_normal((2, 64, 64, 64)).astype(np.float32)
        w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
        cconv.set_num_threads(1)
        one = cconv.conv2d(x, w, padding=1, algorithm="igemm")
        cconv.set_num_threads(4)
        before = _runtime.pool_left()
        for _ in range(20):
            many = cconv.conv2d(x, w, padding=1, algorithm="igemm")
            assert np.array_equal(one, many)
        print("left", _runtime.pool_left() - before)
    """)
    proc = run_python(["-c", code], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    left = int(proc.stdout.split("left")[-1])
    assert left > 0, proc.stdout


def test_a_call_does_not_wait_for_workers_that_never_start():
    """With the pool's workers held (as if another process held their cores and the
    scheduler never ran them), a call asking for 4 threads returns once its caller has taken
    and computed every item, and the result is the one-thread result, bit for bit, for every
    algorithm (a hang here fails the test at its timeout)."""
    code = textwrap.dedent("""
        import numpy as np, cconv
        from cconv._kernels import _runtime
        rng = np.random.default_rng(0)
        cases = [((1, 32, 30, 30), (48, 32, 3, 3), 1, "igemm"),
                 ((1, 32, 14, 14), (48, 32, 3, 3), 1, "igemm_cl"),
                 ((1, 32, 60, 60), (32, 1, 3, 3), 32, "depthwise"),
                 ((1, 64, 28, 28), (64, 1, 3, 3), 64, "depthwise_cl")]
        for xs, ws, g, algorithm in cases:
            x = rng.standard_normal(xs).astype(np.float32)
            w = rng.standard_normal(ws).astype(np.float32)
            cconv.set_num_threads(1)
            one = cconv.conv2d(x, w, padding=1, groups=g, algorithm=algorithm)
            cconv.set_num_threads(4)
            plan = cconv._planner.plan_for_conv2d(xs, ws, padding=1, groups=g,
                                                  algorithm=algorithm)
            assert plan.threads == 4, plan
            assert not _runtime.pool_hold(True)
            many = cconv.conv2d(x, w, padding=1, groups=g, algorithm=algorithm)
            assert _runtime.pool_hold(False)
            assert np.array_equal(one, many), algorithm
        # Stride phases: the call's threads pack the weights first, then compute.
        x = rng.standard_normal((1, 32, 14, 14)).astype(np.float32)
        w = rng.standard_normal((32, 48, 4, 4)).astype(np.float32)
        for algorithm in ("igemm", "igemm_cl"):
            cconv.set_num_threads(1)
            one = cconv.conv_transpose2d(x, w, stride=2, padding=1, algorithm=algorithm)
            cconv.set_num_threads(4)
            _runtime.pool_hold(True)
            many = cconv.conv_transpose2d(x, w, stride=2, padding=1, algorithm=algorithm)
            _runtime.pool_hold(False)
            assert np.array_equal(one, many), algorithm
        print("ok")
    """)
    proc = run_python(["-c", code], timeout=120)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]

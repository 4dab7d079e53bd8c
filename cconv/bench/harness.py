"""Check, warm up and time the contenders on one layer, in interleaved rounds.

Each contender's output is first checked against the float64 reference (cconv.testing,
numpy only, so the check needs no peer); one that disagrees is reported with its max abs
diff and not timed. Then every contender is warmed up and its batch size calibrated so that
one batch of calls takes about target_s; R interleaved rounds follow (A, B, C, B, C, A, C,
A, B, ...: the starting contender rotates), and each contender's time is the median over
rounds of the per-call time.

bench_busy() times cconv-module alone, quietly on 1 thread and then on N threads while
BusyProcesses spin on the machine's CPUs (the --busy option).
"""
import gc
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import cconv

from .. import _planner, _threads, testing
from .peers import CEILING, CONTENDERS, MATMULS, UnavailableError, make_contender, optional

# Loose on purpose: it catches a wrong benchmark (transposed weights, wrong padding), not an
# ulp. Relative to max(1, max |reference|).
TOLERANCE = 2e-3
MAX_BATCH = 100_000
# Pauses before each multi-threaded batch, so that every batch starts from a machine left
# idle alike: right after numpy's OpenBLAS threads or onnxruntime's (which spin on idle
# cores) ran on every core, the next contender ran slower for a while, and after cconv's or
# torch's OpenMP threads onnxruntime did for a few ms (docs/decisions.md).
SETTLE_S = 0.25
SETTLE_AFTER = ("onnxruntime", "numpy", *MATMULS)
SETTLE_SHORT_S = 0.05
# Before each timed batch (after its pause), the contender runs untimed for this long: after
# a pause the first calls run slower while the idle cores wake, and that part of a batch
# would measure the machine's wake-up, not the contender (docs/decisions.md). A sixth of the
# batch's target at most.
WARM_S = 0.005


class ThreadSettings:
    """Context: cconv, torch and numpy's BLAS (via threadpoolctl) use n threads; restored on
    exit. onnxruntime, ncnn and TFLite get n when made (make_contender)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self._cconv = _threads._requested
        cconv.set_num_threads(self.n)
        torch = optional("torch")
        self._torch = None
        if torch is not None:
            self._torch = torch.get_num_threads()
            torch.set_num_threads(self.n)
        self._blas = None
        tpc = optional("threadpoolctl")
        if tpc is not None:
            self._blas = tpc.threadpool_limits(limits=self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        cconv.set_num_threads(self._cconv)
        if self._torch is not None:
            optional("torch").set_num_threads(self._torch)
        if self._blas is not None:
            self._blas.restore_original_limits()
        return False


def make_arrays(layer, dtype=np.float32, seed=0):
    """x standard normal; weight and bias uniform in +-1/sqrt(fan_in) (PyTorch's init), so
    outputs are O(1) for every layer."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.input_shape).astype(dtype)
    ws = layer.weight_shape
    bound = 1.0 / math.sqrt(max(1, ws[1] * ws[2] * ws[3]))
    w = rng.uniform(-bound, bound, ws).astype(dtype)
    b = rng.uniform(-bound, bound, (layer.C_out,)).astype(dtype)
    return x, w, b


def plan_info(layer, dtype=np.float32):
    """What cconv's planner chooses for the layer at the current thread count:
    {algorithm, plan_threads, workspace_bytes}, or {} where there is no planner for it."""
    kw = layer.conv_kwargs()
    try:
        if layer.transposed:
            fn = getattr(_planner, "plan_for_conv_transpose2d", None)
            if fn is None:
                return {}
            plan = fn(layer.input_shape, layer.weight_shape, **kw, dtype=dtype)
        else:
            plan = _planner.plan_for_conv2d(layer.input_shape, layer.weight_shape, **kw,
                                            dtype=dtype)
    except Exception as exc:  # a planner that rejects a layer is reported, not fatal
        return {"plan_error": f"{type(exc).__name__}: {exc}"}
    return {"algorithm": str(plan.algorithm), "plan_threads": int(plan.threads),
            "workspace_bytes": int(plan.workspace_bytes)}


def reference(layer, x, w, b):
    """The layer's output in float64, from cconv.testing: the project's one reference, which
    no contender's code computes."""
    ref = testing.conv_transpose2d_ref if layer.transposed else testing.conv2d_ref
    return ref(x, w, b, **layer.conv_kwargs())


def check(out, ref):
    """(ok, max abs diff) of an output against the reference (see TOLERANCE)."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return False, float("inf")
    diff = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return bool(diff <= TOLERANCE * scale), diff


def _cpu_snapshot():
    """(wall s, CPU s busy machine-wide, CPU s of this process) or None without /proc/stat."""
    try:
        with open("/proc/stat") as f:
            jiffies = [int(v) for v in f.readline().split()[1:9]]
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    own = os.times()
    busy = sum(jiffies) - jiffies[3] - jiffies[4]   # all but idle and iowait
    return time.perf_counter(), busy / hz, own.user + own.system


def _others_cpus(before, after):
    """CPUs' worth of time other processes used between two snapshots (the noise that a
    multi-threaded timing suffers from), or None."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, others / (after[0] - before[0]))


def wait_quiet(max_s, say=None, threshold=0.25, probe_s=0.5):
    """Wait (at most max_s) until other processes use under `threshold` CPUs over probe_s.
    Returns the last measured use (None without /proc/stat)."""
    deadline = time.perf_counter() + max_s
    while True:
        before = _cpu_snapshot()
        time.sleep(probe_s)
        others = _others_cpus(before, _cpu_snapshot())
        if others is None or others < threshold or time.perf_counter() >= deadline:
            return others
        if say:
            say(f"waiting for other processes to go quiet ({others:.2f} CPUs busy)")


def time_batch(call, k, settle_s=0.0, warm_s=WARM_S, per_call=None):
    """Seconds per call over k calls, after a pause of settle_s (see SETTLE_S) and warm_s of
    untimed calls (at least one; see WARM_S). With a list `per_call`, each timed call's own
    seconds are appended to it too."""
    time.sleep(settle_s)
    warm_until = time.perf_counter() + warm_s
    call()
    while time.perf_counter() < warm_until:
        call()
    t0 = time.perf_counter()
    if per_call is None:
        for _ in range(k):
            call()
        return (time.perf_counter() - t0) / k
    last = t0
    for _ in range(k):
        call()
        now = time.perf_counter()
        per_call.append(now - last)
        last = now
    return (last - t0) / k


def calibrate(call, target_s, settle_s=0.0):
    """Calls per batch so that a batch takes about target_s: one call (its one-off costs),
    one timed after the pause the rounds give (calibrated while another contender's threads
    still spin, a batch would come out far too small and every later batch of it would pay
    for the pause before it), then a warm-up batch that refines the estimate."""
    time_batch(call, 1)
    t = time_batch(call, 1, settle_s)
    k = max(1, min(MAX_BATCH, int(target_s / max(t, 1e-7))))
    t = time_batch(call, k)
    return max(1, min(MAX_BATCH, round(target_s / max(t, 1e-9))))


def bench_layer(layer, threads, contenders=CONTENDERS, *, dtype=np.float32, rounds=7,
                target_s=0.03, progress=None):
    """Check, warm up and time the contenders on one layer with `threads` threads, in
    interleaved rounds. Returns the record (a dict; see report.format_table)."""
    x, w, b = make_arrays(layer, dtype)
    record = {"layer": layer.name, "network": layer.network, "shape": layer.describe(),
              "kind": layer.kind, "threads": threads, "flops": layer.flops,
              "dtype": np.dtype(dtype).name, "others_cpus": None, "times": {},
              "min_times": {}, "samples": {}, "calls_per_round": {}, "checks": {},
              "notes": {}}
    say = progress.update if progress else (lambda text: None)
    with ThreadSettings(threads):
        record.update(plan_info(layer, dtype))
        if "plan_error" in record:
            record["notes"]["planner"] = f"failed: {record['plan_error']}"
        say("reference")
        live = _checked(layer, contenders, threads, (x, w, b), reference(layer, x, w, b),
                        record, say)
        samples, batch = _interleaved(live, threads > 1, rounds, target_s, record, say)
    for name in live:
        record["samples"][name] = samples[name]
        record["times"][name] = statistics.median(samples[name])
        record["min_times"][name] = min(samples[name])
        record["calls_per_round"][name] = batch[name]
    return record


def _checked(layer, contenders, threads, arrays, ref, record, say):
    """{name: Contender} of the contenders that run and agree with the reference; the others
    get a note (and a failed check) in the record."""
    live = {}
    for name in contenders:
        say(f"checking {name}")
        try:
            c = make_contender(name, layer, *arrays, threads)
            out = c.to_numpy(c.call())
            if name in MATMULS:   # not a convolution: nothing to check
                live[name] = c
                continue
        except UnavailableError as exc:
            record["notes"][name] = str(exc)
            continue
        except Exception as exc:  # a peer that cannot run the layer is noted, not fatal
            record["notes"][name] = f"failed: {type(exc).__name__}: {exc}"
            continue
        ok, diff = check(out, ref)
        record["checks"][name] = {"ok": ok, "max_abs_diff": diff}
        if not ok:
            record["notes"][name] = (f"WRONG: max abs diff {diff:.3g} from the reference "
                                     f"(tolerance {TOLERANCE:g} x max(1, max|ref|)); "
                                     f"not timed")
            continue
        live[name] = c
    return live


def _interleaved(live, settle, rounds, target_s, record, say, worst=None):
    """Calibrate each contender, then time `rounds` interleaved rounds with the garbage
    collector off: ({name: [seconds per call, one per round]}, {name: calls per batch}).
    With a dict `worst`, worst[name] gets each round's slowest single call."""
    names = list(live)
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        batch = {}
        previous = CEILING       # unknown (the row before): pause as after a spinner

        def pause():
            return (0.0 if not settle else SETTLE_S if previous in SETTLE_AFTER
                    else SETTLE_SHORT_S)
        for name in names:
            say(f"warming up {name}")
            batch[name] = calibrate(live[name].call, target_s, pause())
            previous = name
        samples = {name: [] for name in names}
        snap = _cpu_snapshot()
        for r in range(rounds):
            say(f"round {r + 1}/{rounds}")
            start = r % len(names) if names else 0
            for name in names[start:] + names[:start]:
                calls = None if worst is None else []
                samples[name].append(time_batch(live[name].call, batch[name], pause(),
                                                min(WARM_S, target_s / 6), calls))
                if calls:
                    worst.setdefault(name, []).append(max(calls))
                previous = name
        record["others_cpus"] = _others_cpus(snap, _cpu_snapshot())
    finally:
        if gc_was_enabled:
            gc.enable()
    return samples, batch


# ---- --busy: the call while other processes hold CPUs ---------------------------------------
# The busy process: spins in pure Python, and checks every few million iterations that the
# bench that started it is still its parent, so that it exits by itself (within a fraction of
# a second) even if the bench dies without running its cleanup (SIGKILL, a crash). It says
# "ready" and closes its stdout (the file descriptor: sys.stdout.close() leaves it open) as
# it starts to spin, so that no timing starts before every busy CPU is held. It ignores
# Ctrl-C, which the terminal sends to the whole process group: the bench kills it then.
BUSY_CODE = """if True:
    import os, signal, sys
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = int(sys.argv[1])
    os.write(1, b"ready")
    os.close(1)
    while os.getppid() == parent:
        for _ in range(2_000_000):
            pass
"""


class BusyProcesses:
    """Context: `cpus` child processes that each keep one CPU busy, unpinned (the scheduler
    places them, as another program on a board would be), from entry until exit, whatever
    ends the block (an error, Ctrl-C)."""

    def __init__(self, cpus):
        self.cpus = cpus
        self.procs = []

    def __enter__(self):
        try:
            for _ in range(self.cpus):
                # In the bench's session, not a new one: where the kernel shares CPU time
                # between sessions first (Linux autogroup), a busy process in its own
                # session would weigh as much as all the bench's threads together.
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-c", BUSY_CODE, str(os.getpid())],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL))
            for proc in self.procs:
                ready = proc.stdout.read()
                proc.stdout.close()
                if ready != b"ready":
                    raise RuntimeError(f"a busy process did not start (exit code "
                                       f"{proc.poll()})")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        """Kill every busy process and reap it."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            proc.wait()
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()


def bench_busy(layer, threads, *, busy_cpus=1, dtype=np.float32, rounds=7, target_s=0.03,
               progress=None):
    """cconv-module on one layer: checked, then timed quietly on 1 thread, then on `threads`
    threads while `busy_cpus` BusyProcesses run (started after the quiet timing, killed
    before this returns), each with bench_layer's calibrated batches and rounds. Returns the
    record (a dict; see report.format_busy)."""
    name = "cconv-module"
    x, w, b = make_arrays(layer, dtype)
    record = {"layer": layer.name, "network": layer.network, "shape": layer.describe(),
              "kind": layer.kind, "threads": threads, "busy_cpus": busy_cpus,
              "flops": layer.flops, "dtype": np.dtype(dtype).name, "quiet_1t": None,
              "busy": None, "busy_worst": None, "samples": {}, "calls_per_round": {},
              "quiet_others_cpus": None, "others_cpus": None, "checks": {}, "notes": {}}
    say = progress.update if progress else (lambda text: None)
    with ThreadSettings(1):
        say("reference")
        live = _checked(layer, [name], 1, (x, w, b), reference(layer, x, w, b), record, say)
        if not live:
            return record
        quiet = {}
        samples, batch = _interleaved(live, False, rounds, target_s, quiet,
                                      lambda text: say(f"quiet, 1 thread: {text}"))
    record["quiet_others_cpus"] = quiet["others_cpus"]
    record["samples"]["quiet_1t"] = samples[name]
    record["calls_per_round"]["quiet_1t"] = batch[name]
    record["quiet_1t"] = statistics.median(samples[name])
    with ThreadSettings(threads):
        record.update(plan_info(layer, dtype))
        say(f"starting {busy_cpus} busy process{'es' if busy_cpus > 1 else ''}")
        worst = {}
        with BusyProcesses(busy_cpus):
            samples, batch = _interleaved(live, threads > 1, rounds, target_s, record,
                                          lambda text: say(f"busy, {threads} threads: {text}"),
                                          worst)
    record["samples"]["busy"] = samples[name]
    record["samples"]["busy_worst"] = worst[name]
    record["calls_per_round"]["busy"] = batch[name]
    record["busy"] = statistics.median(samples[name])
    record["busy_worst"] = max(worst[name])
    return record

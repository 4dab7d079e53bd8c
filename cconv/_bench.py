"""`python -m cconv bench`: cconv against its peers on named layers of real networks.

For each layer (cconv._layers) and thread count, the contenders are

    cconv-functional   cconv.conv2d(x, w, b, ...) (raw weights: packed first or per panel)
    cconv-module       cconv.Conv2d(...)(x) (weights packed once)
    torch              torch.nn.functional.conv2d under torch.no_grad(), torch.set_num_threads
    onnxruntime        a one-node Conv / ConvTranspose model, intra_op_num_threads=n,
                       inter_op_num_threads=1, sequential execution, CPU provider
    numpy              a naive im2col (np.pad + as_strided, one matmul per group); its BLAS
                       threads limited with threadpoolctl when installed

Each contender's output is first checked against a reference (torch in float64 when
installed, else the numpy im2col in float64); one that disagrees is reported with its max abs
diff and not timed. Then every contender is warmed up and its batch size calibrated so that
one batch of calls takes about --target-ms; R interleaved rounds follow (A, B, C, B, C, A,
C, A, B, ...: the starting contender rotates), and each contender's time is the median over
rounds of the per-call time. Ratios are computed from one run only: the machine may be
shared and noisy, so compare ratios, not absolute times, and repeat before believing.

A ratio is peer time / cconv time: above 1, cconv is that many times faster than the peer.
"""
import argparse
import datetime
import gc
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

import cconv

from . import _config, _planner, _threads
from .bench import layers as _layers

CCONV = ("cconv-functional", "cconv-module")
PEERS = ("torch", "onnxruntime", "numpy")
CONTENDERS = CCONV + PEERS
# The ceiling: numpy's float32 matmul of two MATMUL_N x MATMUL_N matrices (BLAS threads as
# the row's), timed in every row's rounds with the contenders when the numpy peer is on; the
# %mm column is cconv-module's GFLOP/s as a share of its GFLOP/s.
CEILING = "matmul"
MATMUL_N = 2048
# cconv-module on one thread, timed in the same rounds as the others in every row with more
# threads (not in the quick run): the vs1T column, cconv-module's speedup from its threads,
# measured as the ratios are (two rows timed minutes apart drift with the machine).
SERIAL = "cconv-module@1"
# The ceiling on one BLAS thread, timed likewise in rows with more threads: the mm1T column,
# the speedup the machine gives a compute-bound BLAS from the same threads in the same rounds
# (on the shared 2-core development machine its per-round ratio swings 1.3-2.9 as cconv's
# does), the yardstick for vs1T.
CEILING_SERIAL = "matmul@1"
MATMULS = (CEILING, CEILING_SERIAL)         # not convolutions: not checked, not plotted
ONE_THREAD = (SERIAL, CEILING_SERIAL)       # only in rows with more threads
SHORT = {"cconv-functional": "f", "cconv-module": "m", "torch": "torch",
         "onnxruntime": "ort", "numpy": "numpy"}

# Loose on purpose: it catches a wrong benchmark (transposed weights, wrong padding), not an
# ulp. Relative to max(1, max |reference|).
TOLERANCE = 2e-3
MAX_BATCH = 100_000
# Pauses before each multi-threaded batch, so that every batch starts from a machine left
# idle alike (measured on the 2-core development machine, each pair of contenders): right
# after numpy's OpenBLAS threads or onnxruntime's (which spin on idle cores) ran on every
# core, the next contender ran 1.7-4x slower for ~0.2 s; after cconv's or torch's OpenMP
# threads, onnxruntime ran 1.5x slower for a few ms (their spin-wait), none after 20 ms.
SETTLE_S = 0.25
SETTLE_AFTER = ("onnxruntime", "numpy", *MATMULS)
SETTLE_SHORT_S = 0.05
# Before each timed batch (after its pause), the contender runs untimed for this long: after
# a pause, the first calls ran slower while the idle cores woke (2 threads, ResNet-50 s2/s4
# layers: 1.5-2x the steady time for the first 2-4 calls, ~5 ms), at 1 thread too (1.3-1.5x),
# and that part of a batch measured the machine's wake-up, not the contender: the 2-thread
# speedup of the same code read 1.29-2.02 without it and 1.77-2.03 with it (8 layers, one run
# each, same hour). A sixth of the batch's target (5 ms for 30 ms batches) at most.
WARM_S = 0.005
# Environment variables that make numpy's OpenBLAS slower; `python -m cconv bench` re-runs
# itself without them (cconv/__main__.py) unless --keep-env.
SLOW_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
README_START = "<!-- bench-table:start -->"
README_END = "<!-- bench-table:end -->"

# The per-call overhead row: a 1x1 convolution of a 1x1x1x1 input.
OVERHEAD_LAYER = _layers.Layer("overhead.1x1x1x1", "per-call overhead", 1, 1, 1, 1, 1, (1, 1))


# ---- the naive numpy peer ------------------------------------------------------------------
def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def numpy_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d by im2col + matmul: pad, view the patches with as_strided,
    copy one group's patches to (N, C_in/g*kH*kW, H_out*W_out), one matmul per group."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    M, Cg, KH, KW = w.shape
    Ho = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    sN, sC, sH, sW = xp.strides
    patches = np.lib.stride_tricks.as_strided(
        xp, shape=(N, C, KH, KW, Ho, Wo),
        strides=(sN, sC, dh * sH, dw * sW, sh * sH, sw * sW), writeable=False)
    Mg = M // groups
    out = np.empty((N, M, Ho * Wo), dtype=np.result_type(x, w))
    for g in range(groups):
        cols = patches[:, g * Cg:(g + 1) * Cg].reshape(N, Cg * KH * KW, Ho * Wo)
        np.matmul(w[g * Mg:(g + 1) * Mg].reshape(Mg, Cg * KH * KW), cols,
                  out=out[:, g * Mg:(g + 1) * Mg])
    if b is not None:
        out += b[:, None]
    return out.reshape(N, M, Ho, Wo)


def numpy_conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1):
    """torch.nn.functional.conv_transpose2d by matmul + col2im: per group
    cols = w_g^T @ x_g, then each kernel tap adds its (H, W) plane to a strided slice of the
    uncropped output; the padding is cropped at the end."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oh, ow = _pair(output_padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    _, Mg, KH, KW = w.shape
    Cg = C // groups
    M = Mg * groups
    Hf = (H - 1) * sh + dh * (KH - 1) + 1 + oh
    Wf = (W - 1) * sw + dw * (KW - 1) + 1 + ow
    full = np.zeros((N, M, Hf, Wf), dtype=np.result_type(x, w))
    xr = x.reshape(N, C, H * W)
    for g in range(groups):
        wg = w[g * Cg:(g + 1) * Cg].reshape(Cg, Mg * KH * KW)
        cols = np.matmul(wg.T, xr[:, g * Cg:(g + 1) * Cg]).reshape(N, Mg, KH, KW, H, W)
        for kh in range(KH):
            for kw in range(KW):
                full[:, g * Mg:(g + 1) * Mg,
                     kh * dh:kh * dh + (H - 1) * sh + 1:sh,
                     kw * dw:kw * dw + (W - 1) * sw + 1:sw] += cols[:, :, kh, kw]
    out = full[:, :, ph:Hf - ph, pw:Wf - pw]
    if b is not None:
        out = out + b[:, None, None]
    return np.ascontiguousarray(out)


def numpy_conv(layer, x, w, b):
    """The numpy peer's convolution for a layer (either direction)."""
    if layer.transposed:
        return numpy_conv_transpose2d(x, w, b, **layer.conv_kwargs())
    return numpy_conv2d(x, w, b, **layer.conv_kwargs())


# ---- optional peers ------------------------------------------------------------------------
_imported = {}


def _optional(name):
    """The module `name`, or None when it is not installed (looked up once)."""
    if name not in _imported:
        try:
            if name == "onnxruntime":
                import onnx  # noqa: F401  (needed to build the model)
            _imported[name] = __import__(name)
        except Exception:  # not installed, or broken: the peer is skipped with a note
            _imported[name] = None
    return _imported[name]


def available_peers(peers=PEERS):
    """The peers among `peers` that are installed."""
    return [p for p in peers if _optional(p) is not None]


# ---- contenders ----------------------------------------------------------------------------
class UnavailableError(Exception):
    """This contender cannot run this layer (not installed, not implemented yet)."""


@dataclass
class Contender:
    name: str
    call: Callable           # one convolution
    to_numpy: Callable = np.asarray


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


def make_contender(name, layer, x, w, b, threads):
    """A Contender running `layer` on (x, w, b) with `threads` threads (the caller has set
    cconv's and torch's thread counts; see ThreadSettings). Raises UnavailableError."""
    kw = layer.conv_kwargs()
    if name == "cconv-functional":
        fn = getattr(cconv, "conv_transpose2d" if layer.transposed else "conv2d", None)
        if fn is None:
            raise UnavailableError("cconv.conv_transpose2d is not available yet")
        return Contender(name, lambda: fn(x, w, b, **kw))
    if name == "cconv-module":
        cls = getattr(cconv, "ConvTranspose2d" if layer.transposed else "Conv2d", None)
        if cls is None:
            raise UnavailableError("cconv.ConvTranspose2d is not available yet")
        args, mkw = layer.module_args()
        module = cls(*args, **mkw, bias=b is not None, dtype=x.dtype)
        module.weight = w
        module.bias = b
        return Contender(name, lambda: module(x))
    if name == "torch":
        torch = _optional("torch")
        if torch is None:
            raise UnavailableError("torch is not installed")
        F = torch.nn.functional
        fn = F.conv_transpose2d if layer.transposed else F.conv2d
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        bt = None if b is None else torch.from_numpy(b)

        def call():
            with torch.no_grad():
                return fn(xt, wt, bt, **kw)
        return Contender(name, call, lambda t: t.numpy())
    if name == "onnxruntime":
        ort = _optional("onnxruntime")
        if ort is None:
            raise UnavailableError("onnxruntime (with onnx) is not installed")
        session = _ort_session(ort, layer, w, b, threads)
        feed = {"X": x}
        return Contender(name, lambda: session.run(None, feed)[0])
    if name == "numpy":
        return Contender(name, lambda: numpy_conv(layer, x, w, b))
    if name == SERIAL:
        module = make_contender("cconv-module", layer, x, w, b, threads)

        def serial():
            cconv.set_num_threads(1)
            try:
                return module.call()
            finally:
                cconv.set_num_threads(threads)
        return Contender(name, serial)
    if name in MATMULS:
        rng = np.random.default_rng(0)
        a, c = (rng.random((MATMUL_N, MATMUL_N), np.float32) for _ in range(2))
        if name == CEILING:
            return Contender(name, lambda: np.matmul(a, c))
        tpc = _optional("threadpoolctl")
        if tpc is None:
            raise UnavailableError("threadpoolctl is not installed")

        def serial_matmul():
            with tpc.threadpool_limits(limits=1, user_api="blas"):
                return np.matmul(a, c)
        return Contender(name, serial_matmul)
    raise ValueError(f"unknown contender {name!r}; expected one of {CONTENDERS}")


def _ort_session(ort, layer, w, b, threads):
    """An InferenceSession of one Conv / ConvTranspose node with constant weights."""
    from onnx import TensorProto, helper, numpy_helper
    elem = {np.dtype(np.float32): TensorProto.FLOAT,
            np.dtype(np.float64): TensorProto.DOUBLE}[w.dtype]
    ph, pw = layer.padding
    attrs = {"kernel_shape": list(layer.kernel), "strides": list(layer.stride),
             "pads": [ph, pw, ph, pw], "dilations": list(layer.dilation),
             "group": layer.groups}
    if layer.transposed:
        attrs["output_padding"] = list(layer.output_padding)
    inits = [numpy_helper.from_array(w, "W")]
    inputs = ["X", "W"]
    if b is not None:
        inits.append(numpy_helper.from_array(b, "B"))
        inputs.append("B")
    node = helper.make_node("ConvTranspose" if layer.transposed else "Conv", inputs, ["Y"],
                            **attrs)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("X", elem, list(layer.input_shape))],
        [helper.make_tensor_value_info("Y", elem, list(layer.output_shape))], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])


class ThreadSettings:
    """Context: cconv, torch and numpy's BLAS (via threadpoolctl) use n threads; restored on
    exit. onnxruntime gets n per session (make_contender)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self._cconv = _threads._requested
        cconv.set_num_threads(self.n)
        torch = _optional("torch")
        self._torch = None
        if torch is not None:
            self._torch = torch.get_num_threads()
            torch.set_num_threads(self.n)
        self._blas = None
        tpc = _optional("threadpoolctl")
        if tpc is not None:
            self._blas = tpc.threadpool_limits(limits=self.n, user_api="blas")
        return self

    def __exit__(self, *exc):
        cconv.set_num_threads(self._cconv)
        if self._torch is not None:
            _optional("torch").set_num_threads(self._torch)
        if self._blas is not None:
            self._blas.restore_original_limits()
        return False


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
    return {"algorithm": plan.algorithm, "plan_threads": int(plan.threads),
            "workspace_bytes": int(plan.workspace_bytes)}


def reference(layer, x, w, b):
    """The layer's output in float64: torch's when installed, else the numpy im2col's."""
    x64, w64, b64 = (None if a is None else a.astype(np.float64) for a in (x, w, b))
    torch = _optional("torch")
    if torch is not None:
        F = torch.nn.functional
        fn = F.conv_transpose2d if layer.transposed else F.conv2d
        with torch.no_grad():
            return fn(torch.from_numpy(x64), torch.from_numpy(w64),
                      None if b64 is None else torch.from_numpy(b64),
                      **layer.conv_kwargs()).numpy()
    return numpy_conv(layer, x64, w64, b64)


def check(out, ref):
    """(ok, max abs diff) of an output against the reference (see TOLERANCE)."""
    out = np.asarray(out)
    if out.shape != ref.shape:
        return False, float("inf")
    diff = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
    return bool(diff <= TOLERANCE * scale), diff


# ---- timing --------------------------------------------------------------------------------
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


def _time_batch(call, k, settle_s=0.0, warm_s=WARM_S):
    """Seconds per call over k calls, after a pause of settle_s (see SETTLE_S) and warm_s of
    untimed calls (at least one; see WARM_S)."""
    time.sleep(settle_s)
    warm_until = time.perf_counter() + warm_s
    call()
    while time.perf_counter() < warm_until:
        call()
    t0 = time.perf_counter()
    for _ in range(k):
        call()
    return (time.perf_counter() - t0) / k


def _calibrate(call, target_s, settle_s=0.0):
    """Calls per batch so that a batch takes about target_s: one call (its one-off costs),
    one timed after the pause the rounds give (a contender calibrated while another's
    threads still spun got a batch of 3 calls instead of 40, and every later batch of it
    paid for the pause before it), then a warm-up batch that refines the estimate."""
    _time_batch(call, 1)
    t = _time_batch(call, 1, settle_s)
    k = max(1, min(MAX_BATCH, int(target_s / max(t, 1e-7))))
    t = _time_batch(call, k)
    return max(1, min(MAX_BATCH, round(target_s / max(t, 1e-9))))


def bench_layer(layer, threads, contenders=CONTENDERS, *, dtype=np.float32, rounds=7,
                target_s=0.03, progress=None):
    """Check, warm up and time the contenders on one layer with `threads` threads, in
    interleaved rounds. Returns the record (a dict; see format_table)."""
    x, w, b = make_arrays(layer, dtype)
    record = {"layer": layer.name, "network": layer.network, "shape": layer.describe(),
              "kind": layer.kind, "threads": threads, "flops": layer.flops,
              "dtype": np.dtype(dtype).name, "others_cpus": None, "times": {},
              "min_times": {}, "samples": {}, "calls_per_round": {}, "checks": {},
              "notes": {}}
    say = progress.update if progress else (lambda text: None)
    settle = threads > 1
    with ThreadSettings(threads):
        record.update(plan_info(layer, dtype))
        if "plan_error" in record:
            record["notes"]["planner"] = f"failed: {record['plan_error']}"
        say("reference")
        ref = reference(layer, x, w, b)
        live = {}
        for name in contenders:
            say(f"checking {name}")
            try:
                c = make_contender(name, layer, x, w, b, threads)
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
                batch[name] = _calibrate(live[name].call, target_s, pause())
                previous = name
            samples = {name: [] for name in names}
            snap = _cpu_snapshot()
            for r in range(rounds):
                say(f"round {r + 1}/{rounds}")
                start = r % len(names) if names else 0
                for name in names[start:] + names[:start]:
                    samples[name].append(_time_batch(live[name].call, batch[name], pause(),
                                                     min(WARM_S, target_s / 6)))
                    previous = name
            record["others_cpus"] = _others_cpus(snap, _cpu_snapshot())
        finally:
            if gc_was_enabled:
                gc.enable()
    for name in names:
        record["samples"][name] = samples[name]
        record["times"][name] = statistics.median(samples[name])
        record["min_times"][name] = min(samples[name])
        record["calls_per_round"][name] = batch[name]
    return record


# ---- reporting -----------------------------------------------------------------------------
def ratio(record, peer, path):
    """peer time / cconv time for one record (above 1: cconv is faster), or None."""
    t_peer = record["times"].get(peer)
    t_cconv = record["times"].get(path)
    if not t_peer or not t_cconv:
        return None
    return t_peer / t_cconv


def geomean(values):
    values = [v for v in values if v]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def geomeans(records, peers):
    """{threads: {"peer:f" / "peer:m": geomean ratio over the layers}}."""
    result = {}
    for t in sorted({r["threads"] for r in records}):
        rows = [r for r in records if r["threads"] == t]
        result[t] = {f"{SHORT[p]}:{SHORT[path]}": geomean([ratio(r, p, path) for r in rows])
                     for p in peers for path in CCONV}
    return result


def _cell(record, peer, path):
    v = ratio(record, peer, path)
    if v is not None:
        return f"{v:.2f}"
    for name in (peer, path):
        note = record["notes"].get(name, "")
        if note.startswith("WRONG"):
            return "WRONG"
        if note.startswith("failed"):
            return "fail"
    return "-"


def format_table(records, peers):
    """The summary table: one row per layer and thread count, then geomeans per thread
    count, then the notes (skipped and failed contenders)."""
    head = ["layer", "thr", "module ms", "GFLOP/s", "algorithm", "used", "ws KiB", "busy"]
    ceiling = any(CEILING in r["times"] for r in records)
    serial = any(SERIAL in r["times"] for r in records)
    mm1 = any(CEILING_SERIAL in r["times"] for r in records)
    if mm1:
        head.insert(4, "mm1T")
    if serial:
        head.insert(4, "vs1T")
    if ceiling:
        head.insert(4, "%mm")
    for p in peers:
        head += [f"{SHORT[p]}:f", f"{SHORT[p]}:m"]
    rows = []
    for r in records:
        t = r["times"].get("cconv-module")
        ws = r.get("workspace_bytes")
        row = [r["layer"], str(r["threads"]),
               "-" if t is None else f"{t * 1e3:.3f}",
               "-" if t is None else f"{r['flops'] / t / 1e9:.1f}",
               r.get("algorithm") or "-",
               str(r.get("plan_threads", "-")),
               "-" if ws is None else f"{ws / 1024:.0f}",
               "-" if r.get("others_cpus") is None else f"{r['others_cpus']:.2f}"]
        if mm1:
            m1, mt = r["times"].get(CEILING_SERIAL), r["times"].get(CEILING)
            row.insert(4, "-" if m1 is None or mt is None else f"{m1 / mt:.2f}")
        if serial:
            t1 = r["times"].get(SERIAL)
            row.insert(4, "-" if t is None or t1 is None else f"{t1 / t:.2f}")
        if ceiling:
            mm = r["times"].get(CEILING)
            row.insert(4, "-" if t is None or mm is None
                       else f"{r['flops'] * mm / (t * 2 * MATMUL_N ** 3) * 100:.0f}")
        for p in peers:
            row += [_cell(r, p, "cconv-functional"), _cell(r, p, "cconv-module")]
        rows.append(row)
    gm = geomeans(records, peers)
    foot = []
    for t, values in gm.items():
        n = sum(r["threads"] == t and any(ratio(r, p, c) for p in peers for c in CCONV)
                for r in records)
        row = [f"geomean ({n} layers)", str(t)]
        row += [""] * (6 + ceiling + serial + mm1)
        for p in peers:
            for path in CCONV:
                v = values[f"{SHORT[p]}:{SHORT[path]}"]
                row.append("-" if v is None else f"{v:.2f}")
        foot.append(row)
    widths = [max(len(x[i]) for x in [head] + rows + foot) for i in range(len(head))]

    def fmt(row):
        return "  ".join(c.ljust(w) if i == 0 or head[i] == "algorithm" else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    rule = "-" * len(fmt(head))
    lines = [fmt(head), rule] + [fmt(r) for r in rows] + [rule] + [fmt(r) for r in foot]
    lines.append("")
    lines.append("thr: threads allowed; used: threads cconv's plan uses; ws: cconv's workspace; "
                 "module ms and GFLOP/s: cconv-module, median per call;")
    lines.append("busy: CPUs' worth of time other processes took while the row was timed "
                 "(noise).")
    if ceiling:
        lines.append(f"%mm: cconv-module's GFLOP/s as a percentage of numpy's float32 matmul "
                     f"({MATMUL_N}x{MATMUL_N}) timed in the same rounds.")
    if serial:
        lines.append("vs1T: cconv-module's time on 1 thread / its time on thr threads, both "
                     "timed in the same rounds.")
    if mm1:
        lines.append("mm1T: the same for numpy's matmul (1 BLAS thread / thr), in the same "
                     "rounds: what the machine gives a compute-bound BLAS.")
    lines.append("<peer>:f / <peer>:m = peer time / cconv time, for cconv-functional / "
                 "cconv-module: above 1, cconv is faster.")
    notes = {}
    for r in records:
        for name, note in r["notes"].items():
            notes.setdefault(f"{name}: {note}", []).append(f"{r['layer']} (t={r['threads']})")
    if notes:
        lines.append("")
        lines.append("notes:")
        for note, where in notes.items():
            shown = ", ".join(where[:4]) + (f" and {len(where) - 4} more" if len(where) > 4
                                             else "")
            lines.append(f"  {note} -- {shown}")
    return "\n".join(lines)


def format_overhead(records):
    """Per-call overhead table (microseconds per call of the 1x1x1x1 layer)."""
    names = [n for n in CONTENDERS if any(n in r["times"] for r in records)]
    head = ["per-call overhead, us", "thr"] + names
    rows = [[OVERHEAD_LAYER.describe(), str(r["threads"])]
            + [f"{r['times'][n] * 1e6:.1f}" if n in r["times"] else "-" for n in names]
            for r in records]
    widths = [max(len(x[i]) for x in [head] + rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths)))
                     for row in [head] + rows)


def plot(records, path, contenders):
    """GFLOP/s per layer of each contender, one panel per thread count (matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"--plot {path}: matplotlib is not installed (pip install matplotlib); no plot "
              f"written", file=sys.stderr)
        return False
    threads = sorted({r["threads"] for r in records})
    names = [n for n in contenders
             if n not in MATMULS + ONE_THREAD and any(n in r["times"] for r in records)]
    layers = list(dict.fromkeys(r["layer"] for r in records))
    fig, axes = plt.subplots(len(threads), 1, figsize=(max(8, 0.45 * len(layers) + 3),
                                                       4.2 * len(threads)), squeeze=False)
    width = 0.8 / max(1, len(names))
    for ax, t in zip(axes[:, 0], threads):
        rows = {r["layer"]: r for r in records if r["threads"] == t}
        for j, name in enumerate(names):
            ys = [rows[lay]["flops"] / rows[lay]["times"][name] / 1e9
                  if lay in rows and name in rows[lay]["times"] else 0 for lay in layers]
            ax.bar([i + (j - (len(names) - 1) / 2) * width for i in range(len(layers))], ys,
                   width, label=name)
        ax.set_yscale("log")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{t} thread{'s' if t > 1 else ''}", loc="right")
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=60, ha="right", fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(names), loc="lower left", bbox_to_anchor=(0, 1.0),
                  frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def machine_info():
    """Date, CPU model and core counts, versions: the context a table needs."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    lscpu = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        lscpu = {k.strip(): v.strip() for k, _, v in
                 (line.partition(":") for line in out.splitlines()) if v}
    except (OSError, subprocess.SubprocessError):
        pass
    model = lscpu.get("Model name", model)
    cores = lscpu.get("Core(s) per socket")
    if cores and lscpu.get("Socket(s)", "").isdigit() and cores.isdigit():
        cores = str(int(cores) * int(lscpu["Socket(s)"]))
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "cpu": model, "cores": cores, "threads_per_core": lscpu.get("Thread(s) per core"),
            "cpus": os.cpu_count(), "cpus_usable": usable,
            "platform": platform.platform(), "cconv": cconv.__version__,
            "cconv_config": _config.config(), "numpy": np.__version__}
    for name in ("torch", "onnxruntime", "threadpoolctl"):
        mod = _optional(name)
        info[name] = None if mod is None else getattr(mod, "__version__", "?")
    info["slow_blas_env"] = {k: os.environ[k] for k in SLOW_BLAS_ENV if k in os.environ}
    info["slow_blas_env_unset"] = os.environ.get("CCONV_BENCH_UNSET", "")
    return info


def update_readme(path, text):
    """Replace what lies between README_START and README_END in `path` with `text`."""
    with open(path) as f:
        content = f.read()
    i, j = content.find(README_START), content.find(README_END)
    if i < 0 or j < i:
        raise ValueError(f"{path}: no {README_START} ... {README_END} section to replace")
    content = content[:i + len(README_START)] + "\n" + text.rstrip() + "\n" + content[j:]
    with open(path, "w") as f:
        f.write(content)


class Progress:
    """One line rewritten in place on a terminal; plain lines (one per step) otherwise."""

    def __init__(self, stream=None, enabled=True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.step_text = ""
        self.dirty = False

    def step(self, text):
        self.step_text = text
        if not self.enabled:
            return
        if self.tty:
            self.update("")
        else:
            print(text, file=self.stream, flush=True)

    def update(self, detail):
        if not self.tty:
            return
        width = shutil.get_terminal_size((100, 20)).columns - 1
        line = f"{self.step_text}: {detail}" if detail else self.step_text
        self.stream.write("\r" + line[:width] + "\x1b[K")
        self.stream.flush()
        self.dirty = True

    def close(self):
        if self.tty and self.dirty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.dirty = False


# ---- command line --------------------------------------------------------------------------
def _parse_threads(text):
    try:
        threads = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--threads {text!r}: expected comma-separated "
                                         f"ints, e.g. 1,2") from None
    if not threads or min(threads) < 1:
        raise argparse.ArgumentTypeError(f"--threads {text!r}: expected ints >= 1")
    return threads


def _parse_peers(text):
    peers = [p.strip() for p in text.split(",") if p.strip() and p.strip() != "none"]
    aliases = {"ort": "onnxruntime", "np": "numpy"}
    peers = [aliases.get(p, p) for p in peers]
    bad = [p for p in peers if p not in PEERS]
    if bad:
        raise argparse.ArgumentTypeError(f"--peers: unknown {bad}; expected some of "
                                         f"{', '.join(PEERS)} (or none)")
    return list(dict.fromkeys(peers))


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m cconv bench",
        description="Time cconv (functional and module) against torch, onnxruntime and a "
                    "naive numpy im2col on named layers of real networks, in interleaved "
                    "rounds; print ratios (peer time / cconv time: above 1, cconv is "
                    "faster) and their geomeans.")
    parser.add_argument("--layers", default=None,
                        help="'quick', 'all' (the default) or comma-separated layer names or "
                             "substrings of names (see --list)")
    parser.add_argument("--threads", type=_parse_threads, default=[1, 2],
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--peers", type=_parse_peers, default=list(PEERS),
                        help="comma-separated peers among torch,onnxruntime,numpy, or none "
                             "(default: all; those not installed are skipped with a note)")
    parser.add_argument("--quick", action="store_true",
                        help="the quick layer set (unless --layers), 4 rounds of 15 ms, no "
                             "matmul ceiling: under a minute")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per layer (default 7; --quick 4)")
    parser.add_argument("--target-ms", type=float, default=None,
                        help="time of one batch of calls per contender and round (default "
                             "30; --quick 15)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--json", metavar="FILE", help="write every measurement to FILE")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="bar chart of GFLOP/s per layer and contender (matplotlib)")
    parser.add_argument("--update-readme", metavar="FILE",
                        help="replace the table between the bench-table markers in FILE "
                             "(benchmarks/README.md) with this run's")
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                        help="before each row, wait up to SECONDS until other processes use "
                             "under a quarter of a CPU (default 0: no wait)")
    parser.add_argument("--no-overhead", action="store_true",
                        help="skip the per-call overhead row")
    parser.add_argument("--no-progress", action="store_true", help="no progress display")
    parser.add_argument("--list", action="store_true", help="list the layers and exit")
    parser.add_argument("--keep-env", action="store_true",
                        help=f"do not re-run without {', '.join(SLOW_BLAS_ENV)} (they slow "
                             f"numpy's matmul)")
    return parser


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.list:
        for layer in _layers.LAYERS:
            quick = "quick" if layer.name in _layers.QUICK else ""
            print(f"{layer.name:28s} {layer.network:22s} {layer.describe():42s} "
                  f"{layer.flops / 1e6:9.1f} MFLOP  {quick}")
        return 0
    spec = args.layers or ("quick" if args.quick else "all")
    try:
        layers = _layers.select(spec)
    except ValueError as exc:
        print(f"python -m cconv bench: {exc}", file=sys.stderr)
        return 2
    for path in (args.json, args.plot):
        if path and os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
    rounds = args.rounds or (4 if args.quick else 7)
    target_s = (args.target_ms or (15 if args.quick else 30)) / 1e3
    dtype = np.dtype(args.dtype)
    peers = args.peers
    # The matmul ceiling (the %mm column) takes 1 s a row: not in the quick run.
    ceiling = "numpy" in peers and not args.quick
    contenders = (list(CCONV) + peers + (list(MATMULS) if ceiling else [])
                  + ([SERIAL] if not args.quick else []))
    info = machine_info()
    if info["slow_blas_env"]:
        print(f"warning: {info['slow_blas_env']} is set and slows numpy's matmul; run "
              f"without --keep-env, or with env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE",
              file=sys.stderr)
    if "numpy" in peers and info["threadpoolctl"] is None:
        print("warning: threadpoolctl is not installed: numpy's BLAS uses every core in every "
              "row, so the numpy column at fewer threads is not a like-for-like peer (pip "
              "install threadpoolctl, or \".[bench]\")", file=sys.stderr)
    progress = Progress(enabled=not args.no_progress)
    steps = [(layer, t) for layer in layers for t in args.threads]
    if not args.no_overhead:
        steps += [(OVERHEAD_LAYER, t) for t in args.threads]
    t_start = time.perf_counter()
    records, overhead = [], []
    try:
        for i, (layer, t) in enumerate(steps, 1):
            progress.step(f"[{i}/{len(steps)}] {layer.name} ({layer.describe()}), "
                          f"{t} thread{'s' if t > 1 else ''}")
            if args.wait_quiet > 0:
                wait_quiet(args.wait_quiet, progress.update)
            rec = bench_layer(layer, t, [c for c in contenders
                                         if (c not in MATMULS or layer is not OVERHEAD_LAYER)
                                         and (c not in ONE_THREAD or t > 1)],
                              dtype=dtype, rounds=rounds,
                              target_s=target_s, progress=progress)
            (overhead if layer is OVERHEAD_LAYER else records).append(rec)
    finally:
        progress.close()
    elapsed = time.perf_counter() - t_start
    cores = (f"{info['cores']} cores, {info['threads_per_core']} thread(s) per core; "
             if info["cores"] and info["threads_per_core"] else "")
    header = (f"cconv {info['cconv']} bench, {info['date']}, {elapsed:.0f} s\n"
              f"machine: {info['cpu']} ({cores}{info['cpus_usable']} usable CPUs)\n"
              f"run: {dtype.name}, threads {','.join(map(str, args.threads))}, {rounds} "
              f"interleaved rounds of ~{target_s * 1e3:g} ms per contender; peers "
              f"{','.join(peers) or 'none'} (torch {info['torch']}, onnxruntime "
              f"{info['onnxruntime']}, numpy {info['numpy']})")
    loads = [r["others_cpus"] for r in records + overhead if r["others_cpus"] is not None]
    if loads:
        header += (f"\nother processes used {statistics.mean(loads):.2f} CPUs on average "
                   f"(at most {max(loads):.2f}) of {info['cpus_usable']} while timing")
        crowded = sorted({r["threads"] for r in records + overhead
                          if (r["others_cpus"] or 0) > info["cpus_usable"] - r["threads"] + 0.25})
        if crowded:
            header += (f"; with {','.join(map(str, crowded))} threads they left fewer free "
                       f"CPUs than threads: a parallel call then waits for descheduled "
                       f"threads, so those timings are unreliable; repeat on a quiet machine")
    table = format_table(records, peers)
    text = header + "\n\n" + table
    if overhead:
        text += "\n\n" + format_overhead(overhead)
    print(text)
    wrong = [f"{r['layer']}:{n}" for r in records + overhead for n, c in r["checks"].items()
             if not c["ok"]]
    if args.json:
        data = {"meta": dict(info, argv=argv,
                             layers=spec, threads=args.threads, peers=peers, rounds=rounds,
                             target_ms=target_s * 1e3, dtype=dtype.name, elapsed_s=elapsed,
                             tolerance=TOLERANCE),
                "records": records, "overhead": overhead,
                "geomeans": {str(t): g for t, g in geomeans(records, peers).items()}}
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1, default=_json_default)
    if args.plot:
        if plot(records, args.plot, contenders):
            print(f"\nplot written to {args.plot}")
    if args.update_readme:
        cmd = "python -m cconv bench " + " ".join(argv)
        update_readme(args.update_readme, f"`{cmd.strip()}`\n\n```\n{text}\n```")
        print(f"table written to {args.update_readme}")
    if wrong:
        print(f"\nerror: outputs disagree with the reference: {', '.join(wrong)}",
              file=sys.stderr)
        return 1
    return 0



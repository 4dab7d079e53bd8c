"""Which algorithm runs a convolution, how it is tiled and threaded, how much workspace it needs.

The rules, in order (`algorithm=` overrides them, for tests and benchmarks):

  1. depthwise   every group has one input channel (groups == in_channels): MobileNet's
                 depthwise layers, and any layer with one input channel. A GEMM per group
                 would have K = kh*kw and waste its register tile.
  2. igemm       everything else: dense, grouped, 1x1 (read in place, no packing), strided,
                 dilated, and the stride phases of transposed convolutions.

A plan depends only on the geometry, the dtype, the instruction-set variant and the threads
available; it is cached. The reduction blocking (KC_MAX) does not depend on the thread count,
so results are bitwise identical for any thread count.
"""
import functools
from dataclasses import dataclass

import numpy as np

from . import _isa, _threads
from ._kernels import _depthwise, _igemm

ALGORITHMS = ("igemm", "depthwise")

# Most reduction rows per block: a 12 x KC_MAX slice of packed weights (12 KiB) stays in L1
# while the B panel streams from L2. benchmarks/test_conv2d.py, ResNet-50 3x3 layers.
KC_MAX = 256
# Packed-B block of one thread: KC_MAX x nc elements, kept within L2 (1-2 MiB per core on
# current x86 and ARM cores) and far below the 1 MiB per-thread workspace budget.
B_BLOCK_BYTES = 256 * 1024
# Depthwise band buffer of one thread (input rows of a band, padded and phase-split).
DW_BAND_BYTES = 64 * 1024
# Relative cost, in cycles, of packing one element of B and of starting one work item;
# used to weigh splitting channels (which packs B again) against splitting pixels.
PACK_CYCLES = 0.75
ITEM_CYCLES = 400
# Workspace slices start on separate cache lines.
CACHE_LINE = 64


@dataclass(frozen=True)
class Plan:
    """How one convolution runs. workspace_elems is per thread, in elements of dtype."""
    algorithm: str
    isa: int
    dtype: np.dtype
    threads: int
    workspace_elems: int
    kc: int = 0          # igemm: most rows of a K block
    nc: int = 0          # igemm: pixels per pixel block
    ppb: int = 0         # igemm: MR panels per channel block
    mr: int = 0          # igemm: most rows of the micro-kernel's tile
    rows: int = 0        # depthwise: output rows per band

    @property
    def workspace_bytes(self):
        """Extra memory of the call beyond input, output and packed weights."""
        return self.threads * self.workspace_elems * self.dtype.itemsize

    @property
    def weight_key(self):
        """Identifies the packed-weight layout this plan reads (modules cache by it)."""
        if self.algorithm == "igemm":
            return ("igemm", self.dtype.str, self.kc, self.mr)
        return (self.algorithm, self.dtype.str)


def _cdiv(a, b):
    return -(-a // b)


def _round_up(n, multiple):
    return _cdiv(n, multiple) * multiple


def choose_algorithm(params):
    if params.Cg == 1 and not params.transposed:
        return "depthwise"
    return "igemm"


def check_algorithm(params, algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: expected None or one of {ALGORITHMS}")
    if algorithm == "depthwise" and (params.Cg != 1 or params.transposed):
        raise ValueError(f"algorithm='depthwise' needs one input channel per group "
                         f"(groups == in_channels), got {params.C_in} input channels in "
                         f"{params.groups} groups")


def plan(params, dtype, algorithm=None):
    """The plan for params in dtype on the current variant and thread count."""
    if algorithm is None:
        algorithm = choose_algorithm(params)
    else:
        check_algorithm(params, algorithm)
    return _plan(params, np.dtype(dtype), algorithm, _isa.current(), _threads.get_num_threads())


@functools.lru_cache(maxsize=512)
def _plan(params, dtype, algorithm, isa, threads):
    if algorithm == "depthwise":
        return _plan_depthwise(params, dtype, isa, threads)
    return _plan_igemm(params, dtype, isa, threads)


def _igemm_blocks(work, Mg, K, P, mr, nr, kc, itemsize, threads, packs):
    """(tiles per pixel block, panels per channel block) minimising the estimated time.

    work = images x groups. Splitting pixels costs little; splitting channels packs B again
    for each channel block. Estimated per-item cycles: tiles at 2 FMA vectors per cycle
    (normalised by nr), B packing if the layer packs, and a fixed start cost; the call takes
    ceil(items / threads) items' time.
    """
    npanels = _cdiv(Mg, mr)
    ptiles = _cdiv(P, nr)
    max_tiles = max(1, B_BLOCK_BYTES // (kc * nr * itemsize))
    npb0 = _cdiv(ptiles, max_tiles)
    if threads == 1:
        return _cdiv(ptiles, npb0), npanels
    best = None
    for npb in range(npb0, min(ptiles, max(npb0, 4 * threads)) + 1):
        tpb = _cdiv(ptiles, npb)
        for nmb in range(1, min(npanels, 4 * threads) + 1):
            ppb = _cdiv(npanels, nmb)
            items = work * _cdiv(ptiles, tpb) * _cdiv(npanels, ppb)
            compute = tpb * ppb * mr * K / 4
            pack = tpb * nr * K * PACK_CYCLES if packs else 0
            cost = _cdiv(items, threads) * (compute + pack + ITEM_CYCLES)
            if best is None or cost < best[0]:
                best = (cost, tpb, ppb)
    return best[1], best[2]


def _plan_igemm(params, dtype, isa, threads):
    mr, nr = _igemm.tile(isa, dtype.itemsize)
    tables = igemm_tables(params)
    K = max(params.Cg * len(th) * len(tw) for th, tw in tables.taps_of_problem)
    P = max(hp * wp for hp, wp in tables.grid_of_problem)
    kc = min(KC_MAX, K)
    packs = not tables.reads_input_in_place
    work = params.N * params.groups * len(tables.problems)
    tpb, ppb = _igemm_blocks(work, params.Mg, K, P, mr, nr, kc, dtype.itemsize, threads, packs)
    nc = tpb * nr
    items = work * _cdiv(P, nc) * _cdiv(_cdiv(params.Mg, mr), ppb)
    n = _threads.threads_for(items, params.flops, threads)
    c_rows = 0 if tables.writes_output_in_place else min(ppb * mr, params.Mg)
    ws = _igemm.workspace_elems(kc, nc, nr, c_rows)
    return Plan("igemm", isa, dtype, n, _round_up(ws, CACHE_LINE // dtype.itemsize),
                kc=kc, nc=nc, ppb=ppb, mr=mr)


def _plan_depthwise(params, dtype, isa, threads):
    p = params
    per_band = lambda rows: _depthwise.band_geometry(  # noqa: E731
        p.W_out, p.KH, p.KW, p.stride[0], p.stride[1], p.dilation[0], p.dilation[1], rows,
        isa, dtype.itemsize)[1] * dtype.itemsize
    rows = p.H_out
    channels = p.N * p.C_in
    if threads > 1 and channels < 4 * threads:
        rows = _cdiv(p.H_out, _cdiv(4 * threads, channels))
    while rows > 1 and per_band(rows) > DW_BAND_BYTES:
        rows = max(1, rows // 2)
    items = channels * _cdiv(p.H_out, rows)
    n = _threads.threads_for(items, p.flops, threads)
    ws = per_band(rows) // dtype.itemsize
    return Plan("depthwise", isa, dtype, n, _round_up(ws, CACHE_LINE // dtype.itemsize),
                rows=rows)


@dataclass(frozen=True)
class IGemmTables:
    """The implicit GEMMs of one convolution, as _igemm.igemm takes them.

    problems: one row of _igemm.PROBLEM_FIELDS per GEMM; taps: their offh/offw tables;
    taps_of_problem: per GEMM, the weight's (kh list, kw list) it uses, in tap order;
    grid_of_problem: per GEMM, its pixel grid (Hp, Wp); bias_only: the output phases
    (rh, rw) of a transposed convolution that no tap reaches (their outputs are the bias).
    """
    problems: np.ndarray
    taps: np.ndarray
    taps_of_problem: tuple
    grid_of_problem: tuple
    bias_only: tuple
    reads_input_in_place: bool
    writes_output_in_place: bool


def _transposed_taps(r, size_out, stride, pad, dilation, kernel):
    """Taps of output phase r (outputs r, r + stride, ...) of a transposed convolution along
    one axis: [(k, input offset)], with input index = i + offset for the phase's i-th output.

    Output o receives x[ih] * w[k] where ih*stride - pad + k*dilation == o: for o = r +
    stride*i that needs (r + pad - k*dilation) divisible by stride, then ih = i + that / stride.
    """
    taps = [(k, (r + pad - k * dilation) // stride) for k in range(kernel)
            if (r + pad - k * dilation) % stride == 0]
    return taps, _cdiv(size_out - r, stride) if r < size_out else 0


@functools.lru_cache(maxsize=512)
def igemm_tables(params):
    p = params
    if not p.transposed:
        # conv2d: one GEMM over the whole output; input index = i*stride + k*dilation - pad.
        phases = [((0, p.stride[0], [(kh, kh * p.dilation[0] - p.padding[0])
                                      for kh in range(p.KH)], p.H_out),
                   (0, p.stride[1], [(kw, kw * p.dilation[1] - p.padding[2])
                                      for kw in range(p.KW)], p.W_out))]
    else:
        rows = [(r, 1, *_transposed_taps(r, p.H_out, p.stride[0], p.padding[0],
                                          p.dilation[0], p.KH)) for r in range(p.stride[0])]
        cols = [(r, 1, *_transposed_taps(r, p.W_out, p.stride[1], p.padding[2],
                                          p.dilation[1], p.KW)) for r in range(p.stride[1])]
        phases = [(rh, rw) for rh in rows for rw in cols]
    problems, taps, used, grids, bias_only = [], [], [], [], []
    a_offset = 0
    for (rh, sh, th, hp), (rw, sw, tw, wp) in phases:
        if hp == 0 or wp == 0:
            continue
        if not th or not tw:
            bias_only.append((rh, rw))
            continue
        oys, oxs = (1, 1) if not p.transposed else p.stride
        problems.append([len(th), len(tw), sh, sw, hp, wp, rh, oys, rw, oxs, a_offset,
                         len(taps)])
        taps += [off for _, off in th] + [off for _, off in tw]
        used.append((tuple(k for k, _ in th), tuple(k for k, _ in tw)))
        grids.append((hp, wp))
        a_offset += p.groups * p.Mg * p.Cg * len(th) * len(tw)
    problems = np.array(problems, dtype=np.intp).reshape(-1, len(_igemm.PROBLEM_FIELDS))
    taps = np.array(taps, dtype=np.intp)
    problems.flags.writeable = taps.flags.writeable = False
    in_place_b = all(r[0] == r[1] == r[2] == r[3] == 1 and r[4] == p.H and r[5] == p.W
                     and taps[r[11]] == taps[r[11] + 1] == 0 for r in problems)
    in_place_c = len(problems) == 1 and tuple(problems[0, 4:10]) == (p.H_out, p.W_out,
                                                                     0, 1, 0, 1)
    return IGemmTables(problems, taps, tuple(used), tuple(grids), tuple(bias_only),
                       in_place_b, in_place_c)


def prepare_weight(plan, params, weight):
    """Weights in the layout the plan's kernel reads (C-contiguous, plan.dtype)."""
    p = params
    if plan.algorithm == "depthwise":
        return np.ascontiguousarray(weight.reshape(p.C_out, p.KH * p.KW))
    tables = igemm_tables(params)
    if not p.transposed:
        a = weight.reshape(p.groups, p.Mg, p.Cg * p.KH * p.KW)
        packed = np.empty(a.size, dtype=plan.dtype)
        _igemm.pack_weights(a, packed, plan.kc, plan.mr)
        return packed
    # Transposed: weight (C_in, C_out/groups, kh, kw). Phase GEMM: A[g, m, (c, th, tw)] =
    # weight[g*Cg + c, m, kh[th], kw[tw]], packed one phase after another.
    w = weight.reshape(p.groups, p.Cg, p.Mg, p.KH, p.KW)
    parts = []
    for kh, kw in tables.taps_of_problem:
        a = w[:, :, :, list(kh)][:, :, :, :, list(kw)].transpose(0, 2, 1, 3, 4)
        a = np.ascontiguousarray(a).reshape(p.groups, p.Mg, -1)
        part = np.empty(a.size, dtype=plan.dtype)
        _igemm.pack_weights(a, part, plan.kc, plan.mr)
        parts.append(part)
    return np.concatenate(parts) if parts else np.empty(0, dtype=plan.dtype)


def execute(plan, params, x, packed, bias, out):
    """Run the plan: x (N, C_in, H, W) and out (N, C_out, H_out, W_out), C-contiguous."""
    p = params
    if out.size == 0:
        return out
    if p.Cg == 0:
        # No input channels: every output is its bias (an empty sum).
        out[...] = 0 if bias is None else bias[:, None, None]
        return out
    ws = np.empty(plan.threads * plan.workspace_elems, dtype=plan.dtype)
    if plan.algorithm == "depthwise":
        _depthwise.depthwise(x, packed, bias, out, p.KH, p.KW, p.stride[0], p.stride[1],
                             p.padding[0], p.padding[2], p.dilation[0], p.dilation[1],
                             plan.rows, plan.isa, ws, plan.threads)
        return out
    tables = igemm_tables(params)
    _igemm.igemm(x, packed, bias, out, p.groups, tables.problems, tables.taps, plan.kc,
                 plan.nc, plan.ppb, plan.isa, ws, plan.threads)
    for rh, rw in tables.bias_only:
        out[:, :, rh::p.stride[0], rw::p.stride[1]] = 0 if bias is None else bias[:, None, None]
    return out


def plan_for_conv2d(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                    dtype=np.float32, algorithm=None):
    """The plan conv2d would run for these shapes and arguments (for benchmarks and tests:
    plan.algorithm, plan.threads, plan.workspace_bytes)."""
    from ._params import conv2d_geometry
    x_shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    params = conv2d_geometry("conv2d", x_shape, weight_shape, stride, padding, dilation, groups)
    return plan(params, dtype, algorithm)


def plan_for_conv_transpose2d(input_shape, weight_shape, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, dtype=np.float32, algorithm=None):
    """The plan conv_transpose2d would run for these shapes and arguments."""
    from ._params import conv_transpose2d_geometry
    x_shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    params = conv_transpose2d_geometry("conv_transpose2d", x_shape, weight_shape, stride,
                                       padding, output_padding, groups, dilation)
    return plan(params, dtype, algorithm)

"""Which algorithm runs a convolution, how it is tiled and threaded, how much workspace it needs.

The rules, in order (`algorithm=` overrides them, for tests and benchmarks):

  1. depthwise   every group has one input channel (groups == in_channels): MobileNet's
                 depthwise layers, and any layer with one input channel. A GEMM per group
                 would have K = kh*kw and waste its register tile.
  2. igemm / igemm_cl   everything else: dense, grouped, 1x1, strided, dilated, and the stride
                 phases of transposed convolutions. The same implicit GEMM with the pixels
                 (igemm) or the output channels (igemm_cl) along the SIMD lanes: whichever
                 wastes fewer lanes and copies less, by the cost model in _igemm_choice.

A plan depends only on the geometry, the dtype, the instruction-set variant and the threads
available; it is cached. The reduction blocking (input channels per K block) never depends on
the thread count, so results are bitwise identical for any thread count.
"""
import functools
from dataclasses import dataclass

import numpy as np

from . import _isa, _params, _threads
from ._kernels import _depthwise, _igemm

ALGORITHMS = ("igemm", "igemm_cl", "depthwise")
_MODES = {"igemm": _igemm.MODE_PIXELS, "igemm_cl": _igemm.MODE_CHANNELS}

# Most reduction rows per K block (whole input channels: KC_MAX // taps of them). A 12-row
# slice of packed weights, 12 x 256 floats, stays in L1 while the tiles stream.
KC_MAX = 256
# Per-thread workspace budget (band buffer + C block); the bound is 1 MiB a thread.
WS_BUDGET = 512 * 1024
# Cycles per element of the copies around the GEMM, relative to one tile-k step (see
# _tile_cost): filling the band buffer, and copying a C block out (transposed in channel mode).
FILL_CYCLES = 0.5
COPY_CYCLES = {_igemm.MODE_PIXELS: 0.5, _igemm.MODE_CHANNELS: 1.5}
ITEM_CYCLES = 400
CACHE_LINE = 64
# Most slack elements a band buffer adds per sub-image, for any variant (4 vectors of 16 lanes).
SLACK_MAX = 64


@dataclass(frozen=True)
class Plan:
    """How one convolution runs. workspace_elems is per thread, in elements of dtype."""
    algorithm: str
    isa: int
    dtype: np.dtype
    threads: int
    workspace_elems: int
    rows: int = 0        # output (grid) rows per band
    cpb: int = 0         # igemm: input channels per K block
    ppb: int = 0         # igemm: weight panels per channel block
    width: int = 0       # igemm: weight panel width (MR in pixel mode, NR in channel mode)

    @property
    def workspace_bytes(self):
        """Extra memory of the call beyond input, output and packed weights."""
        return self.threads * self.workspace_elems * self.dtype.itemsize

    @property
    def weight_key(self):
        """Identifies the packed-weight layout this plan reads (modules cache by it)."""
        return (self.algorithm, self.dtype.str, self.cpb, self.width)


def _cdiv(a, b):
    return -(-a // b)


def _round_up(n, multiple):
    return _cdiv(n, multiple) * multiple


def _band_bound(offh, offw, sh, sw, Wp, rows):
    """(elements of one channel's band buffer, sub-image pitch) for bands of `rows` grid rows,
    in Python ints: an upper bound of _band.pxd's band_init, whose Py_ssize_t products wrap
    for strides / dilations / paddings far beyond the image (on 32-bit platforms, within the
    sizes _params accepts: tools/test-arm.sh armv7 crashed on one)."""
    span_h, span_w = max(offh) - min(offh), max(offw) - min(offw)
    wsub = Wp + span_w // sw
    phases = min(sh, span_h + 1) * min(sw, span_w + 1)
    return phases * ((rows + span_h // sh) * wsub + SLACK_MAX), wsub


def _fits(elems, dtype):
    """Whether a per-thread workspace of `elems` keeps the kernels' index arithmetic exact."""
    return elems * dtype.itemsize <= _params.SIZE_LIMIT


def _too_big(params, dtype, elems):
    return MemoryError(f"conv2d: this geometry (stride {params.stride}, dilation "
                       f"{params.dilation}, padding {params.padding}) needs a workspace of "
                       f"{elems * dtype.itemsize} bytes per thread, more than this platform "
                       f"can address")


def _igemm_bound(params, tables, mode, mr, nr, cpb, rows, ppb):
    """Upper bound (Python ints) of _igemm.workspace_elems: band buffer plus C block."""
    p = params
    band = c_block = 0
    for row in tables.problems.tolist():
        KH, KW, sh, sw, hp, wp, t0 = row[0], row[1], row[2], row[3], row[4], row[5], row[11]
        offh = tables.taps[t0:t0 + KH].tolist()
        offw = tables.taps[t0 + KH:t0 + KH + KW].tolist()
        elems, wsub = _band_bound(offh, offw, sh, sw, wp, rows)
        band = max(band, min(cpb, p.Cg) * elems)
        c_block = max(c_block, (ppb * max(mr, nr) + p.Mg) * rows * (wsub + wp))
    return band + c_block


def check_algorithm(params, algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: expected None or one of {ALGORITHMS}")
    if algorithm == "depthwise" and (params.Cg != 1 or params.transposed):
        raise ValueError(f"algorithm='depthwise' needs one input channel per group "
                         f"(groups == in_channels), got {params.C_in} input channels in "
                         f"{params.groups} groups")


def plan(params, dtype, algorithm=None):
    """The plan for params in dtype on the current variant and thread count."""
    if algorithm is not None:
        check_algorithm(params, algorithm)
    return _plan(params, np.dtype(dtype), algorithm, _isa.current(), _threads.get_num_threads())


@functools.lru_cache(maxsize=512)
def _plan(params, dtype, algorithm, isa, threads):
    if algorithm is None and params.Cg == 1 and not params.transposed:
        algorithm = "depthwise"
    if algorithm == "depthwise":
        return _plan_depthwise(params, dtype, isa, threads)
    return _plan_igemm(params, dtype, isa, threads, algorithm)


def _shape(params):
    p = params
    return np.array([p.N, p.C_in, p.H, p.W, p.C_out, p.H_out, p.W_out, p.groups], np.intp)


def _tile_cost(r):
    """Cycles per reduction step of an r-row tile: r FMA pairs, or its loads (2 vectors, the
    offsets and r broadcasts, two per cycle), whichever is more."""
    return max(r, (r + 4) / 2)


def _igemm_cost(params, tables, mode, mr, nr, cpb, rows, ppb, threads):
    """Estimated cycles of one call: the slowest thread's items, each costing its tiles, its
    band fills and its output copy."""
    p = params
    npanels = _cdiv(p.Mg, mr) if mode == _igemm.MODE_PIXELS else _cdiv(p.Mg, nr)
    nmb = _cdiv(npanels, ppb)
    block = min(ppb, npanels)
    worst = 0
    items = 0
    for (kh, kw), (hp, wp), wsub in zip(tables.taps_of_problem, tables.grid_of_problem,
                                        tables.wsub_of_problem):
        K = p.Cg * len(kh) * len(kw)
        R = min(rows, hp)
        if mode == _igemm.MODE_PIXELS:
            rows_per = p.Mg / npanels
            tiles = _cdiv((R - 1) * wsub + wp, nr) * block
            compute = tiles * K * _tile_cost(rows_per)
            copy = block * rows_per * R * wp
        else:
            npp = _cdiv(wp, mr)
            compute = R * npp * block * K * _tile_cost(wp / npp)
            copy = block * nr * R * wp
        fill = 0 if tables.reads_input_in_place else p.Cg * (R + len(kh)) * wsub
        cost = compute + FILL_CYCLES * fill + COPY_CYCLES[mode] * copy + ITEM_CYCLES
        worst = max(worst, cost)
        items += p.N * p.groups * nmb * _cdiv(hp, R)
    return _cdiv(items, threads) * worst, items


def _plan_igemm(params, dtype, isa, threads, algorithm):
    """The cheapest (mode, band rows, panels per block) within the workspace budget."""
    p = params
    mr, nr = _igemm.tile(isa, dtype.itemsize)
    base = igemm_tables(params, 0)
    taps = max(len(kh) * len(kw) for kh, kw in base.taps_of_problem)
    cpb = max(1, KC_MAX // taps)
    hp_max = max(hp for hp, _ in base.grid_of_problem)
    modes = [algorithm] if algorithm else list(_MODES)
    best = None
    smallest = None
    for name in modes:
        mode = _MODES[name]
        width = mr if mode == _igemm.MODE_PIXELS else nr
        npanels = _cdiv(p.Mg, width)
        tables = igemm_tables(params, npanels * width if mode == _igemm.MODE_CHANNELS else 0)
        band_counts = sorted({_cdiv(hp_max, r) for r in range(1, hp_max + 1)})
        for nb in band_counts:
            rows = _cdiv(hp_max, nb)
            for nmb in range(1, min(npanels, 4 * threads) + 1):
                ppb = _cdiv(npanels, nmb)
                bound = _igemm_bound(p, tables, mode, mr, nr, cpb, rows, ppb)
                smallest = bound if smallest is None else min(smallest, bound)
                if not _fits(bound, dtype):
                    continue
                ws, items = _igemm.workspace_elems(_shape(p), tables.problems, tables.taps,
                                                   mode, isa, dtype.itemsize, cpb, rows, ppb)
                if ws * dtype.itemsize > WS_BUDGET and not (rows == 1 and ppb == 1):
                    continue
                cost, _ = _igemm_cost(p, tables, mode, mr, nr, cpb, rows, ppb, threads)
                if best is None or cost < best[0]:
                    best = (cost, name, rows, ppb, ws, items, width)
    if best is None:
        raise _too_big(p, dtype, smallest)
    _, name, rows, ppb, ws, items, width = best
    n = _threads.threads_for(items, p.flops, threads)
    return Plan(name, isa, dtype, n, _round_up(ws, CACHE_LINE // dtype.itemsize), rows=rows,
                cpb=cpb, ppb=ppb, width=width)


def _plan_depthwise(params, dtype, isa, threads):
    p = params
    shape = _shape(p)[:7]

    def workspace(rows):
        return _depthwise.workspace_elems(shape, p.KH, p.KW, p.stride[0], p.stride[1],
                                          p.padding[0], p.padding[2], p.dilation[0],
                                          p.dilation[1], rows, isa, dtype.itemsize)

    def bound(rows):
        elems, wsub = _band_bound([-p.padding[0], (p.KH - 1) * p.dilation[0] - p.padding[0]],
                                  [-p.padding[2], (p.KW - 1) * p.dilation[1] - p.padding[2]],
                                  p.stride[0], p.stride[1], p.W_out, rows)
        return elems + rows * wsub + SLACK_MAX

    rows = p.H_out
    channels = p.N * p.C_in
    if threads > 1 and channels < 4 * threads:
        rows = _cdiv(p.H_out, _cdiv(4 * threads, channels))
    while rows > 1 and (not _fits(bound(rows), dtype)
                        or workspace(rows)[0] * dtype.itemsize > WS_BUDGET // 4):
        rows = _cdiv(rows, 2)
    if not _fits(bound(rows), dtype):
        raise _too_big(p, dtype, bound(rows))
    ws, items = workspace(rows)
    n = _threads.threads_for(items, p.flops, threads)
    return Plan("depthwise", isa, dtype, n, _round_up(ws, CACHE_LINE // dtype.itemsize),
                rows=rows)


@dataclass(frozen=True)
class IGemmTables:
    """The implicit GEMMs of one convolution, as _igemm.igemm takes them.

    problems: one row of _igemm.PROBLEM_FIELDS per GEMM; taps: their offh/offw tables;
    taps_of_problem: per GEMM, the weight's (kh list, kw list) it uses, in tap order;
    grid_of_problem: per GEMM, its pixel grid (Hp, Wp); wsub_of_problem: its band pitch;
    bias_only: the output phases (rh, rw) of a transposed convolution that no tap reaches
    (their outputs are the bias).
    """
    problems: np.ndarray
    taps: np.ndarray
    taps_of_problem: tuple
    grid_of_problem: tuple
    wsub_of_problem: tuple
    bias_only: tuple
    reads_input_in_place: bool


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
def igemm_tables(params, padded_rows):
    """The problem tables of params. padded_rows: rows of a group's packed weights (Mg in
    pixel mode, Mg rounded up to NR in channel mode; 0 means Mg), which sets a_offset."""
    p = params
    rows_p = padded_rows or p.Mg
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
    problems, taps, used, grids, wsubs, bias_only = [], [], [], [], [], []
    a_offset = 0
    oys, oxs = p.stride if p.transposed else (1, 1)
    for (rh, sh, th, hp), (rw, sw, tw, wp) in phases:
        if hp == 0 or wp == 0:
            continue
        if not th or not tw:
            bias_only.append((rh, rw))
            continue
        problems.append([len(th), len(tw), sh, sw, hp, wp, rh, oys, rw, oxs, a_offset,
                         len(taps)])
        offw = [off for _, off in tw]
        taps += [off for _, off in th] + offw
        used.append((tuple(k for k, _ in th), tuple(k for k, _ in tw)))
        grids.append((hp, wp))
        wsubs.append(wp + (max(offw) - min(offw)) // sw)
        a_offset += p.groups * rows_p * p.Cg * len(th) * len(tw)
    problems = np.array(problems, dtype=np.intp).reshape(-1, len(_igemm.PROBLEM_FIELDS))
    taps = np.array(taps, dtype=np.intp)
    problems.flags.writeable = taps.flags.writeable = False
    in_place_b = all(r[0] == r[1] == r[2] == r[3] == 1 and r[4] == p.H and r[5] == p.W
                     and taps[r[11]] == taps[r[11] + 1] == 0 for r in problems)
    return IGemmTables(problems, taps, tuple(used), tuple(grids), tuple(wsubs),
                       tuple(bias_only), in_place_b)


def _padded_rows(plan, params):
    if plan.algorithm == "igemm_cl":
        return _round_up(params.Mg, plan.width)
    return 0


def prepare_weight(plan, params, weight):
    """Weights in the layout the plan's kernel reads (C-contiguous, plan.dtype)."""
    p = params
    if plan.algorithm == "depthwise":
        return np.ascontiguousarray(weight.reshape(p.C_out, p.KH * p.KW))
    mode = _MODES[plan.algorithm]
    tables = igemm_tables(params, _padded_rows(plan, params))
    if not p.transposed:
        # conv2d: A[g, m, (c, kh, kw)] is the weight itself.
        mats = [weight.reshape(p.groups, p.Mg, p.Cg * p.KH * p.KW)]
    else:
        # Transposed: weight (C_in, C_out/groups, kh, kw). Phase GEMM: A[g, m, (c, th, tw)] =
        # weight[g*Cg + c, m, kh[th], kw[tw]], one phase after another.
        w = weight.reshape(p.groups, p.Cg, p.Mg, p.KH, p.KW)
        mats = [np.ascontiguousarray(w[:, :, :, list(kh)][:, :, :, :, list(kw)]
                                     .transpose(0, 2, 1, 3, 4)).reshape(p.groups, p.Mg, -1)
                for kh, kw in tables.taps_of_problem]
    total = sum(p.groups * (_padded_rows(plan, params) or p.Mg) * a.shape[2] for a in mats)
    packed = np.empty(total, dtype=plan.dtype)
    offset = 0
    for (kh, kw), a in zip(tables.taps_of_problem, mats):
        offset += _igemm.pack_weights(a, packed[offset:], len(kh) * len(kw), plan.cpb, mode,
                                      plan.width)
    return packed


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
    tables = igemm_tables(params, _padded_rows(plan, params))
    _igemm.igemm(x, packed, bias, out, p.groups, tables.problems, tables.taps,
                 _MODES[plan.algorithm], plan.isa, plan.cpb, plan.rows, plan.ppb, ws,
                 plan.threads)
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

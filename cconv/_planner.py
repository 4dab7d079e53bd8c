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

from . import _isa, _params, _threads
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
# Most bytes of the depthwise band buffer of a single output row. Only strides and dilations
# far beyond the image (nearly every tap reads padding) need more; igemm, whose workspace is
# bounded, runs those. Also keeps band_geometry's Py_ssize_t products from overflowing on
# 32-bit platforms, where they did (tools/test-arm.sh armv7).
DW_ROW_MAX_BYTES = 16 * 1024 * 1024
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


def _dw_band_bound(params, rows):
    """An upper bound, in Python ints (no overflow), of the elements of band_geometry's
    buffer for bands of `rows` output rows, for any variant (at most 16 lanes)."""
    p = params
    rows_in = (rows - 1) * p.stride[0] + (p.KH - 1) * p.dilation[0] + 1
    cols = (p.W_out - 1) * p.stride[1] + (p.KW - 1) * p.dilation[1] + 1 + p.stride[1] * 17
    return rows_in * cols


def _depthwise_fits(params):
    return _dw_band_bound(params, 1) * 8 <= DW_ROW_MAX_BYTES


def choose_algorithm(params):
    if params.Cg == 1 and not params.transposed and _depthwise_fits(params):
        return "depthwise"
    return "igemm"


def check_algorithm(params, algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: expected None or one of {ALGORITHMS}")
    if algorithm == "depthwise" and (params.Cg != 1 or params.transposed):
        raise ValueError(f"algorithm='depthwise' needs one input channel per group "
                         f"(groups == in_channels), got {params.C_in} input channels in "
                         f"{params.groups} groups")
    if algorithm == "depthwise" and not _depthwise_fits(params):
        raise ValueError(f"algorithm='depthwise' would need a band buffer of more than "
                         f"{DW_ROW_MAX_BYTES} bytes per thread for stride {params.stride} and "
                         f"dilation {params.dilation}; use algorithm='igemm' (or None)")


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
    if params.transposed:
        raise NotImplementedError("conv_transpose2d is planned by plan_transposed")
    mr, nr = _igemm.tile(isa, dtype.itemsize)
    K = params.Cg * params.KH * params.KW
    P = params.H_out * params.W_out
    kc = min(KC_MAX, K)
    packs = not (params.KH == params.KW == 1 and params.stride == (1, 1)
                 and params.padding == (0, 0, 0, 0))
    tpb, ppb = _igemm_blocks(params.N * params.groups, params.Mg, K, P, mr, nr, kc,
                             dtype.itemsize, threads, packs)
    nc = tpb * nr
    items = params.N * params.groups * _cdiv(P, nc) * _cdiv(_cdiv(params.Mg, mr), ppb)
    n = _threads.threads_for(items, params.flops, threads)
    ws = _igemm.workspace_elems(kc, nc, nr, 0)
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
    while rows > 1 and (_dw_band_bound(p, rows) > _params.SIZE_LIMIT
                        or per_band(rows) > DW_BAND_BYTES):
        rows = max(1, rows // 2)
    items = channels * _cdiv(p.H_out, rows)
    n = _threads.threads_for(items, p.flops, threads)
    ws = per_band(rows) // dtype.itemsize
    return Plan("depthwise", isa, dtype, n, _round_up(ws, CACHE_LINE // dtype.itemsize),
                rows=rows)


def igemm_problem(params):
    """The (problems, taps) tables of conv2d for _igemm.igemm: one problem, the whole output."""
    p = params
    problems = np.array([[p.KH, p.KW, p.stride[0], p.stride[1], p.H_out, p.W_out, 0, 1, 0, 1,
                          0, 0]], dtype=np.intp)
    offh = [kh * p.dilation[0] - p.padding[0] for kh in range(p.KH)]
    offw = [kw * p.dilation[1] - p.padding[2] for kw in range(p.KW)]
    return problems, np.array(offh + offw, dtype=np.intp)


def prepare_weight(plan, params, weight):
    """Weights in the layout the plan's kernel reads (C-contiguous, plan.dtype)."""
    if plan.algorithm == "depthwise":
        return np.ascontiguousarray(weight.reshape(params.C_out, params.KH * params.KW))
    a = weight.reshape(params.groups, params.Mg, params.Cg * params.KH * params.KW)
    packed = np.empty(a.size, dtype=plan.dtype)
    _igemm.pack_weights(a, packed, plan.kc, plan.mr)
    return packed


def execute(plan, params, x, packed, bias, out):
    """Run the plan: x (N, C_in, H, W) and out (N, C_out, H_out, W_out), C-contiguous."""
    if out.size == 0:
        return out
    if params.Cg == 0:
        # No input channels: every output is its bias (an empty sum).
        out[...] = 0 if bias is None else bias[:, None, None]
        return out
    ws = np.empty(plan.threads * plan.workspace_elems, dtype=plan.dtype)
    p = params
    if plan.algorithm == "depthwise":
        _depthwise.depthwise(x, packed, bias, out, p.KH, p.KW, p.stride[0], p.stride[1],
                             p.padding[0], p.padding[2], p.dilation[0], p.dilation[1],
                             plan.rows, plan.isa, ws, plan.threads)
    else:
        problems, taps = igemm_problem(params)
        _igemm.igemm(x, packed, bias, out, p.groups, problems, taps, plan.kc, plan.nc,
                     plan.ppb, plan.isa, ws, plan.threads)
    return out


def plan_for_conv2d(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                    dtype=np.float32, algorithm=None):
    """The plan conv2d would run for these shapes and arguments (for benchmarks and tests:
    plan.algorithm, plan.threads, plan.workspace_bytes)."""
    from . import _params
    fn = "conv2d"
    stride = _params.int_pair(fn, "stride", stride, 1)
    dilation = _params.int_pair(fn, "dilation", dilation, 1)
    pads = _params.conv_padding(fn, padding, tuple(weight_shape[2:]), dilation, stride)
    x_shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    params = _params.conv2d_params(fn, x_shape, tuple(weight_shape), stride, pads, dilation,
                                   _params.positive_int(fn, "groups", groups))
    return plan(params, dtype, algorithm)

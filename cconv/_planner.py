"""Which algorithm runs a convolution, how it is tiled and threaded, how much workspace it needs.

The rules, in order (`algorithm=` forces one, for tests and benchmarks):

  1. No input channels, or no tap ever reads the image: every output is its bias; no kernel.
  2. depthwise / depthwise_cl: conv2d whose groups have one input channel each (MobileNet's
     depthwise layers, any layer with one input channel), where a GEMM per group would have
     K = kh*kw and waste its register tile. The channels along the SIMD lanes
     (depthwise_cl) when output rows are narrow (_dw_channels_max_width) and there is a
     vector of channels; else the output columns (depthwise). Rule 3 when even a one-row
     band would pass the workspace budget.
  3. igemm / igemm_cl: everything else (dense, grouped, 1x1, strided, dilated, the stride
     phases of a transposed convolution): the implicit GEMM with the pixels (igemm) or the
     output channels (igemm_cl) along the lanes, with the band height and channel blocks
     that the cost model (_igemm_cost) finds cheapest within the workspace budget.
  3a. winograd: a conv2d with a 3x3 kernel, stride 1, dilation 1 (F(4x4, 3x3), the kernel
     _winograd.pyx; its error within float32's bound, decisions: Winograd), by default
     (float32 and float64) with WINOGRAD_MIN_CHANNELS input and output channels per group and
     WINOGRAD_MIN_PIXELS output pixels over the batch or more, where it was measured faster
     than rule 3 in modules and functional calls alike (these transform the weights on each
     call; both paths give the same bits) (decisions: Winograd by default); forced
     elsewhere.
     CCONV_WINOGRAD=0 in the environment at import, or set_winograd(False), turns it off:
     then it is refused even when forced.
  4. A transposed convolution whose kernel is its stride (U-Net's 2x2/s2), where rule 3
     chose igemm: one 1x1 GEMM copied depth to space (_lowering.depth_to_space), not phases.

A plan is plain data: it depends only on the geometry, the dtype, the instruction-set
variant and the threads available, and is cached. The reduction blocking (input channels
per K block) never depends on the thread count, so results are bitwise identical for any
thread count. Each measured constant names its entry of docs/decisions.md ("decisions:
NAME": the entry whose title starts with NAME).
"""
import enum
import os
import sys
from dataclasses import dataclass

import numpy as np

from . import _cache, _isa, _lowering, _params, _threads
from ._kernels import _depthwise, _igemm, _winograd


class Algorithm(str, enum.Enum):
    """The algorithms of cconv; the value is the name `algorithm=` takes."""
    IGEMM = "igemm"
    IGEMM_CL = "igemm_cl"
    DEPTHWISE = "depthwise"
    DEPTHWISE_CL = "depthwise_cl"
    WINOGRAD = "winograd"

    def __str__(self):
        return self.value

    __format__ = str.__format__

    @property
    def depthwise(self):
        return self in (Algorithm.DEPTHWISE, Algorithm.DEPTHWISE_CL)

    @property
    def winograd(self):
        return self is Algorithm.WINOGRAD


ALGORITHMS = tuple(a.value for a in Algorithm)
# Each algorithm's kernel orientation (the kernel module's mode constant).
MODES = {Algorithm.IGEMM: _igemm.MODE_PIXELS, Algorithm.IGEMM_CL: _igemm.MODE_CHANNELS,
         Algorithm.DEPTHWISE: _depthwise.MODE_ROWS,
         Algorithm.DEPTHWISE_CL: _depthwise.MODE_CHANNELS, Algorithm.WINOGRAD: 0}

# Most reduction rows per K block (whole input channels: KC_MAX[mode] // taps of them), so
# that a tile's operands stay in L1 while the other operand streams past (decisions: KC_MAX).
KC_MAX = {_igemm.MODE_PIXELS: 256, _igemm.MODE_CHANNELS: 128}
# Per-thread workspace budget (band buffer + C block), half the promised 1 MiB a thread.
WS_BUDGET = 512 * 1024
# The cost model's constants, in units of one tile-k step (_tile_cost): filling the band
# buffer, copying a C block out (transposed in channel mode; element by element where the
# pixels land `stride` apart), and the fixed cost of a work item (decisions: Tile cost model).
FILL_CYCLES = 0.5
COPY_CYCLES = {_igemm.MODE_PIXELS: 0.5, _igemm.MODE_CHANNELS: 1.0}
COPY_STRIDED_CYCLES = 1.5
ITEM_CYCLES = 400
# Reading an operand's element from memory, where the operand passes CACHED_BYTES (in a
# network each layer's weights come from memory, and its input from the caches of the cores
# that wrote it): every item streams its block's weights and its band's input, so bands
# multiply the weights' traffic and channel blocks the input's. Smaller weights are read
# again from cache at CACHED_CYCLES an element (decisions: STREAM_CYCLES).
STREAM_CYCLES = 1.0
CACHED_CYCLES = 0.25
CACHED_BYTES = 1 << 20
# Pixel mode's tiles run slower than _tile_cost on a conv2d that reads a band buffer, whose
# pixel vectors load across cache lines (decisions: PIXEL_BAND_FACTOR).
PIXEL_BAND_FACTOR = 1.2
# Packing raw weights into channel-mode panels, per element: a K block contiguous in the
# weight transposes in vector tiles, any other goes element by element (decisions:
# PACK_CYCLES).
PACK_CYCLES = {True: 0.3, False: 2.0}
CACHE_LINE = 64
# A depthwise multiply-add costs about this many of the GEMM's (few taps per output, bound by
# loads and band copies), in the work that decides the threads (decisions:
# DEPTHWISE_FLOP_COST).
DEPTHWISE_FLOP_COST = 8
# The widest output rows depthwise_cl runs on by default, by dtype and vector width
# (decisions: DW_CHANNELS_MAX_WIDTH).
DW_CHANNELS_MAX_WIDTH = {"float32-64-byte-vectors": 56, "float32": 28, "float64": 14}
# Winograd: most input channels per K block (whole blocks of the GEMM's 16-channel sums) and
# most tiles per chunk, in NR-wide columns (decisions: Winograd by default).
WINOGRAD_KC = 256
WINOGRAD_TILE_COLUMNS = 1
# The most workspace a thread's V (transformed input) and M (products) may take: what keeps
# them in L2, and the 1 MiB a thread every algorithm keeps to (decisions: Winograd by
# default).
WINOGRAD_WORKSPACE_BYTES = 1 << 20
# Winograd by default (rule 3a): float32 layers with at least this many input and output
# channels per group, and output pixels over the batch (where a functional call's weight
# transform costs less than Winograd saves) (decisions: Winograd by default).
WINOGRAD_MIN_CHANNELS = 64
WINOGRAD_MIN_PIXELS = 24 * 24
# ... and from 14x14 output pixels per image where both channel counts are this high: a
# module gains there, and a functional call, which transforms the weights in its items,
# breaks even (decisions: Winograd at 14x14 for wide layers).
WINOGRAD_WIDE_CHANNELS = 256
WINOGRAD_WIDE_MIN_PIXELS = 14 * 14
# Whether Winograd may run: CCONV_WINOGRAD=0 at import turns it off; set_winograd() sets it.
_winograd_on = os.environ.get("CCONV_WINOGRAD", "").strip() != "0"
# A functional call packs its weights first, as a module does once, when each is used at
# least this many times (decisions: PACK_FIRST_USES).
PACK_FIRST_USES = 1024


@dataclass(frozen=True)
class Plan:
    """How one convolution runs, as plain data. workspace_elems: per thread, in elements of
    dtype (workspace_elems_raw: with raw weights not packed first). No kernel (layout ()):
    every output is its bias."""
    algorithm: Algorithm
    mode: int            # the kernel's orientation (MODES)
    isa: int
    dtype: np.dtype
    threads: int
    workspace_elems: int
    workspace_elems_raw: int = 0
    rows: int = 0        # output (grid) rows per band
    cpb: int = 0         # igemm: input channels per K block
    ppb: int = 0         # igemm: weight panels per channel block
    width: int = 0       # igemm: weight panel width (MR in pixel mode, NR in channel mode)
    bias_fill: bool = False  # some outputs are reached by no tap: fill the bias first
    layout: tuple = ()   # the weight taps (kh list, kw list) of each problem
    d2s: tuple = ()      # igemm: (fy, fx), the GEMM of a kernel-sized stride

    @property
    def weight_key(self):
        """Identifies the packed-weight layout this plan reads (modules cache by it)."""
        return (self.algorithm, self.dtype.str, self.cpb, self.width, self.layout, self.d2s)

    @property
    def workspace_bytes(self):
        """Extra memory of a call beyond input, output and packed weights (the functional
        API's call, which packs the weights on the fly, when that needs more)."""
        per_thread = max(self.workspace_elems, self.workspace_elems_raw)
        return self.threads * per_thread * self.dtype.itemsize


def _cdiv(a, b):
    return -(-a // b)


def set_winograd(enabled):
    """Allow (True) or forbid (False) the Winograd algorithm everywhere, as CCONV_WINOGRAD=0
    does at import. Plans made before are not reused across a change (the flag is part of
    every plan cache's key)."""
    global _winograd_on
    if isinstance(enabled, float) or enabled not in (True, False):
        raise TypeError(f"set_winograd: expected True or False, got {enabled!r}")
    _winograd_on = bool(enabled)


def get_winograd():
    """Whether the Winograd algorithm may run (set_winograd, CCONV_WINOGRAD)."""
    return _winograd_on


def winograd_applies(params):
    """Whether params is a convolution Winograd F(4x4, 3x3) computes: conv2d, 3x3, stride 1,
    dilation 1."""
    p = params
    return (not p.transposed and (p.KH, p.KW) == (3, 3) and p.stride == (1, 1)
            and p.dilation == (1, 1))


def check_algorithm(params, algorithm):
    """algorithm (a name) as an Algorithm that applies to params."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: expected None or one of {ALGORITHMS}")
    algorithm = Algorithm(algorithm)
    if algorithm.winograd:
        if not _winograd_on:
            raise ValueError("algorithm='winograd' is turned off (CCONV_WINOGRAD=0 or "
                             "cconv.set_winograd(False))")
        if not winograd_applies(params):
            what = "conv_transpose2d" if params.transposed else (
                f"kernel {(params.KH, params.KW)}, stride {params.stride}, dilation "
                f"{params.dilation}")
            raise ValueError(f"algorithm='winograd' needs a conv2d with a 3x3 kernel, stride "
                             f"1 and dilation 1, got {what}")
    if algorithm.depthwise and (params.Cg != 1 or params.transposed):
        raise ValueError(f"algorithm={algorithm.value!r} needs one input channel per group "
                         f"(groups == in_channels), got {params.C_in} input channels in "
                         f"{params.groups} groups")
    return algorithm


def plan(params, dtype, algorithm=None, prepacked=True):
    """The plan for params in dtype on the current variant and thread count. prepacked:
    whether the weights will be packed once beforehand (a module's), or passed raw (a
    functional call's), which makes packing part of each call's cost."""
    if algorithm is not None:
        algorithm = check_algorithm(params, algorithm)
    return _plan(params, np.dtype(dtype), algorithm, _isa.current(), _threads.get_num_threads(),
                 prepacked, _winograd_on)


@_cache.memo
def _plan(params, dtype, algorithm, isa, threads, prepacked, winograd_on):
    # winograd_on keys the cache: no plan outlives a set_winograd() change.
    depthwise = (algorithm.depthwise if algorithm is not None
                 else params.Cg == 1 and not params.transposed)
    if _work(params, depthwise) < _threads.MIN_FLOPS_PARALLEL:
        # It will run on one thread (threads_for): plan its bands for one, not for a split.
        threads = 1
    if algorithm is not None and algorithm.winograd:
        return _plan_winograd(params, dtype, isa, threads)
    if algorithm is None and winograd_on and _winograd_default(params, dtype):
        return _plan_winograd(params, dtype, isa, threads)
    if depthwise:
        chosen = _plan_depthwise(params, dtype, isa, threads, algorithm)
        if chosen is not None:
            return chosen
    chosen = _plan_igemm(_lowering.gemm(params), dtype, isa, threads, algorithm, prepacked)
    d2s = _lowering.depth_to_space(params)
    if d2s is not None and chosen.algorithm == Algorithm.IGEMM:
        return _plan_igemm(d2s, dtype, isa, threads, Algorithm.IGEMM, prepacked)
    return chosen


def _winograd_default(params, dtype):
    """Rule 3a's default: where Winograd was measured faster than rule 3 (decisions:
    Winograd by default)."""
    p = params
    # The wide rule counts one image's pixels: a 7x7 image fills a quarter of a tile column
    # whatever the batch.
    wide = (min(p.Cg, p.Mg) >= WINOGRAD_WIDE_CHANNELS
            and p.H_out * p.W_out >= WINOGRAD_WIDE_MIN_PIXELS)
    return (winograd_applies(p) and p.Cg >= WINOGRAD_MIN_CHANNELS
            and p.Mg >= WINOGRAD_MIN_CHANNELS
            and (p.N * p.H_out * p.W_out >= WINOGRAD_MIN_PIXELS or wide))


def _work(params, depthwise):
    """The call's work in GEMM flops (what _threads.threads_for weighs)."""
    return params.flops * (DEPTHWISE_FLOP_COST if depthwise else 1)


def _fits(elems, dtype):
    """Whether a per-thread workspace of `elems` keeps the kernels' index arithmetic exact.
    The kernels compute sizes saturating at PY_SSIZE_T_MAX, so an impossible one fails."""
    return elems * dtype.itemsize <= _params.SIZE_LIMIT


def _too_big(params, dtype, elems):
    fn = "conv_transpose2d" if params.transposed else "conv2d"
    return MemoryError(f"{fn}: this geometry (stride {params.stride}, dilation "
                       f"{params.dilation}, padding {params.padding}) needs a workspace of "
                       f"{elems * dtype.itemsize} bytes per thread, more than this platform "
                       f"can address")


def _bias_only(algorithm, isa, dtype):
    algorithm = algorithm or Algorithm.IGEMM
    return Plan(algorithm, MODES[algorithm], isa, dtype, 1, 0, bias_fill=True)


def _tile_cost(r):
    """Cycles per reduction step of an r-row tile: r FMA pairs, or its loads (2 vectors, the
    offsets and r broadcasts, two per cycle), whichever is more."""
    return max(r, (r + 4) / 2)


def _igemm_cost(lowering, pitches, in_place, mode, mr, nr, cpb, rows, ppb, threads,
                prepacked, itemsize):
    """Estimated cycles of one call: the slowest thread's items, each costing its tiles, its
    band fills, its output copy, (raw weights) its weight packing or scattered reads, and
    the weights (and an input past CACHED_BYTES) it streams.
    pitches, in_place: per problem, its band pitch and whether it reads the input in place
    (the kernel's Problems.sizes)."""
    p = lowering.params
    npanels = _cdiv(p.Mg, mr) if mode == _igemm.MODE_PIXELS else _cdiv(p.Mg, nr)
    nmb = _cdiv(npanels, ppb)
    block = min(ppb, npanels)
    reads_in_place = all(in_place)
    worst = 0
    items = 0
    for prob, wsub in zip(lowering.problems, pitches):
        kh, kw, hp, wp = prob.kh, prob.kw, prob.Hp, prob.Wp
        K = p.Cg * len(kh) * len(kw)
        R = min(rows, hp)
        if mode == _igemm.MODE_PIXELS:
            rows_per = p.Mg / npanels
            tiles = _cdiv((R - 1) * wsub + wp, nr) * block
            compute = tiles * K * _tile_cost(rows_per)
            if not (reads_in_place or p.transposed):
                compute *= PIXEL_BAND_FACTOR
            copy = block * rows_per * R * wp
        else:
            joined = wsub == wp  # no padding columns: tiles run across rows
            seg, nseg = (R * wp, 1) if joined else (wp, R)
            npp = _cdiv(seg, mr)
            compute = nseg * npp * block * K * _tile_cost(seg / npp)
            copy = block * nr * R * wp
        fill = 0 if reads_in_place else p.Cg * (R + len(kh)) * wsub
        contiguous = not p.transposed and (kh, kw) == (tuple(range(p.KH)), tuple(range(p.KW)))
        if prepacked:
            pack = 0
        elif mode == _igemm.MODE_CHANNELS:
            pack = block * nr * K
        elif p.transposed:
            # Pixel mode reads raw weights in place: rows of a transposed weight lie kh*kw
            # elements apart, so a tile step reads up to a line per row (conv2d's rows run
            # along K).
            pack = block * (p.Mg / npanels) * K * min(1.0, p.KH * p.KW * itemsize / CACHE_LINE)
        else:
            pack = 0
        strided = mode == _igemm.MODE_CHANNELS and p.transposed and p.stride[1] > 1
        copy_cycles = COPY_STRIDED_CYCLES if strided else COPY_CYCLES[mode]
        # The weights of the item's channel block, from memory or from cache, and the input
        # of its band where it is too big for a cache (decisions: STREAM_CYCLES).
        weights = min(block * (nr if mode == _igemm.MODE_CHANNELS else mr), p.Mg) * K
        big = p.groups * p.Mg * K * itemsize > CACHED_BYTES
        streamed = (STREAM_CYCLES if big else CACHED_CYCLES) * weights
        if p.C_in * p.H * p.W * itemsize > CACHED_BYTES:
            band_rows = p.H if p.transposed else min(p.H, R * p.stride[0] + p.KH)
            streamed += STREAM_CYCLES * p.Cg * band_rows * p.W
        cost = (compute + FILL_CYCLES * fill + copy_cycles * copy
                + PACK_CYCLES[contiguous] * pack + streamed
                + ITEM_CYCLES)
        worst = max(worst, cost)
        items += p.N * p.groups * nmb * _cdiv(hp, R)
    # No term for a straggler (decisions: No straggler term).
    return _cdiv(items, threads) * worst, items


def _band_candidates(rows, threads):
    """Band heights worth costing: splits of the rows into up to 8 bands a thread, and
    powers of two below (a few dozen, whatever the image: planning time must not grow with
    the output)."""
    heights = {_cdiv(rows, nb) for nb in range(1, min(rows, 8 * threads) + 1)}
    h = 1
    while h < rows:
        heights.add(h)
        h *= 2
    return sorted(heights, reverse=True)


def _plan_igemm(lowering, dtype, isa, threads, algorithm, prepacked):
    """The cheapest (orientation, band rows, panels per block) of the lowering's GEMMs within
    the workspace budget."""
    p = lowering.params
    mr, nr = _igemm.tile(isa, dtype.itemsize)
    if p.Cg == 0 or not lowering.problems:
        # No input channels (an empty sum), or no tap ever reads the image.
        return _bias_only(algorithm, isa, dtype)
    problems = _igemm.Problems(lowering)
    taps = max(len(prob.kh) * len(prob.kw) for prob in lowering.problems)
    hp_max = max(prob.Hp for prob in lowering.problems)
    hp_min = min(prob.Hp for prob in lowering.problems)
    # Stride phases of a transposed convolution interleave in the output: two threads on two
    # phases of one channel block and band would write alternate elements of the same cache
    # lines. Items run in phase order, so at least `threads` items per phase keep the threads
    # on different blocks or bands of one phase (decisions: Interleaved stride phases).
    interleaved = threads > 1 and len(lowering.problems) > 1
    best = None
    smallest = None
    for name in [algorithm] if algorithm else [Algorithm.IGEMM, Algorithm.IGEMM_CL]:
        mode = MODES[name]
        width = mr if mode == _igemm.MODE_PIXELS else nr
        cpb = max(1, KC_MAX[mode] // taps)
        npanels = _cdiv(p.Mg, width)
        for rows in _band_candidates(hp_max, threads):
            for nmb in range(1, min(npanels, 4 * threads) + 1):
                ppb = _cdiv(npanels, nmb)
                ws_packed, ws_raw, items, pitches, in_place = problems.sizes(
                    mode, isa, dtype.itemsize, cpb, rows, ppb)
                ws = ws_packed if prepacked else ws_raw
                smallest = ws if smallest is None else min(smallest, ws)
                if not _fits(ws, dtype):
                    continue
                if ws * dtype.itemsize > WS_BUDGET and not (rows == 1 and ppb == 1):
                    continue
                cost, _ = _igemm_cost(lowering, pitches, in_place, mode, mr, nr, cpb, rows,
                                      ppb, threads, prepacked, dtype.itemsize)
                blocks = _cdiv(npanels, ppb)
                shared = interleaved and p.N * p.groups * blocks * _cdiv(hp_min, rows) < threads
                cost = (shared, cost)
                if best is None or cost < best[0]:
                    best = (cost, name, rows, ppb, items, width, cpb, ws_packed, ws_raw)
    if best is None:
        raise _too_big(p, dtype, smallest)
    _, name, rows, ppb, items, width, cpb, ws_packed, ws_raw = best
    if ws_raw > sys.maxsize // 64:
        raise _too_big(p, dtype, ws_raw)
    return Plan(name, MODES[name], isa, dtype, _threads.threads_for(items, p.flops, threads),
                ws_packed, workspace_elems_raw=ws_raw, rows=rows, cpb=cpb, ppb=ppb, width=width,
                bias_fill=lowering.bias_fill, layout=lowering.taps_of_problem,
                d2s=lowering.d2s if lowering.d2s != (1, 1) else ())


def _plan_winograd(params, dtype, isa, threads):
    """The Winograd plan: chunks of WINOGRAD_TILE_COLUMNS * NR tiles or fewer (one vector's
    worth for a small image), the most output channels per block and input channels per K
    block (whole 16-channel sums, up to WINOGRAD_KC) whose V and M fit
    WINOGRAD_WORKSPACE_BYTES a thread: the widest chunk that takes every input channel in one
    K block, else the widest chunk with fewer; the output channels split into more blocks
    where their rows do not fit, then to give every thread an item. The K blocks do not
    depend on the thread count (the same bits for any)."""
    p = params
    if p.Cg == 0:
        return _bias_only(Algorithm.WINOGRAD, isa, dtype)
    mr, nr = _winograd.tile(isa, dtype.itemsize)
    m = _winograd.M_TILE
    tiles = _cdiv(p.H_out, m) * _cdiv(p.W_out, m)
    npanels = _cdiv(p.Mg, mr)
    kc_top = min(WINOGRAD_KC, _cdiv(p.Cg, 16) * 16)
    top = nr // 2 if tiles <= nr // 2 else min(_cdiv(tiles, nr), WINOGRAD_TILE_COLUMNS) * nr
    widths = [top] + [w for w in (nr * 2 ** i for i in range(8)) if w < top][::-1]
    choice = None
    for tc in widths:
        nmb = 1
        while True:
            ppb = _cdiv(npanels, nmb)
            kc = next((k for k in range(kc_top, 0, -16) if _winograd_ws(p, isa, dtype, k, tc, ppb)
                       <= WINOGRAD_WORKSPACE_BYTES), None)
            if kc is not None or ppb == 1:
                break
            nmb += 1
        kc = kc or 16
        if choice is None:
            choice = (tc, kc, ppb)
        if kc == kc_top:
            choice = (tc, kc, ppb)
            break
    tc, kc, ppb = choice
    ppb = min(ppb, _cdiv(npanels, min(npanels, _cdiv(threads, p.N * p.groups
                                                         * _cdiv(tiles, tc)))))
    ws, ws_raw, items = _winograd.sizes(p, isa, dtype.itemsize, kc, tc, ppb)
    if not _fits(ws_raw, dtype) or ws_raw > sys.maxsize // 64:
        raise _too_big(p, dtype, ws_raw)
    return Plan(Algorithm.WINOGRAD, 0, isa, dtype,
                _threads.threads_for(items, p.flops, threads), ws, workspace_elems_raw=ws_raw,
                rows=tc, cpb=kc, ppb=ppb, width=mr,
                layout=((tuple(range(3)), tuple(range(3))),))


def _winograd_ws(params, isa, dtype, kc, tc, ppb):
    """Bytes of workspace a thread of this Winograd tiling needs."""
    return _winograd.sizes(params, isa, dtype.itemsize, kc, tc, ppb)[0] * dtype.itemsize


def _dw_channels_max_width(isa, dtype):
    """The widest output rows depthwise_cl runs on by default (DW_CHANNELS_MAX_WIDTH)."""
    if dtype.itemsize == 8:
        return DW_CHANNELS_MAX_WIDTH["float64"]
    if _depthwise.lanes(isa, 4) * 4 == 64:
        return DW_CHANNELS_MAX_WIDTH["float32-64-byte-vectors"]
    return DW_CHANNELS_MAX_WIDTH["float32"]


def _plan_depthwise(params, dtype, isa, threads, algorithm):
    """The depthwise plan (depthwise_cl by the rule above, unless forced), or None (unless
    forced) when even a one-row band would exceed the workspace budget."""
    p = params
    forced = algorithm is not None
    lowering = _lowering.depthwise(params)
    if lowering.bias_fill:
        return _bias_only(algorithm or Algorithm.DEPTHWISE, isa, dtype)
    lanes = _depthwise.lanes(isa, dtype.itemsize)     # one vector
    if algorithm is None:
        narrow = p.W_out <= _dw_channels_max_width(isa, dtype) and p.C_in >= lanes
        algorithm = Algorithm.DEPTHWISE_CL if narrow else Algorithm.DEPTHWISE
    mode = MODES[algorithm]

    def workspace(rows):
        return _depthwise.sizes(lowering, mode, isa, dtype.itemsize, rows)

    smallest = workspace(1)[0]
    if not _fits(smallest, dtype):
        if forced:
            raise _too_big(p, dtype, smallest)
        return None
    if not forced and smallest * dtype.itemsize > WS_BUDGET:
        return None
    # Bands of output rows: the whole image, unless the threads need more items, or the
    # workspace needs smaller bands.
    rows = p.H_out
    blocks = p.N * (p.C_in if mode == _depthwise.MODE_ROWS else _cdiv(p.C_in, lanes))
    if threads > 1 and 0 < blocks < 4 * threads:
        rows = _cdiv(p.H_out, _cdiv(4 * threads, blocks))
    while rows > 1 and workspace(rows)[0] * dtype.itemsize > WS_BUDGET // 4:
        rows = _cdiv(rows, 2)
    ws, items = workspace(rows)
    return Plan(algorithm, mode, isa, dtype, _threads.threads_for(items, _work(p, True), threads),
                ws, workspace_elems_raw=ws, rows=rows,
                layout=((lowering.kh, lowering.kw),))


@_cache.memo
def pack_first(params):
    """Whether a functional call should pack its weights before running: when each weight is
    used PACK_FIRST_USES times or more, or a transposed convolution's stride phases share
    them (each phase takes some taps of every channel pair)."""
    p = params
    weights = p.Mg * p.C_in * p.KH * p.KW
    if weights == 0:
        return False
    if p.transposed and len(_lowering.gemm(params).problems) > 1:
        return True
    # Each weight's multiply-adds: flops already count them for either direction.
    return p.flops // (2 * weights) >= PACK_FIRST_USES


def plan_for_conv2d(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                    dtype=np.float32, algorithm=None):
    """The plan conv2d would run for these shapes and arguments (for benchmarks and tests:
    plan.algorithm, plan.threads, plan.workspace_bytes)."""
    x_shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    params = _params.conv2d_geometry("conv2d", x_shape, weight_shape, stride, padding,
                                     dilation, groups)
    return plan(params, dtype, algorithm)


def plan_for_conv_transpose2d(input_shape, weight_shape, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, dtype=np.float32, algorithm=None):
    """The plan conv_transpose2d would run for these shapes and arguments."""
    x_shape = tuple(input_shape) if len(input_shape) == 4 else (1, *input_shape)
    params = _params.conv_transpose2d_geometry("conv_transpose2d", x_shape, weight_shape,
                                               stride, padding, output_padding, groups,
                                               dilation)
    return plan(params, dtype, algorithm)

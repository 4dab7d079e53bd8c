"""Which algorithm runs a convolution, how it is tiled and threaded, how much workspace it needs.

The rules, in order (`algorithm=` overrides them, for tests and benchmarks):

  1. depthwise / depthwise_cl   every group has one input channel (groups == in_channels):
                 MobileNet's depthwise layers, and any layer with one input channel. A GEMM
                 per group would have K = kh*kw and waste its register tile. The output
                 columns (depthwise) or the channels (depthwise_cl) along the SIMD lanes:
                 channels for narrow images with a vector of channels or more, by the rule
                 at DW_CHANNELS_MAX_WIDTH.
  2. igemm / igemm_cl   everything else: dense, grouped, 1x1, strided, dilated, and the stride
                 phases of transposed convolutions. The same implicit GEMM with the pixels
                 (igemm) or the output channels (igemm_cl) along the SIMD lanes: whichever
                 wastes fewer lanes and copies less, by the cost model in _igemm_cost. A
                 transposed convolution whose kernel is its stride (U-Net's 2x2/s2) runs in
                 pixel mode as one 1x1 GEMM copied depth to space (_d2s_params), not as
                 phases.

A plan depends only on the geometry, the dtype, the instruction-set variant and the threads
available; it is cached. The reduction blocking (input channels per K block) never depends on
the thread count, so results are bitwise identical for any thread count.
"""
import functools
from dataclasses import dataclass, field

import numpy as np

from . import _isa, _params, _threads
from ._kernels import _depthwise, _igemm, _runtime

ALGORITHMS = ("igemm", "igemm_cl", "depthwise", "depthwise_cl")
_MODES = {"igemm": _igemm.MODE_PIXELS, "igemm_cl": _igemm.MODE_CHANNELS}
_DW_MODES = {"depthwise": _depthwise.MODE_ROWS, "depthwise_cl": _depthwise.MODE_CHANNELS}

# Most reduction rows per K block (whole input channels: KC_MAX[mode] // taps of them), so
# that a tile's operands stay in L1 (48 KiB here) while the other operand streams past. Pixel
# mode: a 12-row weight slice (12 x 256 floats) and a tile of 32 pixels (32 x 256). Channel
# mode: a 32-wide weight panel, 32 x 128 floats; 256 rows made it 32 KiB, which with a tile's
# band rows overflowed L1 (1.03-1.2x slower on 8 of the 9 channel-mode layers measured).
KC_MAX = {_igemm.MODE_PIXELS: 256, _igemm.MODE_CHANNELS: 128}
# Per-thread workspace budget (band buffer + C block); the bound is 1 MiB a thread.
WS_BUDGET = 512 * 1024
# Cycles per element of the copies around the GEMM, relative to one tile-k step (see
# _tile_cost): filling the band buffer, and copying a C block out (transposed in channel mode).
FILL_CYCLES = 0.5
# (Channel mode's block is transposed into the output in vector tiles, 1.0: 0.5 made the
# planner take channel mode on layers where it measured up to 7% slower; element by element
# where its pixels land `stride` apart, the phases of a transposed convolution, 1.5.)
COPY_CYCLES = {_igemm.MODE_PIXELS: 0.5, _igemm.MODE_CHANNELS: 1.0}
COPY_STRIDED_CYCLES = 1.5
# Pixel mode's tiles run about this much slower than _tile_cost on a conv2d that reads a band
# buffer (taps or a stride; its pixel vectors load at any offset in a row, most of them
# across two cache lines, where an input read in place is aligned: the likely cause, not
# measured on its own; this VM has no cache counters). Measured against 1.0 (module, alternating
# A/B; the plans it changes take channel mode): ResNet-50's stem 0.90-0.92x the time on
# AVX-512 (1 and 2 threads), 0.91-0.95x on AVX2, 0.96-1.03x on SSE2; its stride-2 1x1
# downsample 0.90-1.03x on AVX-512, 0.99-1.01x on AVX2 and SSE2; MNIST's conv2 at batch 32
# 0.88x on AVX2; MobileNetV2's stem 0.95x and a 96x96 camera stem 0.93-0.97x on SSE2
# (float32). float64: the stem 0.90-0.98x, MNIST's conv2 0.88x, the AVX2 stems 0.92-1.05x;
# the downsample 0.89-1.05x on AVX-512 but 1.05-1.06x on AVX2, the one loss measured. Not on
# the phases of a transposed convolution: the 3x3/s2 decoder layer, which it also changed,
# ran 0.99-1.18x.
PIXEL_BAND_FACTOR = 1.2
# Packing raw weights into a channel-mode panel, per element: a K block contiguous in the
# weight (conv2d's with every tap) is transposed in vector tiles, ~0.15 ns an element inside
# a call (measured on ResNet-50 stage 4); any other goes element by element, ~1 ns. (One
# unit of _tile_cost measured ~1.6 cycles.)
PACK_CYCLES = {True: 0.3, False: 2.0}
ITEM_CYCLES = 400
CACHE_LINE = 64


@dataclass(frozen=True)
class Plan:
    """How one convolution runs. workspace_elems is per thread, in elements of dtype."""
    algorithm: str
    isa: int
    dtype: np.dtype
    threads: int
    workspace_elems: int
    workspace_elems_raw: int = 0  # per thread, when the weights are packed on the fly
    rows: int = 0        # output (grid) rows per band
    cpb: int = 0         # igemm: input channels per K block
    ppb: int = 0         # igemm: weight panels per channel block
    width: int = 0       # igemm: weight panel width (MR in pixel mode, NR in channel mode)
    kernel: object = field(default=None, compare=False, repr=False)  # prepared, runs it
    bias_fill: bool = False  # some outputs are reached by no tap: fill the bias first
    layout: tuple = ()     # igemm: the weight taps (kh list, kw list) of each problem
    d2s: tuple = ()        # igemm: (fy, fx), the GEMM of a kernel-sized stride (_d2s_params)

    def __post_init__(self):
        # Identifies the packed-weight layout this plan reads (modules cache by it). For a
        # transposed convolution the taps of each phase depend on the input size.
        object.__setattr__(self, "weight_key",
                           (self.algorithm, self.dtype.str, self.cpb, self.width, self.layout))

    @property
    def workspace_bytes(self):
        """Extra memory of a call beyond input, output and packed weights (the functional
        API's call, which packs the weights on the fly, when that needs more)."""
        per_thread = max(self.workspace_elems, self.workspace_elems_raw)
        return self.threads * per_thread * self.dtype.itemsize


def _cdiv(a, b):
    return -(-a // b)


def _round_up(n, multiple):
    return _cdiv(n, multiple) * multiple


def check_algorithm(params, algorithm):
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r}: expected None or one of {ALGORITHMS}")
    if algorithm in _DW_MODES and (params.Cg != 1 or params.transposed):
        raise ValueError(f"algorithm={algorithm!r} needs one input channel per group "
                         f"(groups == in_channels), got {params.C_in} input channels in "
                         f"{params.groups} groups")


def plan(params, dtype, algorithm=None, prepacked=True):
    """The plan for params in dtype on the current variant and thread count. prepacked:
    whether the weights will be packed once beforehand (a module's), or passed raw (a
    functional call's), which makes packing part of each call's cost."""
    if algorithm is not None:
        check_algorithm(params, algorithm)
    return _plan(params, np.dtype(dtype), algorithm, _isa.current(), _threads.get_num_threads(),
                 prepacked)


@functools.lru_cache(maxsize=512)
def _plan(params, dtype, algorithm, isa, threads, prepacked):
    depthwise = algorithm in _DW_MODES or (algorithm is None and params.Cg == 1
                                           and not params.transposed)
    if _work(params, depthwise) < _threads.MIN_FLOPS_PARALLEL:
        # It will run on one thread (threads_for): plan its bands for one, not for a split
        # (MNIST's first layer: 6 us with one band, 9 us with the bands of two threads).
        threads = 1
    if depthwise:
        plan = _plan_depthwise(params, dtype, isa, threads, algorithm)
        if plan is not None:
            return plan
    plan = _plan_igemm(params, dtype, isa, threads, algorithm, prepacked)
    virtual = _d2s_params(params)
    if virtual is not None and plan.algorithm == "igemm":
        return _plan_igemm(virtual, dtype, isa, threads, "igemm", prepacked, d2s=params.stride)
    return plan


def _d2s_params(params):
    """A transposed convolution whose kernel is its stride, unpadded and undilated (U-Net's
    2x2/s2), as the 1x1 transposed convolution it is to the GEMM: fy*fx times the output
    channels (weight (C_in, C_out/groups * kh*kw), row m = (co*kh + a)*kw + b), on the input
    grid, each output pixel (i, j) of row m landing at (i*fy + a, j*fx + b) of channel co
    (depth to space, done by the kernel's output copy). Its stride phases would each be a 1x1
    GEMM of their own, writing every other element of the output's rows. Taken where the
    phases would run in pixel mode (U-Net's 2x2/s2 at 56x56: 1.13x faster at 1 thread, as
    fast at 2; 8 images of 28x28: 1.3-1.4x); with channels in the lanes (a 14x14 input of
    256 channels) the phases stay faster. None for any other convolution."""
    p = params
    if not (p.transposed and (p.KH, p.KW) == p.stride and p.stride != (1, 1)
            and p.padding == (0, 0, 0, 0) and p.dilation == (1, 1)
            and p.output_padding == (0, 0)):
        return None
    return _params.ConvParams(p.N, p.C_in, p.H, p.W, p.C_out * p.KH * p.KW, 1, 1, (1, 1),
                              (0, 0, 0, 0), (1, 1), p.groups, p.H, p.W, transposed=True)


# A depthwise multiply-add costs about 8 of the GEMM's (few taps per output, bound by loads
# and the band copies: MobileNetV2's depthwise layers run at 10-20 GFLOP/s where its dense
# layers run at 100+), so the threshold for threads (_threads.MIN_FLOPS_PARALLEL, in GEMM
# flops) counts its flops 8 times: MobileNetV2's 14x14 depthwise (1.35 MFLOP, ~100 us)
# runs 1.6x faster on 2 threads.
DEPTHWISE_FLOP_COST = 8


def _work(params, depthwise):
    """The call's work in GEMM flops (what _threads.threads_for weighs)."""
    return params.flops * (DEPTHWISE_FLOP_COST if depthwise else 1)


def _fits(elems, dtype):
    """Whether a per-thread workspace of `elems` keeps the kernels' index arithmetic exact.
    The kernels compute sizes saturating at PY_SSIZE_T_MAX, so an impossible one fails."""
    return elems * dtype.itemsize <= _params.SIZE_LIMIT


def _too_big(params, dtype, elems):
    return MemoryError(f"conv2d: this geometry (stride {params.stride}, dilation "
                       f"{params.dilation}, padding {params.padding}) needs a workspace of "
                       f"{elems * dtype.itemsize} bytes per thread, more than this platform "
                       f"can address")


def _shape(params):
    p = params
    return np.array([p.N, p.C_in, p.H, p.W, p.C_out, p.H_out, p.W_out, p.groups], np.intp)


def _tile_cost(r):
    """Cycles per reduction step of an r-row tile: r FMA pairs, or its loads (2 vectors, the
    offsets and r broadcasts, two per cycle), whichever is more."""
    return max(r, (r + 4) / 2)


def _igemm_cost(params, tables, mode, mr, nr, cpb, rows, ppb, threads, prepacked, itemsize):
    """Estimated cycles of one call: the slowest thread's items, each costing its tiles, its
    band fills, its output copy and (raw weights) its weight packing or scattered reads."""
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
            if not (tables.reads_input_in_place or p.transposed):
                compute *= PIXEL_BAND_FACTOR
            copy = block * rows_per * R * wp
        else:
            joined = wsub == wp  # no padding columns: tiles run across rows
            seg, nseg = (R * wp, 1) if joined else (wp, R)
            npp = _cdiv(seg, mr)
            compute = nseg * npp * block * K * _tile_cost(seg / npp)
            copy = block * nr * R * wp
        fill = 0 if tables.reads_input_in_place else p.Cg * (R + len(kh)) * wsub
        contiguous = not p.transposed and (kh, kw) == (tuple(range(p.KH)), tuple(range(p.KW)))
        if prepacked:
            pack = 0
        elif mode == _igemm.MODE_CHANNELS:
            pack = block * nr * K
        elif p.transposed:
            # Pixel mode reads raw weights in place, rows (output channels) kh*kw elements
            # apart in a transposed weight, each step's K entries scattered: a tile step
            # reads up to one line per row, about what packing them costs (DCGAN's 4x4/s2
            # ran 1.4-2.3x slower than with packed weights). conv2d's rows run along K.
            pack = block * (p.Mg / npanels) * K * min(1.0, p.KH * p.KW * itemsize / CACHE_LINE)
        else:
            pack = 0
        strided = mode == _igemm.MODE_CHANNELS and p.transposed and p.stride[1] > 1
        copy_cycles = COPY_STRIDED_CYCLES if strided else COPY_CYCLES[mode]
        cost = (compute + FILL_CYCLES * fill + copy_cycles * copy
                + PACK_CYCLES[contiguous] * pack
                + ITEM_CYCLES)
        worst = max(worst, cost)
        items += p.N * p.groups * nmb * _cdiv(hp, R)
    # No term for a straggler (a core the host slows). Adding 0.15-1 of the worst item's
    # cost, so that 2 threads get more, smaller items, chose bands of 1-4 rows: on the 20
    # layers of 100 MFLOP or more (alternating A/B, 2 threads) 0.92-1.71x the time at 0.15
    # (worse on 10, better on 5), 0.98-1.86x at 1. This model counts a thin band's tiles,
    # not what it loses in cache reuse.
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


def _plan_igemm(params, dtype, isa, threads, algorithm, prepacked, d2s=(1, 1)):
    """The cheapest (mode, band rows, panels per block) within the workspace budget; d2s:
    the depth-to-space factors of _d2s_params (pixel mode only)."""
    p = params
    mr, nr = _igemm.tile(isa, dtype.itemsize)
    base = igemm_tables(params)
    if p.Cg == 0 or not base.taps_of_problem:
        # No input channels (an empty sum), or no tap ever reads the image: every output is
        # its bias.
        return Plan(algorithm or "igemm", isa, dtype, 1, 0, bias_fill=True)
    taps = max(len(kh) * len(kw) for kh, kw in base.taps_of_problem)
    hp_max = max(hp for hp, _ in base.grid_of_problem)
    hp_min = min(hp for hp, _ in base.grid_of_problem)
    # Stride phases of a transposed convolution interleave in the output: two threads on
    # two phases of one channel block and band write alternate elements of the same cache
    # lines (false sharing: 2 threads ran 1.6x slower than with 3 channel blocks on U-Net's
    # 2x2/s2). Items run in phase order, so at least `threads` items per phase keep the
    # threads on different blocks or bands of one phase.
    interleaved = threads > 1 and len(base.grid_of_problem) > 1
    modes = [algorithm] if algorithm else list(_MODES)
    best = None
    smallest = None
    for name in modes:
        mode = _MODES[name]
        width = mr if mode == _igemm.MODE_PIXELS else nr
        cpb = max(1, KC_MAX[mode] // taps)
        npanels = _cdiv(p.Mg, width)
        for rows in _band_candidates(hp_max, threads):
            for nmb in range(1, min(npanels, 4 * threads) + 1):
                ppb = _cdiv(npanels, nmb)
                ws, ws_raw, items = _igemm.workspace_elems(_shape(p), base.problems, base.taps,
                                                           mode, isa, dtype.itemsize, cpb,
                                                           rows, ppb, *d2s)
                ws = ws if prepacked else ws_raw
                smallest = ws if smallest is None else min(smallest, ws)
                if not _fits(ws, dtype):
                    continue
                if ws * dtype.itemsize > WS_BUDGET and not (rows == 1 and ppb == 1):
                    continue
                cost, _ = _igemm_cost(p, base, mode, mr, nr, cpb, rows, ppb, threads,
                                      prepacked, dtype.itemsize)
                blocks = _cdiv(npanels, ppb)
                shared = interleaved and p.N * p.groups * blocks * _cdiv(hp_min, rows) < threads
                cost = (shared, cost)
                if best is None or cost < best[0]:
                    best = (cost, name, rows, ppb, ws, items, width, cpb)
    if best is None:
        raise _too_big(p, dtype, smallest)
    _, name, rows, ppb, _, items, width, cpb = best
    n = _threads.threads_for(items, p.flops, threads)
    taps = p.KH * p.KW
    if p.transposed:  # weight (C_in, C_out/groups, kh, kw)
        strides = (p.Cg * p.Mg * taps, taps, p.Mg * taps)
    else:  # weight (C_out, C_in/groups, kh, kw)
        strides = (p.Mg * p.Cg * taps, p.Cg * taps, taps)
    kernel = _igemm.IGemm(_shape(p), base.problems, base.taps, _MODES[name], isa,
                          dtype.itemsize, cpb, rows, ppb, *strides, *d2s)
    return Plan(name, isa, dtype, n, kernel.workspace_elems,
                workspace_elems_raw=kernel.workspace_elems_raw, rows=rows,
                cpb=cpb, ppb=ppb, width=width, kernel=kernel, bias_fill=base.bias_fill,
                layout=base.taps_of_problem, d2s=d2s if d2s != (1, 1) else ())


# Depthwise runs with the channels in the lanes (depthwise_cl) when output rows are at most
# this wide and there are channels to fill a vector. Measured against the columns in the
# lanes, 3x3 layers, 1 thread: float32 on AVX-512 (whose transposes store whole cache lines,
# transpose.h) 1.7x faster at 14x14 (MobileNetV2's dw14), 3x at 7x7, 1.6x at 28x28, 1.1x at
# 32 to 56 wide, 1.4-3.3x at stride 2 to 56/28/7 wide; 0.94x at 112 (there the rows fill
# the lanes, and transposing costs more). float32 on AVX2 or SSE2: 1.2-2.1x up to 28 wide,
# 0.8-0.9x at 32 to 56. float64 on AVX-512: 1.1-1.6x up to 14, 0.9x at 28. With 2 threads
# the gains are ~10% smaller.
DW_CHANNELS_MAX_WIDTH = {"float32-avx512": 56, "float32": 28, "float64": 14}


def _dw_channels_max_width(isa, dtype):
    """The widest output rows depthwise_cl runs on by default (see above)."""
    if dtype.itemsize == 8:
        return DW_CHANNELS_MAX_WIDTH["float64"]
    if _isa.NAMES[isa] == "avx512":
        return DW_CHANNELS_MAX_WIDTH["float32-avx512"]
    return DW_CHANNELS_MAX_WIDTH["float32"]


def _plan_depthwise(params, dtype, isa, threads, algorithm):
    """The depthwise plan (depthwise_cl by the rule above, unless forced), or None (unless
    forced) when even a one-row band would exceed the workspace budget."""
    p = params
    forced = algorithm is not None
    th, tw = conv_taps(params)
    if not th or not tw:
        return Plan(algorithm or "depthwise", isa, dtype, 1, 0, bias_fill=True)
    shape = _shape(p)[:7]
    geometry = (np.array([off for _, off in th], np.intp),
                np.array([off for _, off in tw], np.intp), p.stride[0], p.stride[1])
    layout = ((tuple(k for k, _ in th), tuple(k for k, _ in tw)),)

    def workspace(rows, mode=_depthwise.MODE_ROWS):
        return _depthwise.workspace_elems(shape, *geometry, rows, mode, isa, dtype.itemsize)

    lanes = _igemm.tile(isa, dtype.itemsize)[1] // 2     # one vector
    if algorithm is None:
        narrow = p.W_out <= _dw_channels_max_width(isa, dtype) and p.C_in >= lanes
        algorithm = "depthwise_cl" if narrow else "depthwise"
    mode = _DW_MODES[algorithm]
    smallest = workspace(1, mode)[0]
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
    while rows > 1 and workspace(rows, mode)[0] * dtype.itemsize > WS_BUDGET // 4:
        rows = _cdiv(rows, 2)
    ws, items = workspace(rows, mode)
    n = _threads.threads_for(items, _work(p, True), threads)
    kernel = _depthwise.Depthwise(shape, *geometry, rows, mode, isa, dtype.itemsize)
    return Plan(algorithm, isa, dtype, n, ws, rows=rows, kernel=kernel, layout=layout)


def conv_taps(params):
    """conv2d's taps [(k, input offset)] along rows and along columns, without those that
    only ever read padding (huge dilations would otherwise make the band span the padding)."""
    p = params
    th = [(kh, kh * p.dilation[0] - p.padding[0]) for kh in range(p.KH)]
    tw = [(kw, kw * p.dilation[1] - p.padding[2]) for kw in range(p.KW)]
    return ([(k, off) for k, off in th if _reaches(off, p.stride[0], p.H_out, p.H)],
            [(k, off) for k, off in tw if _reaches(off, p.stride[1], p.W_out, p.W)])


@dataclass(frozen=True)
class IGemmTables:
    """The implicit GEMMs of one convolution, as _igemm.igemm takes them.

    problems: one row of _igemm.PROBLEM_FIELDS per GEMM; taps: their offh/offw/weight-tap
    tables;
    taps_of_problem: per GEMM, the weight's (kh list, kw list) it uses, in tap order;
    grid_of_problem: per GEMM, its pixel grid (Hp, Wp); wsub_of_problem: its band pitch;
    bias_fill: some outputs are reached by no tap (stride phases of a transposed
    convolution, or a conv2d whose taps all read padding only): the output is filled with
    the bias first, and the GEMMs overwrite their own outputs.
    """
    problems: np.ndarray
    taps: np.ndarray
    taps_of_problem: tuple
    grid_of_problem: tuple
    wsub_of_problem: tuple
    bias_fill: bool
    reads_input_in_place: bool


def _reaches(offset, stride, n_out, size):
    """Whether input index i*stride + offset lies in [0, size) for some i in [0, n_out)."""
    lo = max(0, _cdiv(-offset, stride))
    hi = min(n_out - 1, (size - 1 - offset) // stride)
    return lo <= hi


def _transposed_phases(size_out, size_in, stride, pad, dilation, kernel):
    """The output phases of a transposed convolution along one axis that some tap reaches:
    [(r, taps, n_out)] for outputs r, r + stride, ..., n_out of them, with taps [(k, input
    offset)] (input index = i + offset for the phase's i-th output), and whether every
    output is in one of them.

    Output o receives x[ih] * w[k] where ih*stride - pad + k*dilation == o: for o = r +
    stride*i that needs r == (k*dilation - pad) mod stride, then ih = i + (r + pad -
    k*dilation) / stride. So at most `kernel` phases have taps, whatever the stride: the
    others hold only the bias and are not listed (no work or memory per stride phase).
    """
    by_phase = {}
    for k in range(kernel):
        r = (k * dilation - pad) % stride
        if r < size_out:
            by_phase.setdefault(r, []).append((k, (r + pad - k * dilation) // stride))
    phases = []
    for r in sorted(by_phase):
        n_out = _cdiv(size_out - r, stride)
        taps = [(k, off) for k, off in by_phase[r] if _reaches(off, 1, n_out, size_in)]
        if taps:
            phases.append((r, taps, n_out))
    return phases, len(phases) == min(stride, size_out)


@functools.lru_cache(maxsize=512)
def igemm_tables(params):
    """The problem tables of params (see IGemmTables)."""
    p = params
    if not p.transposed:
        # conv2d: one GEMM over the whole output; input index = i*stride + k*dilation - pad.
        th, tw = conv_taps(params)
        rows = [(0, th, p.H_out)] if th else []
        cols = [(0, tw, p.W_out)] if tw else []
        steps, covered = (1, 1, p.stride[0], p.stride[1]), bool(th and tw)
    else:
        rows, all_rows = _transposed_phases(p.H_out, p.H, p.stride[0], p.padding[0],
                                            p.dilation[0], p.KH)
        cols, all_cols = _transposed_phases(p.W_out, p.W, p.stride[1], p.padding[2],
                                            p.dilation[1], p.KW)
        steps, covered = (p.stride[0], p.stride[1], 1, 1), all_rows and all_cols
    oys, oxs, sh, sw = steps
    problems, taps, used, grids, wsubs = [], [], [], [], []
    start = 0
    for rh, th, hp in rows:
        for rw, tw, wp in cols:
            offh = np.array([off for _, off in th], np.intp)
            offw = np.array([off for _, off in tw], np.intp)
            kh = np.array([k for k, _ in th], np.intp)
            kw = np.array([k for k, _ in tw], np.intp)
            # Weight taps: tap (kh, kw) of a channel pair lies at kh*KW + kw in the weight.
            wtap = (kh[:, None] * p.KW + kw[None, :]).ravel()
            problems.append([len(th), len(tw), sh, sw, hp, wp, rh, oys, rw, oxs, start])
            taps += [offh, offw, wtap]
            start += offh.size + offw.size + wtap.size
            used.append((tuple(kh.tolist()), tuple(kw.tolist())))
            grids.append((hp, wp))
            wsubs.append(wp + int(offw.max() - offw.min()) // sw)
    problems = np.array(problems, dtype=np.intp).reshape(-1, len(_igemm.PROBLEM_FIELDS))
    taps = np.concatenate(taps) if taps else np.empty(0, np.intp)
    problems.flags.writeable = taps.flags.writeable = False
    in_place_b = all(r[0] == r[1] == r[2] == r[3] == 1 and r[4] == p.H and r[5] == p.W
                     and taps[r[10]] == taps[r[10] + 1] == 0 for r in problems)
    return IGemmTables(problems, taps, tuple(used), tuple(grids), tuple(wsubs),
                       not covered, in_place_b)


def aligned_empty(n, dtype):
    """An uninitialised 1-D array of n elements starting on a cache line (for weights packed
    once: a vector load that straddles two lines costs about twice one that does not)."""
    dtype = np.dtype(dtype)
    raw = np.empty(n + CACHE_LINE // dtype.itemsize, dtype=dtype)
    skip = _runtime.line_offset(raw.view(np.uint8)) // dtype.itemsize
    return raw[skip:skip + n]


def _taps(w, kh, kw):
    """w[..., kh, kw] for the kept taps kh, kw (sorted lists of distinct rows / columns):
    w itself when they are all of them."""
    if len(kh) != w.shape[-2]:
        w = w[..., list(kh), :]
    if len(kw) != w.shape[-1]:
        w = w[..., list(kw)]
    return w


# A functional call packs its weights first, as a module does once, when each weight is
# used at least PACK_FIRST_USES times (once per output pixel of conv2d, per input pixel of a
# transposed convolution): the kernel packs them into a buffer of the call (~0.5 ns an
# element, ~2% of the call or less: an element's uses take ~20 ns per 1000) and then runs
# as the module's, bitwise alike. Else (ResNet-50's 7x7 to 28x28 layers) it reads the
# weights in place or packs each panel as it uses it, with no separate pass over them:
# packing them all first, in one thread, made those layers 1.3-2.5x slower. A transposed
# convolution with several stride phases packs first whatever its uses: each phase takes
# some taps of every channel pair, and packing them panel by panel read each weight's cache
# line once per phase (DCGAN's 4x4/s2, 14x14 input: 1.30x the module's time raw, 1.1x
# packed first, by all the call's threads). Packing every phase's panel together as each
# K block comes (each weight read once, no buffer of the whole weight), with a band and a C
# block per phase, ran DCGAN 1.16-1.24x the module's time against 1.01-1.13 packed first:
# four C blocks left L2 to the tiles. Packing first is bound by memory here (DCGAN's pack:
# 0.43-0.53 ns an element, a plain copy of the weight 0.34-0.36).
PACK_FIRST_USES = 1024


@functools.lru_cache(maxsize=512)
def pack_first(params):
    """Whether a functional call should pack its weights before running (see above)."""
    p = params
    weights = p.Mg * p.C_in * p.KH * p.KW
    if weights == 0:
        return False
    if p.transposed and len(igemm_tables(params).problems) > 1:
        return True
    # Each weight's multiply-adds: flops already count them for either direction.
    return p.flops // (2 * weights) >= PACK_FIRST_USES


def prepare_weight(plan, params, weight):
    """The weights as the plan's kernel reads them, prepared once (a module's weights):
    packed into the micro-kernel's panels (igemm), or one row of taps per channel."""
    if plan.kernel is None:
        return np.empty(0, dtype=plan.dtype)
    if plan.algorithm in _DW_MODES:
        return depthwise_weight(plan, params, weight)
    packed = aligned_empty(plan.kernel.packed_size, plan.dtype)
    plan.kernel.pack(weight.reshape(-1), packed)
    return packed


def depthwise_weight(plan, params, weight):
    (kh, kw), = plan.layout
    w = _taps(weight, kh, kw)
    return (w if w.flags.c_contiguous else np.ascontiguousarray(w)).reshape(params.C_out, -1)


def execute(plan, params, x, weight, bias, out, packed=True, pack_first=False):
    """Run the plan: x (N, C_in, H, W) and out (N, C_out, H_out, W_out), C-contiguous.
    weight: prepare_weight()'s result, or (packed false) the weight array itself, which the
    kernel reads in place or packs panel by panel as it goes (no pass over it first), or,
    with pack_first (a plan made with prepacked=True), packs whole into a buffer of the call
    first and then runs as with prepare_weight()'s result, bitwise alike."""
    if out.size == 0:
        return out
    if plan.bias_fill:
        out[...] = 0 if bias is None else bias[:, None, None]
    if plan.kernel is not None:
        if plan.algorithm in _DW_MODES:
            if not packed:
                weight = depthwise_weight(plan, params, weight)
            plan.kernel.run(x, weight, bias, out, plan.threads)
        else:
            target = out
            if plan.d2s:    # the GEMM's view: kh*kw rows (and biases) per output channel
                fy, fx = plan.d2s
                target = out.reshape(params.N, params.C_out * fy * fx, params.H, params.W)
                bias = None if bias is None else np.repeat(bias, fy * fx)
            plan.kernel.run(x, weight, packed, bias, target, plan.threads, pack_first)
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

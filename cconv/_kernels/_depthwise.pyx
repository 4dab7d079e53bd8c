# cython: language_level=3
"""Depthwise convolution: groups == in_channels, one input channel per group.

    out[n, c*m + j, oh, ow] = bias[c*m + j]
        + sum_{th, tw} w[c*m + j, th, tw] * x[n, c, oh*sh + offh[th], ow*sw + offw[tw]]

(x zero outside the image) for a channel multiplier m = C_out / C_in (m = 1 for MobileNet's
depthwise layers; C_in = 1 makes any single-input-channel layer, e.g. MNIST's first, a
depthwise one). Layouts: x, out NCHW (C-contiguous); w (C_out, KH*KW). The planner picks this
whenever each group has one input channel: a GEMM per group would have K = KH*KW and waste
its register tile.

Taps are given as offset tables (kh*dh - pt for each kept tap row, likewise for columns), so
the planner can drop taps that only ever read padding (cconv._lowering.DepthwiseLowering).
Two orientations (the planner picks one by the image's size, see _planner):

  columns in lanes (MODE_ROWS)     Each work item is a band of output rows of one (image,
                                   input channel). The band's input is copied once into the
                                   band buffer (_band.pxd: zero-padded, split into stride
                                   phases), where every tap of every output pixel is at a fixed
                                   offset. dwconv_ukernel then computes the outputs with the
                                   columns across the SIMD lanes, for each of the m outputs:
                                   row by row, written in place, when rows are wide; over the
                                   band's flat index (rows joined, padding columns computed and
                                   dropped) when rows are narrower than a few vectors.
  channels in lanes (MODE_CHANNELS) Each work item is a band of output rows of one image
                                   and a block of VL input channels (one vector). The band's
                                   input is transposed into the same band layout with VL lanes
                                   per element, every output row is computed by
                                   dwconv_cl_ukernel with no lane wasted whatever the width,
                                   and transposed back into the m output channels of each
                                   input channel. Best on small images (MobileNet's 14x14 and
                                   7x7), where rows are a vector or two wide.
Each output element is computed by one thread in a fixed order: bitwise identical results for
any thread count. A fused epilogue (_epilogue.pxd) is applied to each output row as it is
finished: after the micro-kernel writes it (columns in lanes) or copies it from the flat
band, and after the transpose back into the output channels (channels in lanes: the
residual is laid out as the output).
"""
from cython cimport floating
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._band cimport (Band, band_init, col_phase, fill_band, phase_columns, phase_room,
                     row_phase, row_slot, tap_offset)
from ._buffers cimport elements, release, take_call, workspace
from ._conv cimport Conv, conv_of
from ._driver cimport item_fn, line_up, run_items
from ._epilogue cimport cc_epilogue, ep_row, ep_take
from ._shares cimport SHARE_PAD
from ._sizes cimport add_sat, cdiv, mul_sat, round_line
from ._transpose cimport cc_copy_pixels, transpose, transpose_grid


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "dwconv_dispatch.h" nogil:
    ctypedef void (*cc_dwconv_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                      const float *, float, float *, Py_ssize_t) noexcept nogil
    ctypedef void (*cc_dwconv_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                      const double *, double, double *,
                                      Py_ssize_t) noexcept nogil
    ctypedef void (*cc_dwconv_cl_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                         Py_ssize_t, const float *, const float *, float *,
                                         Py_ssize_t) noexcept nogil
    ctypedef void (*cc_dwconv_cl_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                         Py_ssize_t, const double *, const double *, double *,
                                         Py_ssize_t) noexcept nogil
    cc_dwconv_f32_fn cc_dwconv_ukernel_f32(int isa)
    cc_dwconv_f64_fn cc_dwconv_ukernel_f64(int isa)
    cc_dwconv_cl_f32_fn cc_dwconv_cl_ukernel_f32(int isa)
    cc_dwconv_cl_f64_fn cc_dwconv_cl_ukernel_f64(int isa)
    Py_ssize_t cc_dwconv_lanes(int isa, Py_ssize_t itemsize)


cdef enum:
    ROWS = 0                         # output columns along the SIMD lanes
    CHANNELS = 1                     # channels along the SIMD lanes


MODE_ROWS = ROWS
MODE_CHANNELS = CHANNELS


cdef struct Layer:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out, m
    Py_ssize_t taps, sh, sw
    int mode, isa
    Py_ssize_t items
    # Rows mode
    Py_ssize_t rows, nbands
    bint flat                        # rows narrower than 4 vectors: compute the band flat
    Py_ssize_t ws_band, ws           # per-thread elements: band buffer, total
    Band band                        # (channel mode: one band of every output row)
    # Channel mode: VL lanes, blocks of VL channels, the input columns xlo..xhi its phases
    # read. Per thread: the input block, the output block, the weights, the bias, a row.
    Py_ssize_t lanes, nblocks, xlo, xhi, ws_in, ws_out


cdef inline void dw_run(int isa, Py_ssize_t taps, const floating *base, const Py_ssize_t *toff,
                        const floating *w, floating bias, floating *out,
                        Py_ssize_t n) noexcept nogil:
    """out[j] = bias + sum_t w[t]*base[toff[t] + j], j < n, by variant isa's micro-kernel
    (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_dwconv_ukernel_f32(isa)(taps, base, toff, w, bias, out, n)
    else:
        cc_dwconv_ukernel_f64(isa)(taps, base, toff, w, bias, out, n)


cdef inline void dw_cl_run(int isa, Py_ssize_t taps, const floating *base,
                           const Py_ssize_t *toff, Py_ssize_t step, const floating *w,
                           const floating *bias, floating *out, Py_ssize_t n) noexcept nogil:
    """Channel mode's row: out[j*VL + l] = bias[l] + sum_t w[t*VL + l]*base[j*step + toff[t] +
    l], j < n, by variant isa's micro-kernel."""
    if floating is float:
        cc_dwconv_cl_ukernel_f32(isa)(taps, base, toff, step, w, bias, out, n)
    else:
        cc_dwconv_cl_ukernel_f64(isa)(taps, base, toff, step, w, bias, out, n)


cdef void setup(Layer *L, const Py_ssize_t *offh, Py_ssize_t KH, const Py_ssize_t *offw,
                Py_ssize_t KW, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t rows,
                Py_ssize_t itemsize, Py_ssize_t lanes, Py_ssize_t *toff,
                Py_ssize_t *phases) noexcept:
    """The geometry of L.mode and, if toff is not NULL, the tap offsets (KH*KW entries).
    phases: KH + KW entries for the band's phase lists, kept while L is used."""
    cdef Py_ssize_t kh, kw
    L.taps = KH * KW
    L.sh, L.sw = sh, sw
    L.rows = rows
    L.nbands = cdiv(L.H_out, rows)
    if L.mode == CHANNELS:
        channels_setup(L, offh, KH, offw, KW, itemsize, lanes, toff, phases)
        return
    band_init(&L.band, L.H, L.W, sh, sw, offh, KH, offw, KW, L.W_out, rows,
              4 * lanes, phases)
    L.items = L.N * L.C_in * L.nbands
    L.flat = L.W_out < 4 * lanes
    # Sizes saturate (mul_sat): too large for the platform reads as too large.
    L.ws_band = round_line(L.band.chan_stride, itemsize)
    L.ws = add_sat(L.ws_band, round_line(add_sat(mul_sat(rows, L.band.Wsub), 4 * lanes)
                                         if L.flat else 0, itemsize))
    if toff != NULL:
        for kh in range(KH):
            for kw in range(KW):
                toff[kh * KW + kw] = tap_offset(&L.band, offh[kh], offw[kw])


# Pixels per transpose of channel mode's input (16 KiB of float32 lanes on AVX-512).
cdef Py_ssize_t GRID_PIXELS = 256


cdef void channels_setup(Layer *L, const Py_ssize_t *offh, Py_ssize_t KH,
                         const Py_ssize_t *offw, Py_ssize_t KW, Py_ssize_t itemsize,
                         Py_ssize_t lanes, Py_ssize_t *toff, Py_ssize_t *phases) noexcept:
    """Channel mode's geometry: the input block is a band (_band.pxd: zero-padded, split into
    stride phases) with VL lanes per element; its workspace and, if toff is not NULL, tap
    offsets."""
    cdef Py_ssize_t kh, kw
    cdef Band *bd = &L.band
    band_init(bd, L.H, L.W, L.sh, L.sw, offh, KH, offw, KW, L.W_out, L.rows, 0, phases)
    L.lanes = lanes
    L.nblocks = cdiv(L.C_in, lanes)
    L.items = L.N * L.nblocks * L.nbands
    # The input columns some phase reads (strided rows are transposed into a row buffer,
    # then each phase picked from it).
    L.xlo = max(0, bd.owmin)
    L.xhi = min(L.W, add_sat(add_sat(bd.owmin, col_phase(bd, bd.npw - 1)),
                             add_sat(mul_sat(bd.Wsub - 1, L.sw), 1)))
    # Sizes saturate (mul_sat): too large for the platform reads as too large.
    L.ws_in = round_line(mul_sat(bd.chan_stride, lanes), itemsize)
    L.ws_out = round_line(mul_sat(mul_sat(L.rows, L.W_out), lanes), itemsize)
    L.ws = add_sat(add_sat(L.ws_in, L.ws_out), mul_sat(L.taps + 1, lanes))
    if not (bd.gw == 1 and bd.npw == L.sw):
        # The row buffer (fill_block): up to GRID_PIXELS pixels of whole rows, or one row.
        L.ws = add_sat(L.ws, mul_sat(max(0, L.xhi - L.xlo) * max(1, GRID_PIXELS // L.W),
                                     lanes))
    L.ws = round_line(L.ws, itemsize)
    if toff != NULL:
        for kh in range(KH):
            for kw in range(KW):
                toff[kh * KW + kw] = tap_offset(bd, offh[kh], offw[kw]) * lanes


cdef void fill_block(const Layer *L, const floating *xc, Py_ssize_t valid, Py_ssize_t i0,
                     Py_ssize_t R, floating *blk, floating *rowbuf) noexcept nogil:
    """Channel mode's input block of grid rows [i0, i0 + R) and `valid` channels from xc
    (their planes), as fill_band lays out one channel, with VL lanes per element: the
    elements inside the image, and zeros for the rows outside it. Assumes: the columns
    outside the image and the slack are zero (run_all zeroes the workspace; no item writes
    them)."""
    cdef const Band *bd = &L.band
    cdef Py_ssize_t VL = L.lanes, HW = L.H * L.W, Wsub = bd.Wsub, width = L.xhi - L.xlo
    cdef Py_ssize_t nrow = R + bd.extra, pstride = bd.sub_size * VL
    cdef Py_ssize_t top = i0 * L.sh + bd.ohmin          # input row of sub-image row 0
    cdef Py_ssize_t ih, ih1, i, k, r, u, ph, pw, col0, lo, hi
    # Every column phase read (a 3x3 or 5x5 stride-2 layer): the transpose deals a row's
    # columns to them. Else each row goes through the row buffer, its phases picked from it.
    cdef bint direct = bd.gw == 1 and bd.npw == L.sw
    # Whole rows that follow one another in the block (stride 1 down) are transposed
    # flattened, a few at a time: no ragged edge per row, and the part of the block being
    # written stays in L1 (the transpose passes over it once per 4 lanes).
    cdef Py_ssize_t chunk = max(1, GRID_PIXELS // L.W) if width == L.W and L.sh == 1 else 1
    cdef floating *d
    for ph in range(bd.nph):
        for u in range(nrow):
            ih = top + u * L.sh + row_phase(bd, ph)
            if ih < 0 or ih >= L.H:
                for pw in range(bd.npw):
                    memset(blk + ((ph * bd.npw + pw) * bd.sub_size + u * Wsub) * VL, 0,
                           Wsub * VL * sizeof(floating))
    ih = max(0, top)
    ih1 = min(L.H, top + (nrow - 1) * L.sh + row_phase(bd, bd.nph - 1) + 1)
    while ih < ih1:
        r = ih - top
        ph, u = row_slot(bd, r % L.sh), r // L.sh
        if ph < 0 or u >= nrow:
            ih += 1     # a row no tap reads
            continue
        k = min(chunk, ih1 - ih)
        d = blk + (ph * bd.npw * bd.sub_size + u * Wsub) * VL
        if direct:
            transpose_grid(L.isa, valid, k * width, xc + ih * L.W + L.xlo, HW, d, VL, width,
                           Wsub * VL, L.sw, pstride, L.xlo - bd.owmin)
            ih += k
            continue
        transpose_grid(L.isa, valid, k * width, xc + ih * L.W + L.xlo, HW, rowbuf, VL, width,
                       width * VL, 1, 0, 0)
        for i in range(k):
            for pw in range(bd.npw):
                col0 = phase_columns(bd, pw, &lo, &hi)
                if hi > lo:
                    cc_copy_pixels(hi - lo, rowbuf + (i * width + lo * L.sw + col0 - L.xlo) * VL,
                                   L.sw * VL * sizeof(floating),
                                   d + (i * Wsub + pw * bd.sub_size + lo) * VL,
                                   VL * sizeof(floating))
        ih += k


cdef void run_block(const Layer *L, Py_ssize_t item, const floating *x, const floating *w,
                    const floating *bias, floating *out, const Py_ssize_t *toff,
                    floating *ws, const cc_epilogue *ep) noexcept nogil:
    """Channel mode's work item `item`: one band of output rows of one image and VL input
    channels, all m outputs each. Lanes past the last channel hold zeros or an earlier
    block's values: computed and dropped.
    Assumes: ws holds L.ws elements owned by this thread, zeroed before its first item."""
    cdef const Band *bd = &L.band
    cdef Py_ssize_t band = item % L.nbands
    cdef Py_ssize_t c0 = (item // L.nbands) % L.nblocks * L.lanes
    cdef Py_ssize_t n = item // (L.nbands * L.nblocks)
    cdef Py_ssize_t i0 = band * L.rows
    cdef Py_ssize_t R = min(L.rows, L.H_out - i0)
    cdef Py_ssize_t valid = min(L.lanes, L.C_in - c0)
    cdef Py_ssize_t VL = L.lanes, HWo = L.H_out * L.W_out
    cdef floating *blk = ws
    cdef floating *ob = ws + L.ws_in
    cdef floating *wt = ob + L.ws_out
    cdef floating *bv = wt + L.taps * VL
    cdef floating *oc
    cdef Py_ssize_t j, lane, oy, step
    fill_block(L, x + (n * L.C_in + c0) * L.H * L.W, valid, i0, R, blk, bv + VL)
    for j in range(L.m):
        # Output channel (c0 + lane)*m + j: its taps and bias across the lanes.
        transpose(L.isa, valid, L.taps, w + (c0 * L.m + j) * L.taps, L.m * L.taps, wt, VL)
        for lane in range(valid):
            bv[lane] = bias[(c0 + lane) * L.m + j] if bias != NULL else 0
        for oy in range(R):
            dw_cl_run(L.isa, L.taps, blk + oy * bd.Wsub * VL, toff, VL, wt, bv,
                      ob + oy * L.W_out * VL, L.W_out)
        # All lanes in one transpose, which keeps a line of each lane's output row open. When
        # those rows are a multiple of 4 KiB apart (32x32 float32) they all share one L1 set,
        # more lines than it holds: then four lanes at a time (decisions: depthwise_cl
        # output).
        oc = out + (n * L.C_out + c0 * L.m + j) * HWo + i0 * L.W_out
        step = 4 if (L.m * HWo * sizeof(floating)) % 4096 == 0 else VL
        lane = 0
        while lane < valid:
            transpose(L.isa, R * L.W_out, min(step, valid - lane), ob + lane, VL,
                      oc + lane * L.m * HWo, L.m * HWo)
            lane += step
        if ep != NULL:
            for lane in range(valid):
                ep_row(L.isa, ep, out, (c0 + lane) * L.m + j, oc + lane * L.m * HWo,
                       oc + lane * L.m * HWo, R * L.W_out)


cdef void run_band(const Layer *L, Py_ssize_t item, const floating *x, const floating *w,
                   const floating *bias, floating *out, const Py_ssize_t *toff,
                   floating *ws, const cc_epilogue *ep) noexcept nogil:
    """Work item `item`: one band of output rows of one (image, input channel), all m outputs.
    Assumes: ws holds L.ws elements owned by this thread."""
    cdef const Band *bd = &L.band
    cdef Py_ssize_t band = item % L.nbands
    cdef Py_ssize_t c = (item // L.nbands) % L.C_in
    cdef Py_ssize_t n = item // (L.nbands * L.C_in)
    cdef Py_ssize_t oh0 = band * L.rows
    cdef Py_ssize_t R = min(L.rows, L.H_out - oh0)
    cdef Py_ssize_t flat = (R - 1) * bd.Wsub + L.W_out
    cdef floating *tmp = ws + L.ws_band
    cdef floating *o
    cdef Py_ssize_t u, j, co, t, W_out = L.W_out, Wsub = bd.Wsub
    cdef floating bj
    fill_band(bd, x + (n * L.C_in + c) * L.H * L.W, 1, oh0, R, ws)
    for j in range(L.m):
        co = c * L.m + j
        bj = bias[co] if bias != NULL else 0
        o = out + ((n * L.C_out + co) * L.H_out + oh0) * L.W_out
        if L.flat:
            dw_run(L.isa, L.taps, ws, toff, w + co * L.taps, bj, tmp, flat)
            for u in range(R):
                if ep != NULL:
                    ep_row(L.isa, ep, out, co, tmp + u * Wsub, o + u * W_out, W_out)
                    continue
                for t in range(W_out):
                    o[u * W_out + t] = tmp[u * Wsub + t]
        else:
            for u in range(R):
                dw_run(L.isa, L.taps, ws + u * bd.Wsub, toff, w + co * L.taps, bj,
                       o + u * L.W_out, L.W_out)
                if ep != NULL:
                    ep_row(L.isa, ep, out, co, o + u * W_out, o + u * W_out, W_out)


cdef inline void run_item(const Layer *L, Py_ssize_t item, const floating *x,
                          const floating *w, const floating *bias, floating *out,
                          const Py_ssize_t *toff, floating *ws,
                          const cc_epilogue *ep) noexcept nogil:
    if L.mode == CHANNELS:
        run_block(L, item, x, w, bias, out, toff, ws, ep)
    else:
        run_band(L, item, x, w, bias, out, toff, ws, ep)


cdef struct Call:
    const Layer *L
    const Py_ssize_t *toff
    const void *x
    const void *w
    const void *bias
    void *out
    const cc_epilogue *ep            # the fused epilogue, or NULL


cdef void item_f32(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    run_item(c.L, item, <const float *> c.x, <const float *> c.w, <const float *> c.bias,
             <float *> c.out, c.toff, <float *> ws, c.ep)


cdef void item_f64(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    run_item(c.L, item, <const double *> c.x, <const double *> c.w, <const double *> c.bias,
             <double *> c.out, c.toff, <double *> ws, c.ep)


cdef void pack_taps(const Layer *L, const Py_ssize_t *wtap, Py_ssize_t KHW,
                    const floating *w, floating *dst) noexcept nogil:
    """dst[co*taps + t] = w[co*KHW + wtap[t]]: the kept taps of each output channel."""
    cdef Py_ssize_t co, t
    for co in range(L.C_out):
        for t in range(L.taps):
            dst[co * L.taps + t] = w[co * KHW + wtap[t]]


cdef class Depthwise:
    """One depthwise layer (cconv._lowering.DepthwiseLowering: its params, kept taps kh, kw
    and their offsets offh, offw) in one mode, with bands of `rows` output rows, prepared
    once (band geometry, tap offsets) and run many times. The kernel interface of
    cconv._engine: pack(), run(), packed_size, workspace_elems(_raw). Packed weights hold
    one row of kept taps per output channel."""
    cdef Layer L
    cdef Py_ssize_t *toff              # band offset of each kept tap
    cdef Py_ssize_t *wtap              # weight offset of each kept tap (kh*KW + kw)
    cdef Py_ssize_t *phases            # the band's phase lists, then the taps' offsets
    cdef Py_ssize_t itemsize, KHW
    cdef readonly Py_ssize_t workspace_elems, workspace_elems_raw, packed_size

    def __cinit__(self, lowering, int mode, int isa, Py_ssize_t itemsize, Py_ssize_t rows):
        cdef Conv g = conv_of(lowering.params)
        cdef Py_ssize_t KH = len(lowering.offh), KW = len(lowering.offw), th, tw
        self.L = layer_of(&g, mode, isa)
        cdef Py_ssize_t table = mul_sat(mul_sat(KH, KW), sizeof(Py_ssize_t))
        self.toff = NULL if table == PY_SSIZE_T_MAX else <Py_ssize_t *> malloc(table)
        self.wtap = NULL if table == PY_SSIZE_T_MAX else <Py_ssize_t *> malloc(table)
        if self.toff == NULL or self.wtap == NULL:
            raise MemoryError()
        self.phases = phase_room(2 * (KH + KW))
        setup_lowering(&self.L, lowering, rows, itemsize, self.phases, self.toff)
        for th in range(KH):
            for tw in range(KW):
                self.wtap[th * KW + tw] = lowering.kh[th] * g.KW + lowering.kw[tw]
        self.KHW = g.KH * g.KW
        self.workspace_elems = self.workspace_elems_raw = self.L.ws
        if self.workspace_elems > PY_SSIZE_T_MAX // 64:
            raise MemoryError("Depthwise: the workspace of this geometry exceeds what this "
                              "platform can address")
        self.packed_size = self.L.C_out * self.L.taps
        self.itemsize = itemsize

    def __dealloc__(self):
        free(self.toff)
        free(self.wtap)
        free(self.phases)

    def pack(self, const floating[::1] w, floating[::1] dst):
        """The raw weights w (C_out, 1, KH, KW), flattened, as run(..., packed=True) takes
        them: dst (C_out, kept taps)."""
        if w.shape[0] < self.L.C_out * self.KHW or dst.shape[0] < self.packed_size:
            raise ValueError(f"Depthwise.pack: weights of {w.shape[0]} elements into "
                             f"{dst.shape[0]}, expected {self.L.C_out * self.KHW} into "
                             f"{self.packed_size}")
        with nogil:
            pack_taps(&self.L, self.wtap, self.KHW, &w[0], &dst[0])

    def run(self, x, w, bint packed, bias, out, int nthreads, bint pack_first=False,
            epilogue=None):
        """Compute out from x (module docstring) on nthreads threads. x, out as prepared,
        C-contiguous numpy arrays of the prepared dtype; w: pack()'s result (packed true) or
        the raw weights (C_out, 1, KH, KW), read in place when every tap is kept, else packed
        first (whatever pack_first says: they are small); bias (C_out,) or None. The
        workspace (nthreads * workspace_elems) is allocated here. epilogue: None, or
        cconv._epilogue's arguments (_epilogue.pxd), fused into each output row."""
        cdef Layer *L = &self.L
        cdef Py_ssize_t total = L.items
        cdef Py_buffer v[7]        # x, w, out, bias, then the epilogue's arrays
        cdef int held = 0
        cdef void *ws = NULL
        cdef void *pk = NULL
        cdef Py_ssize_t *counters = NULL
        cdef Call call
        cdef cc_epilogue ep
        cdef item_fn item = item_f32 if self.itemsize == sizeof(float) else item_f64
        try:
            take_call(x, w, out, bias, v, &held, self.itemsize, L.N, L.C_in, L.H, L.W,
                      L.C_out, L.H_out, L.W_out, "Depthwise.run")
            if elements(&v[1]) != (self.packed_size if packed else L.C_out * self.KHW):
                raise ValueError("Depthwise.run: w does not match the prepared geometry")
            ep_take(epilogue, &ep, v, &held, self.itemsize, L.C_out, elements(&v[2]))
            if total == 0:
                return
            call.L, call.toff, call.x, call.out = L, self.toff, v[0].buf, v[2].buf
            call.w = v[1].buf
            call.bias = v[3].buf if bias is not None else NULL
            call.ep = &ep if epilogue is not None else NULL
            if not packed and L.taps != self.KHW:
                pk = workspace(1, self.packed_size, self.itemsize)
                call.w = line_up(pk)
                with nogil:
                    if self.itemsize == sizeof(float):
                        pack_taps(L, self.wtap, self.KHW, <const float *> v[1].buf,
                                  <float *> call.w)
                    else:
                        pack_taps(L, self.wtap, self.KHW, <const double *> v[1].buf,
                                  <double *> call.w)
            ws = workspace(nthreads, L.ws, self.itemsize)
            counters = <Py_ssize_t *> workspace(nthreads, SHARE_PAD, sizeof(Py_ssize_t))
            # Contiguous shares: a thread's input and output stay in its core's cache for the
            # next call, and only the shares' ends can share a cache line. Channel mode's
            # workspace is zeroed first (fill_block's columns outside the image).
            with nogil:
                run_items(item, &call, total, ws, L.ws * self.itemsize, L.mode == CHANNELS,
                          False, nthreads, counters)
        finally:
            free(ws)
            free(pk)
            free(counters)
            release(v, held)


cdef int setup_lowering(Layer *L, lowering, Py_ssize_t rows, Py_ssize_t itemsize,
                        Py_ssize_t *room, Py_ssize_t *toff) except -1:
    """setup() of L (mode and isa set) for a cconv._lowering.DepthwiseLowering. room:
    2*(KH + KW) entries, kept while L is used: the band's phase lists, then the taps'
    offsets offh and offw."""
    cdef Py_ssize_t i, KH = len(lowering.offh), KW = len(lowering.offw)
    cdef Py_ssize_t *offh = room + KH + KW
    for i in range(KH):
        offh[i] = lowering.offh[i]
    for i in range(KW):
        offh[KH + i] = lowering.offw[i]
    setup(L, offh, KH, offh + KH, KW, lowering.params.stride[0], lowering.params.stride[1],
          rows, itemsize, cc_dwconv_lanes(L.isa, itemsize), toff, room)
    return 0


cdef Layer layer_of(const Conv *g, int mode, int isa) noexcept:
    cdef Layer L
    L.N, L.C_in, L.H, L.W = g.N, g.C_in, g.H, g.W
    L.C_out, L.H_out, L.W_out = g.C_out, g.H_out, g.W_out
    L.m = g.C_out // g.C_in
    L.mode, L.isa = mode, isa
    return L


def lanes(int isa, Py_ssize_t itemsize):
    """Lanes of variant isa's vectors for this dtype size (channel mode's block of channels)."""
    return cc_dwconv_lanes(isa, itemsize)


def sizes(lowering, int mode, int isa, Py_ssize_t itemsize, Py_ssize_t rows):
    """(per-thread workspace, work items) of Depthwise with these arguments, in elements
    (PY_SSIZE_T_MAX where a size would overflow)."""
    cdef Conv g = conv_of(lowering.params)
    cdef Layer L = layer_of(&g, mode, isa)
    cdef Py_ssize_t *room = phase_room(2 * (len(lowering.offh) + len(lowering.offw)))
    try:
        setup_lowering(&L, lowering, rows, itemsize, room, NULL)
    finally:
        free(room)
    return L.ws, L.items

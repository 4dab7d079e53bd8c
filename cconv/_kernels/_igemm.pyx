# cython: language_level=3
"""Implicit GEMM convolution: dense and grouped conv2d, and the phases of conv_transpose2d.

Computes, for each problem (one for conv2d, one per stride phase of a transposed
convolution), each image n and group g:

    out[n, g*Mg + m, oy0 + i*oys, ox0 + j*oxs] =
        bias[g*Mg + m] + sum_{c, th, tw} A[g, m, (c, th, tw)] * x[n, g*Cg + c, i*sh + offh[th],
                                                                   j*sw + offw[tw]]

(x is zero outside the image: that is the padding), a GEMM of M = Mg output channels,
N = Hp*Wp output pixels and K = Cg*KH*KW. x and out are NCHW, C-contiguous.

The planner picks it for every convolution that is not depthwise (cconv._planner). The
im2col matrix is never formed. Its rows are read where they lie, through a table of
offsets, from the band buffer (_band.pxd: a band of input rows, zero-padded and split into
stride phases, one copy per input element instead of one per tap) or, for a 1x1 stride-1
unpadded layer, from the input itself. The micro-kernel gemm_ukernel_<MR>x<NR> takes both
operands as (base, offset table), so the same tile runs in two orientations:

  pixels in lanes (MODE_PIXELS)    C[MR channels x NR pixels]: A = packed weights (MR-wide
                                   panels), B = band pixels. Best when a band has many pixels.
                                   The output rows are written in place when the band has no
                                   padding columns, else through a C block.
  channels in lanes (MODE_CHANNELS) C[MR pixels x NR channels]: A = band pixels (each tile
                                   within one output row), B = packed weights (NR-wide
                                   panels). No lane is wasted on small images (7x7, 14x14);
                                   the C block is transposed into the output at the end.

Tiling (the BLIS loop order; every block size is fixed per layer, never per thread):

    for each work item (problem, n, g, channel block, band of R grid rows)     <- threads
      for each K block (a range of whole input channels: the plan's cpb)
        fill the band buffer for those channels (or read the input in place)
        for each tile of the band (NR pixels, or MR pixels of one row)
          for each panel of the channel block
            gemm_ukernel: C tile (+)= A panel * B panel        (registers)
      copy the C block to the output (adding the bias in channel mode)

Depth to space (fy, fx > 1, pixel mode): the GEMM's rows are (co, a, b) triples, fy*fx per
output channel, and its pixel (i, j) of row (co, a, b) lands at output (co, i*fy + a,
j*fx + b) (copy_d2s): a transposed convolution whose kernel is its stride, as one 1x1 GEMM.

Each output element belongs to one work item and is summed over K in a fixed order, so the
result is bitwise identical for every thread count (_driver.pxd). Parts: _gemm.pxd (records,
micro-kernel call, packed layout), _pack.pxd (weight packing), _scatter.pxd (output copies).
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cython cimport floating
from libc.stdlib cimport free
from libc.string cimport memcpy

from ._band cimport Band, fill_band, phase_room
from ._buffers cimport elements, release, take_call, workspace
from ._conv cimport Conv, conv_of
from ._driver cimport item_fn, line_up, run_items
from ._epilogue cimport cc_epilogue, ep_row, ep_take
from ._gemm cimport (CHANNELS, PIXELS, Call, Layer, Problem, alloc_tables, cc_gemm_nr,
                     cc_isa_mr_max, check_pack_dst, check_weights, free_tables, k_times,
                     layer_of, packed_offset, panel_start, read_problem, setup, ukernel)
from ._pack cimport pack_all, pack_f32, pack_f64, pack_panels, pack_units
from ._scatter cimport copy_block, copy_d2s
from ._shares cimport SHARE_PAD
from ._sizes cimport add_sat, cdiv, split_start


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


MODE_PIXELS = PIXELS
MODE_CHANNELS = CHANNELS

# Pixel mode takes the weight panels in the outer loop when a K block of the band's pixels
# is at most this big (it stays in L2 while each panel is read once); else the tiles.
cdef Py_ssize_t PANEL_OUTER_BYTES = 128 * 1024
# The fewest pixels of a row pixel mode applies the epilogue to at once (decisions: EP_SPAN).
cdef Py_ssize_t EP_SPAN = 256
# Tile outer: the panels run over a chunk of pixel tiles whose K block is at most this big,
# so that each output row is written in runs, not one tile per row at a time (decisions:
# CHUNK_BYTES).
cdef Py_ssize_t CHUNK_BYTES = 64 * 1024


cdef inline Py_ssize_t tile_start(Py_ssize_t jt, Py_ssize_t lead, Py_ssize_t nr) noexcept nogil:
    """First pixel of tile jt of a band: tiles of NR pixels, after a first one of `lead`."""
    if lead == 0:
        return jt * nr
    return 0 if jt == 0 else lead + (jt - 1) * nr


cdef inline void pixel_tile(const Layer *L, const Problem *pr, Py_ssize_t jt, Py_ssize_t pan,
                            Py_ssize_t row0, Py_ssize_t lead, Py_ssize_t flat,
                            Py_ssize_t kb, Py_ssize_t kcb, bint packed,
                            const floating *a_k, const floating *src, const floating *bbuf,
                            const floating *bias_g, floating *out_ng, Py_ssize_t i0,
                            floating *cbuf, Py_ssize_t cpitch,
                            bint prefetch) noexcept nogil:
    """Pixel mode: the tile of weight panel `pan` and pixel tile `jt` for one K block.
    prefetch: fetch the next tiles of an input read in place (the first panel of a tile)."""
    cdef Py_ssize_t HWo = L.H_out * L.W_out
    cdef Py_ssize_t j0 = tile_start(jt, lead, L.nr)
    cdef Py_ssize_t jn = min(tile_start(jt + 1, lead, L.nr), flat) - j0
    cdef Py_ssize_t r0 = panel_start(L, pan)
    cdef Py_ssize_t r = panel_start(L, pan + 1) - r0
    cdef const floating *bp = src + j0
    cdef const Py_ssize_t *boff = pr.koff
    cdef Py_ssize_t pf = 2 * L.nr if (prefetch and pr.in_place_b) else 0
    cdef floating *cp
    cdef Py_ssize_t ldc
    if pr.in_place_b and j0 + L.nr > flat:
        bp = bbuf            # the last tile, copied (pixels_item)
        boff = k_times(L, L.nr)
        pf = 0
    if pr.in_place_c:
        cp = out_ng + r0 * HWo + i0 * L.W_out + j0
        ldc = HWo
    else:
        cp = cbuf + (r0 - row0) * cpitch + j0
        ldc = cpitch
    if packed:
        ukernel(L.isa, r, kcb, a_k + (r0 - row0) * kcb, k_times(L, r), 1, bp, boff,
                cp, ldc, jn, (bias_g + r0) if bias_g != NULL else NULL, NULL, kb > 0, pf)
    else:
        ukernel(L.isa, r, kcb, a_k + (r0 - row0) * L.sm, pr.wkoff, L.sm, bp, boff, cp, ldc,
                jn, (bias_g + r0) if bias_g != NULL else NULL, NULL, kb > 0, pf)


cdef inline void pixel_epilogue(const Layer *L, const cc_epilogue *ep, const floating *out,
                                floating *out_ng, Py_ssize_t gi, Py_ssize_t i0,
                                Py_ssize_t r0, Py_ssize_t r1, Py_ssize_t j0,
                                Py_ssize_t j1) noexcept nogil:
    """The epilogue over pixels j0 .. j1 - 1 of the band at output row i0, channels r0 .. r1
    - 1 of group gi, in place (an output written in place by the tiles)."""
    cdef Py_ssize_t HWo = L.H_out * L.W_out
    cdef floating *p
    cdef Py_ssize_t r
    for r in range(r0, r1):
        p = out_ng + r * HWo + i0 * L.W_out + j0
        ep_row(L.isa, ep, out, gi * L.Mg + r, p, p, j1 - j0)


cdef void pixels_item(const Layer *L, const Problem *pr, Py_ssize_t n, Py_ssize_t gi,
                      Py_ssize_t mb, Py_ssize_t band, const floating *x, const floating *w,
                      bint packed, const floating *bias, floating *out, floating *ws,
                      const cc_epilogue *ep) noexcept nogil:
    """Pixel mode: C[channels x band pixels] for one work item. See the module docstring.
    w: the packed weights, or (packed false) the raw ones, read in place."""
    cdef const Band *bd = &pr.band
    cdef Py_ssize_t HW = L.H * L.W, HWo = L.H_out * L.W_out
    cdef Py_ssize_t i0 = band * L.rows
    cdef Py_ssize_t R = min(L.rows, pr.Hp - i0)
    cdef Py_ssize_t flat = (R - 1) * bd.Wsub + pr.Wp
    cdef Py_ssize_t pan0 = mb * L.ppb
    cdef Py_ssize_t pan1 = min(pan0 + L.ppb, L.npanels)
    cdef Py_ssize_t row0 = panel_start(L, pan0)
    cdef Py_ssize_t row1 = panel_start(L, pan1)
    cdef Py_ssize_t cpitch = L.rows * bd.Wsub
    cdef const floating *x_ng = x + (n * L.C_in + gi * L.Cg) * HW
    cdef const floating *bias_g = (bias + gi * L.Mg) if bias != NULL else NULL
    cdef floating *out_ng = out + (n * L.C_out + gi * L.Mg) * HWo
    cdef floating *bbuf = ws
    cdef floating *cbuf = ws + L.ws_band
    cdef const floating *src
    cdef const floating *a_k
    cdef Py_ssize_t kb, c0, c1, kcb, j0, pan, t, kk, lead, jt, ntiles, done, end, jc, jn, chunk
    cdef Py_ssize_t vbytes = L.nr // 2 * sizeof(floating)    # one vector
    cdef bint fuse
    for kb in range(pr.nkb):
        c0 = split_start(kb, L.Cg, pr.nkb)
        c1 = split_start(kb + 1, L.Cg, pr.nkb)
        kcb = (c1 - c0) * pr.T
        if pr.in_place_b:
            src = x_ng + c0 * HW + i0 * L.W
        else:
            fill_band(bd, x_ng + c0 * HW, c1 - c0, i0, R, bbuf)
            src = bbuf
        if packed:
            a_k = w + packed_offset(L, pr, gi, c0, c1, row0)
        else:
            a_k = w + gi * L.sg + row0 * L.sm + c0 * L.sc
        # An input read in place: start the full tiles on a vector boundary when every
        # channel row is aligned alike (a load across two cache lines costs about two).
        # Only the last tile may run past the band (it is copied): no shift for a band of
        # less than two tiles.
        lead = 0
        if pr.in_place_b and (HW * sizeof(floating)) % vbytes == 0:
            lead = ((-<Py_ssize_t> src) & (vbytes - 1)) // sizeof(floating)
            if flat < lead + L.nr:
                lead = 0
        ntiles = (lead > 0) + cdiv(flat - lead, L.nr)
        if pr.in_place_b and flat - L.nr < tile_start(ntiles - 1, lead, L.nr):
            # The input ends inside the last tile: copy it, zero-padded, to read NR lanes.
            j0 = tile_start(ntiles - 1, lead, L.nr)
            for kk in range(kcb):
                for t in range(L.nr):
                    bbuf[kk * L.nr + t] = src[kk * HW + j0 + t] if j0 + t < flat else 0
        # Weight panel outer when the band's B block is small (a 7x7 layer): each panel is
        # read once, the few tiles come from cache; else chunks of tiles outer, a chunk
        # serving every panel from cache (decisions: PANEL_OUTER_BYTES, CHUNK_BYTES).
        # The epilogue of an output written in place: on the last K block, over spans of
        # EP_SPAN pixels or more of every row the tiles just finished, while they are in
        # cache (one call per row and tile cost more than the epilogue itself).
        fuse = ep != NULL and pr.in_place_c and kb == pr.nkb - 1
        if kcb * flat * sizeof(floating) <= PANEL_OUTER_BYTES:
            for pan in range(pan0, pan1):
                for jt in range(ntiles):
                    pixel_tile(L, pr, jt, pan, row0, lead, flat, kb, kcb, packed, a_k,
                               src, bbuf, bias_g, out_ng, i0, cbuf, cpitch, False)
                if fuse:
                    pixel_epilogue(L, ep, out, out_ng, gi, i0, panel_start(L, pan),
                                   panel_start(L, pan + 1), 0, flat)
        else:
            done = 0
            chunk = max(1, CHUNK_BYTES // (kcb * L.nr * <Py_ssize_t> sizeof(floating)))
            jc = 0
            while jc < ntiles:
                jn = min(jc + chunk, ntiles)
                for pan in range(pan0, pan1):
                    for jt in range(jc, jn):
                        pixel_tile(L, pr, jt, pan, row0, lead, flat, kb, kcb, packed, a_k,
                                   src, bbuf, bias_g, out_ng, i0, cbuf, cpitch, pan == pan0)
                end = min(tile_start(jn, lead, L.nr), flat)
                if fuse and (end - done >= EP_SPAN or jn == ntiles):
                    pixel_epilogue(L, ep, out, out_ng, gi, i0, row0, row1, done, end)
                    done = end
                jc = jn
    # A band with padding columns goes through the C block, copied out here: writing the
    # output costs about as much from the tiles (decisions: Pixel mode writes a padded band
    # through a C block).
    if L.fy * L.fx > 1:
        copy_d2s(L, cbuf, cpitch, bd.Wsub, out_ng, row0, row1, i0, R, ep, out, gi * L.Mg)
    elif not pr.in_place_c:
        copy_block(L.isa, cbuf, cpitch, bd.Wsub, 1, out_ng + row0 * HWo, HWo, row1 - row0, R,
                   pr.Wp, (pr.oy0 + i0 * pr.oys) * L.W_out + pr.ox0, pr.oys * L.W_out, pr.oxs,
                   ep, out, gi * L.Mg + row0)


cdef void channels_item(const Layer *L, const Problem *pr, Py_ssize_t n, Py_ssize_t gi,
                        Py_ssize_t mb, Py_ssize_t band, const floating *x, const floating *w,
                        bint packed, const floating *bias, floating *out, floating *ws,
                        const cc_epilogue *ep) noexcept nogil:
    """Channel mode: C[band pixels x channels], tiles of MR pixels x NR channels. A tile's
    pixels are consecutive in the band: within one row, or anywhere when rows have no
    padding columns between them (then a 7x7 band is 49 pixels in tiles of 10, not 7s)."""
    cdef const Band *bd = &pr.band
    cdef Py_ssize_t HW = L.H * L.W, HWo = L.H_out * L.W_out
    cdef Py_ssize_t i0 = band * L.rows
    cdef Py_ssize_t R = min(L.rows, pr.Hp - i0)
    cdef Py_ssize_t pix = L.rows * pr.Wp
    cdef bint joined = bd.Wsub == pr.Wp
    cdef Py_ssize_t nseg = 1 if joined else R
    cdef Py_ssize_t seg = R * pr.Wp if joined else pr.Wp
    cdef Py_ssize_t npp = cdiv(seg, L.mr)
    cdef Py_ssize_t cp0 = mb * L.ppb
    cdef Py_ssize_t cp1 = min(cp0 + L.ppb, L.npanels)
    cdef const floating *x_ng = x + (n * L.C_in + gi * L.Cg) * HW
    cdef const floating *b_k
    cdef floating *pbuf = ws + L.ws
    cdef floating *out_ng = out + (n * L.C_out + gi * L.Mg) * HWo
    cdef floating *bbuf = ws
    cdef floating *cbuf = ws + L.ws_band
    cdef const floating *src
    cdef const floating *bias_c
    cdef floating bias_pad[64]          # NR <= 32 lanes
    cdef Py_ssize_t kb, c0, c1, kcb, u, pp, t0, r, cpn, co, lane, pf
    for kb in range(pr.nkb):
        c0 = split_start(kb, L.Cg, pr.nkb)
        c1 = split_start(kb + 1, L.Cg, pr.nkb)
        kcb = (c1 - c0) * pr.T
        if pr.in_place_b:
            src = x_ng + c0 * HW + i0 * L.W
        else:
            fill_band(bd, x_ng + c0 * HW, c1 - c0, i0, R, bbuf)
            src = bbuf
        # Weight panel outer: it stays in L1 while the band's pixel tiles stream past. Raw
        # weights: a panel is packed right before its tiles (decisions: Channel mode packs a
        # raw panel right before its tiles).
        for cpn in range(cp0, cp1):
            pf = 0
            if packed:
                b_k = w + packed_offset(L, pr, gi, c0, c1, cpn * L.nr)
                # The tiles fetch the next panel while this one is in L1: weights come
                # from memory in a network, and the first tile of a panel would otherwise
                # wait for each line (decisions: Channel mode prefetches the next panel).
                if cpn + 1 < cp1:
                    pf = L.nr * kcb
                elif kb + 1 < pr.nkb:
                    pf = packed_offset(L, pr, gi, c1, split_start(kb + 2, L.Cg, pr.nkb),
                                       cp0 * L.nr) - (b_k - w)
            else:
                pack_panels(L, pr, w, gi, cpn, cpn + 1, c0, c1, pbuf)
                b_k = pbuf
            # Summing starts from the bias, as in pixel mode (both round alike); a last,
            # partial panel's bias is read from a zero-padded copy.
            bias_c = NULL
            if bias != NULL and kb == 0:
                bias_c = bias + gi * L.Mg + cpn * L.nr
                if (cpn + 1) * L.nr > L.Mg:
                    for lane in range(L.nr):
                        bias_pad[lane] = bias_c[lane] if cpn * L.nr + lane < L.Mg else 0
                    bias_c = bias_pad
            for u in range(nseg):
                for pp in range(npp):
                    t0 = split_start(pp, seg, npp)
                    r = split_start(pp + 1, seg, npp) - t0
                    ukernel(L.isa, r, kcb, src + u * bd.Wsub + t0, pr.koff, 1, b_k,
                            k_times(L, L.nr),
                            cbuf + ((cpn - cp0) * pix + u * pr.Wp + t0) * L.nr, L.nr, L.nr,
                            NULL, bias_c, kb > 0, pf)
    for cpn in range(cp0, cp1):
        co = cpn * L.nr
        copy_block(L.isa, cbuf + (cpn - cp0) * pix * L.nr, 1, pr.Wp * L.nr, L.nr,
                   out_ng + co * HWo, HWo, min(L.nr, L.Mg - co), R, pr.Wp,
                   (pr.oy0 + i0 * pr.oys) * L.W_out + pr.ox0, pr.oys * L.W_out, pr.oxs,
                   ep, out, gi * L.Mg + co)


cdef void run_item(const Layer *L, const Problem *pr, Py_ssize_t item, const floating *x,
                   const floating *w, bint packed, const floating *bias, floating *out,
                   floating *ws, const cc_epilogue *ep) noexcept nogil:
    """Work item `item` of problem pr: decode (n, group, channel block, band) and run it."""
    cdef Py_ssize_t band = item % pr.nbands
    cdef Py_ssize_t mb = (item // pr.nbands) % L.nmb
    cdef Py_ssize_t gi = (item // (pr.nbands * L.nmb)) % L.groups
    cdef Py_ssize_t n = item // (pr.nbands * L.nmb * L.groups)
    if L.mode == PIXELS:
        pixels_item(L, pr, n, gi, mb, band, x, w, packed, bias, out, ws, ep)
    else:
        channels_item(L, pr, n, gi, mb, band, x, w, packed, bias, out, ws, ep)


cdef inline void run_global(const Layer *L, const Problem *probs, Py_ssize_t item,
                            const floating *x, const floating *w, bint packed,
                            const floating *bias, floating *out, floating *ws,
                            const cc_epilogue *ep) noexcept nogil:
    """Work item `item` of the whole call: find its problem, then run it."""
    cdef Py_ssize_t p = 0
    while item >= probs[p].items:
        item -= probs[p].items
        p += 1
    run_item(L, &probs[p], item, x, w, packed, bias, out, ws, ep)


cdef void item_f32(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    run_global(c.L, c.probs, item, <const float *> c.x, <const float *> c.w, c.packed,
               <const float *> c.bias, <float *> c.out, <float *> ws, c.ep)


cdef void item_f64(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    run_global(c.L, c.probs, item, <const double *> c.x, <const double *> c.w, c.packed,
               <const double *> c.bias, <double *> c.out, <double *> ws, c.ep)


def tile(int isa, Py_ssize_t itemsize):
    """(MR, NR): most rows and the columns of variant isa's micro-kernel for this dtype size."""
    return cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)


cdef class Problems:
    """The GEMM problems of one lowering (cconv._lowering.GemmLowering: its params, problems,
    d2s and weight_strides), read into C once: what IGemm runs, and what sizes() tells the
    planner for each tiling it weighs."""
    cdef Conv conv
    cdef Problem *probs              # taps, grid and output placement of each problem
    cdef Py_ssize_t *taps            # their offh, offw and wtap tables
    cdef readonly Py_ssize_t nprob
    cdef Py_ssize_t nphases          # KH + KW summed over the problems
    cdef Py_ssize_t fy, fx, sg, sm, sc

    def __cinit__(self, lowering):
        cdef Py_ssize_t p, n = 0, at = 0
        self.conv = conv_of(lowering.params)
        problems = lowering.problems
        self.nprob = len(problems)
        self.fy, self.fx = lowering.d2s
        self.sg, self.sm, self.sc = lowering.weight_strides
        for spec in problems:
            n += len(spec.offh) + len(spec.offw) + len(spec.offh) * len(spec.offw)
        self.probs = <Problem *> PyMem_Malloc(max(self.nprob, 1) * sizeof(Problem))
        self.taps = <Py_ssize_t *> PyMem_Malloc(max(n, 1) * sizeof(Py_ssize_t))
        if self.probs == NULL or self.taps == NULL:
            raise MemoryError()
        self.nphases = 0
        for p, spec in enumerate(problems):
            at = read_problem(spec, self.conv.KW, &self.probs[p], self.taps, at)
            self.nphases += self.probs[p].KH + self.probs[p].KW

    def __dealloc__(self):
        PyMem_Free(self.probs)
        PyMem_Free(self.taps)

    cdef Layer layer(self, int mode, int isa, Py_ssize_t itemsize, Py_ssize_t cpb,
                     Py_ssize_t rows, Py_ssize_t ppb) except *:
        return layer_of(&self.conv, mode, isa, itemsize, cpb, rows, ppb, self.fy, self.fx)

    cdef Problem *copy(self) except NULL:
        """The problems, for one tiling's setup(); PyMem_Free() them."""
        cdef Problem *probs = <Problem *> PyMem_Malloc(max(self.nprob, 1) * sizeof(Problem))
        if probs == NULL:
            raise MemoryError()
        memcpy(probs, self.probs, self.nprob * sizeof(Problem))
        return probs

    def sizes(self, int mode, int isa, Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t rows,
              Py_ssize_t ppb):
        """What IGemm with this tiling would need: (per-thread workspace with packed
        weights, the same with raw weights, work items), in elements (PY_SSIZE_T_MAX where a
        size would overflow), then per problem its band pitch (grid columns plus the taps'
        span) and whether it reads the input in place."""
        cdef Layer L = self.layer(mode, isa, itemsize, cpb, rows, ppb)
        cdef Py_ssize_t items, p
        cdef Py_ssize_t *phases = phase_room(self.nphases)
        cdef Problem *probs = NULL
        try:
            probs = self.copy()
            items = setup(&L, probs, self.nprob, itemsize, phases)
            return (L.ws, add_sat(L.ws, L.ws_pack), items,
                    tuple(probs[p].band.Wsub for p in range(self.nprob)),
                    tuple(bool(probs[p].in_place_b) for p in range(self.nprob)))
        finally:
            PyMem_Free(probs)
            free(phases)


cdef class IGemm:
    """One convolution's GEMM problems with one tiling (mode, input channels per K block
    cpb, grid rows per band, weight panels per channel block ppb), prepared once (geometry,
    offset tables) and run many times. The kernel interface of cconv._engine: pack(), run(),
    packed_size, workspace_elems(_raw)."""
    cdef Layer L
    cdef Problem *probs
    cdef Py_ssize_t *phases          # the bands' phase lists
    cdef Py_ssize_t nprob, total
    cdef Problems problems           # what probs point into
    cdef Py_ssize_t itemsize
    cdef readonly Py_ssize_t workspace_elems, workspace_elems_raw, packed_size

    def __cinit__(self, Problems problems, int mode, int isa, Py_ssize_t itemsize,
                  Py_ssize_t cpb, Py_ssize_t rows, Py_ssize_t ppb):
        self.L = problems.layer(mode, isa, itemsize, cpb, rows, ppb)
        self.L.sg, self.L.sm, self.L.sc = problems.sg, problems.sm, problems.sc
        self.problems = problems
        self.nprob = problems.nprob
        self.phases = phase_room(problems.nphases)
        self.probs = problems.copy()
        self.total = setup(&self.L, self.probs, self.nprob, itemsize, self.phases)
        self.itemsize = itemsize
        self.workspace_elems = self.L.ws
        self.workspace_elems_raw = add_sat(self.L.ws, self.L.ws_pack)
        if self.workspace_elems_raw > PY_SSIZE_T_MAX // 64:
            raise MemoryError("IGemm: the workspace of this geometry exceeds what this "
                              "platform can address")
        self.packed_size = self.L.packed_size
        if alloc_tables(&self.L, self.probs, self.nprob) != 0:
            raise MemoryError()

    def __dealloc__(self):
        if self.probs != NULL:
            free_tables(&self.L, self.probs, self.nprob)
            PyMem_Free(self.probs)
        free(self.phases)

    def pack(self, const floating[::1] w, floating[::1] dst):
        """Pack the raw weights w (C-contiguous, flattened) for run(..., packed=True): every
        problem, group, K block and panel, in the order run reads them."""
        check_weights("IGemm", self.L.isa, self.L.nr, sizeof(floating), w.shape[0], False,
                      self.L.packed_size, self.L.groups * self.L.sg)
        check_pack_dst(dst.shape[0], self.L.packed_size)
        with nogil:
            pack_all(&self.L, self.probs, self.nprob, &w[0], &dst[0])

    def run(self, x, w, bint packed, bias, out, int nthreads, bint pack_first=False,
            epilogue=None):
        """Compute out from x (module docstring) on nthreads threads.

        x (N, C_in, H, W) and out (N, C_out, H_out, W_out) of the convolution, C-contiguous
        numpy arrays of the prepared dtype; w: pack()'s result (packed true) or the raw
        weights, any shape, C-contiguous (packed false: each work item packs the panels it
        uses into its workspace, or, with pack_first, they are all packed first into a buffer
        of this call, and the call runs as with pack()'s result); bias (C_out,) or None. The
        workspace (nthreads * workspace_elems, or workspace_elems_raw for raw weights not
        packed first) is allocated here. Every element of out is written exactly once.
        epilogue: None, or cconv._epilogue's arguments (_epilogue.pxd), fused into the
        writing of each output element."""
        cdef Layer *L = &self.L
        cdef Py_ssize_t per_thread, units
        cdef Py_buffer v[7]        # x, w, out, bias, then the epilogue's arrays
        cdef int held = 0
        cdef void *ws = NULL
        cdef void *pk = NULL
        cdef Py_ssize_t *counters = NULL
        cdef Call call
        cdef cc_epilogue ep
        cdef item_fn item = item_f32 if self.itemsize == sizeof(float) else item_f64
        cdef item_fn pack = pack_f32 if self.itemsize == sizeof(float) else pack_f64
        if pack_first and packed:
            raise ValueError("IGemm.run: pack_first needs the raw weights (packed false)")
        if L.fy * L.fx > 1:
            # The GEMM's view of the output and bias: fy*fx rows per output channel.
            out = out.reshape(L.N, L.C_out, L.H_out, L.W_out)
            bias = None if bias is None else bias.repeat(L.fy * L.fx)
        try:
            take_call(x, w, out, bias, v, &held, self.itemsize, L.N, L.C_in, L.H, L.W,
                      L.C_out, L.H_out, L.W_out, "IGemm.run")
            check_weights("IGemm", L.isa, L.nr, self.itemsize, elements(&v[1]), packed,
                          L.packed_size, L.groups * L.sg)
            ep_take(epilogue, &ep, v, &held, self.itemsize, L.C_out // (L.fy * L.fx),
                    elements(&v[2]))
            if self.total == 0:
                return
            call.L, call.probs, call.nprob = L, self.probs, self.nprob
            call.x, call.w, call.packed, call.out = v[0].buf, v[1].buf, packed, v[2].buf
            call.bias = v[3].buf if bias is not None else NULL
            call.ep = &ep if epilogue is not None else NULL
            counters = <Py_ssize_t *> workspace(nthreads, SHARE_PAD, sizeof(Py_ssize_t))
            if pack_first:
                pk = workspace(1, L.packed_size, self.itemsize)
                call.pk = line_up(pk)
                units = pack_units(L, self.probs)
                # Packed by every thread, a unit at a time, before any item reads them.
                with nogil:
                    run_items(pack, &call, units, NULL, 0, False, False,
                              nthreads if units >= 2 else 1, counters)
                call.w, call.packed = call.pk, True
            per_thread = (self.workspace_elems if packed or pack_first
                          else self.workspace_elems_raw)
            ws = workspace(nthreads, per_thread, self.itemsize)
            # Shares dealt round-robin: a transposed convolution's items are in phase order,
            # and two threads on two phases would write alternate elements of the same lines.
            with nogil:
                run_items(item, &call, self.total, ws, per_thread * self.itemsize, False, True,
                          nthreads, counters)
        finally:
            free(ws)
            free(pk)
            free(counters)
            release(v, held)

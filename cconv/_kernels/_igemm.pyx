# cython: language_level=3
"""Implicit GEMM convolution: dense and grouped conv2d, and the phases of conv_transpose2d.

Computes, for each problem (one for conv2d, one per stride phase of a transposed
convolution), each image n and group g:

    out[n, g*Mg + m, oy0 + i*oys, ox0 + j*oxs] =
        bias[g*Mg + m] + sum_{c, th, tw} A[g, m, (c, th, tw)] * x[n, g*Cg + c, i*sh + offh[th],
                                                                   j*sw + offw[tw]]

(x is zero outside the image: that is the padding), a GEMM of M = Mg output channels,
N = Hp*Wp output pixels and K = Cg*KH*KW. x and out are NCHW, C-contiguous.

The im2col matrix is never formed. Its rows are read where they lie, through a table of
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
      for each K block (a range of whole input channels, ~KC_MAX rows of K)
        fill the band buffer for those channels (or read the input in place)
        for each tile of the band (NR pixels, or MR pixels of one row)
          for each panel of the channel block
            gemm_ukernel: C tile (+)= A panel * B panel        (registers)
      copy the C block to the output (adding the bias in channel mode)

Each output element belongs to one work item and is summed over K in a fixed order, so the
result is bitwise identical for every thread count.
"""
from cython.parallel cimport parallel, prange, threadid
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_RawFree, PyMem_RawMalloc
from cython cimport floating

from ._band cimport Band, band_init, cdiv, fill_band, split_start, tap_offset


cdef extern from "gemm_dispatch.h" nogil:
    ctypedef void (*cc_gemm_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                    const float *, const Py_ssize_t *, float *, Py_ssize_t,
                                    Py_ssize_t, const float *, int) noexcept nogil
    ctypedef void (*cc_gemm_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                    const double *, const Py_ssize_t *, double *, Py_ssize_t,
                                    Py_ssize_t, const double *, int) noexcept nogil
    cc_gemm_f32_fn cc_gemm_ukernel_f32(int isa, Py_ssize_t mr)
    cc_gemm_f64_fn cc_gemm_ukernel_f64(int isa, Py_ssize_t mr)
    Py_ssize_t cc_gemm_nr(int isa, Py_ssize_t itemsize)
    int cc_isa_mr_max(int isa)


# Columns of the `problems` table given to igemm(): one row per problem.
PROBLEM_FIELDS = ("KH", "KW", "sh", "sw", "Hp", "Wp", "oy0", "oys", "ox0", "oxs",
                  "a_offset", "taps_offset")


cdef enum:
    PIXELS = 0                       # pixels along the SIMD lanes
    CHANNELS = 1                     # output channels along the SIMD lanes


MODE_PIXELS = PIXELS
MODE_CHANNELS = CHANNELS


cdef struct Problem:
    Py_ssize_t KH, KW, sh, sw        # taps and input strides
    const Py_ssize_t *offh           # input row of tap row th, minus i*sh (KH entries)
    const Py_ssize_t *offw           # input column of tap column tw, minus j*sw (KW entries)
    Py_ssize_t Hp, Wp                # GEMM pixel grid (i, j)
    Py_ssize_t oy0, oys, ox0, oxs    # where pixel (i, j) lands in the output
    Py_ssize_t a_offset              # this problem's packed weights in wpack
    Py_ssize_t T, K, nkb, nbands     # taps, reduction length, K blocks, bands
    Py_ssize_t items                 # work items: N * groups * nmb * nbands
    bint in_place_b                  # 1x1, stride 1, no offset: the input is the band
    bint in_place_c                  # pixel mode, no padding columns: output written in place
    Band band
    Py_ssize_t *koff                 # offset of K row (c, th, tw) of a K block in the band


cdef struct Layer:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out
    Py_ssize_t groups, Cg, Mg
    int mode, isa
    Py_ssize_t mr, nr                # the micro-kernel's most rows and its columns
    Py_ssize_t cpb                   # input channels per K block (at most)
    Py_ssize_t rows                  # grid rows per band (at most)
    Py_ssize_t npanels, ppb, nmb     # channel panels per group, per channel block; blocks
    Py_ssize_t kmax                  # most K rows of a block over all problems
    Py_ssize_t ws_band, ws_c, ws     # per-thread buffer: band, C block, total (elements)
    Py_ssize_t *ktab                 # ktab[r * kmax + k] = k * r, r <= max(mr, nr)


cdef inline void ukernel(int isa, Py_ssize_t mr, Py_ssize_t kc, const floating *a,
                         const Py_ssize_t *aoff, const floating *b, const Py_ssize_t *boff,
                         floating *c, Py_ssize_t ldc, Py_ssize_t nr, const floating *bias,
                         int accumulate) noexcept nogil:
    """The mr x NR tile of variant isa (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_gemm_ukernel_f32(isa, mr)(kc, a, aoff, b, boff, c, ldc, nr, bias, accumulate)
    else:
        cc_gemm_ukernel_f64(isa, mr)(kc, a, aoff, b, boff, c, ldc, nr, bias, accumulate)


cdef Py_ssize_t setup(Layer *L, Problem *probs, Py_ssize_t nprob,
                      const Py_ssize_t[:, ::1] problems, const Py_ssize_t[::1] taps,
                      Py_ssize_t itemsize) noexcept nogil:
    """Derive every problem's geometry and the per-thread workspace; return the work items.
    koff tables are left NULL (alloc_tables fills them)."""
    cdef Py_ssize_t p, total = 0, band_max = 0, c_max = 0, pix
    cdef Problem *pr
    L.Cg = L.C_in // L.groups
    L.Mg = L.C_out // L.groups
    L.npanels = cdiv(L.Mg, L.mr) if L.mode == PIXELS else cdiv(L.Mg, L.nr)
    L.nmb = cdiv(L.npanels, L.ppb)
    L.kmax = 1
    for p in range(nprob):
        pr = &probs[p]
        pr.KH, pr.KW, pr.sh, pr.sw = problems[p, 0], problems[p, 1], problems[p, 2], problems[p, 3]
        pr.Hp, pr.Wp = problems[p, 4], problems[p, 5]
        pr.oy0, pr.oys = problems[p, 6], problems[p, 7]
        pr.ox0, pr.oxs = problems[p, 8], problems[p, 9]
        pr.a_offset = problems[p, 10]
        pr.offh = &taps[problems[p, 11]]
        pr.offw = &taps[problems[p, 11] + pr.KH]
        pr.koff = NULL
        pr.T = pr.KH * pr.KW
        pr.K = L.Cg * pr.T
        pr.nkb = cdiv(L.Cg, L.cpb)
        pr.nbands = cdiv(pr.Hp, L.rows)
        pr.items = L.N * L.groups * L.nmb * pr.nbands
        pr.in_place_b = (pr.T == 1 and pr.sh == 1 and pr.sw == 1 and pr.offh[0] == 0
                         and pr.offw[0] == 0 and pr.Hp == L.H and pr.Wp == L.W)
        band_init(&pr.band, L.H, L.W, pr.sh, pr.sw, pr.offh, pr.KH, pr.offw, pr.KW, pr.Wp,
                  L.rows, L.nr)
        if pr.in_place_b:
            pr.band.Wsub = L.W
        pr.in_place_c = (L.mode == PIXELS and pr.band.Wsub == L.W_out
                         and pr.oy0 == 0 and pr.ox0 == 0 and pr.oys == 1 and pr.oxs == 1
                         and pr.Wp == L.W_out)
        L.kmax = max(L.kmax, min(L.cpb, L.Cg) * pr.T)
        if pr.in_place_b:
            # Only the last, partial tile of a 1x1 band is copied (pixel mode).
            band_max = max(band_max, min(L.cpb, L.Cg) * L.nr if L.mode == PIXELS else 0)
        else:
            band_max = max(band_max, min(L.cpb, L.Cg) * pr.band.chan_stride)
        if L.mode == PIXELS:
            if not pr.in_place_c:
                c_max = max(c_max, min(L.ppb * L.mr, L.Mg) * L.rows * pr.band.Wsub)
        else:
            pix = L.rows * pr.Wp
            c_max = max(c_max, min(L.ppb, L.npanels) * L.nr * pix)
        total += pr.items
    L.ws_band = band_max
    L.ws_c = c_max
    L.ws = band_max + c_max
    return total


cdef int alloc_tables(Layer *L, Problem *probs, Py_ssize_t nprob) noexcept nogil:
    """Offset tables: each problem's koff, and ktab. Returns -1 when out of memory."""
    cdef Py_ssize_t p, c, th, tw, k, r, rmax = max(L.mr, L.nr)
    cdef Problem *pr
    L.ktab = <Py_ssize_t *> PyMem_RawMalloc((rmax + 1) * L.kmax * sizeof(Py_ssize_t))
    if L.ktab == NULL:
        return -1
    for r in range(rmax + 1):
        for k in range(L.kmax):
            L.ktab[r * L.kmax + k] = k * r
    for p in range(nprob):
        pr = &probs[p]
        pr.koff = <Py_ssize_t *> PyMem_RawMalloc(L.kmax * sizeof(Py_ssize_t))
        if pr.koff == NULL:
            return -1
        k = 0
        for c in range(min(L.cpb, L.Cg)):
            for th in range(pr.KH):
                for tw in range(pr.KW):
                    if pr.in_place_b:
                        pr.koff[k] = c * L.H * L.W
                    else:
                        pr.koff[k] = c * pr.band.chan_stride + tap_offset(
                            &pr.band, pr.offh[th], pr.offw[tw])
                    k += 1
    return 0


cdef void free_tables(Layer *L, Problem *probs, Py_ssize_t nprob) noexcept nogil:
    cdef Py_ssize_t p
    PyMem_RawFree(L.ktab)
    for p in range(nprob):
        PyMem_RawFree(probs[p].koff)


cdef void copy_block(const floating *c, Py_ssize_t cs_m, Py_ssize_t cs_u, Py_ssize_t cs_t,
                     floating *o, Py_ssize_t os_m, Py_ssize_t M, Py_ssize_t R, Py_ssize_t Wp,
                     Py_ssize_t o0, Py_ssize_t os_u, Py_ssize_t os_t,
                     const floating *bias) noexcept nogil:
    """o[m*os_m + o0 + u*os_u + t*os_t] = c[m*cs_m + u*cs_u + t*cs_t] (+ bias[m]) for m < M,
    u < R, t < Wp: a C block to its place in the output (rows of channels, or transposed)."""
    cdef Py_ssize_t m, u, t
    cdef floating bv
    cdef floating *om
    cdef const floating *cm
    for m in range(M):
        bv = bias[m] if bias != NULL else 0
        for u in range(R):
            om = o + m * os_m + o0 + u * os_u
            cm = c + m * cs_m + u * cs_u
            if os_t == 1 and cs_t == 1:
                for t in range(Wp):
                    om[t] = cm[t] + bv
            else:
                for t in range(Wp):
                    om[t * os_t] = cm[t * cs_t] + bv


cdef void pixels_item(const Layer *L, const Problem *pr, Py_ssize_t n, Py_ssize_t gi,
                      Py_ssize_t mb, Py_ssize_t band, const floating *x,
                      const floating *wpack, const floating *bias, floating *out,
                      floating *ws) noexcept nogil:
    """Pixel mode: C[channels x band pixels] for one work item. See the module docstring."""
    cdef const Band *bd = &pr.band
    cdef Py_ssize_t HW = L.H * L.W, HWo = L.H_out * L.W_out
    cdef Py_ssize_t i0 = band * L.rows
    cdef Py_ssize_t R = min(L.rows, pr.Hp - i0)
    cdef Py_ssize_t flat = (R - 1) * bd.Wsub + pr.Wp
    cdef Py_ssize_t ntiles = cdiv(flat, L.nr)
    cdef Py_ssize_t pan0 = mb * L.ppb
    cdef Py_ssize_t pan1 = min(pan0 + L.ppb, L.npanels)
    cdef Py_ssize_t row0 = split_start(pan0, L.Mg, L.npanels)
    cdef Py_ssize_t row1 = split_start(pan1, L.Mg, L.npanels)
    cdef Py_ssize_t cpitch = L.rows * bd.Wsub
    cdef const floating *x_ng = x + (n * L.C_in + gi * L.Cg) * HW
    cdef const floating *a_g = wpack + pr.a_offset + gi * L.Mg * pr.K
    cdef const floating *bias_g = (bias + gi * L.Mg) if bias != NULL else NULL
    cdef floating *out_ng = out + (n * L.C_out + gi * L.Mg) * HWo
    cdef floating *bbuf = ws
    cdef floating *cbuf = ws + L.ws_band
    cdef const floating *src
    cdef const floating *bp
    cdef const Py_ssize_t *boff
    cdef floating *cp
    cdef Py_ssize_t kb, c0, c1, k0, kcb, jt, j0, jn, pan, r0, r, ldc, t, kk
    for kb in range(pr.nkb):
        c0 = split_start(kb, L.Cg, pr.nkb)
        c1 = split_start(kb + 1, L.Cg, pr.nkb)
        k0 = c0 * pr.T
        kcb = (c1 - c0) * pr.T
        if pr.in_place_b:
            src = x_ng + c0 * HW + i0 * L.W
        else:
            fill_band(bd, x_ng + c0 * HW, c1 - c0, i0, R, bbuf)
            src = bbuf
        for jt in range(ntiles):
            j0 = jt * L.nr
            jn = min(L.nr, flat - j0)
            bp = src + j0
            boff = pr.koff
            if pr.in_place_b and jn < L.nr:
                # The input ends here: copy the partial tile, zero-padded, to read NR lanes.
                for kk in range(kcb):
                    for t in range(L.nr):
                        bbuf[kk * L.nr + t] = src[kk * HW + j0 + t] if t < jn else 0
                bp = bbuf
                boff = L.ktab + L.nr * L.kmax
            for pan in range(pan0, pan1):
                r0 = split_start(pan, L.Mg, L.npanels)
                r = split_start(pan + 1, L.Mg, L.npanels) - r0
                if pr.in_place_c:
                    cp = out_ng + r0 * HWo + i0 * L.W_out + j0
                    ldc = HWo
                else:
                    cp = cbuf + (r0 - row0) * cpitch + j0
                    ldc = cpitch
                ukernel(L.isa, r, kcb, a_g + k0 * L.Mg + r0 * kcb, L.ktab + r * L.kmax, bp,
                        boff, cp, ldc, jn, (bias_g + r0) if bias_g != NULL else NULL, kb > 0)
    if not pr.in_place_c:
        copy_block(cbuf, cpitch, bd.Wsub, 1, out_ng + row0 * HWo, HWo, row1 - row0, R, pr.Wp,
                   (pr.oy0 + i0 * pr.oys) * L.W_out + pr.ox0, pr.oys * L.W_out, pr.oxs, NULL)


cdef void channels_item(const Layer *L, const Problem *pr, Py_ssize_t n, Py_ssize_t gi,
                        Py_ssize_t mb, Py_ssize_t band, const floating *x,
                        const floating *wpack, const floating *bias, floating *out,
                        floating *ws) noexcept nogil:
    """Channel mode: C[band pixels x channels], tiles of MR pixels of one row x NR channels."""
    cdef const Band *bd = &pr.band
    cdef Py_ssize_t HW = L.H * L.W, HWo = L.H_out * L.W_out
    cdef Py_ssize_t i0 = band * L.rows
    cdef Py_ssize_t R = min(L.rows, pr.Hp - i0)
    cdef Py_ssize_t pix = L.rows * pr.Wp
    cdef Py_ssize_t npp = cdiv(pr.Wp, L.mr)
    cdef Py_ssize_t cp0 = mb * L.ppb
    cdef Py_ssize_t cp1 = min(cp0 + L.ppb, L.npanels)
    cdef Py_ssize_t ncp = L.npanels
    cdef const floating *x_ng = x + (n * L.C_in + gi * L.Cg) * HW
    cdef const floating *b_g = wpack + pr.a_offset + gi * ncp * L.nr * pr.K
    cdef floating *out_ng = out + (n * L.C_out + gi * L.Mg) * HWo
    cdef floating *bbuf = ws
    cdef floating *cbuf = ws + L.ws_band
    cdef const floating *src
    cdef Py_ssize_t kb, c0, c1, k0, kcb, u, pp, t0, r, cpn, co
    for kb in range(pr.nkb):
        c0 = split_start(kb, L.Cg, pr.nkb)
        c1 = split_start(kb + 1, L.Cg, pr.nkb)
        k0 = c0 * pr.T
        kcb = (c1 - c0) * pr.T
        if pr.in_place_b:
            src = x_ng + c0 * HW + i0 * L.W
        else:
            fill_band(bd, x_ng + c0 * HW, c1 - c0, i0, R, bbuf)
            src = bbuf
        for u in range(R):
            for pp in range(npp):
                t0 = split_start(pp, pr.Wp, npp)
                r = split_start(pp + 1, pr.Wp, npp) - t0
                for cpn in range(cp0, cp1):
                    ukernel(L.isa, r, kcb, src + u * bd.Wsub + t0, pr.koff,
                            b_g + k0 * ncp * L.nr + cpn * kcb * L.nr, L.ktab + L.nr * L.kmax,
                            cbuf + ((cpn - cp0) * pix + u * pr.Wp + t0) * L.nr, L.nr, L.nr,
                            NULL, kb > 0)
    for cpn in range(cp0, cp1):
        co = cpn * L.nr
        copy_block(cbuf + (cpn - cp0) * pix * L.nr, 1, pr.Wp * L.nr, L.nr, out_ng + co * HWo,
                   HWo, min(L.nr, L.Mg - co), R, pr.Wp,
                   (pr.oy0 + i0 * pr.oys) * L.W_out + pr.ox0, pr.oys * L.W_out, pr.oxs,
                   (bias + gi * L.Mg + co) if bias != NULL else NULL)


cdef void run_item(const Layer *L, const Problem *pr, Py_ssize_t item, const floating *x,
                   const floating *wpack, const floating *bias, floating *out,
                   floating *ws) noexcept nogil:
    """Work item `item` of problem pr: decode (n, group, channel block, band) and run it."""
    cdef Py_ssize_t band = item % pr.nbands
    cdef Py_ssize_t mb = (item // pr.nbands) % L.nmb
    cdef Py_ssize_t gi = (item // (pr.nbands * L.nmb)) % L.groups
    cdef Py_ssize_t n = item // (pr.nbands * L.nmb * L.groups)
    if L.mode == PIXELS:
        pixels_item(L, pr, n, gi, mb, band, x, wpack, bias, out, ws)
    else:
        channels_item(L, pr, n, gi, mb, band, x, wpack, bias, out, ws)


cdef Layer layer_of(Py_ssize_t N, Py_ssize_t C_in, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t C_out, Py_ssize_t H_out, Py_ssize_t W_out, Py_ssize_t groups,
                    int mode, int isa, Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t rows,
                    Py_ssize_t ppb):
    cdef Layer L
    L.N, L.C_in, L.H, L.W = N, C_in, H, W
    L.C_out, L.H_out, L.W_out = C_out, H_out, W_out
    L.groups, L.mode, L.isa = groups, mode, isa
    L.mr, L.nr = cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)
    L.cpb, L.rows, L.ppb = cpb, rows, ppb
    L.ktab = NULL
    return L


def tile(int isa, Py_ssize_t itemsize):
    """(MR, NR): most rows and the columns of variant isa's micro-kernel for this dtype size."""
    return cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)


def workspace_elems(Py_ssize_t[::1] shape, const Py_ssize_t[:, ::1] problems,
                    const Py_ssize_t[::1] taps, int mode, int isa, Py_ssize_t itemsize,
                    Py_ssize_t cpb, Py_ssize_t rows, Py_ssize_t ppb):
    """Per-thread workspace (elements) and work items of igemm() with these arguments.
    shape: N, C_in, H, W, C_out, H_out, W_out, groups."""
    cdef Layer L = layer_of(shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
                            shape[6], shape[7], mode, isa, itemsize, cpb, rows, ppb)
    cdef Py_ssize_t nprob = problems.shape[0], items
    cdef Problem *probs = <Problem *> PyMem_Malloc(max(nprob, 1) * sizeof(Problem))
    if probs == NULL:
        raise MemoryError()
    try:
        items = setup(&L, probs, nprob, problems, taps, itemsize)
        return L.ws, items
    finally:
        PyMem_Free(probs)


def pack_weights(const floating[:, :, ::1] a, floating[::1] dst, Py_ssize_t taps,
                 Py_ssize_t cpb, int mode, Py_ssize_t width):
    """Pack A[g, m, k] (groups x Mg x K, K = channels * taps) into the layout the kernels read.

    K blocks: the input channels split evenly into cdiv(channels, cpb) blocks.
    Pixel mode (width = MR): per group, K block and MR panel (Mg split evenly into panels of
    at most MR rows), k-major: dst[g*Mg*K + k0*Mg + r0*kcb + kk*r + i] = A[g, r0 + i, k0 + kk].
    Channel mode (width = NR): per group, K block and NR-wide panel of channels (zero past
    Mg): dst[g*P*K + k0*P + p*kcb*NR + kk*NR + lane] = A[g, p*NR + lane, k0 + kk], P =
    cdiv(Mg, NR)*NR. Returns the number of elements written (dst may be larger).
    """
    cdef Py_ssize_t G = a.shape[0], Mg = a.shape[1], K = a.shape[2]
    cdef Py_ssize_t channels = K // taps
    cdef Py_ssize_t nkb = cdiv(channels, cpb)
    cdef Py_ssize_t npanels = cdiv(Mg, width)
    cdef Py_ssize_t rows_p = Mg if mode == PIXELS else npanels * width
    cdef Py_ssize_t gi, kb, k0, kcb, pan, r0, r, kk, i, m
    cdef floating *d
    if dst.shape[0] < G * rows_p * K:
        raise ValueError(f"dst has {dst.shape[0]} elements, expected {G * rows_p * K}")
    with nogil:
        for gi in range(G):
            for kb in range(nkb):
                k0 = split_start(kb, channels, nkb) * taps
                kcb = split_start(kb + 1, channels, nkb) * taps - k0
                for pan in range(npanels):
                    if mode == PIXELS:
                        r0 = split_start(pan, Mg, npanels)
                        r = split_start(pan + 1, Mg, npanels) - r0
                    else:
                        r0 = pan * width
                        r = width
                    d = &dst[gi * rows_p * K + k0 * rows_p + r0 * kcb]
                    for kk in range(kcb):
                        for i in range(r):
                            m = r0 + i
                            d[kk * r + i] = a[gi, m, k0 + kk] if m < Mg else 0
    return G * rows_p * K


def igemm(const floating[:, :, :, ::1] x, const floating[::1] wpack, const floating[::1] bias,
          floating[:, :, :, ::1] out, Py_ssize_t groups, const Py_ssize_t[:, ::1] problems,
          const Py_ssize_t[::1] taps, int mode, int isa, Py_ssize_t cpb, Py_ssize_t rows,
          Py_ssize_t ppb, floating[::1] ws, int nthreads):
    """Run the problems of one convolution (module docstring) on nthreads threads.

    x (N, C_in, H, W); wpack: pack_weights of every problem at its a_offset; bias (C_out,)
    or None; out (N, C_out, H_out, W_out), every element written exactly once; problems: one
    row of PROBLEM_FIELDS each, taps holding offh then offw at taps_offset; mode:
    MODE_PIXELS or MODE_CHANNELS; cpb: input channels per K block; rows: grid rows per band;
    ppb: panels per channel block; ws: nthreads * workspace_elems(...)[0] elements.
    Assumes (the planner's tables): the problems cover the output exactly once.
    """
    cdef Layer L = layer_of(x.shape[0], x.shape[1], x.shape[2], x.shape[3], out.shape[1],
                            out.shape[2], out.shape[3], groups, mode, isa, sizeof(floating),
                            cpb, rows, ppb)
    cdef Py_ssize_t nprob = problems.shape[0], p, total, item, local
    cdef Problem *probs
    cdef floating *wsp
    cdef const floating *bias_p = NULL
    if bias is not None:
        bias_p = &bias[0]
    probs = <Problem *> PyMem_Malloc(max(nprob, 1) * sizeof(Problem))
    if probs == NULL:
        raise MemoryError()
    for p in range(nprob):
        probs[p].koff = NULL
    L.ktab = NULL
    try:
        total = setup(&L, probs, nprob, problems, taps, sizeof(floating))
        if ws.shape[0] < nthreads * L.ws:
            raise ValueError(f"ws has {ws.shape[0]} elements, expected {nthreads * L.ws}")
        if total == 0:
            return
        if alloc_tables(&L, probs, nprob) != 0:
            raise MemoryError()
        with nogil, parallel(num_threads=nthreads):
            wsp = &ws[threadid() * L.ws] if L.ws > 0 else NULL
            for item in prange(total, schedule="static"):
                local = item
                p = 0
                while local >= probs[p].items:
                    local = local - probs[p].items
                    p = p + 1
                run_item(&L, &probs[p], local, &x[0, 0, 0, 0], &wpack[0], bias_p,
                         &out[0, 0, 0, 0], wsp)
    finally:
        free_tables(&L, probs, nprob)
        PyMem_Free(probs)

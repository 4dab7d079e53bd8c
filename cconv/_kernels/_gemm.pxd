# cython: language_level=3
"""What the implicit GEMM's parts share (inline, compiled into each): the layer and problem
records and their setup for one tiling, the micro-kernel call, and the packed-weight layout
(where a panel lies).

A layer's GEMMs (one per problem: one for conv2d, one per stride phase of a transposed
convolution) share its channel blocking; each has its own taps, pixel grid and band.
Packed weights, per problem, group, K block (whole input channels) and panel:

    [problem][group][K block][panel][k][lane]     lanes: MR rows (pixel mode, panels split
                                                  Mg evenly) or NR channels (channel mode,
                                                  the last panel zero-padded)
"""
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc
from cython cimport floating

from ._band cimport Band, band_init, tap_offset
from ._conv cimport Conv
from ._epilogue cimport cc_epilogue
from ._sizes cimport add_sat, cdiv, mul_sat, round_line, split_start


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "gemm_dispatch.h" nogil:
    ctypedef void (*cc_gemm_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *, Py_ssize_t,
                                    const float *, const Py_ssize_t *, float *, Py_ssize_t,
                                    Py_ssize_t, const float *, const float *,
                                    int, Py_ssize_t) noexcept nogil
    ctypedef void (*cc_gemm_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *, Py_ssize_t,
                                    const double *, const Py_ssize_t *, double *, Py_ssize_t,
                                    Py_ssize_t, const double *, const double *,
                                    int, Py_ssize_t) noexcept nogil
    cc_gemm_f32_fn cc_gemm_ukernel_f32(int isa, Py_ssize_t mr)
    cc_gemm_f64_fn cc_gemm_ukernel_f64(int isa, Py_ssize_t mr)
    Py_ssize_t cc_gemm_nr(int isa, Py_ssize_t itemsize)
    int cc_isa_mr_max(int isa)


cdef enum:
    PIXELS = 0                       # pixels along the SIMD lanes
    CHANNELS = 1                     # output channels along the SIMD lanes


cdef struct Problem:
    Py_ssize_t KH, KW, sh, sw        # taps and input strides
    const Py_ssize_t *offh           # input row of tap row th, minus i*sh (KH entries)
    const Py_ssize_t *offw           # input column of tap column tw, minus j*sw (KW entries)
    const Py_ssize_t *wtap           # weight offset of tap (th, tw) (KH*KW entries)
    Py_ssize_t Hp, Wp                # GEMM pixel grid (i, j)
    Py_ssize_t oy0, oys, ox0, oxs    # where pixel (i, j) lands in the output
    Py_ssize_t a_offset              # this problem's packed weights
    Py_ssize_t T, K, nkb, nbands     # taps, reduction length, K blocks, bands
    Py_ssize_t items                 # work items: N * groups * nmb * nbands
    bint in_place_b                  # 1x1, stride 1, no offset: the input is the band
    bint in_place_c                  # pixel mode, no padding columns: output written in place
    Band band
    Py_ssize_t *koff                 # offset of K row (c, th, tw) of a K block in the band
    Py_ssize_t *wkoff                # ... and in the raw weights (c*sc + wtap), per block
    bint wk_contig                   # wkoff[k] == k: a K block is contiguous in the weight


cdef struct Layer:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out
    Py_ssize_t groups, Cg, Mg
    int mode, isa
    Py_ssize_t mr, nr                # the micro-kernel's most rows and its columns
    Py_ssize_t cpb                   # input channels per K block (at most)
    Py_ssize_t rows                  # grid rows per band (at most)
    Py_ssize_t npanels, ppb, nmb     # channel panels per group, per channel block; blocks
    Py_ssize_t kmax                  # most K rows of a block over all problems
    Py_ssize_t sg, sm, sc            # weight strides of a group, output and input channel
    Py_ssize_t rows_p                # packed weight rows of a group (padded to NR: channels)
    Py_ssize_t packed_size           # elements of the packed weights of all problems
    Py_ssize_t ws_band, ws_c, ws     # per-thread buffer: band, C block, total (elements)
    Py_ssize_t ws_pack               # more per thread for raw weights (channel mode packs)
    Py_ssize_t *ktab                 # k * r for the widths r that occur: see k_times
    Py_ssize_t wlo                   # the narrower width of the pixel-mode weight panels
    Py_ssize_t fy, fx                # depth to space (copy_d2s; 1, 1: none)


cdef struct Call:
    const Layer *L
    const Problem *probs
    Py_ssize_t nprob
    const void *x
    const void *w                    # packed (packed true) or raw weights
    bint packed
    const void *bias
    void *out
    void *pk                         # where pack units go (packing first)
    const cc_epilogue *ep            # the fused epilogue, or NULL


cdef inline void check_weights(str kernel, int isa, Py_ssize_t nr, Py_ssize_t itemsize,
                               Py_ssize_t w_size, bint packed, Py_ssize_t packed_size,
                               Py_ssize_t raw_size) except *:
    """The weights (packed_size elements packed, raw_size raw) and the dtype match what
    `kernel` (IGemm, Winograd: a register tile of nr lanes on isa) was prepared for."""
    if nr != cc_gemm_nr(isa, itemsize):
        raise TypeError(f"{kernel}: the arrays' dtype is not the one it was prepared for")
    if packed and w_size < packed_size:
        raise ValueError(f"packed weights have {w_size} elements, expected {packed_size}")
    if not packed and w_size < raw_size:
        raise ValueError(f"weights have {w_size} elements, expected {raw_size}")


cdef inline void check_pack_dst(Py_ssize_t dst_size, Py_ssize_t packed_size) except *:
    """pack()'s destination holds the packed weights."""
    if dst_size < packed_size:
        raise ValueError(f"dst has {dst_size} elements, expected {packed_size}")


cdef inline void ukernel(int isa, Py_ssize_t mr, Py_ssize_t kc, const floating *a,
                         const Py_ssize_t *aoff, Py_ssize_t lda, const floating *b,
                         const Py_ssize_t *boff, floating *c, Py_ssize_t ldc, Py_ssize_t nr,
                         const floating *bias, const floating *bias_col, int accumulate,
                         Py_ssize_t pf) noexcept nogil:
    """The mr x NR tile of variant isa (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_gemm_ukernel_f32(isa, mr)(kc, a, aoff, lda, b, boff, c, ldc, nr, bias, bias_col,
                                     accumulate, pf)
    else:
        cc_gemm_ukernel_f64(isa, mr)(kc, a, aoff, lda, b, boff, c, ldc, nr, bias, bias_col,
                                     accumulate, pf)


cdef inline const Py_ssize_t *k_times(const Layer *L, Py_ssize_t width) noexcept nogil:
    """The table k * width, k < kmax, for a pixel-mode panel width (wlo or wlo + 1: panels
    split Mg evenly) or NR. Assumes: width is one of those."""
    if width == L.nr:
        return L.ktab + 2 * L.kmax
    return L.ktab + (width - L.wlo) * L.kmax


cdef inline Py_ssize_t panel_start(const Layer *L, Py_ssize_t pan) noexcept nogil:
    """The first weight row (output channel of a group) of panel pan: pixel mode splits Mg
    evenly into panels, channel mode into NR-wide ones (the last zero-padded). Panel pan's
    rows are panel_start(pan) .. panel_start(pan + 1)."""
    return split_start(pan, L.Mg, L.npanels) if L.mode == PIXELS else pan * L.nr


cdef inline Py_ssize_t packed_offset(const Layer *L, const Problem *pr, Py_ssize_t gi,
                                     Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t r0) noexcept nogil:
    """Where, in the packed weights, the panel starting at row r0 of group gi lies for the
    K block of input channels c0..c1 (pack_panels' layout)."""
    return pr.a_offset + gi * L.rows_p * pr.K + c0 * pr.T * L.rows_p + r0 * (c1 - c0) * pr.T


cdef inline Py_ssize_t setup(Layer *L, Problem *probs, Py_ssize_t nprob, Py_ssize_t itemsize,
                             Py_ssize_t *phases) noexcept nogil:
    """Derive every problem's geometry and the per-thread workspace; return the work items.
    Assumes: probs hold their taps, grid and output placement (Problems.read); phases has
    room for every problem's KH + KW phases and is kept while the problems are used. koff
    tables are left NULL (alloc_tables fills them)."""
    cdef Py_ssize_t p, total = 0, band_max = 0, c_max = 0, pix
    cdef Problem *pr
    L.npanels = cdiv(L.Mg, L.mr) if L.mode == PIXELS else cdiv(L.Mg, L.nr)
    L.rows_p = L.Mg if L.mode == PIXELS else L.npanels * L.nr
    L.nmb = cdiv(L.npanels, L.ppb)
    L.kmax = 1
    L.packed_size = 0
    for p in range(nprob):
        pr = &probs[p]
        pr.koff = NULL
        pr.wk_contig = False
        pr.T = pr.KH * pr.KW
        pr.K = L.Cg * pr.T
        pr.a_offset = L.packed_size
        L.packed_size = add_sat(L.packed_size, mul_sat(mul_sat(L.groups, L.rows_p), pr.K))
        pr.nkb = cdiv(L.Cg, L.cpb)
        pr.nbands = cdiv(pr.Hp, L.rows)
        pr.items = L.N * L.groups * L.nmb * pr.nbands
        pr.in_place_b = (pr.T == 1 and pr.sh == 1 and pr.sw == 1 and pr.offh[0] == 0
                         and pr.offw[0] == 0 and pr.Hp == L.H and pr.Wp == L.W)
        band_init(&pr.band, L.H, L.W, pr.sh, pr.sw, pr.offh, pr.KH, pr.offw, pr.KW, pr.Wp,
                  L.rows, L.nr, phases)
        phases += pr.KH + pr.KW
        if pr.in_place_b:
            pr.band.Wsub = L.W
        pr.in_place_c = (L.mode == PIXELS and L.fy == 1 and L.fx == 1
                         and pr.band.Wsub == L.W_out
                         and pr.oy0 == 0 and pr.ox0 == 0 and pr.oys == 1 and pr.oxs == 1
                         and pr.Wp == L.W_out)
        L.kmax = max(L.kmax, min(L.cpb, L.Cg) * pr.T)
        # Sizes saturate (mul_sat): too large for the platform reads as too large.
        if pr.in_place_b:
            # Only the last, partial tile of a 1x1 band is copied (pixel mode).
            band_max = max(band_max, min(L.cpb, L.Cg) * L.nr if L.mode == PIXELS else 0)
        else:
            band_max = max(band_max, mul_sat(min(L.cpb, L.Cg), pr.band.chan_stride))
        if L.mode == PIXELS:
            if not pr.in_place_c:
                c_max = max(c_max, mul_sat(min(L.ppb * L.mr, L.Mg),
                                           mul_sat(L.rows, pr.band.Wsub)))
        else:
            pix = mul_sat(L.rows, pr.Wp)
            c_max = max(c_max, mul_sat(min(L.ppb, L.npanels) * L.nr, pix))
        total += pr.items
    # Each part of a thread's buffer starts on a cache line (so do the threads' buffers).
    L.ws_band = round_line(band_max, itemsize)
    L.ws_c = round_line(c_max, itemsize)
    L.ws = add_sat(L.ws_band, L.ws_c)
    # Raw weights: pixel mode reads them in place (lda = their row stride); channel mode
    # packs one NR panel at a time.
    L.ws_pack = 0 if L.mode == PIXELS else mul_sat(L.kmax, L.nr)
    return total


cdef inline int alloc_tables(Layer *L, Problem *probs, Py_ssize_t nprob) noexcept nogil:
    """Offset tables: each problem's koff and wkoff, and ktab (three rows: k times the two
    weight panel widths and NR; see k_times). Returns -1 when out of memory. About 40 bytes
    per reduction step (input channel x tap), so a huge kernel fails here cleanly."""
    cdef Py_ssize_t p, c, th, tw, k, i, width
    cdef Py_ssize_t table = mul_sat(L.kmax, sizeof(Py_ssize_t))
    cdef Problem *pr
    if table > PY_SSIZE_T_MAX // 4:
        return -1
    L.wlo = L.Mg // L.npanels if L.mode == PIXELS else L.nr
    L.ktab = <Py_ssize_t *> PyMem_RawMalloc(3 * table)
    if L.ktab == NULL:
        return -1
    for i in range(3):
        width = L.wlo + i if i < 2 else L.nr
        for k in range(L.kmax):
            L.ktab[i * L.kmax + k] = k * width
    for p in range(nprob):
        pr = &probs[p]
        pr.koff = <Py_ssize_t *> PyMem_RawMalloc(table)
        pr.wkoff = <Py_ssize_t *> PyMem_RawMalloc(table)
        if pr.koff == NULL or pr.wkoff == NULL:
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
                    pr.wkoff[k] = c * L.sc + pr.wtap[th * pr.KW + tw]
                    k += 1
        pr.wk_contig = True
        for i in range(k):
            if pr.wkoff[i] != i:
                pr.wk_contig = False
    return 0


cdef inline void free_tables(Layer *L, Problem *probs, Py_ssize_t nprob) noexcept nogil:
    cdef Py_ssize_t p
    PyMem_RawFree(L.ktab)
    for p in range(nprob):
        PyMem_RawFree(probs[p].koff)
        PyMem_RawFree(probs[p].wkoff)


cdef inline Layer layer_of(const Conv *g, int mode, int isa, Py_ssize_t itemsize, Py_ssize_t cpb,
                           Py_ssize_t rows, Py_ssize_t ppb, Py_ssize_t fy, Py_ssize_t fx) except *:
    cdef Layer L
    if fy < 1 or fx < 1 or (mode != PIXELS and fy * fx > 1):
        raise ValueError(f"IGemm: depth to space ({fy}, {fx}) needs factors >= 1 and pixel "
                         f"mode")
    L.N, L.C_in, L.H, L.W = g.N, g.C_in, g.H, g.W
    L.C_out, L.H_out, L.W_out = g.C_out, g.H_out, g.W_out
    L.groups, L.Cg, L.Mg = g.groups, g.Cg, g.Mg
    L.mode, L.isa = mode, isa
    L.mr, L.nr = cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)
    L.cpb, L.rows, L.ppb = cpb, rows, ppb
    L.fy, L.fx = fy, fx
    L.ktab = NULL
    return L


cdef inline Py_ssize_t read_problem(object spec, Py_ssize_t KW, Problem *pr, Py_ssize_t *taps,
                                    Py_ssize_t at) except -1:
    """A cconv._lowering.GemmProblem into pr: its taps, grid and output placement, its offh,
    offw and wtap tables at taps[at...] (KW: the weight's kernel width). Returns where the
    next problem's tables start."""
    cdef Py_ssize_t th, tw
    pr.KH, pr.KW = len(spec.offh), len(spec.offw)
    pr.sh, pr.sw, pr.Hp, pr.Wp = spec.sh, spec.sw, spec.Hp, spec.Wp
    pr.oy0, pr.oys, pr.ox0, pr.oxs = spec.oy0, spec.oys, spec.ox0, spec.oxs
    pr.koff = pr.wkoff = NULL
    pr.offh = &taps[at]
    pr.offw = pr.offh + pr.KH
    pr.wtap = pr.offw + pr.KW
    for th in range(pr.KH):
        taps[at + th] = spec.offh[th]
    for tw in range(pr.KW):
        taps[at + pr.KH + tw] = spec.offw[tw]
    # Tap (kh, kw) of a channel pair lies at kh*KW + kw in the weight.
    for th in range(pr.KH):
        for tw in range(pr.KW):
            taps[at + pr.KH + pr.KW + th * pr.KW + tw] = spec.kh[th] * KW + spec.kw[tw]
    return at + pr.KH + pr.KW + pr.KH * pr.KW

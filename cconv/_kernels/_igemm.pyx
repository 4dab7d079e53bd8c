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
      for each K block (a range of whole input channels, ~KC_MAX rows of K, see _planner)
        fill the band buffer for those channels (or read the input in place)
        for each tile of the band (NR pixels, or MR pixels of one row)
          for each panel of the channel block
            gemm_ukernel: C tile (+)= A panel * B panel        (registers)
      copy the C block to the output (adding the bias in channel mode)

Depth to space (fy, fx > 1, pixel mode): the GEMM's rows are (co, a, b) triples, fy*fx per
output channel, and its pixel (i, j) of row (co, a, b) lands at output (co, i*fy + a,
j*fx + b) (copy_d2s): a transposed convolution whose kernel is its stride, as one 1x1 GEMM.

Each output element belongs to one work item and is summed over K in a fixed order, so the
result is bitwise identical for every thread count.
"""
from cython.parallel cimport parallel, threadid
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_RawFree, PyMem_RawMalloc
from cython cimport floating
from libc.stdlib cimport free

from ._band cimport (Band, add_sat, band_init, cdiv, fill_band, line_aligned, mul_sat,
                     phase_room, round_line, split_start, tap_offset)
from ._buffers cimport elements, release, take_call, workspace
from ._shares cimport SHARE_PAD, Shares, shares_init, take
from ._transpose cimport cc_scatter2_isa_f32, transpose


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "isa.h" nogil:
    unsigned long cc_flush_denormals()
    void cc_restore_fp_mode(unsigned long old)


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


# Columns of the `problems` table: one row per problem. taps_offset: where its offh (KH
# entries), then offw (KW entries), then its weight taps (KH*KW entries: the offset in the
# weight of tap (th, tw) within one (output, input) channel pair) lie in the `taps` table.
PROBLEM_FIELDS = ("KH", "KW", "sh", "sw", "Hp", "Wp", "oy0", "oys", "ox0", "oxs",
                  "taps_offset")


cdef enum:
    PIXELS = 0                       # pixels along the SIMD lanes
    CHANNELS = 1                     # output channels along the SIMD lanes


MODE_PIXELS = PIXELS
MODE_CHANNELS = CHANNELS

# Pixel mode takes the weight panels in the outer loop when a K block of the band's pixels
# is at most this big (it stays in L2 while each panel is read once); else the tiles.
cdef Py_ssize_t PANEL_OUTER_BYTES = 128 * 1024


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


cdef Py_ssize_t *alloc_phases(const Py_ssize_t[:, ::1] problems) except NULL:
    """phase_room for every problem's band (its KH + KW taps), for setup(); free() it."""
    cdef Py_ssize_t p, n = 0
    for p in range(problems.shape[0]):
        n += problems[p, 0] + problems[p, 1]   # the tap table holds as many entries
    return phase_room(n)


cdef Py_ssize_t setup(Layer *L, Problem *probs, Py_ssize_t nprob,
                      const Py_ssize_t[:, ::1] problems, const Py_ssize_t[::1] taps,
                      Py_ssize_t itemsize, Py_ssize_t *phases) noexcept nogil:
    """Derive every problem's geometry and the per-thread workspace; return the work items.
    phases: alloc_phases(problems)'s room, kept while the problems are used. koff tables
    are left NULL (alloc_tables fills them)."""
    cdef Py_ssize_t p, total = 0, band_max = 0, c_max = 0, pix
    cdef Problem *pr
    L.Cg = L.C_in // L.groups
    L.Mg = L.C_out // L.groups
    L.npanels = cdiv(L.Mg, L.mr) if L.mode == PIXELS else cdiv(L.Mg, L.nr)
    L.rows_p = L.Mg if L.mode == PIXELS else L.npanels * L.nr
    L.nmb = cdiv(L.npanels, L.ppb)
    L.kmax = 1
    L.packed_size = 0
    for p in range(nprob):
        pr = &probs[p]
        pr.KH, pr.KW, pr.sh, pr.sw = problems[p, 0], problems[p, 1], problems[p, 2], problems[p, 3]
        pr.Hp, pr.Wp = problems[p, 4], problems[p, 5]
        pr.oy0, pr.oys = problems[p, 6], problems[p, 7]
        pr.ox0, pr.oxs = problems[p, 8], problems[p, 9]
        pr.offh = &taps[problems[p, 10]]
        pr.offw = &taps[problems[p, 10] + pr.KH]
        pr.wtap = &taps[problems[p, 10] + pr.KH + pr.KW]
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


cdef inline const Py_ssize_t *k_times(const Layer *L, Py_ssize_t width) noexcept nogil:
    """The table k * width, k < kmax, for a pixel-mode panel width (wlo or wlo + 1: panels
    split Mg evenly) or NR. Assumes: width is one of those."""
    if width == L.nr:
        return L.ktab + 2 * L.kmax
    return L.ktab + (width - L.wlo) * L.kmax


cdef int alloc_tables(Layer *L, Problem *probs, Py_ssize_t nprob) noexcept nogil:
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


cdef void free_tables(Layer *L, Problem *probs, Py_ssize_t nprob) noexcept nogil:
    cdef Py_ssize_t p
    PyMem_RawFree(L.ktab)
    for p in range(nprob):
        PyMem_RawFree(probs[p].koff)
        PyMem_RawFree(probs[p].wkoff)


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


cdef enum:
    # Columns of the weight (taps of one channel pair) pack_by_channel transposes at a time:
    # its tile is TILE_COLS x 32 lanes (NR, or a pixel-mode panel's rows), on the stack.
    TILE_COLS = 64
    # Problems pack_all packs together (the stride phases of a transposed convolution).
    PACK_GROUP = 16


cdef void pack_by_channel(const Layer *L, const Problem *probs, Py_ssize_t nprob,
                          const floating *wm, Py_ssize_t valid, Py_ssize_t r, Py_ssize_t nc,
                          floating **dst) noexcept nogil:
    """One weight panel, for nc input channels and nprob problems at once: rows wm + i*sm
    (i < valid; zero up to r), and dst[p][(c*T + t)*r + i] = A[row i, channel c, tap t] of
    problem p (its taps' wtap).

    Each channel's columns (within its kh*kw taps) are transposed once, in vector tiles, into
    a tile of rows of r lanes, and each problem copies the rows of its taps. The stride phases
    of a transposed convolution each take some taps of every channel pair: packed together,
    the weight is read once for all of them, not element by element per phase (DCGAN's
    4x4/s2: ~1 ns an element that way).
    Assumes: r <= 32; the problems' wtap lie within one channel pair's taps."""
    cdef floating buf[TILE_COLS * 32 + 16]
    cdef floating *tile = line_aligned(buf)
    cdef Py_ssize_t lo = PY_SSIZE_T_MAX, hi = 0, p, t, c, j0, j1, i, w
    cdef const Problem *pr
    cdef const floating *row
    cdef floating *d
    for p in range(nprob):
        for t in range(probs[p].T):
            lo = min(lo, probs[p].wtap[t])
            hi = max(hi, probs[p].wtap[t] + 1)
    for c in range(nc):
        j0 = lo
        while j0 < hi:
            j1 = min(j0 + TILE_COLS, hi)
            transpose(L.isa, valid, j1 - j0, wm + c * L.sc + j0, L.sm, tile, r)
            for w in range(j1 - j0):
                for i in range(valid, r):
                    tile[w * r + i] = 0
            for p in range(nprob):
                pr = &probs[p]
                d = dst[p] + c * pr.T * r
                for t in range(pr.T):
                    if j0 <= pr.wtap[t] < j1:
                        # A loop, not a memcpy call: rows of 32 lanes or fewer.
                        row = tile + (pr.wtap[t] - j0) * r
                        for i in range(r):
                            d[t * r + i] = row[i]
            j0 = j1


cdef void pack_panels(const Layer *L, const Problem *pr, const floating *w, Py_ssize_t gi,
                      Py_ssize_t pan0, Py_ssize_t pan1, Py_ssize_t c0, Py_ssize_t c1,
                      floating *dst) noexcept nogil:
    """Pack weight panels pan0..pan1 of group gi, for the K block of input channels c0..c1.

    A[g, m, (c, t)] = w[g*sg + m*sm + c*sc + wtap[t]] (t: the problem's taps; wkoff holds
    c*sc + wtap[t] relative to the block's first channel), laid out as
    the micro-kernel reads it, panel after panel: pixel mode, panel rows r0..r0+r, k-major:
    dst[(r0 - first r0)*kcb + kk*r + i] = A[g, r0 + i, k0 + kk]; channel mode, NR-wide
    panels (zero past Mg): dst[(p - pan0)*kcb*NR + kk*NR + lane] = A[g, p*NR + lane, k0 + kk].
    A block contiguous in the weight (conv2d's, with every tap) is a transpose, done in
    vector tiles (transpose.h).
    """
    cdef Py_ssize_t kcb = (c1 - c0) * pr.T
    cdef Py_ssize_t pan, r0, r, i, kk, valid
    cdef Py_ssize_t rbase = panel_start(L, pan0)
    cdef const floating *wm
    cdef floating *d
    for pan in range(pan0, pan1):
        r0 = panel_start(L, pan)
        r = panel_start(L, pan + 1) - r0
        d = dst + (r0 - rbase) * kcb
        valid = max(0, min(r, L.Mg - r0))
        wm = w + gi * L.sg + r0 * L.sm + c0 * L.sc
        if pr.wk_contig:
            transpose(L.isa, valid, kcb, wm, L.sm, d, r)
            for i in range(valid, r):
                for kk in range(kcb):
                    d[kk * r + i] = 0
        else:
            pack_by_channel(L, pr, 1, wm, valid, r, c1 - c0, &d)


cdef void copy_block(int isa, const floating *c, Py_ssize_t cs_m, Py_ssize_t cs_u,
                     Py_ssize_t cs_t, floating *o, Py_ssize_t os_m, Py_ssize_t M, Py_ssize_t R,
                     Py_ssize_t Wp, Py_ssize_t o0, Py_ssize_t os_u,
                     Py_ssize_t os_t) noexcept nogil:
    """o[m*os_m + o0 + u*os_u + t*os_t] = c[m*cs_m + u*cs_u + t*cs_t] for m < M, u < R,
    t < Wp: a C block to its place in the output (rows of channels, or transposed by
    variant isa's tiles)."""
    cdef Py_ssize_t m, u, t
    cdef floating *om
    cdef const floating *cm
    if cs_m == 1 and os_t == 1:
        # Channel mode's block, pixels x channels, into channel rows: a transpose per row,
        # or one for the band when its rows follow each other in both.
        if os_u == Wp and cs_u == Wp * cs_t:
            Wp *= R
            R = 1
        for u in range(R):
            transpose(isa, Wp, M, c + u * cs_u, cs_t, o + o0 + u * os_u, os_m)
        return
    for m in range(M):
        for u in range(R):
            om = o + m * os_m + o0 + u * os_u
            cm = c + m * cs_m + u * cs_u
            if os_t == 1 and cs_t == 1:
                for t in range(Wp):
                    om[t] = cm[t]
            elif floating is float and os_t == 2 and cs_t == 1:
                # A stride-2 phase of a transposed convolution (U-Net's 2x2/s2: a quarter of
                # its time element by element; vectors under a mask on AVX-512).
                cc_scatter2_isa_f32(isa, Wp, cm, om)
            else:
                for t in range(Wp):
                    om[t * os_t] = cm[t * cs_t]


cdef void copy_d2s(const Layer *L, const floating *c, Py_ssize_t cpitch, Py_ssize_t cs_u,
                   floating *out_ng, Py_ssize_t row0, Py_ssize_t row1, Py_ssize_t i0,
                   Py_ssize_t R) noexcept nogil:
    """A pixel-mode C block (rows row0..row1 of a group, R band rows from grid row i0) into
    the output, depth to space: row m = (co*fy + a)*fx + b, pixel (i, j) lands at output
    channel co, (i*fy + a, j*fx + b). A transposed convolution whose kernel is its stride
    (U-Net's 2x2/s2) is one 1x1 GEMM of fy*fx rows per output channel, then this. With fx 2,
    rows b = 0 and 1 are interleaved into whole output rows (each line written once, not
    half by each of two stride phases)."""
    cdef Py_ssize_t Wv = L.W_out, Wr = L.W_out * L.fx
    cdef Py_ssize_t HWr = L.H_out * L.fy * Wr, P = L.fy * L.fx
    cdef Py_ssize_t m = row0, co, a, b, u, t, step
    cdef const floating *x
    cdef const floating *y
    cdef floating *d
    while m < row1:
        co = m // P
        a = (m % P) // L.fx
        b = m % L.fx
        step = 2 if (L.fx == 2 and b == 0 and m + 1 < row1) else 1
        for u in range(R):
            x = c + (m - row0) * cpitch + u * cs_u
            d = out_ng + co * HWr + ((i0 + u) * L.fy + a) * Wr + b
            if step == 2:
                y = x + cpitch
                for t in range(Wv):
                    d[2 * t] = x[t]
                    d[2 * t + 1] = y[t]
            else:
                # fx > 2 row by row: masked AVX-512 vectors here (cc_scatter2's, any stride)
                # or the fx rows interleaved ran 4x4/s4 and 3x3/s3 layers 0.98-1.01x the time.
                for t in range(Wv):
                    d[t * L.fx] = x[t]
        m += step


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
                            floating *cbuf, Py_ssize_t cpitch, bint prefetch) noexcept nogil:
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


cdef void pixels_item(const Layer *L, const Problem *pr, Py_ssize_t n, Py_ssize_t gi,
                      Py_ssize_t mb, Py_ssize_t band, const floating *x, const floating *w,
                      bint packed, const floating *bias, floating *out,
                      floating *ws) noexcept nogil:
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
    cdef Py_ssize_t kb, c0, c1, kcb, j0, pan, t, kk, lead, jt, ntiles
    cdef Py_ssize_t vbytes = L.nr // 2 * sizeof(floating)    # one vector
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
        # Loop order: when the band's B block is small (a 7x7 layer), weight panel outer, so
        # each panel is read once and the few tiles come from cache; else tile outer, so a
        # tile (read from the input in place, prefetched) serves every panel from L1.
        if kcb * flat * sizeof(floating) <= PANEL_OUTER_BYTES:
            for pan in range(pan0, pan1):
                for jt in range(ntiles):
                    pixel_tile(L, pr, jt, pan, row0, lead, flat, kb, kcb, packed, a_k,
                               src, bbuf, bias_g, out_ng, i0, cbuf, cpitch, False)
        else:
            for jt in range(ntiles):
                for pan in range(pan0, pan1):
                    pixel_tile(L, pr, jt, pan, row0, lead, flat, kb, kcb, packed, a_k,
                               src, bbuf, bias_g, out_ng, i0, cbuf, cpitch, pan == pan0)
    # A band with padding columns goes through the C block, copied out here (ResNet-50's
    # stem: 13% of its time). Tiles within one image row written in place instead, only
    # those across the padding columns through a tile of their own, ran 1.03-1.08x slower on
    # the six stems and padded layers measured: writing the output costs about as much from
    # the tiles as from this copy.
    if L.fy * L.fx > 1:
        copy_d2s(L, cbuf, cpitch, bd.Wsub, out_ng, row0, row1, i0, R)
    elif not pr.in_place_c:
        copy_block(L.isa, cbuf, cpitch, bd.Wsub, 1, out_ng + row0 * HWo, HWo, row1 - row0, R,
                   pr.Wp, (pr.oy0 + i0 * pr.oys) * L.W_out + pr.ox0, pr.oys * L.W_out, pr.oxs)


cdef void channels_item(const Layer *L, const Problem *pr, Py_ssize_t n, Py_ssize_t gi,
                        Py_ssize_t mb, Py_ssize_t band, const floating *x, const floating *w,
                        bint packed, const floating *bias, floating *out,
                        floating *ws) noexcept nogil:
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
    cdef Py_ssize_t kb, c0, c1, kcb, u, pp, t0, r, cpn, co, lane
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
        # weights: a panel is packed right before its tiles. Measured against that
        # (functional, 1 thread, 7x7 and 14x14 layers): all the block's panels packed at once
        # per K block, 0.98-1.08x the time (slower on 4 of 5); the next panel's raw rows
        # prefetched a few per tile, 1.09-1.11x on ResNet-50's stage-4 1x1 layers, no gain
        # on the others.
        for cpn in range(cp0, cp1):
            if packed:
                b_k = w + packed_offset(L, pr, gi, c0, c1, cpn * L.nr)
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
                    # (Prefetching the next tile's band pixels, 16 to 256 elements ahead
                    # in each K row, on six 3x3 layers and the stem: no consistent gain,
                    # 0.85-1.03x the time in one run, 0.99-1.08x when repeated.)
                    ukernel(L.isa, r, kcb, src + u * bd.Wsub + t0, pr.koff, 1, b_k,
                            k_times(L, L.nr),
                            cbuf + ((cpn - cp0) * pix + u * pr.Wp + t0) * L.nr, L.nr, L.nr,
                            NULL, bias_c, kb > 0, 0)
    for cpn in range(cp0, cp1):
        co = cpn * L.nr
        copy_block(L.isa, cbuf + (cpn - cp0) * pix * L.nr, 1, pr.Wp * L.nr, L.nr,
                   out_ng + co * HWo, HWo, min(L.nr, L.Mg - co), R, pr.Wp,
                   (pr.oy0 + i0 * pr.oys) * L.W_out + pr.ox0, pr.oys * L.W_out, pr.oxs)


cdef void run_item(const Layer *L, const Problem *pr, Py_ssize_t item, const floating *x,
                   const floating *w, bint packed, const floating *bias, floating *out,
                   floating *ws) noexcept nogil:
    """Work item `item` of problem pr: decode (n, group, channel block, band) and run it."""
    cdef Py_ssize_t band = item % pr.nbands
    cdef Py_ssize_t mb = (item // pr.nbands) % L.nmb
    cdef Py_ssize_t gi = (item // (pr.nbands * L.nmb)) % L.groups
    cdef Py_ssize_t n = item // (pr.nbands * L.nmb * L.groups)
    if L.mode == PIXELS:
        pixels_item(L, pr, n, gi, mb, band, x, w, packed, bias, out, ws)
    else:
        channels_item(L, pr, n, gi, mb, band, x, w, packed, bias, out, ws)


cdef inline void run_global(const Layer *L, const Problem *probs, Py_ssize_t item,
                            const floating *x, const floating *w, bint packed,
                            const floating *bias, floating *out, floating *ws) noexcept nogil:
    """Work item `item` of the whole call: find its problem, then run it."""
    cdef Py_ssize_t p = 0
    while item >= probs[p].items:
        item -= probs[p].items
        p += 1
    run_item(L, &probs[p], item, x, w, packed, bias, out, ws)


cdef Layer layer_of(Py_ssize_t N, Py_ssize_t C_in, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t C_out, Py_ssize_t H_out, Py_ssize_t W_out, Py_ssize_t groups,
                    int mode, int isa, Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t rows,
                    Py_ssize_t ppb, Py_ssize_t fy, Py_ssize_t fx):
    cdef Layer L
    if fy < 1 or fx < 1 or (mode != PIXELS and fy * fx > 1):
        raise ValueError(f"IGemm: depth to space ({fy}, {fx}) needs factors >= 1 and pixel "
                         f"mode")
    L.N, L.C_in, L.H, L.W = N, C_in, H, W
    L.C_out, L.H_out, L.W_out = C_out, H_out, W_out
    L.groups, L.mode, L.isa = groups, mode, isa
    L.mr, L.nr = cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)
    L.cpb, L.rows, L.ppb = cpb, rows, ppb
    L.fy, L.fx = fy, fx
    L.ktab = NULL
    return L


def tile(int isa, Py_ssize_t itemsize):
    """(MR, NR): most rows and the columns of variant isa's micro-kernel for this dtype size."""
    return cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)


def workspace_elems(Py_ssize_t[::1] shape, const Py_ssize_t[:, ::1] problems,
                    const Py_ssize_t[::1] taps, int mode, int isa, Py_ssize_t itemsize,
                    Py_ssize_t cpb, Py_ssize_t rows, Py_ssize_t ppb, Py_ssize_t fy=1,
                    Py_ssize_t fx=1):
    """(per-thread workspace with packed weights, the same with raw weights, work items) of
    IGemm with these arguments, in elements (PY_SSIZE_T_MAX where a size would overflow).
    shape: N, C_in, H, W, C_out, H_out, W_out, groups."""
    cdef Layer L = layer_of(shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
                            shape[6], shape[7], mode, isa, itemsize, cpb, rows, ppb, fy, fx)
    cdef Py_ssize_t nprob = problems.shape[0], items
    cdef Py_ssize_t *phases = alloc_phases(problems)
    cdef Problem *probs = <Problem *> PyMem_Malloc(max(nprob, 1) * sizeof(Problem))
    if probs == NULL:
        free(phases)
        raise MemoryError()
    try:
        items = setup(&L, probs, nprob, problems, taps, itemsize, phases)
        return L.ws, add_sat(L.ws, L.ws_pack), items
    finally:
        PyMem_Free(probs)
        free(phases)


cdef class IGemm:
    """One convolution's GEMM problems, prepared once (geometry, offset tables) and run many
    times. Arguments as for workspace_elems(), plus the weight's strides: (sg, sm, sc), the
    elements between groups, output channels and input channels in the weight array
    (conv2d's (C_out, Cg, kh, kw): (Mg*Cg*kh*kw, Cg*kh*kw, kh*kw); conv_transpose2d's
    (C_in, Mg, kh, kw): (Cg*Mg*kh*kw, kh*kw, Mg*kh*kw)). Planned once per layer geometry by
    cconv._planner."""
    cdef Layer L
    cdef Problem *probs
    cdef Py_ssize_t *phases          # the bands' phase lists
    cdef Py_ssize_t nprob, total
    cdef object keep               # the tables the problems point into
    cdef Py_ssize_t itemsize
    cdef readonly Py_ssize_t workspace_elems, workspace_elems_raw, packed_size

    def __cinit__(self, Py_ssize_t[::1] shape, const Py_ssize_t[:, ::1] problems,
                  const Py_ssize_t[::1] taps, int mode, int isa, Py_ssize_t itemsize,
                  Py_ssize_t cpb, Py_ssize_t rows, Py_ssize_t ppb, Py_ssize_t sg,
                  Py_ssize_t sm, Py_ssize_t sc, Py_ssize_t fy=1, Py_ssize_t fx=1):
        cdef Py_ssize_t p
        self.L = layer_of(shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
                          shape[6], shape[7], mode, isa, itemsize, cpb, rows, ppb, fy, fx)
        self.L.sg, self.L.sm, self.L.sc = sg, sm, sc
        self.nprob = problems.shape[0]
        self.keep = (problems, taps)
        self.phases = alloc_phases(problems)
        self.probs = <Problem *> PyMem_Malloc(max(self.nprob, 1) * sizeof(Problem))
        if self.probs == NULL:
            raise MemoryError()
        for p in range(self.nprob):
            self.probs[p].koff = self.probs[p].wkoff = NULL
        self.total = setup(&self.L, self.probs, self.nprob, problems, taps, itemsize,
                           self.phases)
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

    cdef void check(self, Py_ssize_t w_size, Py_ssize_t itemsize, bint packed) except *:
        """The weights (packed or raw) and the dtype match what was prepared."""
        cdef Layer *L = &self.L
        if L.nr != cc_gemm_nr(L.isa, itemsize):
            raise TypeError("IGemm: the arrays' dtype is not the one it was prepared for")
        if packed and w_size < L.packed_size:
            raise ValueError(f"packed weights have {w_size} elements, expected "
                             f"{L.packed_size}")
        if not packed and w_size < L.groups * L.sg:
            raise ValueError(f"weights have {w_size} elements, expected {L.groups * L.sg}")

    def pack(self, const floating[::1] w, floating[::1] dst):
        """Pack the raw weights w (C-contiguous, flattened) for run(..., packed=True): every
        problem, group, K block and panel, in the order run reads them."""
        self.check(w.shape[0], sizeof(floating), False)
        if dst.shape[0] < self.L.packed_size:
            raise ValueError(f"dst has {dst.shape[0]} elements, expected "
                             f"{self.L.packed_size}")
        with nogil:
            pack_all(&self.L, self.probs, self.nprob, &w[0], &dst[0])

    def run(self, x, w, bint packed, bias, out, int nthreads, bint pack_first=False):
        """Compute out from x (module docstring) on nthreads threads.

        x (N, C_in, H, W) and out (N, C_out, H_out, W_out) as prepared, C-contiguous, of the
        prepared dtype; w: pack()'s result (packed true) or the raw weights, any shape,
        C-contiguous (packed false: each work item packs the panels it uses into its
        workspace, or, with pack_first, they are all packed first into a buffer of this call,
        and the call runs as with pack()'s result); bias (C_out,) or None. The workspace
        (nthreads * workspace_elems, or workspace_elems_raw for raw weights not packed
        first) is allocated here. Every element of out is written exactly once."""
        cdef Layer *L = &self.L
        cdef Py_ssize_t per_thread
        cdef Py_buffer v[4]        # x, w, out, bias
        cdef int held = 0
        cdef void *ws = NULL
        cdef void *pk = NULL
        cdef Py_ssize_t *counters = NULL
        cdef const void *bias_p = NULL
        if pack_first and packed:
            raise ValueError("IGemm.run: pack_first needs the raw weights (packed false)")
        try:
            take_call(x, w, out, bias, v, &held, self.itemsize, L.N, L.C_in, L.H, L.W,
                      L.C_out, L.H_out, L.W_out, "IGemm.run")
            self.check(elements(&v[1]), self.itemsize, packed)
            if self.total == 0:
                return
            if bias is not None:
                bias_p = v[3].buf
            if pack_first:
                pk = workspace(1, L.packed_size, self.itemsize)
            per_thread = (self.workspace_elems if packed or pack_first
                          else self.workspace_elems_raw)
            ws = workspace(nthreads, per_thread, self.itemsize)
            counters = <Py_ssize_t *> workspace(nthreads, SHARE_PAD, sizeof(Py_ssize_t))
            with nogil:
                if self.itemsize == sizeof(float):
                    run_all(L, self.probs, self.nprob, self.total, <const float *> v[0].buf,
                            <const float *> v[1].buf, packed, <float *> pk,
                            <const float *> bias_p, <float *> v[2].buf, <float *> ws,
                            per_thread, nthreads, counters)
                else:
                    run_all(L, self.probs, self.nprob, self.total, <const double *> v[0].buf,
                            <const double *> v[1].buf, packed, <double *> pk,
                            <const double *> bias_p, <double *> v[2].buf, <double *> ws,
                            per_thread, nthreads, counters)
        finally:
            free(ws)
            free(pk)
            free(counters)
            release(v, held)


cdef inline Py_ssize_t pack_units(const Layer *L, const Problem *probs) noexcept nogil:
    """The units pack_unit packs: (group, K block, panel), the same blocks in every problem."""
    return L.groups * probs[0].nkb * L.npanels


cdef void pack_unit(const Layer *L, const Problem *probs, Py_ssize_t nprob, const floating *w,
                    floating *dst, Py_ssize_t unit) noexcept nogil:
    """Pack one (group, K block, panel) of every problem of the raw weights w into dst (laid
    out as pack_all's). A lone problem whose K blocks are contiguous in the weight (conv2d's)
    is transposed block by block; others (the phases of a transposed convolution, up to
    PACK_GROUP at once) channel by channel, each channel pair's taps read once
    (pack_by_channel)."""
    cdef Py_ssize_t nkb = probs[0].nkb
    cdef Py_ssize_t pan = unit % L.npanels
    cdef Py_ssize_t kb = (unit // L.npanels) % nkb
    cdef Py_ssize_t gi = unit // (L.npanels * nkb)
    cdef Py_ssize_t c0 = split_start(kb, L.Cg, nkb)
    cdef Py_ssize_t c1 = split_start(kb + 1, L.Cg, nkb)
    cdef Py_ssize_t r0 = panel_start(L, pan)
    cdef Py_ssize_t r = panel_start(L, pan + 1) - r0
    cdef Py_ssize_t p, p0 = 0, np
    cdef floating *d[PACK_GROUP]
    if nprob == 1 and probs[0].wk_contig:
        pack_panels(L, &probs[0], w, gi, pan, pan + 1, c0, c1,
                    &dst[packed_offset(L, &probs[0], gi, c0, c1, r0)])
        return
    while p0 < nprob:
        np = min(PACK_GROUP, nprob - p0)
        for p in range(np):
            d[p] = &dst[packed_offset(L, &probs[p0 + p], gi, c0, c1, r0)]
        pack_by_channel(L, &probs[p0], np, w + gi * L.sg + r0 * L.sm + c0 * L.sc,
                        max(0, min(r, L.Mg - r0)), r, c1 - c0, d)
        p0 += np


cdef void pack_all(const Layer *L, const Problem *probs, Py_ssize_t nprob, const floating *w,
                   floating *dst) noexcept nogil:
    """Pack the raw weights w into dst (L.packed_size elements): every problem, group, K
    block and panel, in the order the items read them."""
    cdef Py_ssize_t unit
    for unit in range(pack_units(L, probs)):
        pack_unit(L, probs, nprob, w, dst, unit)


cdef void run_all(const Layer *L, const Problem *probs, Py_ssize_t nprob, Py_ssize_t total,
                  const floating *x, const floating *w, bint packed, floating *pk,
                  const floating *bias, floating *out, floating *ws, Py_ssize_t per_thread,
                  int nthreads, Py_ssize_t *counters) noexcept nogil:
    """Every work item of the call, on nthreads threads, each with per_thread elements of
    ws (from workspace()). pk: NULL, or a buffer (from workspace()) to pack the raw weights
    w into first, then run as with packed weights. counters: nthreads * SHARE_PAD entries
    (nthreads > 1)."""
    cdef Py_ssize_t item, unit, units
    cdef unsigned long fp_mode
    cdef floating *wsp
    cdef Shares sh
    cdef int tid
    if pk != NULL:
        pk = line_aligned(pk)
        units = pack_units(L, probs)
        if nthreads == 1 or units < 2:
            pack_all(L, probs, nprob, w, pk)
        else:
            # Packed by every thread, a panel at a time, before any item reads them (DCGAN's
            # 4x4/s2 at 2 threads: the packing was a fifth of the call in one thread).
            shares_init(&sh, units, nthreads, False, counters)
            with parallel(num_threads=nthreads):
                tid = threadid()
                unit = take(&sh, tid)
                while unit >= 0:
                    pack_unit(L, probs, nprob, w, pk, unit)
                    unit = take(&sh, tid)
        w, packed = pk, True
    ws = line_aligned(ws)
    if nthreads == 1:
        # No parallel region for one thread: it would cost more than a tiny layer.
        fp_mode = cc_flush_denormals()
        for item in range(total):
            run_global(L, probs, item, x, w, packed, bias, out, ws)
        cc_restore_fp_mode(fp_mode)
        return
    # Shares dealt round-robin (_shares.pxd): a thread's weight panels and output stay in its
    # core's cache for the next call. Handed out on demand (schedule dynamic, in chunks), 2
    # threads ran 1.66-1.85x faster than one where fixed shares run 1.81-1.97x (MobileNetV2's
    # pw7, ResNet-50's 1x1 64->256 and 3x3 layers; quiet machine). Dealt, not contiguous: a
    # transposed convolution's items are in phase order, and two threads on two phases write
    # alternate elements of the same lines (contiguous halves: U-Net's 2x2/s2 1.4x slower).
    shares_init(&sh, total, nthreads, True, counters)
    with parallel(num_threads=nthreads):
        tid = threadid()
        wsp = ws + tid * per_thread
        fp_mode = cc_flush_denormals()
        item = take(&sh, tid)
        while item >= 0:
            run_global(L, probs, item, x, w, packed, bias, out, wsp)
            item = take(&sh, tid)
        cc_restore_fp_mode(fp_mode)

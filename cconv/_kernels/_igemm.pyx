# cython: language_level=3
"""Implicit GEMM convolution: dense and grouped conv2d, and the phases of conv_transpose2d.

Computes, for each problem (one for conv2d, stride_h * stride_w phases for a transposed
convolution), each image n and group g:

    out[n, g*Mg + m, oy0 + i*oys, ox0 + j*oxs] =
        bias[g*Mg + m] + sum_k A[g, m, k] * B[n, g, k, (i, j)]
    B[n, g, (ci, th, tw), (i, j)] = x[n, g*Cg + ci, i*sh + offh[th], j*sw + offw[tw]]
                                    (0 outside the image: that is the zero padding)

a GEMM of M = Mg output channels, N = Hp*Wp output pixels and K = Cg*KH*KW, where B (the
im2col matrix) is never formed whole. Layouts: x, out NCHW (C-contiguous); A packed by
`pack_weights` (below) into the micro-kernel's panels; the pixels run along the SIMD lanes, so
NCHW output rows are written in place.

The planner picks this for every dense and grouped convolution whose groups have more than a
few channels; 1x1 stride-1 unpadded layers read B straight from the input (no packing).

Tiling (the BLIS loop order, with B packed on the fly):

    for each work item (problem, n, g, block of Mc channels, block of Nc pixels)  <- threads
      for each K block (kc rows of the reduction; fixed for a layer, never per thread)
        pack B[k block, pixel block] -> per-thread buffer, panels of kc x NR
        for each NR panel of pixels
          for each MR panel of channels
            gemm_ukernel_<MR>x<NR>: C[MR x NR] (+)= A[MR x kc] B[kc x NR]   (registers)

Each output element belongs to one work item and is summed over K in a fixed order, so the
result is bitwise identical for every thread count.
"""
from cython.parallel cimport parallel, prange, threadid
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cython cimport floating


cdef extern from "gemm_dispatch.h" nogil:
    ctypedef void (*cc_gemm_f32_fn)(Py_ssize_t, const float *, const float *, Py_ssize_t,
                                    float *, Py_ssize_t, Py_ssize_t, const float *,
                                    int) noexcept nogil
    ctypedef void (*cc_gemm_f64_fn)(Py_ssize_t, const double *, const double *, Py_ssize_t,
                                    double *, Py_ssize_t, Py_ssize_t, const double *,
                                    int) noexcept nogil
    cc_gemm_f32_fn cc_gemm_ukernel_f32(int isa, Py_ssize_t mr)
    cc_gemm_f64_fn cc_gemm_ukernel_f64(int isa, Py_ssize_t mr)
    Py_ssize_t cc_gemm_nr(int isa, Py_ssize_t itemsize)
    int cc_isa_mr_max(int isa)


# Columns of the `problems` table given to igemm(): one row per problem.
PROBLEM_FIELDS = ("KH", "KW", "sh", "sw", "Hp", "Wp", "oy0", "oys", "ox0", "oxs",
                  "a_offset", "taps_offset")


cdef struct Problem:
    Py_ssize_t KH, KW, sh, sw        # taps and input strides
    const Py_ssize_t *offh           # input row of tap row th, minus i*sh (KH entries)
    const Py_ssize_t *offw           # input column of tap column tw, minus j*sw (KW entries)
    Py_ssize_t Hp, Wp                # GEMM pixel grid (i, j)
    Py_ssize_t oy0, oys, ox0, oxs    # where pixel (i, j) lands in the output
    Py_ssize_t a_offset              # this problem's packed weights in wpack
    Py_ssize_t K, nkb, npb, nmb      # reduction length, K blocks, pixel blocks, channel blocks
    Py_ssize_t items                 # work items: N * groups * nmb * npb
    bint in_place_b                  # 1x1, stride 1, no offset: B is the input itself
    bint in_place_c                  # output rows are the GEMM rows: C written in place


cdef struct Geometry:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out
    Py_ssize_t groups, Cg, Mg
    Py_ssize_t kc, nc                # most rows of a K block; pixels of a pixel block
    Py_ssize_t mr_max, nr            # the micro-kernel's tile
    Py_ssize_t npanels, ppb          # MR panels per group; panels per channel block
    Py_ssize_t ws_b                  # per-thread buffer: packed B, then a C block if needed
    int isa


cdef inline Py_ssize_t fdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Floor of a / b for any sign of a (the build uses C division, which truncates).
    Assumes: b > 0."""
    cdef Py_ssize_t q = a // b
    if q * b > a:
        q -= 1
    return q


cdef inline Py_ssize_t cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Ceiling of a / b for any sign of a. Assumes: b > 0."""
    return -fdiv(-a, b)


cdef inline Py_ssize_t split_start(Py_ssize_t i, Py_ssize_t total,
                                   Py_ssize_t parts) noexcept nogil:
    """Start of part i when total items are split into `parts` parts whose sizes differ by at
    most one (the larger first). Written without i * total, which could overflow.
    Assumes: 0 <= i <= parts, parts > 0."""
    return i * (total // parts) + min(i, total % parts)


cdef inline Py_ssize_t panel_row(Py_ssize_t i, Py_ssize_t Mg, Py_ssize_t npanels) noexcept nogil:
    """First channel of MR panel i: Mg channels split into npanels near-equal panels."""
    return split_start(i, Mg, npanels)


cdef inline Py_ssize_t k_start(Py_ssize_t j, Py_ssize_t K, Py_ssize_t nkb) noexcept nogil:
    """First reduction row of K block j: K split into nkb near-equal blocks."""
    return split_start(j, K, nkb)


cdef void copy_run(floating *d, const floating *row, Py_ssize_t o, Py_ssize_t run,
                   Py_ssize_t sw, Py_ssize_t offw, Py_ssize_t lo,
                   Py_ssize_t hi) noexcept nogil:
    """d[u] = row[(o+u)*sw + offw] for lo <= o+u < hi, else 0; for u < run.

    Assumes: columns o+u in [lo, hi) map inside the row; row is read only there.
    """
    cdef Py_ssize_t u
    cdef Py_ssize_t a = min(max(lo - o, 0), run)
    cdef Py_ssize_t b = min(max(hi - o, a), run)
    cdef const floating *s
    for u in range(a):
        d[u] = 0
    if b > a:
        s = row + (o + a) * sw + offw
        if sw == 1:
            for u in range(b - a):
                d[a + u] = s[u]
        else:
            for u in range(b - a):
                d[a + u] = s[u * sw]
    for u in range(b, run):
        d[u] = 0


cdef void pack_b(const Geometry *g, const Problem *pr, const floating *x,
                 Py_ssize_t k0, Py_ssize_t kcb, Py_ssize_t p0, Py_ssize_t pn,
                 floating *dst) noexcept nogil:
    """Pack B[k0:k0+kcb, p0:p0+pn] of one image and group into NR-wide panels.

    dst[(q // NR)*kcb*NR + kk*NR + q % NR] = B[k0 + kk, p0 + q]; lanes past pn are zero.
    Assumes: x points at channel 0 of the group in image n; 0 < pn; k0 + kcb <= K.
    """
    cdef Py_ssize_t nr = g.nr, H = g.H, W = g.W
    cdef Py_ssize_t taps = pr.KH * pr.KW
    cdef Py_ssize_t npad = cdiv(pn, nr) * nr
    cdef Py_ssize_t kk, k, ci, kh, kw, offw, lo, hi, oh, ow, q, seg, ih, t, qq, panel, lane, run
    cdef const floating *row
    cdef floating *d
    for kk in range(kcb):
        k = k0 + kk
        ci = k // taps
        kh = (k - ci * taps) // pr.KW
        kw = k - ci * taps - kh * pr.KW
        offw = pr.offw[kw]
        # Output columns whose input column ow*sw + offw lies inside [0, W).
        lo = max(cdiv(-offw, pr.sw), 0)
        hi = min(max(fdiv(W - 1 - offw, pr.sw) + 1, lo), pr.Wp)
        oh = p0 // pr.Wp
        ow = p0 - oh * pr.Wp
        q = 0
        while q < pn:
            seg = min(pr.Wp - ow, pn - q)
            ih = oh * pr.sh + pr.offh[kh]
            row = x + (ci * H + ih) * W if 0 <= ih < H else x
            t = 0
            while t < seg:
                qq = q + t
                panel = qq // nr
                lane = qq - panel * nr
                run = min(nr - lane, seg - t)
                d = dst + panel * kcb * nr + kk * nr + lane
                if 0 <= ih < H:
                    copy_run(d, row, ow + t, run, pr.sw, offw, lo, hi)
                else:
                    copy_run(d, row, ow + t, run, pr.sw, offw, 0, 0)
                t += run
            q += seg
            oh += 1
            ow = 0
        d = dst + (npad // nr - 1) * kcb * nr + kk * nr
        for qq in range(pn, npad):
            d[qq - (npad - nr)] = 0


cdef inline void ukernel(int isa, Py_ssize_t mr, Py_ssize_t kc, const floating *a,
                         const floating *b, Py_ssize_t ldb, floating *c, Py_ssize_t ldc,
                         Py_ssize_t nr, const floating *bias, int accumulate) noexcept nogil:
    """The mr x NR tile of variant isa: C (+)= A B (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_gemm_ukernel_f32(isa, mr)(kc, a, b, ldb, c, ldc, nr, bias, accumulate)
    else:
        cc_gemm_ukernel_f64(isa, mr)(kc, a, b, ldb, c, ldc, nr, bias, accumulate)


cdef void run_item(const Geometry *g, const Problem *pr, Py_ssize_t item,
                   const floating *x, const floating *wpack, const floating *bias,
                   floating *out, floating *ws) noexcept nogil:
    """One work item: all K blocks of one (n, group, channel block, pixel block) of a problem.

    Assumes: item < pr.items; ws holds g.ws_b elements owned by this thread.
    """
    cdef Py_ssize_t pb = item % pr.npb
    cdef Py_ssize_t mb = (item // pr.npb) % pr.nmb
    cdef Py_ssize_t gi = (item // (pr.npb * pr.nmb)) % g.groups
    cdef Py_ssize_t n = item // (pr.npb * pr.nmb * g.groups)
    cdef Py_ssize_t P = pr.Hp * pr.Wp
    cdef Py_ssize_t p0 = pb * g.nc
    cdef Py_ssize_t pn = min(g.nc, P - p0)
    cdef Py_ssize_t npanel = cdiv(pn, g.nr)
    cdef Py_ssize_t pan0 = mb * g.ppb
    cdef Py_ssize_t pan1 = min(pan0 + g.ppb, g.npanels)
    cdef Py_ssize_t row0 = panel_row(pan0, g.Mg, g.npanels)
    cdef Py_ssize_t HW = g.H * g.W, HWo = g.H_out * g.W_out
    cdef const floating *x_ng = x + (n * g.C_in + gi * g.Cg) * HW
    cdef const floating *a_g = wpack + pr.a_offset + gi * g.Mg * pr.K
    cdef const floating *bias_g = NULL
    cdef floating *out_ng = out + (n * g.C_out + gi * g.Mg) * HWo
    cdef floating *bbuf = ws
    cdef floating *cbuf = ws + g.kc * cdiv(g.nc, g.nr) * g.nr
    cdef floating *c
    cdef const floating *bp
    cdef Py_ssize_t kb, k0, kcb, jp, jn, pan, r0, r, ldb, ldc, i, q, oi, oj
    if bias != NULL:
        bias_g = bias + gi * g.Mg
    for kb in range(pr.nkb):
        k0 = k_start(kb, pr.K, pr.nkb)
        kcb = k_start(kb + 1, pr.K, pr.nkb) - k0
        if not pr.in_place_b:
            pack_b(g, pr, x_ng, k0, kcb, p0, pn, bbuf)
        for jp in range(npanel):
            jn = min(g.nr, pn - jp * g.nr)
            if not pr.in_place_b:
                bp = bbuf + jp * kcb * g.nr
                ldb = g.nr
            elif jn == g.nr:
                bp = x_ng + k0 * HW + p0 + jp * g.nr
                ldb = HW
            else:
                # The last, partial panel of a 1x1 layer is packed: the tile reads NR lanes.
                pack_b(g, pr, x_ng, k0, kcb, p0 + jp * g.nr, jn, bbuf)
                bp = bbuf
                ldb = g.nr
            for pan in range(pan0, pan1):
                r0 = panel_row(pan, g.Mg, g.npanels)
                r = panel_row(pan + 1, g.Mg, g.npanels) - r0
                if pr.in_place_c:
                    c = out_ng + r0 * HWo + p0 + jp * g.nr
                    ldc = HWo
                else:
                    c = cbuf + (r0 - row0) * g.nc + jp * g.nr
                    ldc = g.nc
                ukernel(g.isa, r, kcb, a_g + k0 * g.Mg + r0 * kcb, bp, ldb, c, ldc, jn,
                        (bias_g + r0) if bias_g != NULL else NULL, kb > 0)
    if not pr.in_place_c:
        r = panel_row(pan1, g.Mg, g.npanels) - row0
        for i in range(r):
            for q in range(pn):
                oi = (p0 + q) // pr.Wp
                oj = p0 + q - oi * pr.Wp
                out_ng[(row0 + i) * HWo + (pr.oy0 + oi * pr.oys) * g.W_out
                       + pr.ox0 + oj * pr.oxs] = cbuf[i * g.nc + q]


def tile(int isa, Py_ssize_t itemsize):
    """(MR, NR): most rows and the columns of variant isa's micro-kernel for this dtype size."""
    return cc_isa_mr_max(isa), cc_gemm_nr(isa, itemsize)


cpdef Py_ssize_t workspace_elems(Py_ssize_t kc, Py_ssize_t nc, Py_ssize_t nr, Py_ssize_t c_rows):
    """Per-thread buffer, in elements: packed B (kc x nc, rounded up to panels), then a
    c_rows x nc block of C when the output is not written in place (c_rows = 0 otherwise;
    else min(ppb * MR, Mg), the most channels of a channel block)."""
    return kc * cdiv(nc, nr) * nr + c_rows * nc


def pack_weights(const floating[:, :, ::1] a, floating[::1] dst, Py_ssize_t kc,
                 Py_ssize_t mr_max):
    """Pack A[g, m, k] (groups x Mg x K) into the layout run_item reads.

    For each group, K block (kc rows at most, K split evenly) and MR panel (Mg split evenly
    into panels of at most mr_max rows): dst[g*Mg*K + k0*Mg + r0*kcb + kk*r + i] =
    A[g, r0 + i, k0 + kk]. dst has the same size as A: no padding.
    """
    cdef Py_ssize_t G = a.shape[0], Mg = a.shape[1], K = a.shape[2]
    cdef Py_ssize_t nkb = cdiv(K, kc), npanels = cdiv(Mg, mr_max)
    cdef Py_ssize_t gi, kb, k0, kcb, pan, r0, r, kk, i
    cdef floating *d
    if dst.shape[0] != G * Mg * K:
        raise ValueError(f"dst has {dst.shape[0]} elements, expected {G * Mg * K}")
    with nogil:
        for gi in range(G):
            for kb in range(nkb):
                k0 = k_start(kb, K, nkb)
                kcb = k_start(kb + 1, K, nkb) - k0
                for pan in range(npanels):
                    r0 = panel_row(pan, Mg, npanels)
                    r = panel_row(pan + 1, Mg, npanels) - r0
                    d = &dst[gi * Mg * K + k0 * Mg + r0 * kcb]
                    for kk in range(kcb):
                        for i in range(r):
                            d[kk * r + i] = a[gi, r0 + i, k0 + kk]


def igemm(const floating[:, :, :, ::1] x, const floating[::1] wpack, const floating[::1] bias,
          floating[:, :, :, ::1] out, Py_ssize_t groups, const Py_ssize_t[:, ::1] problems,
          const Py_ssize_t[::1] taps, Py_ssize_t kc, Py_ssize_t nc, Py_ssize_t ppb, int isa,
          floating[::1] ws, int nthreads):
    """Run the problems of one convolution (see the module docstring) on nthreads threads.

    x (N, C_in, H, W); wpack: pack_weights of every problem, at its a_offset; bias (C_out,)
    or None; out (N, C_out, H_out, W_out), every element written exactly once; problems: one
    row of PROBLEM_FIELDS each, taps holding offh then offw at taps_offset; kc, nc, ppb: K
    block, pixel block, MR panels per channel block; ws: nthreads * workspace_elems(...).
    Assumes (checked by the planner): the problems tile the output exactly and all
    input reads of the taps tables stay inside the image or are masked as padding.
    """
    cdef Geometry g
    cdef Problem *probs
    cdef Py_ssize_t nprob = problems.shape[0], p, total = 0, item, local, c_rows = 0
    cdef Problem *pr
    cdef int tid
    cdef floating *wsp
    cdef const floating *bias_p = NULL
    g.N, g.C_in, g.H, g.W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    g.C_out, g.H_out, g.W_out = out.shape[1], out.shape[2], out.shape[3]
    g.groups = groups
    g.Cg = g.C_in // groups
    g.Mg = g.C_out // groups
    g.isa = isa
    g.mr_max, g.nr = tile(isa, sizeof(floating))
    g.kc, g.nc = kc, nc
    g.npanels = cdiv(g.Mg, g.mr_max)
    g.ppb = ppb
    if bias is not None:
        bias_p = &bias[0]
    probs = <Problem *> PyMem_Malloc(nprob * sizeof(Problem))
    if probs == NULL:
        raise MemoryError()
    try:
        for p in range(nprob):
            pr = &probs[p]
            pr.KH, pr.KW, pr.sh, pr.sw = problems[p, 0], problems[p, 1], problems[p, 2], problems[p, 3]
            pr.Hp, pr.Wp = problems[p, 4], problems[p, 5]
            pr.oy0, pr.oys, pr.ox0, pr.oxs = problems[p, 6], problems[p, 7], problems[p, 8], problems[p, 9]
            pr.a_offset = problems[p, 10]
            pr.offh = &taps[problems[p, 11]]
            pr.offw = &taps[problems[p, 11] + pr.KH]
            pr.K = g.Cg * pr.KH * pr.KW
            pr.nkb = cdiv(pr.K, kc)
            pr.npb = cdiv(pr.Hp * pr.Wp, nc)
            pr.nmb = cdiv(g.npanels, ppb)
            pr.items = g.N * groups * pr.nmb * pr.npb
            pr.in_place_b = (pr.KH == 1 and pr.KW == 1 and pr.sh == 1 and pr.sw == 1
                             and pr.offh[0] == 0 and pr.offw[0] == 0
                             and pr.Hp == g.H and pr.Wp == g.W)
            pr.in_place_c = (pr.oy0 == 0 and pr.ox0 == 0 and pr.oys == 1 and pr.oxs == 1
                             and pr.Hp == g.H_out and pr.Wp == g.W_out)
            if not pr.in_place_c:
                c_rows = min(ppb * g.mr_max, g.Mg)
            total += pr.items
        g.ws_b = workspace_elems(kc, nc, g.nr, c_rows)
        if ws.shape[0] < nthreads * g.ws_b:
            raise ValueError(f"ws has {ws.shape[0]} elements, expected {nthreads * g.ws_b}")
        if total == 0:
            return
        with nogil, parallel(num_threads=nthreads):
            tid = threadid()
            wsp = &ws[tid * g.ws_b]
            for item in prange(total, schedule="static"):
                local = item
                p = 0
                while local >= probs[p].items:
                    local = local - probs[p].items
                    p = p + 1
                run_item(&g, &probs[p], local, &x[0, 0, 0, 0], &wpack[0], bias_p,
                         &out[0, 0, 0, 0], wsp)
    finally:
        PyMem_Free(probs)

# cython: language_level=3
"""Depthwise convolution: groups == in_channels, one input channel per group.

    out[n, c*m + j, oh, ow] = bias[c*m + j]
        + sum_{kh, kw} w[c*m + j, kh, kw] * xpad[n, c, oh*sh + kh*dh, ow*sw + kw*dw]

for a channel multiplier m = C_out / C_in (m = 1 for MobileNet's depthwise layers; C_in = 1
makes any single-input-channel layer, e.g. MNIST's first, a depthwise one). Layouts: x, out
NCHW (C-contiguous); w (C_out, KH*KW). The planner picks this whenever each group has one
input channel: a GEMM per group would have K = KH*KW and waste the tile.

Each work item is a band of output rows of one (image, input channel). The band's input rows
are copied once, zero-padded and split into sw phases, into a per-thread buffer:

    buffer row r, phase f, element t  =  xpad[oh0*sh + r, f + t*sw]

so that tap (kh, kw) of output row oh reads one contiguous run, at row (oh-oh0)*sh + kh*dh,
phase (kw*dw) % sw, offset (kw*dw) // sw. dwconv_ukernel then computes a whole output row with
the columns across the SIMD lanes and the taps in registers, for each of the m outputs.
Each output element is computed by one thread in a fixed order: bitwise identical results for
any thread count.
"""
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating
from libc.stdlib cimport malloc, free


cdef extern from "dwconv_dispatch.h" nogil:
    ctypedef void (*cc_dwconv_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                      const float *, float, float *, Py_ssize_t) noexcept nogil
    ctypedef void (*cc_dwconv_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                      const double *, double, double *,
                                      Py_ssize_t) noexcept nogil
    cc_dwconv_f32_fn cc_dwconv_ukernel_f32(int isa)
    cc_dwconv_f64_fn cc_dwconv_ukernel_f64(int isa)
    Py_ssize_t cc_dwconv_lanes(int isa, Py_ssize_t itemsize)


cdef struct Band:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out, m
    Py_ssize_t KH, KW, sh, sw, pt, pl, dh, dw
    Py_ssize_t rows, nbands          # output rows per band; bands per channel
    Py_ssize_t lp, row_stride        # elements per phase; per buffer row (sw * lp)
    Py_ssize_t ws                    # per-thread buffer elements
    int isa


cdef inline Py_ssize_t cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Ceiling of a / b. Assumes: a >= 0, b > 0."""
    return (a + b - 1) // b


cpdef tuple band_geometry(Py_ssize_t W_out, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t sh,
                          Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t rows,
                          int isa, Py_ssize_t itemsize):
    """(lp, per-thread buffer elements) of a band of `rows` output rows.

    lp covers the padded columns a row reads, (W_out-1)*sw + (KW-1)*dw + 1, per phase, plus
    one vector of slack for the micro-kernel's last vector load."""
    cdef Py_ssize_t lp = cdiv((W_out - 1) * sw + (KW - 1) * dw + 1, sw) + \
        cc_dwconv_lanes(isa, itemsize)
    cdef Py_ssize_t rows_in = (rows - 1) * sh + (KH - 1) * dh + 1
    return lp, rows_in * sw * lp


cdef void fill_band(const Band *b, const floating *xc, Py_ssize_t oh0, Py_ssize_t rows_in,
                    floating *buf) noexcept nogil:
    """Copy padded input rows oh0*sh .. oh0*sh + rows_in - 1 of one channel into buf, split
    into sw phases (see the module docstring). Assumes: xc points at the channel's plane."""
    cdef Py_ssize_t r, f, t, ih, lo, hi
    cdef floating *d
    cdef const floating *row
    for r in range(rows_in):
        ih = oh0 * b.sh + r - b.pt
        for f in range(b.sw):
            d = buf + r * b.row_stride + f * b.lp
            if ih < 0 or ih >= b.H:
                for t in range(b.lp):
                    d[t] = 0
                continue
            # Element t holds input column f + t*sw - pl: inside the row for t in [lo, hi).
            lo = min(cdiv(max(b.pl - f, 0), b.sw), b.lp)
            hi = max(min(cdiv(max(b.W + b.pl - f, 0), b.sw), b.lp), lo)
            for t in range(lo):
                d[t] = 0
            row = xc + ih * b.W
            for t in range(lo, hi):
                d[t] = row[t * b.sw + f - b.pl]
            for t in range(hi, b.lp):
                d[t] = 0


cdef inline void dw_row(int isa, Py_ssize_t taps, const floating *base, const Py_ssize_t *toff,
                        const floating *w, floating bias, floating *out,
                        Py_ssize_t n) noexcept nogil:
    """One output row by variant isa's micro-kernel (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_dwconv_ukernel_f32(isa)(taps, base, toff, w, bias, out, n)
    else:
        cc_dwconv_ukernel_f64(isa)(taps, base, toff, w, bias, out, n)


cdef void run_band(const Band *b, Py_ssize_t item, const floating *x, const floating *w,
                   const floating *bias, floating *out, const Py_ssize_t *toff,
                   floating *buf) noexcept nogil:
    """Work item `item`: one band of output rows of one (image, input channel), all m outputs.
    Assumes: buf holds b.ws elements owned by this thread."""
    cdef Py_ssize_t band = item % b.nbands
    cdef Py_ssize_t c = (item // b.nbands) % b.C_in
    cdef Py_ssize_t n = item // (b.nbands * b.C_in)
    cdef Py_ssize_t oh0 = band * b.rows
    cdef Py_ssize_t rows = min(b.rows, b.H_out - oh0)
    cdef Py_ssize_t taps = b.KH * b.KW
    cdef Py_ssize_t oh, j, co
    cdef floating bj
    fill_band(b, x + (n * b.C_in + c) * b.H * b.W, oh0, (rows - 1) * b.sh + (b.KH - 1) * b.dh + 1,
              buf)
    for j in range(b.m):
        co = c * b.m + j
        bj = bias[co] if bias != NULL else 0
        for oh in range(rows):
            dw_row(b.isa, taps, buf + oh * b.sh * b.row_stride, toff, w + co * taps, bj,
                   out + ((n * b.C_out + co) * b.H_out + oh0 + oh) * b.W_out, b.W_out)


def depthwise(const floating[:, :, :, ::1] x, const floating[:, ::1] w,
              const floating[::1] bias, floating[:, :, :, ::1] out, Py_ssize_t KH,
              Py_ssize_t KW, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
              Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t rows, int isa, floating[::1] ws,
              int nthreads):
    """Depthwise conv2d (module docstring) on nthreads threads, bands of `rows` output rows.

    x (N, C_in, H, W); w (C_out, KH*KW) with C_out a multiple of C_in; bias (C_out,) or None;
    out (N, C_out, H_out, W_out), every element written once; ws: nthreads times the
    per-thread elements of band_geometry(...). pt, pl: top and left padding (the bottom and
    right padding follow from the output size)."""
    cdef Band b
    cdef Py_ssize_t item, total, kh, kw, t
    cdef Py_ssize_t *toff
    cdef const floating *bias_p = NULL
    cdef floating *buf
    b.N, b.C_in, b.H, b.W = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    b.C_out, b.H_out, b.W_out = out.shape[1], out.shape[2], out.shape[3]
    b.m = b.C_out // b.C_in
    b.KH, b.KW, b.sh, b.sw, b.pt, b.pl, b.dh, b.dw = KH, KW, sh, sw, pt, pl, dh, dw
    b.rows = rows
    b.nbands = cdiv(b.H_out, rows)
    b.isa = isa
    b.lp, b.ws = band_geometry(b.W_out, KH, KW, sh, sw, dh, dw, rows, isa, sizeof(floating))
    b.row_stride = sw * b.lp
    if ws.shape[0] < nthreads * b.ws:
        raise ValueError(f"ws has {ws.shape[0]} elements, expected {nthreads * b.ws}")
    if w.shape[0] != b.C_out or w.shape[1] != KH * KW:
        raise ValueError(f"w has shape {tuple(w.shape)[:2]}, expected ({b.C_out}, {KH * KW})")
    total = b.N * b.C_in * b.nbands
    if total == 0:
        return
    if bias is not None:
        bias_p = &bias[0]
    toff = <Py_ssize_t *> malloc(KH * KW * sizeof(Py_ssize_t))
    if toff == NULL:
        raise MemoryError()
    for kh in range(KH):
        for kw in range(KW):
            t = kw * dw
            toff[kh * KW + kw] = kh * dh * b.row_stride + (t % sw) * b.lp + t // sw
    try:
        with nogil, parallel(num_threads=nthreads):
            buf = &ws[threadid() * b.ws]
            for item in prange(total, schedule="static"):
                run_band(&b, item, &x[0, 0, 0, 0], &w[0, 0], bias_p, &out[0, 0, 0, 0], toff,
                         buf)
    finally:
        free(toff)

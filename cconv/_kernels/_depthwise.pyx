# cython: language_level=3
"""Depthwise convolution: groups == in_channels, one input channel per group.

    out[n, c*m + j, oh, ow] = bias[c*m + j]
        + sum_{kh, kw} w[c*m + j, kh, kw] * x[n, c, oh*sh + kh*dh - pt, ow*sw + kw*dw - pl]

(x zero outside the image) for a channel multiplier m = C_out / C_in (m = 1 for MobileNet's
depthwise layers; C_in = 1 makes any single-input-channel layer, e.g. MNIST's first, a
depthwise one). Layouts: x, out NCHW (C-contiguous); w (C_out, KH*KW). The planner picks this
whenever each group has one input channel: a GEMM per group would have K = KH*KW and waste
its register tile.

Each work item is a band of output rows of one (image, input channel). The band's input is
copied once into the band buffer (_band.pxd: zero-padded, split into stride phases), where
every tap of every output pixel is at a fixed offset. dwconv_ukernel then computes outputs
with the columns across the SIMD lanes and the taps in registers, for each of the m outputs:
row by row, written in place, when rows are wide; over the band's flat index (rows joined,
padding columns computed and dropped) when rows are narrower than a few vectors, as on
MobileNet's 14x14 and 7x7 layers.
Each output element is computed by one thread in a fixed order: bitwise identical results for
any thread count.
"""
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating
from libc.stdlib cimport free, malloc

from ._band cimport Band, band_init, cdiv, fill_band, tap_offset


cdef extern from "dwconv_dispatch.h" nogil:
    ctypedef void (*cc_dwconv_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                      const float *, float, float *, Py_ssize_t) noexcept nogil
    ctypedef void (*cc_dwconv_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                      const double *, double, double *,
                                      Py_ssize_t) noexcept nogil
    cc_dwconv_f32_fn cc_dwconv_ukernel_f32(int isa)
    cc_dwconv_f64_fn cc_dwconv_ukernel_f64(int isa)
    Py_ssize_t cc_dwconv_lanes(int isa, Py_ssize_t itemsize)


cdef struct Layer:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out, m
    Py_ssize_t taps, rows, nbands
    bint flat                        # rows narrower than 4 vectors: compute the band flat
    Py_ssize_t ws_band, ws           # per-thread elements: band buffer, total
    int isa
    Band band


cdef inline void dw_run(int isa, Py_ssize_t taps, const floating *base, const Py_ssize_t *toff,
                        const floating *w, floating bias, floating *out,
                        Py_ssize_t n) noexcept nogil:
    """out[j] = bias + sum_t w[t]*base[toff[t] + j], j < n, by variant isa's micro-kernel
    (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_dwconv_ukernel_f32(isa)(taps, base, toff, w, bias, out, n)
    else:
        cc_dwconv_ukernel_f64(isa)(taps, base, toff, w, bias, out, n)


cdef void band_setup(Layer *L, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t sh, Py_ssize_t sw,
                     Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                     Py_ssize_t rows, Py_ssize_t lanes, Py_ssize_t *toff) noexcept nogil:
    """Band geometry and, if toff is not NULL, the tap offsets (KH*KW entries)."""
    cdef Py_ssize_t offh[2], offw[2], kh, kw
    # The band depends only on the extreme taps; the others lie between them.
    offh[0], offh[1] = -pt, (KH - 1) * dh - pt
    offw[0], offw[1] = -pl, (KW - 1) * dw - pl
    band_init(&L.band, L.H, L.W, sh, sw, offh, 2, offw, 2, L.W_out, rows, 4 * lanes)
    L.taps = KH * KW
    L.rows = rows
    L.nbands = cdiv(L.H_out, rows)
    L.flat = L.W_out < 4 * lanes
    L.ws_band = L.band.chan_stride
    L.ws = L.ws_band + (rows * L.band.Wsub + 4 * lanes if L.flat else 0)
    if toff != NULL:
        for kh in range(KH):
            for kw in range(KW):
                toff[kh * KW + kw] = tap_offset(&L.band, kh * dh - pt, kw * dw - pl)


cdef void run_band(const Layer *L, Py_ssize_t item, const floating *x, const floating *w,
                   const floating *bias, floating *out, const Py_ssize_t *toff,
                   floating *ws) noexcept nogil:
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
                for t in range(W_out):
                    o[u * W_out + t] = tmp[u * Wsub + t]
        else:
            for u in range(R):
                dw_run(L.isa, L.taps, ws + u * bd.Wsub, toff, w + co * L.taps, bj,
                       o + u * L.W_out, L.W_out)


cdef Layer layer_of(Py_ssize_t N, Py_ssize_t C_in, Py_ssize_t H, Py_ssize_t W,
                    Py_ssize_t C_out, Py_ssize_t H_out, Py_ssize_t W_out, int isa):
    cdef Layer L
    L.N, L.C_in, L.H, L.W = N, C_in, H, W
    L.C_out, L.H_out, L.W_out = C_out, H_out, W_out
    L.m = C_out // C_in
    L.isa = isa
    return L


def workspace_elems(Py_ssize_t[::1] shape, Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t sh,
                    Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl, Py_ssize_t dh, Py_ssize_t dw,
                    Py_ssize_t rows, int isa, Py_ssize_t itemsize):
    """Per-thread workspace (elements) and work items of depthwise() with these arguments.
    shape: N, C_in, H, W, C_out, H_out, W_out."""
    cdef Layer L = layer_of(shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
                            shape[6], isa)
    band_setup(&L, KH, KW, sh, sw, pt, pl, dh, dw, rows, cc_dwconv_lanes(isa, itemsize), NULL)
    return L.ws, L.N * L.C_in * L.nbands


def depthwise(const floating[:, :, :, ::1] x, const floating[:, ::1] w,
              const floating[::1] bias, floating[:, :, :, ::1] out, Py_ssize_t KH,
              Py_ssize_t KW, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
              Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t rows, int isa, floating[::1] ws,
              int nthreads):
    """Depthwise conv2d (module docstring) on nthreads threads, bands of `rows` output rows.

    x (N, C_in, H, W); w (C_out, KH*KW) with C_out a multiple of C_in; bias (C_out,) or None;
    out (N, C_out, H_out, W_out), every element written once; ws: nthreads times the
    per-thread elements of workspace_elems(...). pt, pl: top and left padding (the bottom and
    right padding follow from the output size)."""
    cdef Layer L = layer_of(x.shape[0], x.shape[1], x.shape[2], x.shape[3], out.shape[1],
                            out.shape[2], out.shape[3], isa)
    cdef Py_ssize_t item, total
    cdef Py_ssize_t *toff
    cdef const floating *bias_p = NULL
    cdef floating *wsp
    if w.shape[0] != L.C_out or w.shape[1] != KH * KW:
        raise ValueError(f"w has shape {tuple(w.shape)[:2]}, expected ({L.C_out}, {KH * KW})")
    toff = <Py_ssize_t *> malloc(KH * KW * sizeof(Py_ssize_t))
    if toff == NULL:
        raise MemoryError()
    try:
        band_setup(&L, KH, KW, sh, sw, pt, pl, dh, dw, rows,
                   cc_dwconv_lanes(isa, sizeof(floating)), toff)
        if ws.shape[0] < nthreads * L.ws:
            raise ValueError(f"ws has {ws.shape[0]} elements, expected {nthreads * L.ws}")
        total = L.N * L.C_in * L.nbands
        if total == 0:
            return
        if bias is not None:
            bias_p = &bias[0]
        with nogil, parallel(num_threads=nthreads):
            wsp = &ws[threadid() * L.ws]
            for item in prange(total, schedule="static"):
                run_band(&L, item, &x[0, 0, 0, 0], &w[0, 0], bias_p, &out[0, 0, 0, 0], toff,
                         wsp)
    finally:
        free(toff)

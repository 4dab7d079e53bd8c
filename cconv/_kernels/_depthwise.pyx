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
the planner can drop taps that only ever read padding. Each work item is a band of output
rows of one (image, input channel). The band's input is
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

from ._band cimport (Band, add_sat, band_init, cdiv, fill_band, line_aligned, mul_sat,
                     round_line, tap_offset)
from ._buffers cimport release, shape_is, take_call, workspace


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "isa.h" nogil:
    unsigned long cc_flush_denormals()
    void cc_restore_fp_mode(unsigned long old)


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


cdef void band_setup(Layer *L, const Py_ssize_t[::1] offh, const Py_ssize_t[::1] offw,
                     Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t rows, Py_ssize_t itemsize,
                     Py_ssize_t lanes, Py_ssize_t *toff) noexcept:
    """Band geometry and, if toff is not NULL, the tap offsets (KH*KW entries)."""
    cdef Py_ssize_t KH = offh.shape[0], KW = offw.shape[0], kh, kw
    band_init(&L.band, L.H, L.W, sh, sw, &offh[0], KH, &offw[0], KW, L.W_out, rows,
              4 * lanes)
    L.taps = KH * KW
    L.rows = rows
    L.nbands = cdiv(L.H_out, rows)
    L.flat = L.W_out < 4 * lanes
    # Sizes saturate (mul_sat): too large for the platform reads as too large.
    L.ws_band = round_line(L.band.chan_stride, itemsize)
    L.ws = add_sat(L.ws_band, round_line(add_sat(mul_sat(rows, L.band.Wsub), 4 * lanes)
                                         if L.flat else 0, itemsize))
    if toff != NULL:
        for kh in range(KH):
            for kw in range(KW):
                toff[kh * KW + kw] = tap_offset(&L.band, offh[kh], offw[kw])


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


def workspace_elems(Py_ssize_t[::1] shape, const Py_ssize_t[::1] offh,
                    const Py_ssize_t[::1] offw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t rows,
                    int isa, Py_ssize_t itemsize):
    """Per-thread workspace (elements; PY_SSIZE_T_MAX where a size would overflow) and work
    items of Depthwise with these arguments.
    shape: N, C_in, H, W, C_out, H_out, W_out; offh, offw: the input row (column) of each
    tap row (column) at output 0, e.g. kh*dilation - padding."""
    cdef Layer L = layer_of(shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
                            shape[6], isa)
    band_setup(&L, offh, offw, sh, sw, rows, itemsize, cc_dwconv_lanes(isa, itemsize), NULL)
    return L.ws, L.N * L.C_in * L.nbands


cdef class Depthwise:
    """One depthwise layer, prepared once (band geometry, tap offsets) and run many times.
    Arguments as for workspace_elems(); the weights it runs with have one column per tap."""
    cdef Layer L
    cdef Py_ssize_t *toff
    cdef Py_ssize_t itemsize
    cdef readonly Py_ssize_t workspace_elems

    def __cinit__(self, Py_ssize_t[::1] shape, const Py_ssize_t[::1] offh,
                  const Py_ssize_t[::1] offw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t rows,
                  int isa, Py_ssize_t itemsize):
        self.L = layer_of(shape[0], shape[1], shape[2], shape[3], shape[4], shape[5],
                          shape[6], isa)
        cdef Py_ssize_t table = mul_sat(mul_sat(offh.shape[0], offw.shape[0]),
                                        sizeof(Py_ssize_t))
        self.toff = NULL if table == PY_SSIZE_T_MAX else <Py_ssize_t *> malloc(table)
        if self.toff == NULL:
            raise MemoryError()
        band_setup(&self.L, offh, offw, sh, sw, rows, itemsize, cc_dwconv_lanes(isa, itemsize),
                   self.toff)
        self.workspace_elems = self.L.ws
        if self.workspace_elems > PY_SSIZE_T_MAX // 64:
            raise MemoryError("Depthwise: the workspace of this geometry exceeds what this "
                              "platform can address")
        self.itemsize = itemsize

    def __dealloc__(self):
        free(self.toff)

    def run(self, x, w, bias, out, int nthreads):
        """Compute out from x (module docstring) on nthreads threads. x, out as prepared,
        C-contiguous, of the prepared dtype; w (C_out, KH*KW); bias (C_out,) or None. The
        workspace (nthreads * workspace_elems) is allocated here."""
        cdef Layer *L = &self.L
        cdef Py_ssize_t total = L.N * L.C_in * L.nbands
        cdef Py_buffer v[4]        # x, w, out, bias
        cdef int held = 0
        cdef void *ws = NULL
        cdef const void *bias_p = NULL
        try:
            take_call(x, w, out, bias, v, &held, self.itemsize, L.N, L.C_in, L.H, L.W,
                      L.C_out, L.H_out, L.W_out, "Depthwise.run")
            if not shape_is(&v[1], 2, L.C_out, L.taps):
                raise ValueError("Depthwise.run: w does not match the prepared geometry")
            if total == 0:
                return
            if bias is not None:
                bias_p = v[3].buf
            ws = workspace(nthreads, L.ws, self.itemsize)
            with nogil:
                if self.itemsize == sizeof(float):
                    run_all(L, self.toff, total, <const float *> v[0].buf,
                            <const float *> v[1].buf, <const float *> bias_p,
                            <float *> v[2].buf, <float *> ws, nthreads)
                else:
                    run_all(L, self.toff, total, <const double *> v[0].buf,
                            <const double *> v[1].buf, <const double *> bias_p,
                            <double *> v[2].buf, <double *> ws, nthreads)
        finally:
            free(ws)
            release(v, held)


cdef void run_all(const Layer *L, const Py_ssize_t *toff, Py_ssize_t total, const floating *x,
                  const floating *w, const floating *bias, floating *out, floating *ws,
                  int nthreads) noexcept nogil:
    """Every work item of the call, on nthreads threads, each with L.ws elements of ws (from
    workspace())."""
    cdef Py_ssize_t item
    cdef unsigned long fp_mode
    cdef floating *wsp
    # Items are small (a 14x14 channel: ~0.25 us): handed out one by one, the shared counter
    # bounced between the cores each time (2 threads: 1.08x faster than one; in chunks of a
    # sixteenth of a thread's share, 1.6x).
    cdef Py_ssize_t chunk = max(1, total // (16 * nthreads))
    ws = line_aligned(ws)
    if nthreads == 1:
        # No parallel region for one thread: it would cost more than a tiny layer.
        fp_mode = cc_flush_denormals()
        for item in range(total):
            run_band(L, item, x, w, bias, out, toff, ws)
        cc_restore_fp_mode(fp_mode)
        return
    # Dynamic: a thread that runs ahead (uneven items, a sibling descheduled) takes the next
    # item. Each item is still computed by one thread in a fixed order, so the result does
    # not depend on which thread took it.
    with parallel(num_threads=nthreads):
        wsp = ws + threadid() * L.ws
        fp_mode = cc_flush_denormals()
        for item in prange(total, schedule="dynamic", chunksize=chunk):
            run_band(L, item, x, w, bias, out, toff, wsp)
        cc_restore_fp_mode(fp_mode)

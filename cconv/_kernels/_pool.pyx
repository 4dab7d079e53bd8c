# cython: language_level=3
"""2-D pooling over planes: max, average, adaptive average and adaptive max, as torch's CPU
kernels compute them.

    max:  out[p, oh, ow] = max over kh < KH, kw < KW of x[p, oh*sh - ph + kh*dh,
                                                         ow*sw - pw + kw*dw]
          over the taps inside the image only (padding never wins; a window of padding only
          gives -inf); NaN wins and stays, as torch's `val > max || isnan(val)`.
    avg:  out[p, oh, ow] = sum of x over the window clipped to the image / divisor, where the
          divisor is divisor_override, else the window clipped to the padded image
          (count_include_pad) or to the image.
    adaptive: the window of output row i is input rows floor(i*H/Ho) .. ceil((i+1)*H/Ho) - 1
          (likewise columns); the average is sum / kh / kw, as torch divides.

Layouts: x (P, H, W) and out (P, Ho, Wo), C-contiguous, P = N*C planes; indices (when asked
for) (P, Ho, Wo) int64, the flat index h*W + w of each maximum in its plane. The Python side
(cconv.nn.pooling) checks every argument and computes the output sizes; these functions have
no failure paths.

Max pooling without indices runs an output row at a time through pooling.h's micro-kernel
(maxpool_ukernel.h, output columns in the vector lanes, the variant given by `isa`); with
indices, and the other modes, element by element here.

Work is split over planes, taken by the threads of the pool (_driver.run_plain); each output
element is computed by one thread, its window read in a fixed order (rows, then columns), so
results are bitwise identical for any thread count.
"""
from cython cimport floating
from libc.math cimport INFINITY, isnan
from libc.stdint cimport int64_t

from ._driver cimport run_plain
from ._sizes cimport cdiv


cdef extern from "pooling.h" nogil:
    ctypedef struct cc_maxpool_geom:
        Py_ssize_t W, Wo, KW, sw, pw, dw, a, b
    ctypedef void (*cc_maxpool_f32_fn)(const cc_maxpool_geom *, const float *, Py_ssize_t,
                                       Py_ssize_t, float *) noexcept nogil
    ctypedef void (*cc_maxpool_f64_fn)(const cc_maxpool_geom *, const double *, Py_ssize_t,
                                       Py_ssize_t, double *) noexcept nogil
    cc_maxpool_f32_fn cc_maxpool_ukernel_f32(int isa)
    cc_maxpool_f64_fn cc_maxpool_ukernel_f64(int isa)


cdef struct Pool:
    Py_ssize_t H, W, Ho, Wo
    Py_ssize_t KH, KW, sh, sw, ph, pw, dh, dw
    bint count_include_pad
    Py_ssize_t divisor               # divisor_override, or 0 for none
    int isa                          # the instruction-set variant of max_row
    cc_maxpool_geom g                # max_row's columns


cdef inline Py_ssize_t start_index(Py_ssize_t i, Py_ssize_t out, Py_ssize_t size) noexcept nogil:
    """floor(i*size/out), as torch computes it.
    Assumes: out*size fits in Py_ssize_t (cconv.nn.pooling checks it)."""
    return (i // out) * size + ((i % out) * size) // out


cdef inline Py_ssize_t end_index(Py_ssize_t i, Py_ssize_t out, Py_ssize_t size) noexcept nogil:
    """ceil((i + 1)*size/out), as torch computes it (i < out)."""
    return 1 + ((i + 1) * size - 1) // out


cdef inline void max_row(int isa, const cc_maxpool_geom *g, const floating *x, Py_ssize_t rs,
                         Py_ssize_t rows, floating *o) noexcept nogil:
    """Output row o of max pooling without indices from the window rows x + r*rs, r < rows
    (pooling.h), by variant isa's micro-kernel."""
    if floating is float:
        cc_maxpool_ukernel_f32(isa)(g, x, rs, rows, o)
    else:
        cc_maxpool_ukernel_f64(isa)(g, x, rs, rows, o)


cdef void max_plane_values(const Pool *P, const floating *x, floating *out) noexcept nogil:
    """One plane of max pooling without indices, an output row at a time by max_row (its
    window's rows inside the image, then its columns, as torch visits them).
    Assumes: dh >= 1."""
    cdef Py_ssize_t oh, h, h0, h1, rows
    for oh in range(P.Ho):
        h0 = oh * P.sh - P.ph
        h1 = min(h0 + (P.KH - 1) * P.dh + 1, P.H)
        while h0 < 0:
            h0 += P.dh
        rows = 0
        h = h0
        while h < h1:
            rows += 1
            h += P.dh
        if rows == 0:
            h0 = 0                   # a window of padding only: x + h0*W stays in the plane
        max_row(P.isa, &P.g, x + h0 * P.W, P.dh * P.W, rows, out + oh * P.Wo)


cdef void max_indices(const Pool *P, const floating *x, floating *out,
                      int64_t *idx) noexcept nogil:
    """A max-pooled plane and the index of each maximum, element by element.
    Assumes: dh, dw >= 1 (the loops step by them)."""
    cdef Py_ssize_t oh, ow, h, w, h0, h1, w0, w1, best
    cdef floating v, m
    for oh in range(P.Ho):
        h0 = oh * P.sh - P.ph
        h1 = min(h0 + (P.KH - 1) * P.dh + 1, P.H)
        while h0 < 0:
            h0 += P.dh
        for ow in range(P.Wo):
            w0 = ow * P.sw - P.pw
            w1 = min(w0 + (P.KW - 1) * P.dw + 1, P.W)
            while w0 < 0:
                w0 += P.dw
            m = -INFINITY
            best = h0 * P.W + w0
            h = h0
            while h < h1:
                w = w0
                while w < w1:
                    v = x[h * P.W + w]
                    if v > m or isnan(v):
                        m = v
                        best = h * P.W + w
                    w += P.dw
                h += P.dh
            out[oh * P.Wo + ow] = m
            idx[oh * P.Wo + ow] = best


cdef void avg_plane(const Pool *P, const floating *x, floating *out) noexcept nogil:
    """One plane of average pooling."""
    cdef Py_ssize_t oh, ow, h, w, h0, h1, w0, w1, hc0, hc1, wc0, wc1, size, divisor
    cdef floating s
    for oh in range(P.Ho):
        h0 = oh * P.sh - P.ph
        h1 = min(h0 + P.KH, P.H + P.ph)
        hc0 = max(h0, 0)
        hc1 = min(h1, P.H)
        for ow in range(P.Wo):
            w0 = ow * P.sw - P.pw
            w1 = min(w0 + P.KW, P.W + P.pw)
            wc0 = max(w0, 0)
            wc1 = min(w1, P.W)
            # The window beyond the padded image (ceil_mode's last one) never counts.
            size = (h1 - h0) * (w1 - w0)
            if hc0 >= hc1 or wc0 >= wc1:
                out[oh * P.Wo + ow] = 0
                continue
            s = 0
            for h in range(hc0, hc1):
                for w in range(wc0, wc1):
                    s = s + x[h * P.W + w]
            if P.divisor != 0:
                divisor = P.divisor
            elif P.count_include_pad:
                divisor = size
            else:
                divisor = (hc1 - hc0) * (wc1 - wc0)
            out[oh * P.Wo + ow] = s / divisor


cdef void adaptive_avg_plane(const Pool *P, const floating *x, floating *out) noexcept nogil:
    """One plane of adaptive average pooling."""
    cdef Py_ssize_t oh, ow, h, w, h0, h1, w0, w1
    cdef floating s
    for oh in range(P.Ho):
        h0 = start_index(oh, P.Ho, P.H)
        h1 = end_index(oh, P.Ho, P.H)
        for ow in range(P.Wo):
            w0 = start_index(ow, P.Wo, P.W)
            w1 = end_index(ow, P.Wo, P.W)
            s = 0
            for h in range(h0, h1):
                for w in range(w0, w1):
                    s = s + x[h * P.W + w]
            out[oh * P.Wo + ow] = s / (h1 - h0) / (w1 - w0)


cdef void adaptive_max_plane(const Pool *P, const floating *x, floating *out,
                             int64_t *idx) noexcept nogil:
    """One plane of adaptive max pooling; idx: NULL, or where each maximum's index goes."""
    cdef Py_ssize_t oh, ow, h, w, h0, h1, w0, w1, best
    cdef floating v, m
    for oh in range(P.Ho):
        h0 = start_index(oh, P.Ho, P.H)
        h1 = end_index(oh, P.Ho, P.H)
        for ow in range(P.Wo):
            w0 = start_index(ow, P.Wo, P.W)
            w1 = end_index(ow, P.Wo, P.W)
            m = -INFINITY
            best = h0 * P.W + w0
            for h in range(h0, h1):
                for w in range(w0, w1):
                    v = x[h * P.W + w]
                    if v > m or isnan(v):
                        m = v
                        best = h * P.W + w
            out[oh * P.Wo + ow] = m
            if idx != NULL:
                idx[oh * P.Wo + ow] = best


cdef enum:
    MAX = 0
    AVG = 1
    ADAPTIVE_AVG = 2
    ADAPTIVE_MAX = 3


MODE_MAX = MAX
MODE_AVG = AVG
MODE_ADAPTIVE_AVG = ADAPTIVE_AVG
MODE_ADAPTIVE_MAX = ADAPTIVE_MAX


cdef inline void run_plane(int mode, const Pool *P, const floating *x, floating *out,
                           int64_t *idx) noexcept nogil:
    """One plane of pooling `mode` (idx: max modes only, NULL for none)."""
    if mode == MAX:
        if idx == NULL:
            max_plane_values(P, x, out)
        else:
            max_indices(P, x, out, idx)
    elif mode == AVG:
        avg_plane(P, x, out)
    elif mode == ADAPTIVE_AVG:
        adaptive_avg_plane(P, x, out)
    else:
        adaptive_max_plane(P, x, out, idx)


cdef struct Planes:
    int mode
    const Pool *P
    const void *x
    void *out
    int64_t *idx                     # NULL: no indices
    Py_ssize_t in_plane, out_plane


cdef void plane_f32(const void *ctx, Py_ssize_t p, char *ws) noexcept nogil:
    """Work item p of a float32 call: plane p."""
    cdef const Planes *c = <const Planes *> ctx
    run_plane(c.mode, c.P, <const float *> c.x + p * c.in_plane,
              <float *> c.out + p * c.out_plane,
              c.idx + p * c.out_plane if c.idx != NULL else NULL)


cdef void plane_f64(const void *ctx, Py_ssize_t p, char *ws) noexcept nogil:
    """Work item p of a float64 call: plane p."""
    cdef const Planes *c = <const Planes *> ctx
    run_plane(c.mode, c.P, <const double *> c.x + p * c.in_plane,
              <double *> c.out + p * c.out_plane,
              c.idx + p * c.out_plane if c.idx != NULL else NULL)


def pool2d(int mode, const floating[:, :, ::1] x, floating[:, :, ::1] out,
           int64_t[:, :, ::1] indices, bint with_indices, Py_ssize_t KH, Py_ssize_t KW,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh,
           Py_ssize_t dw, bint count_include_pad, Py_ssize_t divisor, int isa,
           int nthreads):
    """out (and indices, when with_indices) <- pooling `mode` of x, plane by plane (max
    pooling without indices by instruction-set variant isa's micro-kernel).

    Assumes: arguments checked by cconv.nn.pooling (windows as torch's rules make them,
    strides and dilations >= 1, out and indices of the output's shape, P, Ho, Wo >= 1);
    indices of shape (0, 0, 0) when not with_indices; nthreads >= 1.
    """
    cdef Pool P
    cdef Py_ssize_t nplanes = x.shape[0]
    cdef Py_ssize_t in_plane = x.shape[1] * x.shape[2]
    cdef Py_ssize_t out_plane = out.shape[1] * out.shape[2]
    cdef const floating *xb = &x[0, 0, 0]
    cdef floating *ob = &out[0, 0, 0]
    cdef int64_t *ib = NULL
    P.H, P.W, P.Ho, P.Wo = x.shape[1], x.shape[2], out.shape[1], out.shape[2]
    P.KH, P.KW, P.sh, P.sw, P.ph, P.pw, P.dh, P.dw = KH, KW, sh, sw, ph, pw, dh, dw
    P.count_include_pad = count_include_pad
    P.divisor = divisor
    P.isa = isa
    # The output columns whose windows lie inside the image's columns: ow*sw - pw >= 0 and
    # ow*sw - pw + (KW-1)*dw < W.
    P.g.W, P.g.Wo, P.g.KW, P.g.sw, P.g.pw, P.g.dw = P.W, P.Wo, KW, sw, pw, dw
    P.g.a = cdiv(pw, sw)
    P.g.b = P.W - 1 - (KW - 1) * dw + pw
    P.g.b = min(P.Wo, P.g.b // sw + 1) if P.g.b >= 0 else 0
    if P.g.b <= P.g.a:
        P.g.a = P.g.b = 0
    if with_indices:
        ib = &indices[0, 0, 0]
    cdef Planes call
    call.mode, call.P, call.x, call.out, call.idx = mode, &P, xb, ob, ib
    call.in_plane, call.out_plane = in_plane, out_plane
    with nogil:
        if floating is float:
            run_plain(plane_f32, &call, nplanes, nthreads)
        else:
            run_plain(plane_f64, &call, nplanes, nthreads)

# cython: language_level=3
"""epilogue.h for the drivers (inline, compiled into each): the epilogue record, the
activation codes, and one call per operation for either dtype (the one place the dtype picks
a symbol).

A kernel's run() takes the epilogue as cconv._epilogue.Bound.args(): (scale, shift,
residual, act, p0, p1), arrays C-contiguous of the output's dtype or None; ep_take() reads it
into a cc_epilogue, holding the arrays' buffers until release().
"""
from cython cimport floating

from ._buffers cimport shape_is, take


cdef extern from "epilogue.h" nogil:
    ctypedef struct cc_epilogue:
        const void *scale
        const void *shift
        const void *residual
        int act
        double p0, p1
    ctypedef void (*cc_act_f32_fn)(const float *, float *, Py_ssize_t, int, float,
                                   float) noexcept nogil
    ctypedef void (*cc_act_f64_fn)(const double *, double *, Py_ssize_t, int, double,
                                   double) noexcept nogil
    ctypedef void (*cc_ep_row_f32_fn)(const cc_epilogue *, Py_ssize_t, const float *, float *,
                                      const float *, Py_ssize_t) noexcept nogil
    ctypedef void (*cc_ep_row_f64_fn)(const cc_epilogue *, Py_ssize_t, const double *,
                                      double *, const double *, Py_ssize_t) noexcept nogil
    cc_act_f32_fn cc_act_f32(int isa)
    cc_act_f64_fn cc_act_f64(int isa)
    cc_ep_row_f32_fn cc_ep_row_f32(int isa)
    cc_ep_row_f64_fn cc_ep_row_f64(int isa)


cdef inline void act_run(int isa, const floating *src, floating *dst, Py_ssize_t n, int act,
                         floating p0, floating p1) noexcept nogil:
    """dst[j] = act(src[j]), j < n, by variant isa's vector code (dst may be src)."""
    if floating is float:
        cc_act_f32(isa)(src, dst, n, act, p0, p1)
    else:
        cc_act_f64(isa)(src, dst, n, act, p0, p1)


cdef inline void ep_row(int isa, const cc_epilogue *ep, const floating *out, Py_ssize_t ch,
                        const floating *src, floating *dst, Py_ssize_t n) noexcept nogil:
    """dst[j] = act(src[j] * scale[ch] + shift[ch] + residual[j']), j < n, where dst lies in
    the output whose first element is out and j' is dst + j's place in it (the residual is
    laid out as the output). dst may be src."""
    cdef const floating *res = NULL
    if ep.residual != NULL:
        res = (<const floating *> ep.residual) + (dst - out)
    if floating is float:
        cc_ep_row_f32(isa)(ep, ch, src, dst, res, n)
    else:
        cc_ep_row_f64(isa)(ep, ch, src, dst, res, n)


cdef inline void ep_strided(int isa, const cc_epilogue *ep, const floating *out,
                            Py_ssize_t ch, const floating *src, Py_ssize_t ss, floating *dst,
                            Py_ssize_t ds, Py_ssize_t n) noexcept nogil:
    """dst[t*ds] = epilogue(src[t*ss]), t < n (ep_row, residual at dst's places), through
    a buffer a chunk at a time: the stride phases and depth-to-space copies."""
    cdef floating buf[128]
    cdef floating rbuf[128]
    cdef cc_epilogue e = ep[0]
    cdef const floating *res
    cdef Py_ssize_t t0, t, m
    t0 = 0
    while t0 < n:
        m = min(<Py_ssize_t> 128, n - t0)
        for t in range(m):
            buf[t] = src[(t0 + t) * ss]
        e.residual = NULL
        if ep.residual != NULL:
            res = (<const floating *> ep.residual) + (dst + t0 * ds - out)
            for t in range(m):
                rbuf[t] = res[t * ds]
            e.residual = rbuf
        ep_row(isa, &e, buf, ch, buf, buf, m)
        for t in range(m):
            dst[(t0 + t) * ds] = buf[t]
        t0 += m


cdef inline int ep_take(object args, cc_epilogue *ep, Py_buffer *views, int *held,
                        Py_ssize_t itemsize, Py_ssize_t C_out, Py_ssize_t out_elems) except -1:
    """args (None, or Bound.args()) into ep, each array's buffer taken into views[held...]
    (release() them); a NULL scale, shift and residual and act 0 for None."""
    ep.scale = ep.shift = ep.residual = NULL
    ep.act, ep.p0, ep.p1 = 0, 0.0, 0.0
    if args is None:
        return 0
    scale, shift, residual, act, p0, p1 = args
    if scale is not None:
        take(scale, views, held, itemsize, False)
        if not shape_is(&views[held[0] - 1], 1, C_out):
            raise ValueError(f"epilogue scale has shape {scale.shape}, expected ({C_out},)")
        ep.scale = views[held[0] - 1].buf
    if shift is not None:
        take(shift, views, held, itemsize, False)
        if not shape_is(&views[held[0] - 1], 1, C_out):
            raise ValueError(f"epilogue shift has shape {shift.shape}, expected ({C_out},)")
        ep.shift = views[held[0] - 1].buf
    if residual is not None:
        take(residual, views, held, itemsize, False)
        if views[held[0] - 1].len // itemsize != out_elems:
            raise ValueError("residual does not match the output's size")
        ep.residual = views[held[0] - 1].buf
    ep.act, ep.p0, ep.p1 = act, p0, p1
    return 0

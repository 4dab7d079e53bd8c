# cython: language_level=3
"""Softmax along one dimension, max-subtracted so exp never overflows (torch's):

    y[o, k, i] = exp(x[o, k, i] - m) / sum_k' exp(x[o, k', i] - m),   m = max_k' x[o, k', i]

Layout: x and y C-contiguous, read as (outer, dim, inner): the dimensions before the softmax
dimension, it, and those after (inner = 1 for the last dimension). y may not be x. A NaN in a
row makes the whole row NaN, as does +inf (inf - inf), as torch's. cconv.nn.activation
validates and picks the thread count.

A work item is a row (o, i): the `dim` elements x[o, :, i], `inner` apart. Rows are taken in
contiguous shares by the threads of the pool (_driver.run_plain), so neighbouring rows of one
thread share cache lines when inner > 1:

    x[o]: k = 0  | i=0 i=1 i=2 ... |
          k = 1  | i=0 i=1 i=2 ... |      row (o, 1) = the column i = 1
          ...

Each row is reduced by one thread in a fixed order: bitwise identical results for any
thread count.
"""
from cython cimport floating
from libc.math cimport exp, expf

from ._driver cimport run_plain


cdef inline floating exp_(floating v) noexcept nogil:
    """exp in the element type (float32 through expf, as torch computes it in float)."""
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef void softmax_row(const floating *x, floating *y, Py_ssize_t dim,
                      Py_ssize_t stride) noexcept nogil:
    """y[k * stride] = softmax of x[k * stride] over k < dim.
    Assumes: dim >= 1."""
    cdef Py_ssize_t k
    cdef floating m = x[0]
    cdef floating v, e
    cdef floating total = 0
    for k in range(1, dim):
        v = x[k * stride]
        # A NaN becomes the maximum, so it reaches every output.
        if v > m or v != v:
            m = v
    for k in range(dim):
        e = exp_(x[k * stride] - m)
        y[k * stride] = e
        total = total + e
    total = 1 / total
    for k in range(dim):
        y[k * stride] = y[k * stride] * total


cdef struct Rows:
    const void *x
    void *y
    Py_ssize_t dim, inner


cdef void row_f32(const void *ctx, Py_ssize_t r, char *ws) noexcept nogil:
    """Work item r of a float32 call: row (r // inner, r % inner)."""
    cdef const Rows *c = <const Rows *> ctx
    cdef Py_ssize_t base = (r // c.inner) * c.dim * c.inner + r % c.inner
    softmax_row(<const float *> c.x + base, <float *> c.y + base, c.dim, c.inner)


cdef void row_f64(const void *ctx, Py_ssize_t r, char *ws) noexcept nogil:
    """Work item r of a float64 call: row (r // inner, r % inner)."""
    cdef const Rows *c = <const Rows *> ctx
    cdef Py_ssize_t base = (r // c.inner) * c.dim * c.inner + r % c.inner
    softmax_row(<const double *> c.x + base, <double *> c.y + base, c.dim, c.inner)


def softmax(const floating[::1] x, floating[::1] out, Py_ssize_t outer, Py_ssize_t dim,
            Py_ssize_t inner, int nthreads):
    """out = softmax of the flat C-contiguous x read as (outer, dim, inner), along dim.
    Assumes (checked by the caller): len(x) == len(out) == outer * dim * inner; out is not
    x; nthreads >= 1."""
    if x.shape[0] == 0:
        return
    cdef Rows call
    call.x, call.y, call.dim, call.inner = &x[0], &out[0], dim, inner
    with nogil:
        if floating is float:
            run_plain(row_f32, &call, outer * inner, nthreads)
        else:
            run_plain(row_f64, &call, outer * inner, nthreads)

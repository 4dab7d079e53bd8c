# cython: language_level=3
"""Softmax along one dimension, max-subtracted so exp never overflows (torch's):

    y[o, k, i] = exp(x[o, k, i] - m) / sum_k' exp(x[o, k', i] - m),   m = max_k' x[o, k', i]

Layout: x and y C-contiguous, read as (outer, dim, inner): the dimensions before the softmax
dimension, it, and those after (inner = 1 for the last dimension). y may not be x. A NaN in a
row makes the whole row NaN, as does +inf (inf - inf), as torch's. cconv.nn.activation
validates and picks the thread count.

A work item is a row (o, i): the `dim` elements x[o, :, i], `inner` apart. Rows are dealt
statically to the threads in order, so neighbouring rows of one thread share cache lines
when inner > 1:

    x[o]: k = 0  | i=0 i=1 i=2 ... |
          k = 1  | i=0 i=1 i=2 ... |      row (o, 1) = the column i = 1
          ...

Each row is reduced by one thread in a fixed order: bitwise identical results for any
thread count.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, expf


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


cdef void run(const floating *x, floating *y, Py_ssize_t outer, Py_ssize_t dim,
              Py_ssize_t inner, int nthreads) noexcept nogil:
    """Every row of the (outer, dim, inner) array on nthreads threads.
    Assumes: outer, dim, inner >= 1; nthreads >= 1."""
    cdef Py_ssize_t rows = outer * inner
    cdef Py_ssize_t r, base
    if nthreads == 1:
        # No parallel region for one thread: it would cost more than a small array.
        for r in range(rows):
            base = (r // inner) * dim * inner + r % inner
            softmax_row(x + base, y + base, dim, inner)
        return
    for r in prange(rows, num_threads=nthreads, schedule="static"):
        base = (r // inner) * dim * inner + r % inner
        softmax_row(x + base, y + base, dim, inner)


def softmax(const floating[::1] x, floating[::1] out, Py_ssize_t outer, Py_ssize_t dim,
            Py_ssize_t inner, int nthreads):
    """out = softmax of the flat C-contiguous x read as (outer, dim, inner), along dim.
    Assumes (checked by the caller): len(x) == len(out) == outer * dim * inner; out is not
    x; nthreads >= 1."""
    if x.shape[0] == 0:
        return
    cdef const floating *xp = &x[0]
    cdef floating *yp = &out[0]
    with nogil:
        run(xp, yp, outer, dim, inner, nthreads)

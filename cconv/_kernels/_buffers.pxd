# cython: language_level=3
"""The memory of a kernel call: its arrays, taken through the buffer protocol itself, and its
workspace.

A typed memoryview argument builds a memoryview object on every call, a sizeable part of a
small module call for a kernel run's five arrays (decisions: Kernels take Py_buffers). A run
needs only each array's data pointer, after checking what it holds, so it takes the
Py_buffers directly, into an array it releases at the end:

    cdef Py_buffer views[4]
    cdef int held = 0
    try:
        take(x, views, &held, itemsize, False)      # views[0]
        ... (<const float *> views[0].buf) ...
    finally:
        release(views, held)
"""
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE,
                             PyBuffer_Release, PyObject_GetBuffer)
from libc.stdlib cimport malloc

from ._sizes cimport add_sat, mul_sat


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef inline int take(object obj, Py_buffer *views, int *held, Py_ssize_t itemsize,
                     bint writable) except -1:
    """views[held] <- obj's buffer, which must be C-contiguous native floats of itemsize
    bytes (float32 or float64), writable if asked; then held += 1. On an error nothing is
    held."""
    cdef Py_buffer *view = &views[held[0]]
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT
    cdef char kind = b"f" if itemsize == 4 else b"d"
    if writable:
        flags |= PyBUF_WRITABLE
    PyObject_GetBuffer(obj, view, flags)
    if (view.itemsize != itemsize or view.format == NULL or view.format[0] != kind
            or view.format[1] != 0):
        PyBuffer_Release(view)
        raise TypeError(f"expected C-contiguous {'float32' if itemsize == 4 else 'float64'} "
                        f"data, got a {type(obj).__name__} of another type")
    held[0] += 1
    return 0


cdef inline bint shape_is(const Py_buffer *view, int ndim, Py_ssize_t d0, Py_ssize_t d1=0,
                          Py_ssize_t d2=0, Py_ssize_t d3=0) noexcept:
    """Whether view has ndim dimensions (1 to 4), the first ones d0, d1, ..."""
    cdef Py_ssize_t want[4]
    cdef int i
    want[0], want[1], want[2], want[3] = d0, d1, d2, d3
    if view.ndim != ndim:
        return False
    for i in range(ndim):
        if view.shape[i] != want[i]:
            return False
    return True


cdef inline Py_ssize_t elements(const Py_buffer *view) noexcept:
    return view.len // view.itemsize


cdef inline void release(Py_buffer *views, int held) noexcept:
    """Release the first `held` views (those take() filled)."""
    cdef int i
    for i in range(held):
        PyBuffer_Release(&views[i])


cdef inline int take_call(object x, object w, object out, object bias, Py_buffer *views,
                          int *held, Py_ssize_t itemsize, Py_ssize_t N, Py_ssize_t C_in,
                          Py_ssize_t H, Py_ssize_t W, Py_ssize_t C_out, Py_ssize_t H_out,
                          Py_ssize_t W_out, str who) except -1:
    """The arrays of kernel `who`'s run, into views: x (N, C_in, H, W), w (any shape: the caller
    checks it), out (N, C_out, H_out, W_out, writable) and bias (C_out,) when not None, in
    that order (views[0..3])."""
    take(x, views, held, itemsize, False)
    take(w, views, held, itemsize, False)
    take(out, views, held, itemsize, True)
    if bias is not None:
        take(bias, views, held, itemsize, False)
    if (not shape_is(&views[0], 4, N, C_in, H, W)
            or not shape_is(&views[2], 4, N, C_out, H_out, W_out)):
        raise ValueError(f"{who}: arrays do not match the prepared geometry")
    if bias is not None and not shape_is(&views[3], 1, C_out):
        raise ValueError(f"bias has shape {bias.shape}, expected ({C_out},)")
    return 0


cdef inline void *workspace(int nthreads, Py_ssize_t per_thread,
                            Py_ssize_t itemsize) except NULL:
    """A call's workspace: per_thread elements for each of nthreads threads and a cache line
    of slack, to start it on a line (line_aligned()). The caller frees it (free())."""
    cdef Py_ssize_t size = add_sat(mul_sat(mul_sat(nthreads, per_thread), itemsize), 64)
    cdef void *p = NULL
    if size < PY_SSIZE_T_MAX:
        p = malloc(size)
    if p == NULL:
        raise MemoryError(f"cannot allocate a workspace of {size} bytes")
    return p

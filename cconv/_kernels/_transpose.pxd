# cython: language_level=3
"""transpose.h for the drivers (inline, compiled into each): its declarations, and one call
per operation for either dtype (the one place the dtype picks a symbol)."""
from cython cimport floating


cdef extern from "transpose.h" nogil:
    void cc_transpose_f64(Py_ssize_t rows, Py_ssize_t cols, const double *src, Py_ssize_t lds,
                          double *dst, Py_ssize_t ldd)
    void cc_transpose_isa_f32(int isa, Py_ssize_t rows, Py_ssize_t cols, const float *src,
                              Py_ssize_t lds, float *dst, Py_ssize_t ldd)
    void cc_transpose_grid_f64(Py_ssize_t rows, Py_ssize_t cols, const double *src,
                               Py_ssize_t lds, double *dst, Py_ssize_t ldd, Py_ssize_t W,
                               Py_ssize_t dpitch, Py_ssize_t sw, Py_ssize_t pstride,
                               Py_ssize_t r0)
    void cc_transpose_grid_isa_f32(int isa, Py_ssize_t rows, Py_ssize_t cols,
                                   const float *src, Py_ssize_t lds, float *dst,
                                   Py_ssize_t ldd, Py_ssize_t W, Py_ssize_t dpitch,
                                   Py_ssize_t sw, Py_ssize_t pstride, Py_ssize_t r0)
    void cc_copy_pixels(Py_ssize_t n, const void *src, Py_ssize_t stride, void *dst,
                        Py_ssize_t bytes)
    void cc_scatter2_isa_f32(int isa, Py_ssize_t n, const float *src, float *dst)


cdef inline void transpose(int isa, Py_ssize_t rows, Py_ssize_t cols, const floating *src,
                           Py_ssize_t lds, floating *dst, Py_ssize_t ldd) noexcept nogil:
    """dst[k*ldd + i] = src[i*lds + k], i < rows, k < cols, with variant isa's tiles."""
    if floating is float:
        cc_transpose_isa_f32(isa, rows, cols, src, lds, dst, ldd)
    else:
        cc_transpose_f64(rows, cols, src, lds, dst, ldd)


cdef inline void transpose_grid(int isa, Py_ssize_t rows, Py_ssize_t cols,
                                const floating *src, Py_ssize_t lds, floating *dst,
                                Py_ssize_t ldd, Py_ssize_t W, Py_ssize_t dpitch, Py_ssize_t sw,
                                Py_ssize_t pstride, Py_ssize_t r0) noexcept nogil:
    """dst[(k // W)*dpitch + (r % sw)*pstride + (r // sw)*ldd + i] = src[i*lds + k] with
    r = r0 + k % W, i < rows, k < cols, with variant isa's tiles."""
    if floating is float:
        cc_transpose_grid_isa_f32(isa, rows, cols, src, lds, dst, ldd, W, dpitch, sw, pstride,
                                  r0)
    else:
        cc_transpose_grid_f64(rows, cols, src, lds, dst, ldd, W, dpitch, sw, pstride, r0)

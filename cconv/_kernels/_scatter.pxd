# cython: language_level=3
"""Output copies of the implicit GEMM (inline, compiled into _igemm): a C block of the
workspace to its place in the output, as rows of channels, transposed (channel mode), every
`stride`-th element (a stride phase of a transposed convolution) or depth to space.

With an epilogue (ep not NULL) each output row of one channel gets it as it is copied: from
the C block into place where both are contiguous, through a small buffer where the output
is strided, and right after the transpose, on the rows just written, in channel mode (the
residual is laid out as the output, so it is added there).
"""
from cython cimport floating

from ._epilogue cimport cc_epilogue, ep_row, ep_strided
from ._gemm cimport Layer
from ._transpose cimport cc_scatter2_isa_f32, transpose


cdef inline void copy_block(int isa, const floating *c, Py_ssize_t cs_m, Py_ssize_t cs_u,
                            Py_ssize_t cs_t, floating *o, Py_ssize_t os_m, Py_ssize_t M,
                            Py_ssize_t R, Py_ssize_t Wp, Py_ssize_t o0, Py_ssize_t os_u,
                            Py_ssize_t os_t, const cc_epilogue *ep, const floating *out,
                            Py_ssize_t ch0) noexcept nogil:
    """o[m*os_m + o0 + u*os_u + t*os_t] = c[m*cs_m + u*cs_u + t*cs_t] for m < M, u < R,
    t < Wp: a C block to its place in the output (rows of channels, or transposed by
    variant isa's tiles), then the epilogue ep (or none: NULL) of channel ch0 + m, out being
    the output's first element."""
    cdef Py_ssize_t m, u, t
    cdef floating *om
    cdef const floating *cm
    if cs_m == 1 and os_t == 1:
        # Channel mode's block, pixels x channels, into channel rows: a transpose per row,
        # or one for the band when its rows follow each other in both.
        if os_u == Wp and cs_u == Wp * cs_t:
            Wp *= R
            R = 1
        for u in range(R):
            transpose(isa, Wp, M, c + u * cs_u, cs_t, o + o0 + u * os_u, os_m)
            if ep != NULL:
                for m in range(M):
                    om = o + m * os_m + o0 + u * os_u
                    ep_row(isa, ep, out, ch0 + m, om, om, Wp)
        return
    for m in range(M):
        for u in range(R):
            om = o + m * os_m + o0 + u * os_u
            cm = c + m * cs_m + u * cs_u
            if ep != NULL:
                if os_t == 1 and cs_t == 1:
                    ep_row(isa, ep, out, ch0 + m, cm, om, Wp)
                else:
                    ep_strided(isa, ep, out, ch0 + m, cm, cs_t, om, os_t, Wp)
            elif os_t == 1 and cs_t == 1:
                for t in range(Wp):
                    om[t] = cm[t]
            elif floating is float and os_t == 2 and cs_t == 1:
                # A stride-2 phase of a transposed convolution: vectors under a mask on
                # AVX-512 (decisions: scatter2).
                cc_scatter2_isa_f32(isa, Wp, cm, om)
            else:
                for t in range(Wp):
                    om[t * os_t] = cm[t * cs_t]


cdef inline void copy_d2s(const Layer *L, const floating *c, Py_ssize_t cpitch, Py_ssize_t cs_u,
                          floating *out_ng, Py_ssize_t row0, Py_ssize_t row1, Py_ssize_t i0,
                          Py_ssize_t R, const cc_epilogue *ep, const floating *out,
                          Py_ssize_t g0) noexcept nogil:
    """A pixel-mode C block (rows row0..row1 of a group, R band rows from grid row i0) into
    the output, depth to space: row m = (co*fy + a)*fx + b, pixel (i, j) lands at output
    channel co, (i*fy + a, j*fx + b). A transposed convolution whose kernel is its stride
    (U-Net's 2x2/s2) is one 1x1 GEMM of fy*fx rows per output channel, then this. With fx 2,
    rows b = 0 and 1 are interleaved into whole output rows (each line written once, not
    half by each of two stride phases). Then the epilogue ep (or none: NULL) of output channel
    (g0 + m) // (fy*fx) (g0: the group's first GEMM row), out being the output's first
    element."""
    cdef Py_ssize_t Wv = L.W_out, Wr = L.W_out * L.fx
    cdef Py_ssize_t HWr = L.H_out * L.fy * Wr, P = L.fy * L.fx
    cdef Py_ssize_t m = row0, co, a, b, u, t, step
    cdef const floating *x
    cdef const floating *y
    cdef floating *d
    while m < row1:
        co = m // P
        a = (m % P) // L.fx
        b = m % L.fx
        step = 2 if (L.fx == 2 and b == 0 and m + 1 < row1) else 1
        for u in range(R):
            x = c + (m - row0) * cpitch + u * cs_u
            d = out_ng + co * HWr + ((i0 + u) * L.fy + a) * Wr + b
            if step == 2:
                y = x + cpitch
                for t in range(Wv):
                    d[2 * t] = x[t]
                    d[2 * t + 1] = y[t]
                if ep != NULL:
                    ep_row(L.isa, ep, out, (g0 + m) // P, d, d, 2 * Wv)
            elif ep != NULL:
                ep_strided(L.isa, ep, out, (g0 + m) // P, x, 1, d, L.fx, Wv)
            else:
                # fx > 2 row by row: masked vectors or interleaved rows gained nothing
                # (decisions: Depth to space).
                for t in range(Wv):
                    d[t * L.fx] = x[t]
        m += step

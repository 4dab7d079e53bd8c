# cython: language_level=3
"""Weight packing for the implicit GEMM (inline, compiled into _igemm): raw weights into the
panels the micro-kernel reads (_gemm.pxd's layout).

    A[g, m, (c, t)] = w[g*sg + m*sm + c*sc + wtap[t]]      (t: a problem's taps)

A K block contiguous in the weight (conv2d's, every tap kept) is a transpose in vector
tiles (transpose.h); otherwise (the stride phases of a transposed convolution, taps dropped)
each channel pair's taps are transposed once and every problem copies the rows of its taps.
"""
from cython cimport floating

from ._gemm cimport Call, Layer, Problem, packed_offset, panel_start
from ._sizes cimport line_aligned, split_start
from ._transpose cimport transpose


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef enum:
    # Columns of the weight (taps of one channel pair) pack_by_channel transposes at a time:
    # its tile is TILE_COLS x 32 lanes (NR, or a pixel-mode panel's rows), on the stack.
    TILE_COLS = 64
    # Problems pack_all packs together (the stride phases of a transposed convolution).
    PACK_GROUP = 16


cdef inline void pack_by_channel(const Layer *L, const Problem *probs, Py_ssize_t nprob,
                                 const floating *wm, Py_ssize_t valid, Py_ssize_t r, Py_ssize_t nc,
                                 floating **dst) noexcept nogil:
    """One weight panel, for nc input channels and nprob problems at once: rows wm + i*sm
    (i < valid; zero up to r), and dst[p][(c*T + t)*r + i] = A[row i, channel c, tap t] of
    problem p (its taps' wtap).

    Each channel's columns (within its kh*kw taps) are transposed once, in vector tiles, into
    a tile of rows of r lanes, and each problem copies the rows of its taps. The stride phases
    of a transposed convolution each take some taps of every channel pair: packed together,
    the weight is read once for all of them, not element by element per phase (decisions:
    transposed convolutions with stride phases pack first).
    Assumes: r <= 32; the problems' wtap lie within one channel pair's taps."""
    cdef floating buf[TILE_COLS * 32 + 16]
    cdef floating *tile = line_aligned(buf)
    cdef Py_ssize_t lo = PY_SSIZE_T_MAX, hi = 0, p, t, c, j0, j1, i, w
    cdef const Problem *pr
    cdef const floating *row
    cdef floating *d
    for p in range(nprob):
        for t in range(probs[p].T):
            lo = min(lo, probs[p].wtap[t])
            hi = max(hi, probs[p].wtap[t] + 1)
    for c in range(nc):
        j0 = lo
        while j0 < hi:
            j1 = min(j0 + TILE_COLS, hi)
            transpose(L.isa, valid, j1 - j0, wm + c * L.sc + j0, L.sm, tile, r)
            for w in range(j1 - j0):
                for i in range(valid, r):
                    tile[w * r + i] = 0
            for p in range(nprob):
                pr = &probs[p]
                d = dst[p] + c * pr.T * r
                for t in range(pr.T):
                    if j0 <= pr.wtap[t] < j1:
                        # A loop, not a memcpy call: rows of 32 lanes or fewer.
                        row = tile + (pr.wtap[t] - j0) * r
                        for i in range(r):
                            d[t * r + i] = row[i]
            j0 = j1


cdef inline void pack_panels(const Layer *L, const Problem *pr, const floating *w, Py_ssize_t gi,
                             Py_ssize_t pan0, Py_ssize_t pan1, Py_ssize_t c0, Py_ssize_t c1,
                             floating *dst) noexcept nogil:
    """Pack weight panels pan0..pan1 of group gi, for the K block of input channels c0..c1.

    A[g, m, (c, t)] = w[g*sg + m*sm + c*sc + wtap[t]] (t: the problem's taps; wkoff holds
    c*sc + wtap[t] relative to the block's first channel), laid out as
    the micro-kernel reads it, panel after panel: pixel mode, panel rows r0..r0+r, k-major:
    dst[(r0 - first r0)*kcb + kk*r + i] = A[g, r0 + i, k0 + kk]; channel mode, NR-wide
    panels (zero past Mg): dst[(p - pan0)*kcb*NR + kk*NR + lane] = A[g, p*NR + lane, k0 + kk].
    A block contiguous in the weight (conv2d's, with every tap) is a transpose, done in
    vector tiles (transpose.h).
    """
    cdef Py_ssize_t kcb = (c1 - c0) * pr.T
    cdef Py_ssize_t pan, r0, r, i, kk, valid
    cdef Py_ssize_t rbase = panel_start(L, pan0)
    cdef const floating *wm
    cdef floating *d
    for pan in range(pan0, pan1):
        r0 = panel_start(L, pan)
        r = panel_start(L, pan + 1) - r0
        d = dst + (r0 - rbase) * kcb
        valid = max(0, min(r, L.Mg - r0))
        wm = w + gi * L.sg + r0 * L.sm + c0 * L.sc
        if pr.wk_contig:
            transpose(L.isa, valid, kcb, wm, L.sm, d, r)
            for i in range(valid, r):
                for kk in range(kcb):
                    d[kk * r + i] = 0
        else:
            pack_by_channel(L, pr, 1, wm, valid, r, c1 - c0, &d)


cdef inline Py_ssize_t pack_units(const Layer *L, const Problem *probs) noexcept nogil:
    """The units pack_unit packs: (group, K block, panel), the same blocks in every problem."""
    return L.groups * probs[0].nkb * L.npanels


cdef inline void pack_unit(const Layer *L, const Problem *probs, Py_ssize_t nprob,
                           const floating *w, floating *dst, Py_ssize_t unit) noexcept nogil:
    """Pack one (group, K block, panel) of every problem of the raw weights w into dst (laid
    out as pack_all's). A lone problem whose K blocks are contiguous in the weight (conv2d's)
    is transposed block by block; others (the phases of a transposed convolution, up to
    PACK_GROUP at once) channel by channel, each channel pair's taps read once
    (pack_by_channel)."""
    cdef Py_ssize_t nkb = probs[0].nkb
    cdef Py_ssize_t pan = unit % L.npanels
    cdef Py_ssize_t kb = (unit // L.npanels) % nkb
    cdef Py_ssize_t gi = unit // (L.npanels * nkb)
    cdef Py_ssize_t c0 = split_start(kb, L.Cg, nkb)
    cdef Py_ssize_t c1 = split_start(kb + 1, L.Cg, nkb)
    cdef Py_ssize_t r0 = panel_start(L, pan)
    cdef Py_ssize_t r = panel_start(L, pan + 1) - r0
    cdef Py_ssize_t p, p0 = 0, np
    cdef floating *d[PACK_GROUP]
    if nprob == 1 and probs[0].wk_contig:
        pack_panels(L, &probs[0], w, gi, pan, pan + 1, c0, c1,
                    &dst[packed_offset(L, &probs[0], gi, c0, c1, r0)])
        return
    while p0 < nprob:
        np = min(PACK_GROUP, nprob - p0)
        for p in range(np):
            d[p] = &dst[packed_offset(L, &probs[p0 + p], gi, c0, c1, r0)]
        pack_by_channel(L, &probs[p0], np, w + gi * L.sg + r0 * L.sm + c0 * L.sc,
                        max(0, min(r, L.Mg - r0)), r, c1 - c0, d)
        p0 += np


cdef inline void pack_all(const Layer *L, const Problem *probs, Py_ssize_t nprob,
                          const floating *w, floating *dst) noexcept nogil:
    """Pack the raw weights w into dst (L.packed_size elements): every problem, group, K
    block and panel, in the order the items read them."""
    cdef Py_ssize_t unit
    for unit in range(pack_units(L, probs)):
        pack_unit(L, probs, nprob, w, dst, unit)


cdef inline void pack_f32(const void *ctx, Py_ssize_t unit, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    pack_unit(c.L, c.probs, c.nprob, <const float *> c.w, <float *> c.pk, unit)


cdef inline void pack_f64(const void *ctx, Py_ssize_t unit, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    pack_unit(c.L, c.probs, c.nprob, <const double *> c.w, <double *> c.pk, unit)

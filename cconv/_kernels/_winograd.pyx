# cython: language_level=3
"""Winograd F(4x4, 3x3) convolution: conv2d with a 3x3 kernel, stride 1, dilation 1.

Each 4x4 block of output (a tile) is computed from the 6x6 block of input under it (input
tiles overlap by 2), in three steps (Lavin and Gray's formulation):

    V[p, c, t] = (B^T d[c, t] B)[p]               input transform, d: tile t of channel c
    M[p, m, t] = sum_c U[p, m, c] * V[p, c, t]    36 GEMMs, one per position p < 36
    Y[m, t]    = A^T M[:, m, t] A + bias[m]       output transform, clipped at the edges

with U[p, m, c] = (G g[m, c] G^T)[p] the weights, transformed once (pack(); in float64, then
rounded once). The points 0, +-1, +-2 and infinity; F(6x6, 3x3), with larger constants,
rounds too far for float32 (decisions: Winograd). A GEMM step does 36 multiply-adds for 16
outputs, where the implicit GEMM does 9 per output: 4x fewer, for the price of the two
transforms.

Layouts: x and out NCHW, C-contiguous; input outside the image is zero (any padding, read
in place, no padded copy). Packed weights, per group, K block (whole input channels c0..c1)
and position, in panels of gemm_rows() rows of output channels (half the implicit GEMM's
MR; the panels split the channels evenly):

    [group][K block][p][panel][k][row]

Tiling (block sizes fixed per layer, never per thread: bitwise identical for any thread
count):

    for each work item (image n, group, chunk of tc tiles, block of panels)    <- threads
      for each K block (cpb input channels)
        input transform of the chunk's tiles -> V[p][k][t] (tiles along the lanes)
        for each position p, panel, NR tiles: winograd_gemm: M[p] (+)= U[p] panel * V[p]
      output transform of M -> the chunk's output tiles of the block's channels

Raw weights (a functional call) are transformed into U first, by all threads, or, where
every panel serves one item (one image of one chunk), by the item itself, one panel and K
block at a time, right before the panel's GEMMs, panels then outer (Layer.fused).

Memory: V is 36 * cpb * tc and M is 36 * rows * tc elements per thread, whatever the
image size. The planner picks it (cconv._planner, rule 3a).
"""

from cython cimport floating
from libc.stdlib cimport free
from libc.string cimport memcpy, memset

from ._buffers cimport elements, release, take_call, workspace
from ._conv cimport Conv, conv_of
from ._driver cimport item_fn, line_up, run_items
from ._epilogue cimport cc_epilogue, ep_row, ep_take
from ._gemm cimport cc_gemm_nr, cc_isa_mr_max, check_pack_dst, check_weights
from ._shares cimport SHARE_PAD
from ._sizes cimport add_sat, cdiv, mul_sat, round_line, split_start


cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef extern from "winograd_dispatch.h" nogil:
    ctypedef void (*cc_wo_f32_fn)(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, float *,
                                  float *) noexcept nogil
    ctypedef void (*cc_wo_f64_fn)(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, double *,
                                  double *) noexcept nogil
    cc_wo_f32_fn cc_winograd_output_f32(int isa)
    cc_wo_f64_fn cc_winograd_output_f64(int isa)
    ctypedef void (*cc_wc_f32_fn)(const float *, Py_ssize_t, float *, Py_ssize_t,
                                  Py_ssize_t) noexcept nogil
    ctypedef void (*cc_wc_f64_fn)(const double *, Py_ssize_t, double *, Py_ssize_t,
                                  Py_ssize_t) noexcept nogil
    ctypedef void (*cc_wr_f32_fn)(const float *, const float *, float *, Py_ssize_t,
                                  Py_ssize_t) noexcept nogil
    ctypedef void (*cc_wr_f64_fn)(const double *, const double *, double *, Py_ssize_t,
                                  Py_ssize_t) noexcept nogil
    ctypedef void (*cc_wp_f32_fn)(const float *, Py_ssize_t, float *, Py_ssize_t,
                                  float) noexcept nogil
    ctypedef void (*cc_wp_f64_fn)(const double *, Py_ssize_t, double *, Py_ssize_t,
                                  double) noexcept nogil
    ctypedef void (*cc_wg_f32_fn)(Py_ssize_t, int, Py_ssize_t, const float *, Py_ssize_t,
                                  const float *, Py_ssize_t, float *, Py_ssize_t,
                                  int) noexcept nogil
    ctypedef void (*cc_wg_f64_fn)(Py_ssize_t, int, Py_ssize_t, const double *, Py_ssize_t,
                                  const double *, Py_ssize_t, double *, Py_ssize_t,
                                  int) noexcept nogil
    cc_wg_f32_fn cc_winograd_gemm_f32(int isa)
    ctypedef void (*cc_ww_f32_fn)(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, float *,
                                  Py_ssize_t) noexcept nogil
    ctypedef void (*cc_ww_f64_fn)(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                                  double *, Py_ssize_t) noexcept nogil
    cc_ww_f32_fn cc_winograd_weights_f32(int isa)
    cc_ww_f64_fn cc_winograd_weights_f64(int isa)
    cc_wg_f64_fn cc_winograd_gemm_f64(int isa)
    cc_wc_f32_fn cc_winograd_col_f32(int isa)
    cc_wc_f64_fn cc_winograd_col_f64(int isa)
    cc_wr_f32_fn cc_winograd_row_f32(int isa)
    cc_wr_f64_fn cc_winograd_row_f64(int isa)
    cc_wp_f32_fn cc_winograd_put_f32(int isa)
    cc_wp_f64_fn cc_winograd_put_f64(int isa)


cdef enum:
    TILE = 4                         # output rows and columns of a tile (m of F(m, 3))
    SPAN = 6                         # input rows and columns of a tile (m + 2)
    POS = 36                         # positions of a transformed tile (SPAN * SPAN)

# Output tile size m of F(m x m, 3 x 3).
M_TILE = TILE

# A functional call's transformed weights are its largest buffer, which the C library maps
# afresh on every call when it is big, so the last one up to KEEP_BYTES is kept for the next
# call (decisions: Winograd keeps its last transform buffer). Taken and given back with the
# GIL held.
cdef size_t KEEP_BYTES = 64 << 20
cdef void *kept = NULL
cdef size_t kept_bytes = 0


cdef void *take_transform_buffer(Py_ssize_t elems, Py_ssize_t itemsize,
                                 size_t *got) except NULL:
    """A buffer of elems elements and a cache line of slack (as workspace()): the kept one
    if it is big enough, else a new one. *got: its size in bytes, for give_transform_buffer."""
    global kept, kept_bytes
    cdef Py_ssize_t need = add_sat(mul_sat(elems, itemsize), 64)
    cdef void *p
    if kept != NULL and <Py_ssize_t> kept_bytes >= need:
        p, got[0] = kept, kept_bytes
        kept, kept_bytes = NULL, 0
        return p
    p = workspace(1, elems, itemsize)
    got[0] = need
    return p


cdef void give_transform_buffer(void *p, size_t size) noexcept:
    """Keep p (size bytes) for the next call when it is the biggest up to KEEP_BYTES seen
    free, else free it."""
    global kept, kept_bytes
    if p == NULL:
        return
    if size <= KEEP_BYTES and size > kept_bytes:
        free(kept)
        kept, kept_bytes = p, size
    else:
        free(p)


cdef struct Layer:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out
    Py_ssize_t groups, Cg, Mg
    Py_ssize_t pt, pl                # padding at the top and the left
    int isa
    Py_ssize_t mr, nr                # the micro-kernel's most rows and its columns
    Py_ssize_t cpb, nkb, kmax        # input channels per K block (at most), blocks, most
    Py_ssize_t th, tw, tiles         # the tile grid of one image
    Py_ssize_t tc, nchunks           # tiles per chunk (a multiple of NR / 2), chunks per image
    Py_ssize_t npanels, ppb, nmb     # weight panels per group, per block; blocks
    Py_ssize_t wlo                   # the narrower panel width (panels split Mg evenly)
    Py_ssize_t rows_max              # most output channels of a block
    Py_ssize_t items                 # N * groups * nchunks * nmb
    Py_ssize_t packed_size
    Py_ssize_t lw                    # an input line's length in the scratch (4 tc + 2, more)
    Py_ssize_t ws_d, ws_tmp, ws_v, ws_m, ws   # per-thread buffers and their total
    bint fused                       # raw weights are transformed in the items
    Py_ssize_t ws_u                  # then, per thread: one panel's U for one K block


cdef struct Call:
    const Layer *L
    const void *x
    const void *w                    # packed weights (the call's own when given raw)
    const void *raw                  # raw weights (packing first)
    bint transform                   # w holds raw weights, each item transforms its own
    const void *bias
    void *out
    const cc_epilogue *ep            # or NULL


cdef inline void layer_init(Layer *L, const Conv *g, Py_ssize_t pt, Py_ssize_t pl, int isa,
                            Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t tc,
                            Py_ssize_t ppb) noexcept nogil:
    """The layer's geometry and per-thread workspace for one tiling (sizes saturate)."""
    L.N, L.C_in, L.H, L.W = g.N, g.C_in, g.H, g.W
    L.C_out, L.H_out, L.W_out = g.C_out, g.H_out, g.W_out
    L.groups, L.Cg, L.Mg = g.groups, g.Cg, g.Mg
    L.pt, L.pl, L.isa = pt, pl, isa
    L.mr, L.nr = gemm_rows(isa), cc_gemm_nr(isa, itemsize)
    L.nkb = cdiv(L.Cg, cpb)
    L.cpb = cdiv(L.Cg, L.nkb)
    L.kmax = L.cpb
    L.th, L.tw = cdiv(L.H_out, TILE), cdiv(L.W_out, TILE)
    L.tiles = mul_sat(L.th, L.tw)
    L.tc = cdiv(tc, L.nr // 2) * (L.nr // 2)
    L.nchunks = cdiv(L.tiles, L.tc)
    L.npanels = cdiv(L.Mg, L.mr)
    L.ppb = min(ppb, L.npanels)
    L.nmb = cdiv(L.npanels, L.ppb)
    L.wlo = L.Mg // L.npanels
    L.rows_max = min(mul_sat(L.ppb, L.wlo + 1), L.Mg)
    L.items = mul_sat(mul_sat(L.N, L.groups), mul_sat(L.nchunks, L.nmb))
    L.packed_size = mul_sat(mul_sat(POS, L.groups), mul_sat(L.Mg, L.Cg))
    # Each buffer starts on a cache line: the input stage's lines (6 input lines, their
    # column transform, the rows' 4 + 2 elements per tile: 6 (2 lw + 4 tc + 2 tc)), later
    # the output tiles and a row (20 tc); the output transform's scratch; V and M. A line
    # holds a chunk's tile-row pieces one after another, 4 + 2 elements apiece.
    L.lw = round_line(6 * L.tc + 2, itemsize)
    L.ws_d = round_line(mul_sat(6, 2 * L.lw + 6 * L.tc), itemsize)
    L.ws_tmp = round_line(POS * L.tc, itemsize)
    L.ws_v = round_line(mul_sat(POS * L.tc, L.kmax), itemsize)
    L.ws_m = round_line(mul_sat(POS * L.tc, L.rows_max), itemsize)
    L.ws = add_sat(add_sat(L.ws_d, L.ws_tmp), add_sat(L.ws_v, L.ws_m))
    # Raw weights where every panel serves one item (one chunk of one image): each item
    # transforms its panels itself, one K block at a time, instead of a pass first writing
    # all of U to memory for the GEMMs to read back (decisions: Winograd at 14x14 for wide
    # layers).
    L.fused = L.N == 1 and L.nchunks == 1
    L.ws_u = round_line(mul_sat(POS * L.mr, L.kmax), itemsize) if L.fused else 0


cdef inline Py_ssize_t gemm_rows(int isa) noexcept nogil:
    """Rows of a weight panel: winograd_gemm's most (half the micro-kernel's: its block sums
    and running sums both stay in registers)."""
    return max(cc_isa_mr_max(isa) // 2, 1)


cdef inline Py_ssize_t block_offset(const Layer *L, Py_ssize_t gi, Py_ssize_t c0,
                                    Py_ssize_t c1, Py_ssize_t p, Py_ssize_t r0) noexcept nogil:
    """Where the packed panel starting at row r0 of position p lies, for group gi and the K
    block of input channels c0..c1."""
    return (gi * POS * L.Mg * L.Cg + c0 * POS * L.Mg + p * L.Mg * (c1 - c0)
            + r0 * (c1 - c0))


cdef void pack_panel(const Layer *L, const floating *w, floating *dst,
                     Py_ssize_t unit) noexcept nogil:
    """Transform and pack the weights of panel `unit` (group unit // npanels): U = G g G^T
    of each (output, input) channel pair, in float64, rounded once; 16 input channels at a
    time, each position's run of them written in one go (a pair's 36 positions lie far
    apart, in the same cache set)."""
    cdef Py_ssize_t gi = unit // L.npanels
    cdef Py_ssize_t pan = unit % L.npanels
    cdef Py_ssize_t r0 = split_start(pan, L.Mg, L.npanels)
    cdef Py_ssize_t r = split_start(pan + 1, L.Mg, L.npanels) - r0
    cdef Py_ssize_t kb, c0, c1
    for kb in range(L.nkb):
        c0 = split_start(kb, L.Cg, L.nkb)
        c1 = split_start(kb + 1, L.Cg, L.nkb)
        panel_transform(L, w, gi, r0, r, c0, c1, dst + block_offset(L, gi, c0, c1, 0, r0),
                        L.Mg * (c1 - c0))


cdef inline void panel_transform(const Layer *L, const floating *w, Py_ssize_t gi,
                                 Py_ssize_t r0, Py_ssize_t r, Py_ssize_t c0, Py_ssize_t c1,
                                 floating *dst, Py_ssize_t ps) noexcept nogil:
    """U of the panel of rows r0 .. r0 + r - 1 of group gi for input channels c0 .. c1 - 1:
    position p's [k][row] at dst + p*ps, 16 input channels at a time."""
    cdef Py_ssize_t cb
    for cb in range(c0, c1, 16):
        weights_transform(L.isa, w + ((gi * L.Mg + r0) * L.Cg + cb) * 9, L.Cg * 9, r,
                          min(16, c1 - cb), dst + (cb - c0) * r, ps)


cdef inline void weights_transform(int isa, const floating *w, Py_ssize_t ws, Py_ssize_t r,
                                   Py_ssize_t nb, floating *dst, Py_ssize_t ps) noexcept nogil:
    if floating is float:
        cc_winograd_weights_f32(isa)(w, ws, r, nb, dst, ps)
    else:
        cc_winograd_weights_f64(isa)(w, ws, r, nb, dst, ps)


cdef inline void col_transform(int isa, const floating *x, Py_ssize_t xs, floating *y,
                               Py_ssize_t ys, Py_ssize_t n) noexcept nogil:
    """y[k*ys + t] = (B^T x)[k] down the columns x[i*xs + t], t < n (the one place the dtype
    picks a symbol)."""
    if floating is float:
        cc_winograd_col_f32(isa)(x, xs, y, ys, n)
    else:
        cc_winograd_col_f64(isa)(x, xs, y, ys, n)


cdef inline void row_transform(int isa, const floating *q, const floating *e, floating *v,
                               Py_ssize_t vs, Py_ssize_t n) noexcept nogil:
    if floating is float:
        cc_winograd_row_f32(isa)(q, e, v, vs, n)
    else:
        cc_winograd_row_f64(isa)(q, e, v, vs, n)


cdef inline void put_row(int isa, const floating *y, Py_ssize_t ys, floating *o, Py_ssize_t n,
                         floating b) noexcept nogil:
    if floating is float:
        cc_winograd_put_f32(isa)(y, ys, o, n, b)
    else:
        cc_winograd_put_f64(isa)(y, ys, o, n, b)


cdef inline Py_ssize_t segment(const Layer *L, Py_ssize_t t, Py_ssize_t left) noexcept nogil:
    """How many tiles from tile t on lie in its tile row, at most left."""
    return min(L.tw - t % L.tw, left)


cdef void input_tiles(const Layer *L, const floating *xc, Py_ssize_t t0, Py_ssize_t count,
                      floating *s, floating *v, Py_ssize_t vs) noexcept nogil:
    """v[p*vs + t] = (B^T d B)[p], t < tc, for the tiles d of channel xc from tile t0 on
    (count of them; s's per-tile elements past count are zero). Each tile row's piece of
    its 6 input lines is copied whole (zero outside the image), the pieces one after another,
    and all transformed down their columns at once, so only the row step reads tiles'
    elements apart. s: the scratch (ws_d)."""
    cdef Py_ssize_t lw = L.lw, tc = L.tc
    cdef floating *lines = s
    cdef floating *cols = s + 6 * lw
    cdef floating *q = cols + 6 * lw             # 6 rows of 4 tc: elements 0..3 of each tile
    cdef floating *e = q + 24 * tc               # 6 rows of 2 tc: elements 4, 5
    cdef Py_ssize_t off = 0
    cdef Py_ssize_t at = 0                       # where the piece starts in the lines
    cdef Py_ssize_t t, seg, ty, x0, n, i, k, u, y, lo, hi
    cdef floating *line
    cdef floating *ck
    while off < count:
        t = t0 + off
        seg = segment(L, t, count - off)
        ty = t // L.tw
        x0 = (t % L.tw) * TILE - L.pl
        n = TILE * seg + 2
        for i in range(SPAN):
            y = ty * TILE - L.pt + i
            line = lines + i * lw + at
            if y < 0 or y >= L.H:
                memset(line, 0, n * sizeof(floating))
                continue
            lo = min(max(-x0, 0), n)
            hi = max(min(L.W - x0, n), lo)
            memset(line, 0, lo * sizeof(floating))
            memcpy(line + lo, xc + y * L.W + x0 + lo, (hi - lo) * sizeof(floating))
            memset(line + hi, 0, (n - hi) * sizeof(floating))
        off += seg
        at += n
    col_transform(L.isa, lines, lw, cols, lw, at)
    if count < tc:
        for k in range(SPAN):
            memset(q + k * 4 * tc + 4 * count, 0, 4 * (tc - count) * sizeof(floating))
            memset(e + k * 2 * tc + 2 * count, 0, 2 * (tc - count) * sizeof(floating))
    off = at = 0
    while off < count:
        seg = segment(L, t0 + off, count - off)
        for k in range(SPAN):
            ck = cols + k * lw + at
            memcpy(q + k * 4 * tc + 4 * off, ck, 4 * seg * sizeof(floating))
            for u in range(seg):
                e[k * 2 * tc + 2 * (off + u)] = ck[4 * u + 4]
                e[k * 2 * tc + 2 * (off + u) + 1] = ck[4 * u + 5]
        off += seg
        at += TILE * seg + 2
    for k in range(SPAN):
        row_transform(L.isa, q + k * 4 * tc, e + k * 2 * tc, v + k * SPAN * vs, vs, tc)


cdef void output_tiles(const Layer *L, const floating *mm, Py_ssize_t ms, Py_ssize_t t0,
                       Py_ssize_t count, floating bm, const cc_epilogue *ep,
                       const floating *out, floating *yc, Py_ssize_t ch, floating *s,
                       floating *tmp) noexcept nogil:
    """One output channel's tiles from tile t0 on (count of them): A^T M A of mm[p*ms + t],
    the bias bm added, written row by row into the channel yc, clipped at the image's bottom
    and right edges; the epilogue (or NULL) on each row piece once written. s: the scratch
    (ws_d), tmp: the transform's (ws_tmp)."""
    cdef Py_ssize_t tc = L.tc
    cdef floating *yt = s                        # 16 rows of tc: element e of each tile
    cdef floating *ob = s + 16 * tc              # one output row of the segment
    cdef Py_ssize_t off = 0
    cdef Py_ssize_t t, seg, oy0, ox0, nx, i
    cdef floating *dst
    output_transform(L.isa, mm, ms, tc, count, tmp, yt)
    while off < count:
        t = t0 + off
        seg = segment(L, t, count - off)
        oy0 = (t // L.tw) * TILE
        ox0 = (t % L.tw) * TILE
        nx = min(TILE * seg, L.W_out - ox0)
        for i in range(min(TILE, L.H_out - oy0)):
            dst = yc + (oy0 + i) * L.W_out + ox0
            if nx == TILE * seg:
                put_row(L.isa, yt + i * TILE * tc + off, tc, dst, seg, bm)
            else:
                put_row(L.isa, yt + i * TILE * tc + off, tc, ob, seg, bm)
                memcpy(dst, ob, nx * sizeof(floating))
            if ep != NULL:
                ep_row(L.isa, ep, out, ch, dst, dst, nx)
        off += seg


cdef inline void output_transform(int isa, const floating *m, Py_ssize_t ms, Py_ssize_t ld,
                                  Py_ssize_t n, floating *tmp, floating *y) noexcept nogil:
    if floating is float:
        cc_winograd_output_f32(isa)(m, ms, ld, n, tmp, y)
    else:
        cc_winograd_output_f64(isa)(m, ms, ld, n, tmp, y)


cdef inline void gemm_tile(int isa, Py_ssize_t r, int nv, Py_ssize_t kcb, const floating *a,
                           const floating *b, Py_ssize_t ldb, floating *c, Py_ssize_t ldc,
                           bint first) noexcept nogil:
    """c[r x nv vectors] (first: =, else +=) the product of a K block: A panel a (kcb x r, k-major)
    times B = b (kcb rows of ldb), its sums blocked by 16 input channels (module
    docstring)."""
    if floating is float:
        cc_winograd_gemm_f32(isa)(r, nv, kcb, a, r, b, ldb, c, ldc, first)
    else:
        cc_winograd_gemm_f64(isa)(r, nv, kcb, a, r, b, ldb, c, ldc, first)


cdef inline void panel_gemms(const Layer *L, Py_ssize_t r, Py_ssize_t kcb, const floating *a,
                             const floating *v, floating *m, Py_ssize_t count,
                             bint first) noexcept nogil:
    """M (+)= U * V for one position and panel (a: its r rows of U) over the chunk's count
    tiles, NR tile columns at a time."""
    cdef Py_ssize_t jt
    cdef int nv
    for jt in range(cdiv(count, L.nr)):
        # A last tile half empty or more takes one vector of columns.
        nv = 1 if 2 * (count - jt * L.nr) <= L.nr else 2
        gemm_tile(L.isa, r, nv, kcb, a, v + jt * L.nr, L.tc, m + jt * L.nr, L.tc, first)


cdef void run_item(const Layer *L, Py_ssize_t item, const floating *x, const floating *w,
                   bint raw, const floating *bias, floating *out, floating *ws,
                   const cc_epilogue *ep) noexcept nogil:
    """Work item `item`: (image, group, chunk, block of panels), whole (module docstring)."""
    cdef Py_ssize_t mb = item % L.nmb
    cdef Py_ssize_t chunk = (item // L.nmb) % L.nchunks
    cdef Py_ssize_t gi = (item // (L.nmb * L.nchunks)) % L.groups
    cdef Py_ssize_t n = item // (L.nmb * L.nchunks * L.groups)
    cdef Py_ssize_t tc = L.tc
    cdef Py_ssize_t t0 = chunk * tc
    cdef Py_ssize_t count = min(tc, L.tiles - t0)
    cdef Py_ssize_t pan0 = mb * L.ppb
    cdef Py_ssize_t pan1 = min(pan0 + L.ppb, L.npanels)
    cdef Py_ssize_t row0 = split_start(pan0, L.Mg, L.npanels)
    cdef Py_ssize_t rows = split_start(pan1, L.Mg, L.npanels) - row0
    cdef Py_ssize_t HW = L.H * L.W, HWo = L.H_out * L.W_out
    cdef const floating *x_ng = x + (n * L.C_in + gi * L.Cg) * HW
    cdef floating *out_ng = out + (n * L.C_out + gi * L.Mg) * HWo
    cdef floating *d = ws
    cdef floating *tmp = ws + L.ws_d
    cdef floating *V = tmp + L.ws_tmp
    cdef floating *M = V + L.ws_v
    cdef floating *U = M + L.ws_m              # raw weights: a panel's U for a K block
    cdef floating bm
    cdef Py_ssize_t kb, c0, c1, kcb, c, p, pan, r0, r, m
    for kb in range(L.nkb):
        c0 = split_start(kb, L.Cg, L.nkb)
        c1 = split_start(kb + 1, L.Cg, L.nkb)
        kcb = c1 - c0
        for c in range(c0, c1):
            input_tiles(L, x_ng + c * HW, t0, count, d, V + (c - c0) * tc, kcb * tc)
        # Each (position, panel) GEMM has its own block of M: the two loop orders give the
        # same bits. Packed weights: positions outer, U read in the order it is laid out;
        # raw weights: panels outer, each panel's U made for the K block first.
        if raw:
            for pan in range(pan0, pan1):
                r0 = split_start(pan, L.Mg, L.npanels)
                r = split_start(pan + 1, L.Mg, L.npanels) - r0
                panel_transform(L, w, gi, r0, r, c0, c1, U, kcb * r)
                for p in range(POS):
                    panel_gemms(L, r, kcb, U + p * kcb * r, V + p * kcb * tc,
                                M + (p * rows + r0 - row0) * tc, count, kb == 0)
        else:
            for p in range(POS):
                for pan in range(pan0, pan1):
                    r0 = split_start(pan, L.Mg, L.npanels)
                    r = split_start(pan + 1, L.Mg, L.npanels) - r0
                    panel_gemms(L, r, kcb, w + block_offset(L, gi, c0, c1, p, r0),
                                V + p * kcb * tc, M + (p * rows + r0 - row0) * tc, count,
                                kb == 0)
    for m in range(rows):
        bm = bias[gi * L.Mg + row0 + m] if bias != NULL else 0
        output_tiles(L, M + m * tc, rows * tc, t0, count, bm, ep, out,
                     out_ng + (row0 + m) * HWo, gi * L.Mg + row0 + m, d, tmp)


cdef void item_f32(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    run_item(c.L, item, <const float *> c.x, <const float *> c.w, c.transform,
             <const float *> c.bias, <float *> c.out, <float *> ws, c.ep)


cdef void item_f64(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    run_item(c.L, item, <const double *> c.x, <const double *> c.w, c.transform,
             <const double *> c.bias, <double *> c.out, <double *> ws, c.ep)


cdef void pack_f32(const void *ctx, Py_ssize_t unit, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    pack_panel(c.L, <const float *> c.raw, <float *> c.w, unit)


cdef void pack_f64(const void *ctx, Py_ssize_t unit, char *ws) noexcept nogil:
    cdef const Call *c = <const Call *> ctx
    pack_panel(c.L, <const double *> c.raw, <double *> c.w, unit)


cdef Layer layer_of(params, int isa, Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t tc,
                    Py_ssize_t ppb) except *:
    cdef Conv g = conv_of(params)
    cdef Layer L
    layer_init(&L, &g, params.padding[0], params.padding[2], isa, itemsize, cpb, tc, ppb)
    return L


def sizes(params, int isa, Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t tc,
          Py_ssize_t ppb):
    """What Winograd with this tiling would need: (per-thread workspace in elements with the
    weights transformed first, the same with raw weights, work items). params: a conv2d's
    ConvParams with a 3x3 kernel, stride 1, dilation 1."""
    cdef Layer L = layer_of(params, isa, itemsize, cpb, tc, ppb)
    return L.ws, add_sat(L.ws, L.ws_u), L.items


def tile(int isa, Py_ssize_t itemsize):
    """(rows of a weight panel, NR) of the GEMM tile the positions' products run on."""
    return gemm_rows(isa), cc_gemm_nr(isa, itemsize)


cdef class Winograd:
    """One 3x3 stride-1 convolution with one tiling (input channels per K block cpb, tiles
    per chunk tc, panels per block ppb), prepared once and run many times. The kernel
    interface of cconv._engine: pack(), run(), packed_size, workspace_elems(_raw)."""
    cdef Layer L
    cdef Py_ssize_t itemsize
    cdef readonly Py_ssize_t workspace_elems, workspace_elems_raw, packed_size

    def __cinit__(self, params, int isa, Py_ssize_t itemsize, Py_ssize_t cpb, Py_ssize_t tc,
                  Py_ssize_t ppb):
        self.L = layer_of(params, isa, itemsize, cpb, tc, ppb)
        self.itemsize = itemsize
        self.workspace_elems = self.L.ws
        self.workspace_elems_raw = add_sat(self.L.ws, self.L.ws_u)
        self.packed_size = self.L.packed_size
        if self.L.ws > PY_SSIZE_T_MAX // 64 or self.L.packed_size > PY_SSIZE_T_MAX // 64:
            raise MemoryError("Winograd: the workspace of this geometry exceeds what this "
                              "platform can address")

    def pack(self, const floating[::1] w, floating[::1] dst):
        """Transform the raw weights w (C-contiguous, flattened) into dst for run(...,
        packed=True): U = G g G^T of every channel pair, in the GEMM's panels."""
        cdef Py_ssize_t unit
        check_weights("Winograd", self.L.isa, self.L.nr, sizeof(floating), w.shape[0], False,
                      self.L.packed_size, self.L.C_out * self.L.Cg * 9)
        check_pack_dst(dst.shape[0], self.L.packed_size)
        with nogil:
            for unit in range(self.L.groups * self.L.npanels):
                pack_panel(&self.L, &w[0], &dst[0], unit)

    def run(self, x, w, bint packed, bias, out, int nthreads, bint pack_first=False,
            epilogue=None):
        """Compute out from x (module docstring) on nthreads threads.

        x (N, C_in, H, W) and out (N, C_out, H_out, W_out), C-contiguous numpy arrays of the
        prepared dtype; w: pack()'s result (packed true) or the raw weights (packed false:
        they are transformed first, by every thread, into a buffer of this call, whatever
        pack_first says, or by each item for itself where every panel serves one item:
        Layer.fused); bias (C_out,) or None. The workspace (nthreads * workspace_elems, or
        workspace_elems_raw with raw weights) is allocated here. Every element of out is written
        exactly once. epilogue: None, or cconv._epilogue's arguments (_epilogue.pxd), fused
        into the writing of each output element."""
        cdef Layer *L = &self.L
        cdef Py_buffer v[7]        # x, w, out, bias, then the epilogue's arrays
        cdef cc_epilogue ep
        cdef int held = 0
        cdef void *ws = NULL
        cdef void *pk = NULL
        cdef size_t pk_bytes = 0
        cdef Py_ssize_t *counters = NULL
        cdef Py_ssize_t units = L.groups * L.npanels
        cdef Py_ssize_t per_thread
        cdef Call call
        cdef item_fn item = item_f32 if self.itemsize == sizeof(float) else item_f64
        cdef item_fn pack = pack_f32 if self.itemsize == sizeof(float) else pack_f64
        if pack_first and packed:
            raise ValueError("Winograd.run: pack_first needs the raw weights (packed false)")
        try:
            take_call(x, w, out, bias, v, &held, self.itemsize, L.N, L.C_in, L.H, L.W,
                      L.C_out, L.H_out, L.W_out, "Winograd.run")
            check_weights("Winograd", L.isa, L.nr, self.itemsize, elements(&v[1]), packed,
                          L.packed_size, L.C_out * L.Cg * 9)
            ep_take(epilogue, &ep, v, &held, self.itemsize, L.C_out, elements(&v[2]))
            if L.items == 0:
                return
            call.L, call.x, call.out = L, v[0].buf, v[2].buf
            call.w = call.raw = v[1].buf
            call.transform = False
            call.bias = v[3].buf if bias is not None else NULL
            call.ep = &ep if epilogue is not None else NULL
            counters = <Py_ssize_t *> workspace(nthreads, SHARE_PAD, sizeof(Py_ssize_t))
            per_thread = L.ws
            if not packed and L.fused:
                per_thread = self.workspace_elems_raw
                call.transform = True
            elif not packed:
                pk = take_transform_buffer(L.packed_size, self.itemsize, &pk_bytes)
                call.w = line_up(pk)
                with nogil:
                    run_items(pack, &call, units, NULL, 0, False, False,
                              nthreads if units >= 2 else 1, counters)
            ws = workspace(nthreads, per_thread, self.itemsize)
            with nogil:
                run_items(item, &call, L.items, ws, per_thread * self.itemsize, False, False,
                          nthreads, counters)
        finally:
            free(ws)
            give_transform_buffer(pk, pk_bytes)
            free(counters)
            release(v, held)

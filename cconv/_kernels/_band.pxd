# cython: language_level=3
"""The band buffer: the input rows one band of output rows reads, zero-padded and split into
stride phases, so that every kernel tap reads one contiguous run. Shared by _igemm and
_depthwise (inline, compiled into each).

A convolution's output grid pixel (i, j) reads input (i*sh + offh[th], j*sw + offw[tw]) for
each tap (th, tw); outside the image the input is zero (that is the padding). For a band of
grid rows [i0, i0 + R), the buffer holds, per input channel, a sub-image per pair of stride
phases (row phase ph, column phase pw) that taps read (one for a 1x1 stride-2 layer)

    sub[ph][pw][u][t] = x[(i0 + u)*sh + ohmin + hph(ph), t*sw + owmin + wph(pw)]  (0 outside x)

with u < R + (ohmax - ohmin)//sh and t < Wsub = Wp + (owmax - owmin)//sw. In the flat index
f = u*Wsub + j of a band pixel (row u, column j < Wp), tap (th, tw) then reads

    sub[slot(rh % sh)][slot(rw % sw)][f + (rh // sh)*Wsub + rw // sw],
                                                     rh = offh - ohmin, rw = offw - owmin

The phases taps read are multiples of gh = gcd(sh, every rh) (likewise gw), so a layer whose
dilation is a multiple of its stride has one phase, not sh. Slots are phases 0, gh, 2*gh, ...
up to the largest read (hph(ph) = ph*gh), or, when the taps read fewer of those, a list of
just those (hph(ph) = hph[ph], at most one per tap: KH entries, which the caller provides):
stride 2**20 with dilation 2**21 - 1 reads phases 0 and 2**20 - 1, two sub-images, not
2**20. So a band never holds more sub-images than taps along each axis. That is a fixed
offset per tap: contiguous vectors along j, and across rows too (columns j in [Wp, Wsub) of
each row are computed and dropped). Every input element is copied once per band and phase it
lies in, where an im2col matrix would copy it once per tap.
"""

from cython cimport floating
from libc.stdlib cimport malloc, qsort
from libc.string cimport memcpy

from ._sizes cimport add_sat, cdiv, gcd, mul_sat


cdef struct Band:
    Py_ssize_t H, W              # input plane
    Py_ssize_t sh, sw            # input step per grid row / column
    Py_ssize_t ohmin, owmin      # smallest tap offsets
    Py_ssize_t rows              # grid rows of a full band (R)
    Py_ssize_t extra             # sub-image rows beyond R: (ohmax - ohmin) // sh
    Py_ssize_t Wp                # grid columns
    Py_ssize_t Wsub              # sub-image pitch: Wp + (owmax - owmin) // sw
    Py_ssize_t slack             # zeros after each sub-image, for vector over-reads
    Py_ssize_t gh, gw            # phase step: gcd of the stride and every tap's offset
    Py_ssize_t nph, npw          # phase slots (sub-images along each axis)
    bint hlisted, wlisted        # slots are the phases in hph / wph, not multiples of gh / gw
    Py_ssize_t *hph              # listed row phases (offsets below sh), ascending: KH entries
    Py_ssize_t *wph              # ... and column phases: KW entries (both band_init's caller's)
    Py_ssize_t sub_size          # elements per sub-image: (R + extra)*Wsub + slack, rounded
    Py_ssize_t chan_stride       # elements per channel: nph*npw*sub_size


cdef inline Py_ssize_t *phase_room(Py_ssize_t taps) except NULL:
    """Room for the phase lists of bands whose axes have `taps` taps in all (KH + KW for
    one band), for band_init; free() it once the bands are no longer used."""
    cdef Py_ssize_t *room = <Py_ssize_t *> malloc(max(taps, 1) * sizeof(Py_ssize_t))
    if room == NULL:
        raise MemoryError()
    return room


cdef inline int compare_ssize(const void *a, const void *b) noexcept nogil:
    """qsort's order of Py_ssize_t values: ascending."""
    cdef Py_ssize_t x = (<const Py_ssize_t *> a)[0], y = (<const Py_ssize_t *> b)[0]
    return (x > y) - (x < y)


cdef inline Py_ssize_t phase_slots(const Py_ssize_t *off, Py_ssize_t n, Py_ssize_t omin,
                                   Py_ssize_t s, Py_ssize_t g, Py_ssize_t *ph,
                                   bint *listed) noexcept nogil:
    """The phase slots of one axis, for taps at offsets off[0..n) (smallest omin), stride s
    and phase step g: their number; listed: whether they are ph[0..number), the distinct
    phases read, ascending (when those are fewer than the multiples of g up to the largest),
    or else those multiples. ph: n entries."""
    cdef Py_ssize_t i, count = 0
    for i in range(n):
        ph[i] = (off[i] - omin) % s
    qsort(ph, n, sizeof(Py_ssize_t), compare_ssize)
    for i in range(n):
        if count == 0 or ph[i] != ph[count - 1]:
            ph[count] = ph[i]
            count += 1
    # The largest phase read is ph[count - 1]: the multiples of g up to it number
    # ph[count - 1] // g + 1, at least count.
    listed[0] = count < ph[count - 1] // g + 1
    return count if listed[0] else ph[count - 1] // g + 1


cdef inline Py_ssize_t row_phase(const Band *b, Py_ssize_t ph) noexcept nogil:
    """The row offset (below the stride, from ohmin) of row slot ph."""
    return b.hph[ph] if b.hlisted else ph * b.gh


cdef inline Py_ssize_t col_phase(const Band *b, Py_ssize_t pw) noexcept nogil:
    """The column offset (below the stride, from owmin) of column slot pw."""
    return b.wph[pw] if b.wlisted else pw * b.gw


cdef inline Py_ssize_t find_slot(const Py_ssize_t *ph, bint listed, Py_ssize_t n,
                                 Py_ssize_t g, Py_ssize_t r) noexcept nogil:
    """The slot holding phase r (an offset below the stride) of an axis (its phase list,
    whether listed, its slots, its step), or -1 when none does."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    if not listed:
        return r // g if r % g == 0 and r // g < n else -1
    while lo < hi:              # ph is ascending: the first entry not below r
        mid = lo + (hi - lo) // 2
        if ph[mid] < r:
            lo = mid + 1
        else:
            hi = mid
    return lo if lo < n and ph[lo] == r else -1


cdef inline Py_ssize_t row_slot(const Band *b, Py_ssize_t r) noexcept nogil:
    """The row slot holding row phase r, or -1."""
    return find_slot(b.hph, b.hlisted, b.nph, b.gh, r)


cdef inline Py_ssize_t col_slot(const Band *b, Py_ssize_t r) noexcept nogil:
    """The column slot holding column phase r, or -1."""
    return find_slot(b.wph, b.wlisted, b.npw, b.gw, r)


cdef inline void band_init(Band *b, Py_ssize_t H, Py_ssize_t W, Py_ssize_t sh, Py_ssize_t sw,
                           const Py_ssize_t *offh, Py_ssize_t KH, const Py_ssize_t *offw,
                           Py_ssize_t KW, Py_ssize_t Wp, Py_ssize_t rows, Py_ssize_t slack,
                           Py_ssize_t *phases) noexcept nogil:
    """The geometry of bands of `rows` grid rows for these taps. phases: KH + KW entries for
    the phase lists, kept as long as the band is used.
    Assumes: KH, KW >= 1; rows >= 1."""
    cdef Py_ssize_t i, ohmax = offh[0], owmax = offw[0]
    b.H, b.W, b.sh, b.sw, b.Wp, b.rows, b.slack = H, W, sh, sw, Wp, rows, slack
    b.ohmin = offh[0]
    b.owmin = offw[0]
    for i in range(KH):
        b.ohmin = min(b.ohmin, offh[i])
        ohmax = max(ohmax, offh[i])
    for i in range(KW):
        b.owmin = min(b.owmin, offw[i])
        owmax = max(owmax, offw[i])
    b.extra = (ohmax - b.ohmin) // sh
    b.Wsub = Wp + (owmax - b.owmin) // sw
    # The phases the taps read: multiples of gh (likewise gw) below the stride. A 1x1
    # stride-2 layer reads one of four; a dilation that is a multiple of the stride, one.
    b.gh = sh
    for i in range(KH):
        b.gh = gcd(b.gh, offh[i] - b.ohmin)
    b.gw = sw
    for i in range(KW):
        b.gw = gcd(b.gw, offw[i] - b.owmin)
    b.hph = phases
    b.wph = phases + KH
    b.nph = phase_slots(offh, KH, b.ohmin, sh, b.gh, b.hph, &b.hlisted)
    b.npw = phase_slots(offw, KW, b.owmin, sw, b.gw, b.wph, &b.wlisted)
    # Whole cache lines (16 elements: 64 bytes or more), so sub-images start on one.
    # Saturating: a span far beyond the image comes out too large, never wrapped.
    b.sub_size = add_sat(mul_sat(rows + b.extra, b.Wsub), slack + 15) // 16 * 16
    b.chan_stride = mul_sat(mul_sat(b.nph, b.npw), b.sub_size)


cdef inline Py_ssize_t tap_offset(const Band *b, Py_ssize_t offh,
                                  Py_ssize_t offw) noexcept nogil:
    """Where tap (offh, offw) reads flat pixel 0 of a band, relative to its channel."""
    cdef Py_ssize_t rh = offh - b.ohmin, rw = offw - b.owmin
    return ((row_slot(b, rh % b.sh) * b.npw + col_slot(b, rw % b.sw)) * b.sub_size
            + (rh // b.sh) * b.Wsub
            + rw // b.sw)


cdef inline Py_ssize_t phase_columns(const Band *b, Py_ssize_t pw, Py_ssize_t *lo,
                                     Py_ssize_t *hi) noexcept nogil:
    """Column phase pw: its sub-image column t holds input column t*sw + col0 (returned),
    inside the image for t in [lo, hi)."""
    cdef Py_ssize_t col0 = b.owmin + col_phase(b, pw)
    lo[0] = min(max(cdiv(-col0, b.sw), 0), b.Wsub)
    hi[0] = min(max(cdiv(b.W - col0, b.sw), lo[0]), b.Wsub)
    return col0


cdef inline void fill_band(const Band *b, const floating *x, Py_ssize_t channels,
                           Py_ssize_t i0, Py_ssize_t R, floating *dst) noexcept nogil:
    """Copy the input of grid rows [i0, i0 + R) of `channels` channels into dst (layout in the
    module docstring), zeros outside the image and in each sub-image's slack.
    Assumes: x points at the first channel's plane; R <= b.rows; dst holds
    channels * b.chan_stride elements."""
    cdef Py_ssize_t c, ph, pw, u, t, ih, col0, lo, hi
    cdef Py_ssize_t nrow = R + b.extra
    # Locals, not b's fields, in the loops: stores through d could alias *b otherwise.
    cdef Py_ssize_t Wsub = b.Wsub, sh = b.sh, sw = b.sw, H = b.H, W = b.W, slack = b.slack
    cdef Py_ssize_t top
    cdef const floating *row
    cdef floating *d0
    cdef floating *d
    for c in range(channels):
        for pw in range(b.npw):
            # Once per column phase: the divisions cost more than a short row.
            col0 = phase_columns(b, pw, &lo, &hi)
            for ph in range(b.nph):
                d0 = dst + c * b.chan_stride + (ph * b.npw + pw) * b.sub_size
                top = i0 * sh + b.ohmin + row_phase(b, ph)    # input row of row 0
                for u in range(nrow):
                    ih = top + u * sh
                    d = d0 + u * Wsub
                    if ih < 0 or ih >= H:
                        for t in range(Wsub):
                            d[t] = 0
                        continue
                    row = x + (c * H + ih) * W
                    for t in range(lo):
                        d[t] = 0
                    # A contiguous row: libc's memcpy (vectors as wide as the CPU has; this
                    # file is compiled for the baseline; decisions: fill_band). Else constant
                    # strides, which the compiler vectorises.
                    if sw == 1:
                        if hi > lo:
                            memcpy(d + lo, row + lo + col0, (hi - lo) * sizeof(floating))
                    elif sw == 2:
                        for t in range(lo, hi):
                            d[t] = row[2 * t + col0]
                    else:
                        for t in range(lo, hi):
                            d[t] = row[t * sw + col0]
                    for t in range(hi, Wsub):
                        d[t] = 0
                d = d0 + nrow * Wsub
                for t in range(slack):
                    d[t] = 0

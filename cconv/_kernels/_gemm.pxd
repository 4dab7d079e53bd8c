# cython: language_level=3
"""What the implicit GEMM's parts share (inline, compiled into each): the layer and problem
records, the micro-kernel call, and the packed-weight layout (where a panel lies).

A layer's GEMMs (one per problem: one for conv2d, one per stride phase of a transposed
convolution) share its channel blocking; each has its own taps, pixel grid and band.
Packed weights, per problem, group, K block (whole input channels) and panel:

    [problem][group][K block][panel][k][lane]     lanes: MR rows (pixel mode, panels split
                                                  Mg evenly) or NR channels (channel mode,
                                                  the last panel zero-padded)
"""
from cython cimport floating

from ._band cimport Band
from ._sizes cimport split_start


cdef extern from "gemm_dispatch.h" nogil:
    ctypedef void (*cc_gemm_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *, Py_ssize_t,
                                    const float *, const Py_ssize_t *, float *, Py_ssize_t,
                                    Py_ssize_t, const float *, const float *,
                                    int, Py_ssize_t) noexcept nogil
    ctypedef void (*cc_gemm_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *, Py_ssize_t,
                                    const double *, const Py_ssize_t *, double *, Py_ssize_t,
                                    Py_ssize_t, const double *, const double *,
                                    int, Py_ssize_t) noexcept nogil
    cc_gemm_f32_fn cc_gemm_ukernel_f32(int isa, Py_ssize_t mr)
    cc_gemm_f64_fn cc_gemm_ukernel_f64(int isa, Py_ssize_t mr)
    Py_ssize_t cc_gemm_nr(int isa, Py_ssize_t itemsize)
    int cc_isa_mr_max(int isa)


cdef enum:
    PIXELS = 0                       # pixels along the SIMD lanes
    CHANNELS = 1                     # output channels along the SIMD lanes


cdef struct Problem:
    Py_ssize_t KH, KW, sh, sw        # taps and input strides
    const Py_ssize_t *offh           # input row of tap row th, minus i*sh (KH entries)
    const Py_ssize_t *offw           # input column of tap column tw, minus j*sw (KW entries)
    const Py_ssize_t *wtap           # weight offset of tap (th, tw) (KH*KW entries)
    Py_ssize_t Hp, Wp                # GEMM pixel grid (i, j)
    Py_ssize_t oy0, oys, ox0, oxs    # where pixel (i, j) lands in the output
    Py_ssize_t a_offset              # this problem's packed weights
    Py_ssize_t T, K, nkb, nbands     # taps, reduction length, K blocks, bands
    Py_ssize_t items                 # work items: N * groups * nmb * nbands
    bint in_place_b                  # 1x1, stride 1, no offset: the input is the band
    bint in_place_c                  # pixel mode, no padding columns: output written in place
    Band band
    Py_ssize_t *koff                 # offset of K row (c, th, tw) of a K block in the band
    Py_ssize_t *wkoff                # ... and in the raw weights (c*sc + wtap), per block
    bint wk_contig                   # wkoff[k] == k: a K block is contiguous in the weight


cdef struct Layer:
    Py_ssize_t N, C_in, H, W, C_out, H_out, W_out
    Py_ssize_t groups, Cg, Mg
    int mode, isa
    Py_ssize_t mr, nr                # the micro-kernel's most rows and its columns
    Py_ssize_t cpb                   # input channels per K block (at most)
    Py_ssize_t rows                  # grid rows per band (at most)
    Py_ssize_t npanels, ppb, nmb     # channel panels per group, per channel block; blocks
    Py_ssize_t kmax                  # most K rows of a block over all problems
    Py_ssize_t sg, sm, sc            # weight strides of a group, output and input channel
    Py_ssize_t rows_p                # packed weight rows of a group (padded to NR: channels)
    Py_ssize_t packed_size           # elements of the packed weights of all problems
    Py_ssize_t ws_band, ws_c, ws     # per-thread buffer: band, C block, total (elements)
    Py_ssize_t ws_pack               # more per thread for raw weights (channel mode packs)
    Py_ssize_t *ktab                 # k * r for the widths r that occur: see k_times
    Py_ssize_t wlo                   # the narrower width of the pixel-mode weight panels
    Py_ssize_t fy, fx                # depth to space (copy_d2s; 1, 1: none)



cdef inline void ukernel(int isa, Py_ssize_t mr, Py_ssize_t kc, const floating *a,
                         const Py_ssize_t *aoff, Py_ssize_t lda, const floating *b,
                         const Py_ssize_t *boff, floating *c, Py_ssize_t ldc, Py_ssize_t nr,
                         const floating *bias, const floating *bias_col, int accumulate,
                         Py_ssize_t pf) noexcept nogil:
    """The mr x NR tile of variant isa (the one place the dtype picks a symbol)."""
    if floating is float:
        cc_gemm_ukernel_f32(isa, mr)(kc, a, aoff, lda, b, boff, c, ldc, nr, bias, bias_col,
                                     accumulate, pf)
    else:
        cc_gemm_ukernel_f64(isa, mr)(kc, a, aoff, lda, b, boff, c, ldc, nr, bias, bias_col,
                                     accumulate, pf)


cdef inline const Py_ssize_t *k_times(const Layer *L, Py_ssize_t width) noexcept nogil:
    """The table k * width, k < kmax, for a pixel-mode panel width (wlo or wlo + 1: panels
    split Mg evenly) or NR. Assumes: width is one of those."""
    if width == L.nr:
        return L.ktab + 2 * L.kmax
    return L.ktab + (width - L.wlo) * L.kmax


cdef inline Py_ssize_t panel_start(const Layer *L, Py_ssize_t pan) noexcept nogil:
    """The first weight row (output channel of a group) of panel pan: pixel mode splits Mg
    evenly into panels, channel mode into NR-wide ones (the last zero-padded). Panel pan's
    rows are panel_start(pan) .. panel_start(pan + 1)."""
    return split_start(pan, L.Mg, L.npanels) if L.mode == PIXELS else pan * L.nr


cdef inline Py_ssize_t packed_offset(const Layer *L, const Problem *pr, Py_ssize_t gi,
                                     Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t r0) noexcept nogil:
    """Where, in the packed weights, the panel starting at row r0 of group gi lies for the
    K block of input channels c0..c1 (pack_panels' layout)."""
    return pr.a_offset + gi * L.rows_p * pr.K + c0 * pr.T * L.rows_p + r0 * (c1 - c0) * pr.T

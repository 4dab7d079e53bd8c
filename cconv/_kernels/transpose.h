/*
 * cc_transpose_f32/_f64: a block of a matrix, transposed.
 *
 *     dst[k * ldd + i] = src[i * lds + k]      for i < rows, k < cols
 *
 * Packing a functional call's weights into channel-mode panels is this transpose (rows: the
 * panel's output channels, cols: a K block's contiguous (input channel, tap) entries), and it
 * runs once per call over the whole weight: in 4 x 4 (float) or 2 x 2 (double) tiles of
 * 16-byte vectors, not element by element (a strided store or load each; decisions:
 * Transposes in 4x4 vector tiles). The edges that do not fill a tile go element by element.
 *
 * Plain 16-byte vectors with shuffles: SSE2 on x86-64, NEON on ARM, lowered to scalar code
 * where neither exists, so it needs no per-variant build.
 */
#ifndef CCONV_TRANSPOSE_H
#define CCONV_TRANSPOSE_H

#include <Python.h>
#include <string.h>

#include "isa.h"
#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
#include <immintrin.h>
#endif

typedef float cc_tr_v4f __attribute__((vector_size(16)));
typedef float cc_tr_v4fu __attribute__((vector_size(16), aligned(4), may_alias));
typedef double cc_tr_v2d __attribute__((vector_size(16)));
typedef double cc_tr_v2du __attribute__((vector_size(16), aligned(8), may_alias));
typedef int cc_tr_v4i __attribute__((vector_size(16)));
typedef long long cc_tr_v2l __attribute__((vector_size(16)));

#if defined(__clang__)
#define CC_SHUF4(a, b, i, j, k, l) __builtin_shufflevector(a, b, i, j, k, l)
#define CC_SHUF2(a, b, i, j) __builtin_shufflevector(a, b, i, j)
#else
#define CC_SHUF4(a, b, i, j, k, l) __builtin_shuffle(a, b, (cc_tr_v4i){i, j, k, l})
#define CC_SHUF2(a, b, i, j) __builtin_shuffle(a, b, (cc_tr_v2l){i, j})
#endif

/* Where column k of cc_transpose_grid_* goes: row + ph*pstride + t*ldd, with x its place in
   its row of W, ph and t its phase and index there; CC_TR_NEXT moves to column k + 1. */
#define CC_TR_NEXT                                                                           \
    if (++ph == sw) {                                                                        \
        ph = 0;                                                                              \
        t++;                                                                                 \
    }                                                                                        \
    if (++x == W) {                                                                          \
        x = 0;                                                                               \
        ph = r0 % sw;                                                                        \
        t = r0 / sw;                                                                         \
        row += dpitch;                                                                       \
    }

/* Store a tile's n columns o[0..n) at columns k..k+n of cc_transpose_grid_*: with constant
   offsets when they lie in one row of W and one phase (the common case) or alternate between
   two (a stride-2 layer's), else one by one. */
#define CC_TR_STORE(VU, n)                                                                   \
    if (sw == 1 && x + (n) <= W) {                                                           \
        for (int j = 0; j < (n); j++)                                                        \
            *(VU *)(row + (t + j) * ldd) = o[j];                                            \
        x += (n);                                                                            \
        t += (n);                                                                            \
        if (x == W) {                                                                        \
            x = 0;                                                                           \
            t = r0;                                                                          \
            row += dpitch;                                                                   \
        }                                                                                    \
    } else if (sw == 2 && x + (n) < W) {                                                     \
        for (int j = 0; j < (n); j++)                                                        \
            *(VU *)(row + ((ph + j) & 1) * pstride + (t + ((ph + j) >> 1)) * ldd) = o[j];   \
        x += (n);                                                                            \
        t += (n) / 2;                                                                        \
    } else {                                                                                 \
        for (int j = 0; j < (n); j++) {                                                      \
            *(VU *)(row + ph * pstride + t * ldd) = o[j];                                   \
            CC_TR_NEXT                                                                       \
        }                                                                                    \
    }

/* The edges that do not fill a tile, element by element: rows [i0, i1) x cols [k0, k1). */
#define CC_TR_EDGE(i0, i1, k0, k1)                                                           \
    for (Py_ssize_t ii = (i0); ii < (i1); ii++)                                             \
        for (Py_ssize_t kk = (k0); kk < (k1); kk++)                                         \
            dst[kk * ldd + ii] = src[ii * lds + kk];

static void cc_transpose_f32(Py_ssize_t rows, Py_ssize_t cols, const float *restrict src,
                             Py_ssize_t lds, float *restrict dst, Py_ssize_t ldd)
{
    Py_ssize_t i, k, rows4 = rows & ~(Py_ssize_t)3, cols4 = cols & ~(Py_ssize_t)3;
    for (i = 0; i < rows4; i += 4) {
        const float *s = src + i * lds;
        for (k = 0; k < cols4; k += 4) {
            const cc_tr_v4f a = *(const cc_tr_v4fu *)(s + k);
            const cc_tr_v4f b = *(const cc_tr_v4fu *)(s + lds + k);
            const cc_tr_v4f c = *(const cc_tr_v4fu *)(s + 2 * lds + k);
            const cc_tr_v4f d = *(const cc_tr_v4fu *)(s + 3 * lds + k);
            const cc_tr_v4f ab0 = CC_SHUF4(a, b, 0, 4, 1, 5), ab1 = CC_SHUF4(a, b, 2, 6, 3, 7);
            const cc_tr_v4f cd0 = CC_SHUF4(c, d, 0, 4, 1, 5), cd1 = CC_SHUF4(c, d, 2, 6, 3, 7);
            float *o = dst + k * ldd + i;
            *(cc_tr_v4fu *)o = CC_SHUF4(ab0, cd0, 0, 1, 4, 5);
            *(cc_tr_v4fu *)(o + ldd) = CC_SHUF4(ab0, cd0, 2, 3, 6, 7);
            *(cc_tr_v4fu *)(o + 2 * ldd) = CC_SHUF4(ab1, cd1, 0, 1, 4, 5);
            *(cc_tr_v4fu *)(o + 3 * ldd) = CC_SHUF4(ab1, cd1, 2, 3, 6, 7);
        }
        CC_TR_EDGE(i, i + 4, cols4, cols)
    }
    CC_TR_EDGE(rows4, rows, 0, cols)
}

static void cc_transpose_f64(Py_ssize_t rows, Py_ssize_t cols, const double *restrict src,
                             Py_ssize_t lds, double *restrict dst, Py_ssize_t ldd)
{
    Py_ssize_t i, k, rows2 = rows & ~(Py_ssize_t)1, cols2 = cols & ~(Py_ssize_t)1;
    for (i = 0; i < rows2; i += 2) {
        const double *s = src + i * lds;
        for (k = 0; k < cols2; k += 2) {
            const cc_tr_v2d a = *(const cc_tr_v2du *)(s + k);
            const cc_tr_v2d b = *(const cc_tr_v2du *)(s + lds + k);
            *(cc_tr_v2du *)(dst + k * ldd + i) = CC_SHUF2(a, b, 0, 2);
            *(cc_tr_v2du *)(dst + (k + 1) * ldd + i) = CC_SHUF2(a, b, 1, 3);
        }
        CC_TR_EDGE(i, i + 2, cols2, cols)
    }
    CC_TR_EDGE(rows2, rows, 0, cols)
}

#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
/* The AVX-512 tile: rows s[0..16) (lds apart) at columns k..k+3 into o[0..4), o[j] holding
   column k + j of the 16 rows. 128-bit lane q of a[j] gathers row 4q + j; the lanes are then
   transposed in place. */
#define CC_TR_TILE16X4_AVX512                                                                \
    __m512 a[4];                                                                             \
    for (int j = 0; j < 4; j++) {                                                            \
        const float *q = s + j * lds + k;                                                    \
        __m512 v = _mm512_broadcast_f32x4(_mm_loadu_ps(q));                                  \
        v = _mm512_mask_broadcast_f32x4(v, 0x00F0, _mm_loadu_ps(q + 4 * lds));               \
        v = _mm512_mask_broadcast_f32x4(v, 0x0F00, _mm_loadu_ps(q + 8 * lds));               \
        a[j] = _mm512_mask_broadcast_f32x4(v, 0xF000, _mm_loadu_ps(q + 12 * lds));           \
    }                                                                                        \
    const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(a[0], a[1]));                     \
    const __m512d t1 = _mm512_castps_pd(_mm512_unpackhi_ps(a[0], a[1]));                     \
    const __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(a[2], a[3]));                     \
    const __m512d t3 = _mm512_castps_pd(_mm512_unpackhi_ps(a[2], a[3]));                     \
    const __m512 o[4] = {_mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2)),                       \
                         _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2)),                       \
                         _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3)),                       \
                         _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3))};

/* The AVX-512 variant's float transpose, 16 rows at a time: each 16 x 4 tile is gathered
   into four registers by 16-byte broadcasts (load ports, not the shuffle port), transposed
   within their 128-bit lanes, and stored as four whole rows of 16 (decisions: AVX-512
   transposes). */
__attribute__((target("avx512f")))
static void cc_transpose16_f32_avx512(Py_ssize_t rows, Py_ssize_t cols,
                                      const float *restrict src, Py_ssize_t lds,
                                      float *restrict dst, Py_ssize_t ldd)
{
    Py_ssize_t i, k, rows16 = rows & ~(Py_ssize_t)15, cols4 = cols & ~(Py_ssize_t)3;
    for (i = 0; i < rows16; i += 16) {
        const float *s = src + i * lds;
        for (k = 0; k < cols4; k += 4) {
            CC_TR_TILE16X4_AVX512
            for (int j = 0; j < 4; j++)
                _mm512_storeu_ps(dst + (k + j) * ldd + i, o[j]);
        }
        CC_TR_EDGE(i, i + 16, cols4, cols)
    }
    /* Clean upper register halves before any legacy-SSE code runs: GCC tail-called the
       4 x 4 version without it, and every SSE instruction after paid for the dirty state
       (decisions: vzeroupper on every AVX-512 exit). */
    _mm256_zeroupper();
    if (rows > rows16)
        cc_transpose_f32(rows - rows16, cols, src + rows16 * lds, lds, dst + rows16, ldd);
}
#endif

/* cc_transpose_f32 with variant isa's widest tiles (AVX-512 on x86-64) where their stores
   are whole cache lines: dst and its rows 64-byte aligned (a weight panel of a functional
   call). A store across two lines costs about two, so unaligned destinations (7x7 or 14x14
   output planes) keep the 4 x 4 tiles (decisions: AVX-512 transposes). */
static inline void cc_transpose_isa_f32(int isa, Py_ssize_t rows, Py_ssize_t cols,
                                        const float *src, Py_ssize_t lds, float *dst,
                                        Py_ssize_t ldd)
{
#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
    if (isa == CC_ISA_AVX512 && rows >= 16 && ldd % 16 == 0 && (size_t)dst % 64 == 0) {
        cc_transpose16_f32_avx512(rows, cols, src, lds, dst, ldd);
        return;
    }
#endif
    (void)isa;
    cc_transpose_f32(rows, cols, src, lds, dst, ldd);
}

/*
 * cc_scatter2_isa_f32: dst[2 * t] = src[t] for t < n (a stride-2 phase of a transposed
 * convolution's output row), writing no other element: another thread may be writing the
 * odd ones. AVX-512: 8 at a time, expanded into the even lanes and stored under a mask;
 * element by element elsewhere.
 */
#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
__attribute__((target("avx512f")))
static void cc_scatter2_f32_avx512(Py_ssize_t n, const float *src, float *dst)
{
    Py_ssize_t t = 0;
    for (; t + 8 <= n; t += 8)
        _mm512_mask_storeu_ps(dst + 2 * t, 0x5555, _mm512_maskz_expandloadu_ps(0x5555, src + t));
    if (t < n) {
        /* The last n - t < 8: as many mask bits, so nothing past either end is touched. */
        const __mmask16 m = (__mmask16)(0x5555u & ((1u << (2 * (n - t))) - 1u));
        _mm512_mask_storeu_ps(dst + 2 * t, m, _mm512_maskz_expandloadu_ps(m, src + t));
    }
    _mm256_zeroupper();
}
#endif

static inline void cc_scatter2_isa_f32(int isa, Py_ssize_t n, const float *src, float *dst)
{
#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
    if (isa == CC_ISA_AVX512) {
        cc_scatter2_f32_avx512(n, src, dst);
        return;
    }
#endif
    (void)isa;
    for (Py_ssize_t t = 0; t < n; t++)
        dst[2 * t] = src[t];
}

/*
 * cc_transpose_grid_f32/_f64: the same, with the destination's columns laid out as rows of W
 * pixels, and each row split into sw phases pstride elements apart:
 *
 *     dst[(k / W) * dpitch + (r % sw) * pstride + (r / sw) * ldd + i] = src[i * lds + k]
 *                                                                  r = r0 + k % W
 *
 * (an image's channels, rows of W pixels flattened in src, into a (rows, columns, channels)
 * block: depthwise convolution's channels-in-lanes mode; with sw > 1, a row's columns dealt
 * to its stride phases). Assumes: r0 >= 0, sw >= 1.
 */
#define CC_TR_GRID(ATTR, name, T, nr, nc, TILE, EXIT)                                      \
    ATTR static void name(Py_ssize_t rows, Py_ssize_t cols, const T *restrict src,           \
                          Py_ssize_t lds, T *restrict dst, Py_ssize_t ldd, Py_ssize_t W,      \
                          Py_ssize_t dpitch, Py_ssize_t sw, Py_ssize_t pstride, Py_ssize_t r0) \
    {                                                                                        \
        for (Py_ssize_t i = 0; i < rows; i += (nr)) {                                        \
            const T *s = src + i * lds;                                                      \
            T *row = dst + i;                                                                \
            Py_ssize_t x = 0, k = 0, ph = r0 % sw, t = r0 / sw;                              \
            if (i + (nr) <= rows) {                                                          \
                for (; k + (nc) <= cols; k += (nc)) {                                        \
                    TILE                                                                     \
                }                                                                            \
            }                                                                                \
            for (; k < cols; k++) {                                                          \
                for (Py_ssize_t ii = i; ii < i + (nr) && ii < rows; ii++)                    \
                    row[ph * pstride + t * ldd + ii - i] = src[ii * lds + k];                \
                CC_TR_NEXT                                                                   \
            }                                                                                \
        }                                                                                    \
        EXIT                                                                                 \
    }

/* A 4 x 4 float tile (2 x 2 double) as in cc_transpose_*, stored by CC_TR_STORE. */
#define CC_TR_GRID_TILE_F32                                                                  \
    const cc_tr_v4f a = *(const cc_tr_v4fu *)(s + k);                                        \
    const cc_tr_v4f b = *(const cc_tr_v4fu *)(s + lds + k);                                  \
    const cc_tr_v4f c = *(const cc_tr_v4fu *)(s + 2 * lds + k);                              \
    const cc_tr_v4f d = *(const cc_tr_v4fu *)(s + 3 * lds + k);                              \
    const cc_tr_v4f ab0 = CC_SHUF4(a, b, 0, 4, 1, 5), ab1 = CC_SHUF4(a, b, 2, 6, 3, 7);      \
    const cc_tr_v4f cd0 = CC_SHUF4(c, d, 0, 4, 1, 5), cd1 = CC_SHUF4(c, d, 2, 6, 3, 7);      \
    const cc_tr_v4f o[4] = {CC_SHUF4(ab0, cd0, 0, 1, 4, 5), CC_SHUF4(ab0, cd0, 2, 3, 6, 7),  \
                            CC_SHUF4(ab1, cd1, 0, 1, 4, 5), CC_SHUF4(ab1, cd1, 2, 3, 6, 7)}; \
    CC_TR_STORE(cc_tr_v4fu, 4)
#define CC_TR_GRID_TILE_F64                                                                  \
    const cc_tr_v2d a = *(const cc_tr_v2du *)(s + k);                                        \
    const cc_tr_v2d b = *(const cc_tr_v2du *)(s + lds + k);                                  \
    const cc_tr_v2d o[2] = {CC_SHUF2(a, b, 0, 2), CC_SHUF2(a, b, 1, 3)};                     \
    CC_TR_STORE(cc_tr_v2du, 2)

CC_TR_GRID(, cc_transpose_grid_f32, float, 4, 4, CC_TR_GRID_TILE_F32, )
CC_TR_GRID(, cc_transpose_grid_f64, double, 2, 2, CC_TR_GRID_TILE_F64, )

#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
typedef float cc_tr_v16fu __attribute__((vector_size(64), aligned(4), may_alias));

/* The AVX-512 tile, stored by CC_TR_STORE. */
#define CC_TR_GRID_TILE_AVX512                                                               \
    CC_TR_TILE16X4_AVX512                                                                    \
    CC_TR_STORE(cc_tr_v16fu, 4)

/* Upper register halves cleaned on the way out: legacy-SSE code follows. */
CC_TR_GRID(__attribute__((target("avx512f"))), cc_transpose_grid16_f32_avx512, float, 16, 4,
           CC_TR_GRID_TILE_AVX512, _mm256_zeroupper();)
#undef CC_TR_GRID_TILE_AVX512
#undef CC_TR_TILE16X4_AVX512
#endif

/* cc_transpose_grid_f32 with variant isa's widest tiles where their stores are whole cache
   lines (see cc_transpose_isa_f32): 16 lanes a pixel, 64-byte aligned. */
static inline void cc_transpose_grid_isa_f32(int isa, Py_ssize_t rows, Py_ssize_t cols,
                                             const float *src, Py_ssize_t lds, float *dst,
                                             Py_ssize_t ldd, Py_ssize_t W, Py_ssize_t dpitch,
                                             Py_ssize_t sw, Py_ssize_t pstride, Py_ssize_t r0)
{
#if defined(CC_ARCH_X86) && CC_NUM_ISAS > 2
    if (isa == CC_ISA_AVX512 && rows == 16 && ldd == 16 && dpitch % 16 == 0 &&
        pstride % 16 == 0 && (size_t)dst % 64 == 0) {
        cc_transpose_grid16_f32_avx512(rows, cols, src, lds, dst, ldd, W, dpitch, sw, pstride,
                                       r0);
        return;
    }
#endif
    (void)isa;
    cc_transpose_grid_f32(rows, cols, src, lds, dst, ldd, W, dpitch, sw, pstride, r0);
}

#undef CC_TR_GRID
#undef CC_TR_GRID_TILE_F32
#undef CC_TR_GRID_TILE_F64

/*
 * cc_copy_pixels: dst[t * bytes ...] = src[t * stride ...], `bytes` bytes each, t < n: picking
 * every stride-th pixel (a vector of channels) of a transposed row. Sizes of one 16-, 32- or
 * 64-byte vector are copied by fixed-size moves, not a memcpy call per pixel.
 */
#define CC_COPY_PIXELS(size)                                                                 \
    for (Py_ssize_t t = 0; t < n; t++)                                                       \
        memcpy(dst + t * (size), src + t * stride, (size));

static void cc_copy_pixels(Py_ssize_t n, const void *src_, Py_ssize_t stride, void *dst_,
                           Py_ssize_t bytes)
{
    const char *src = (const char *)src_;
    char *dst = (char *)dst_;
    switch (bytes) {
    case 16: CC_COPY_PIXELS(16) break;
    case 32: CC_COPY_PIXELS(32) break;
    case 64: CC_COPY_PIXELS(64) break;
    default: CC_COPY_PIXELS(bytes)
    }
}

#undef CC_COPY_PIXELS
#undef CC_TR_NEXT
#undef CC_TR_STORE
#undef CC_SHUF4
#undef CC_SHUF2
#undef CC_TR_EDGE

#endif /* CCONV_TRANSPOSE_H */

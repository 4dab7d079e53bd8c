/*
 * The max pooling micro-kernel (the CC_BODY of pooling.h; see instantiate.h for the macros it
 * is given): one output row of max pooling without indices.
 *
 *     o[j] = max over r < rows, then k < KW, of x[r*rs + j*sw - pw + k*dw]        j < Wo
 *
 * over the taps inside the row (column 0 .. W-1) only, each element starting from -inf and
 * taking a value v when `v > m || isnan(v)` (torch's rule), its window visited in torch's
 * order (rows, then columns): a NaN wins and stays (the last one seen), of equal values (-0
 * and +0) the first stays, so the result is torch's to the bit.
 *
 * The interior columns a <= j < b (cc_maxpool_geom: their windows lie inside the row) run
 * along the lanes, the window's taps looped inside so each vector's maximum stays in a
 * register and is stored once; two vectors at a time, so that their chains of comparisons
 * interleave. A tap's lanes are one unaligned load for stride 1, the even lanes of two
 * overlapping loads for stride 2, and otherwise gathered lane by lane (CC_MP_GATHER); the
 * last partial vector is
 * recomputed overlapping the one before it (the same values again). The border columns, and
 * interiors narrower than a vector, go element by element.
 * Assumes: x is column 0 of the window's first row inside the image; rows >= 0.
 */
#define CC_MP CC_CAT(CC_CAT3(maxpool_ukernel_, CC_NAME, _), CC_DT)
#define CC_MP_ONE CC_CAT(CC_CAT3(cc_maxpool_one_, CC_NAME, _), CC_DT)
#define CC_MP_IV CC_CAT(CC_CAT3(cc_mp_iv_, CC_NAME, _), CC_DT)
#define CC_MP_GATHER CC_CAT(CC_CAT3(cc_maxpool_gather_, CC_NAME, _), CC_DT)
#define CC_LOADU(p) (*(const CC_VU *)(p))
#define CC_STOREU(p, v) (*(CC_VU *)(p) = (v))

#if CC_VBYTES / CC_VL == 4
typedef int CC_MP_IV __attribute__((vector_size(CC_VBYTES)));
#else
typedef long long CC_MP_IV __attribute__((vector_size(CC_VBYTES)));
#endif

/* The even lanes of the 2*CC_VL elements at p: lanes 0, 2, .. of a = p[0 .. VL-1], then
   lanes 1, 3, .. of b = p[VL-1 .. 2VL-2], so that nothing past p[2VL-2] is read. */
#if CC_VL == 2
#define CC_EVENS 0, 3
#elif CC_VL == 4
#define CC_EVENS 0, 2, 5, 7
#elif CC_VL == 8
#define CC_EVENS 0, 2, 4, 6, 9, 11, 13, 15
#else
#define CC_EVENS 0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31
#endif
#if defined(__clang__)
#define CC_LOAD_EVENS(p) __builtin_shufflevector(CC_LOADU(p), CC_LOADU((p) + CC_VL - 1), CC_EVENS)
#else
#define CC_LOAD_EVENS(p) \
    __builtin_shuffle(CC_LOADU(p), CC_LOADU((p) + CC_VL - 1), (CC_MP_IV){CC_EVENS})
#endif

/* Lane l of p[l * sw], lane by lane. Not through a stack buffer and one vector load, which
   was faster: with AddressSanitizer's fake stack (detect_stack_use_after_return) GCC's
   AVX-512 build of that read through a wild pointer, while the plain build was correct. */
CC_TARGET static inline CC_V CC_MP_GATHER(const CC_T *p, Py_ssize_t sw)
{
    CC_V v = {0};
    for (int l = 0; l < CC_VL; l++)
        v[l] = p[l * sw];
    return v;
}
#define CC_LOAD_STRIDED(p) CC_MP_GATHER(p, sw)

/* m <- v where `v > m || isnan(v)`, lane by lane. */
#define CC_MP_TAKE(m, v)                                                                     \
    do {                                                                                     \
        const CC_MP_IV t_ = ((v) > (m)) | ((v) != (v));                                      \
        (m) = (CC_V)((t_ & (CC_MP_IV)(v)) | (~t_ & (CC_MP_IV)(m)));                          \
    } while (0)

/* The window maxima of the CC_VL outputs from j (one vector) or 2*CC_VL (two), each tap's
   lanes by LOAD(address of lane 0), j counted from the interior's first column. */
#define CC_MP_VECTOR(LOAD)                                                                   \
    do {                                                                                     \
        CC_V m0 = ninf;                                                                      \
        for (Py_ssize_t r = 0; r < rows; r++) {                                              \
            const CC_T *xr = xi + r * rs + j * sw;                                           \
            for (Py_ssize_t k = 0; k < KW; k++) {                                            \
                const CC_V v0 = LOAD(xr + k * dw);                                           \
                CC_MP_TAKE(m0, v0);                                                          \
            }                                                                                \
        }                                                                                    \
        CC_STOREU(oi + j, m0);                                                                \
    } while (0)
#define CC_MP_VECTOR2(LOAD)                                                                  \
    do {                                                                                     \
        CC_V m0 = ninf, m1 = ninf;                                                           \
        for (Py_ssize_t r = 0; r < rows; r++) {                                              \
            const CC_T *xr = xi + r * rs + j * sw;                                           \
            for (Py_ssize_t k = 0; k < KW; k++) {                                            \
                const CC_V v0 = LOAD(xr + k * dw);                                           \
                const CC_V v1 = LOAD(xr + k * dw + CC_VL * sw);                              \
                CC_MP_TAKE(m0, v0);                                                          \
                CC_MP_TAKE(m1, v1);                                                          \
            }                                                                                \
        }                                                                                    \
        CC_STOREU(oi + j, m0);                                                                \
        CC_STOREU(oi + j + CC_VL, m1);                                                        \
    } while (0)

#define CC_MP_INTERIOR(LOAD)                                                                 \
    do {                                                                                     \
        for (j = 0; j + 2 * CC_VL <= n; j += 2 * CC_VL)                                      \
            CC_MP_VECTOR2(LOAD);                                                             \
        for (; j + CC_VL <= n; j += CC_VL)                                                   \
            CC_MP_VECTOR(LOAD);                                                              \
        if (j < n) {                                                                         \
            j = n - CC_VL;                                                                   \
            CC_MP_VECTOR(LOAD);                                                              \
        }                                                                                    \
    } while (0)

/* Output column j alone, its taps outside the row skipped; in vectors (lane 0 used), where the
   compiler selects without a branch, as a scalar `?:` it compiled to one it mispredicts. */
CC_TARGET static inline CC_T CC_MP_ONE(const cc_maxpool_geom *g, const CC_T *x, Py_ssize_t rs,
                                       Py_ssize_t rows, Py_ssize_t j)
{
    const Py_ssize_t c0 = j * g->sw - g->pw;
    CC_V m = (CC_V){0} - (CC_T)__builtin_inf();
    for (Py_ssize_t r = 0; r < rows; r++)
        for (Py_ssize_t k = 0; k < g->KW; k++) {
            const Py_ssize_t c = c0 + k * g->dw;
            if (c >= 0 && c < g->W) {
                const CC_V v = {x[r * rs + c]};            /* not 0 + x: that is +0 for -0 */
                CC_MP_TAKE(m, v);
            }
        }
    return m[0];
}

CC_TARGET static void CC_MP(const cc_maxpool_geom *g, const CC_T *x, Py_ssize_t rs,
                            Py_ssize_t rows, CC_T *o)
{
    const CC_V ninf = (CC_V){0} - (CC_T)__builtin_inf();
    const Py_ssize_t KW = g->KW, sw = g->sw, dw = g->dw, b = g->b;
    /* An interior narrower than a vector goes element by element with the left border. */
    const Py_ssize_t a = b - g->a >= CC_VL ? g->a : b;
    Py_ssize_t j;
    for (j = 0; j < a; j++)
        o[j] = CC_MP_ONE(g, x, rs, rows, j);
    if (a < b) {
        const CC_T *xi = x + a * sw - g->pw;
        CC_T *oi = o + a;
        const Py_ssize_t n = b - a;
        if (sw == 1)
            CC_MP_INTERIOR(CC_LOADU);
        else if (sw == 2)
            CC_MP_INTERIOR(CC_LOAD_EVENS);
        else
            CC_MP_INTERIOR(CC_LOAD_STRIDED);
    }
    for (j = b; j < g->Wo; j++)
        o[j] = CC_MP_ONE(g, x, rs, rows, j);
}

#undef CC_MP
#undef CC_MP_ONE
#undef CC_MP_IV
#undef CC_MP_GATHER
#undef CC_LOADU
#undef CC_STOREU
#undef CC_EVENS
#undef CC_LOAD_EVENS
#undef CC_LOAD_STRIDED
#undef CC_MP_TAKE
#undef CC_MP_VECTOR
#undef CC_MP_VECTOR2
#undef CC_MP_INTERIOR

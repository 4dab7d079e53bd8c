/*
 * gemm_ukernel_<MR>x<NR>: the register tile of the implicit GEMM (one body, included by
 * gemm_dispatch.h once per instruction-set variant, dtype and row count MR).
 *
 *     C[MR x NR] = (accumulate ? C : bias) + A[MR x kc] * B[kc x NR]      NR = 2 vectors
 *
 * The bias is per row (bias[i], pixels in lanes) or per column (bias_col[j], channels in
 * lanes; NR readable entries), or absent; summing starts from it in either orientation, so
 * both orientations round alike.
 *
 *   A  a[aoff[k] + i*lda] broadcast, one scalar per row and k
 *   B  b[boff[k] + j]     two vector loads per k
 *   C  c[i * ldc + j]     j < nr (nr < NR only for a last, partial tile: through a stack tile)
 *
 * pf > 0 prefetches B's rows pf elements ahead: the next tiles of an input read in place,
 * which the hardware prefetcher cannot follow across hundreds of channel rows, or the next
 * packed weight panel (channel mode).
 *
 * The offset tables let both operands be read where they lie: packed weights (aoff[k] = k*MR,
 * lda = 1, or boff[k] = k*NR), the weight array itself (one offset per input channel and tap,
 * lda = the weight's row stride), a 1x1 layer's input (boff[k] = k*H*W), or the zero-padded
 * band buffer of the driver (one offset per input channel and tap): no im2col matrix, and no
 * packing pass over the weights for a one-off call.
 *
 * The accumulators are MR x 2 named vectors (CC_ROWS x-macros), which GCC and Clang keep in
 * registers; an array of accumulators is not reliably register-allocated.
 *
 * Template parameters (macros): CC_T scalar, CC_V / CC_VU aligned / unaligned vector type,
 * CC_VL lanes, CC_MR rows, CC_TARGET function attribute, CC_UK function name.
 */

#define CC_NR (2 * CC_VL)
#define CC_LOADU(p) (*(const CC_VU *)(p))
#define CC_STOREU(p, v) (*(CC_VU *)(p) = (v))

#define CC_DECL(i) CC_V c##i##a, c##i##b;
#define CC_INIT(i) c##i##a = c##i##b = zero + (bias ? bias[i] : (CC_T)0);
#define CC_INIT_COL(i) c##i##a = bc0; c##i##b = bc1;
#define CC_LOAD(i) c##i##a = CC_LOADU(cs + (i) * cs_ld); c##i##b = CC_LOADU(cs + (i) * cs_ld + CC_VL);
#define CC_FMA(i) { const CC_T ai = ak[(i) * CC_LDA]; c##i##a += b0 * ai; c##i##b += b1 * ai; }
#define CC_PREFETCH __builtin_prefetch(bk + pf); __builtin_prefetch(bk + pf + CC_VL);
#define CC_KLOOP(PREFETCH)                                                                   \
    for (Py_ssize_t k = 0; k < kc; k++) {                                                    \
        const CC_T *ak = a + aoff[k];                                                        \
        const CC_T *bk = b + boff[k];                                                        \
        PREFETCH                                                                             \
        const CC_V b0 = CC_LOADU(bk);                                                        \
        const CC_V b1 = CC_LOADU(bk + CC_VL);                                                \
        CC_CAT(CC_ROWS_, CC_MR)(CC_FMA)                                                      \
    }
#define CC_STORE(i) CC_STOREU(cs + (i) * cs_ld, c##i##a); CC_STOREU(cs + (i) * cs_ld + CC_VL, c##i##b);

CC_TARGET static void CC_UK(Py_ssize_t kc, const CC_T *restrict a,
                            const Py_ssize_t *restrict aoff, Py_ssize_t lda,
                            const CC_T *restrict b,
                            const Py_ssize_t *restrict boff, CC_T *restrict c, Py_ssize_t ldc,
                            Py_ssize_t nr, const CC_T *restrict bias,
                            const CC_T *restrict bias_col, int accumulate, Py_ssize_t pf)
{
    const CC_V zero = {0};
    CC_T tile[CC_MR * CC_NR];
    /* A partial tile is read and written through `tile`, so the vector code never touches
       memory past column nr. */
    CC_T *cs = c;
    Py_ssize_t cs_ld = ldc;
    if (nr < CC_NR) {
        cs = tile;
        cs_ld = CC_NR;
        if (accumulate) {
            for (Py_ssize_t i = 0; i < CC_MR; i++)
                for (Py_ssize_t j = 0; j < CC_NR; j++)
                    tile[i * CC_NR + j] = j < nr ? c[i * ldc + j] : (CC_T)0;
        }
    }
    CC_CAT(CC_ROWS_, CC_MR)(CC_DECL)
    if (accumulate) {
        CC_CAT(CC_ROWS_, CC_MR)(CC_LOAD)
    } else if (bias_col) {
        const CC_V bc0 = CC_LOADU(bias_col), bc1 = CC_LOADU(bias_col + CC_VL);
        CC_CAT(CC_ROWS_, CC_MR)(CC_INIT_COL)
    } else {
        CC_CAT(CC_ROWS_, CC_MR)(CC_INIT)
    }
    /* Four copies of the k loop: A's rows adjacent (lda == 1: packed weights, band pixels)
       or apart (raw weights), with or without prefetching. With lda a literal 1 the row
       addresses are constant offsets; a run-time lda cost ~7 more address instructions a
       step in the 12-row AVX-512 tile, whose 24 FMAs leave the front end little room. */
#define CC_LDA 1
    if (lda == 1) {
        if (pf > 0)
            CC_KLOOP(CC_PREFETCH)
        else
            CC_KLOOP()
    }
#undef CC_LDA
#define CC_LDA lda
    else {
        if (pf > 0)
            CC_KLOOP(CC_PREFETCH)
        else
            CC_KLOOP()
    }
#undef CC_LDA
    CC_CAT(CC_ROWS_, CC_MR)(CC_STORE)
    if (nr < CC_NR) {
        for (Py_ssize_t i = 0; i < CC_MR; i++)
            for (Py_ssize_t j = 0; j < nr; j++)
                c[i * ldc + j] = tile[i * CC_NR + j];
    }
}

#undef CC_NR
#undef CC_LOADU
#undef CC_STOREU
#undef CC_DECL
#undef CC_INIT
#undef CC_INIT_COL
#undef CC_LOAD
#undef CC_FMA
#undef CC_PREFETCH
#undef CC_KLOOP
#undef CC_STORE

/*
 * The Winograd F(4x4, 3x3) tile transforms (the CC_BODY of winograd_dispatch.h; see
 * instantiate.h for the macros they are given), n tiles at a time with the tiles along the
 * SIMD lanes: element e of tile t lies at x[e*ld + t], so each 1-D transform below is a loop
 * over t that the compiler vectorises for the variant's target.
 *
 * Interpolation points 0, +-1, +-2 and infinity (cconv/_kernels/_winograd.pyx has the
 * matrices; tools/winograd_error.py derives them):
 *
 *   winograd_input_<isa>_<dt>    V = B^T d B     d: a 6x6 input tile, V: 36 positions
 *   winograd_output_<isa>_<dt>   Y = A^T M A     M: 36 positions, Y: a 4x4 output tile
 *   winograd_sum_<isa>_<dt>      b += a, a block of rows
 */
#define CC_WI CC_CAT(CC_CAT3(winograd_input_, CC_NAME, _), CC_DT)
#define CC_WO CC_CAT(CC_CAT3(winograd_output_, CC_NAME, _), CC_DT)
#define CC_WS CC_CAT(CC_CAT3(winograd_sum_, CC_NAME, _), CC_DT)
#define CC_WB CC_CAT(CC_CAT3(winograd_bt8_, CC_NAME, _), CC_DT)
#define CC_WA CC_CAT(CC_CAT3(winograd_at8_, CC_NAME, _), CC_DT)

/* y[k] = sum_i B^T[k][i] x[i] for 6 elements x[i*xs + t], y[k*ys + t], t < n. */
CC_TARGET static inline void CC_WB(const CC_T *restrict x, Py_ssize_t xs, CC_T *restrict y,
                                   Py_ssize_t ys, Py_ssize_t n)
{
    for (Py_ssize_t t = 0; t < n; t++) {
        const CC_T x0 = x[t], x1 = x[xs + t], x2 = x[2 * xs + t], x3 = x[3 * xs + t];
        const CC_T x4 = x[4 * xs + t], x5 = x[5 * xs + t];
        y[t] = (CC_T)4 * x0 - (CC_T)5 * x2 + x4;
        y[ys + t] = (x3 + x4) - (CC_T)4 * (x1 + x2);
        y[2 * ys + t] = (x4 - x3) + (CC_T)4 * (x1 - x2);
        y[3 * ys + t] = (x4 - x2) + (CC_T)2 * (x3 - x1);
        y[4 * ys + t] = (x4 - x2) - (CC_T)2 * (x3 - x1);
        y[5 * ys + t] = (CC_T)4 * x1 - (CC_T)5 * x3 + x5;
    }
}

/* y[k] = sum_i A^T[k][i] x[i], k < 4, for 6 elements x[i*xs + t], y[k*ys + t], t < n. */
CC_TARGET static inline void CC_WA(const CC_T *restrict x, Py_ssize_t xs, CC_T *restrict y,
                                   Py_ssize_t ys, Py_ssize_t n)
{
    for (Py_ssize_t t = 0; t < n; t++) {
        const CC_T s1 = x[xs + t] + x[2 * xs + t], d1 = x[xs + t] - x[2 * xs + t];
        const CC_T s2 = x[3 * xs + t] + x[4 * xs + t], d2 = x[3 * xs + t] - x[4 * xs + t];
        y[t] = x[t] + s1 + s2;
        y[ys + t] = d1 + (CC_T)2 * d2;
        y[2 * ys + t] = s1 + (CC_T)4 * s2;
        y[3 * ys + t] = d1 + (CC_T)8 * d2 + x[5 * xs + t];
    }
}

/* v[p*vs + t] = (B^T d B)[p] of the tiles d[e*ld + t] (e = row*6 + column), t < n.
   tmp: 36*ld elements. */
CC_TARGET static void CC_WI(const CC_T *restrict d, Py_ssize_t ld, Py_ssize_t n,
                            CC_T *restrict tmp, CC_T *restrict v, Py_ssize_t vs)
{
    /* Columns first (tmp[k][j] = sum_i B^T[k][i] d[i][j]), then the rows of tmp. */
    for (Py_ssize_t j = 0; j < 6; j++)
        CC_WB(d + j * ld, 6 * ld, tmp + j * ld, 6 * ld, n);
    for (Py_ssize_t k = 0; k < 6; k++)
        CC_WB(tmp + k * 6 * ld, ld, v + k * 6 * vs, vs, n);
}

/* y[e*ld + t] = (A^T M A)[e] (e = row*4 + column) of m[p*ms + t], t < n. tmp: 24*ld. */
CC_TARGET static void CC_WO(const CC_T *restrict m, Py_ssize_t ms, Py_ssize_t ld, Py_ssize_t n,
                            CC_T *restrict tmp, CC_T *restrict y)
{
    for (Py_ssize_t j = 0; j < 6; j++)
        CC_WA(m + j * ms, 6 * ms, tmp + j * ld, 6 * ld, n);
    for (Py_ssize_t k = 0; k < 4; k++)
        CC_WA(tmp + k * 6 * ld, ld, y + k * 4 * ld, ld, n);
}

/* b[i*ldb + j] += a[i*lda + j], i < rows, j < cols: a block's partial products summed into
   the running sum (blocked summation keeps the GEMM's rounding small). */
CC_TARGET static void CC_WS(Py_ssize_t rows, Py_ssize_t cols, const CC_T *restrict a,
                            Py_ssize_t lda, CC_T *restrict b, Py_ssize_t ldb)
{
    for (Py_ssize_t i = 0; i < rows; i++)
        for (Py_ssize_t j = 0; j < cols; j++)
            b[i * ldb + j] += a[i * lda + j];
}

#undef CC_WI
#undef CC_WS
#undef CC_WO
#undef CC_WB
#undef CC_WA

/*
 * The Winograd F(4x4, 3x3) tile transforms (the CC_BODY of winograd_dispatch.h; see
 * instantiate.h for the macros they are given), n tiles at a time with the tiles along the
 * SIMD lanes: element e of tile t lies at x[e*ld + t], so each 1-D transform below is a loop
 * over t that the compiler vectorises for the variant's target.
 *
 * Interpolation points 0, +-1, +-2 and infinity (cconv/_kernels/_winograd.pyx has the
 * matrices; tools/winograd_error.py derives them):
 *
 *   winograd_output_<isa>_<dt>   Y = A^T M A     M: 36 positions, Y: a 4x4 output tile
 *   winograd_col_<isa>_<dt>      B^T down the columns of 6 input lines (the tile rows'
 *                                first step, on whole lines: contiguous, no gather)
 *   winograd_row_<isa>_<dt>      B^T along the rows, tile t's 4 + 2 elements at q[4t..]
 *                                and e[2t..], deinterleaved into the tiles-in-lanes layout
 *   winograd_put_<isa>_<dt>      a 4x4 tile row's elements interleaved into an output row,
 *                                the bias added
 *   winograd_weights_<isa>_<dt>  U = G g G^T of a panel's rows x up to 16 input channels,
 *                                in double, the filters along the lanes
 *   winograd_gemm_<isa>_<dt>     one position's GEMM tile, r x NR (NR = 2 vectors of
 *                                tiles), its sum blocked by CC_WSUB input channels in
 *                                registers
 */
#define CC_WO CC_CAT(CC_CAT3(winograd_output_, CC_NAME, _), CC_DT)
#define CC_WB CC_CAT(CC_CAT3(winograd_bt8_, CC_NAME, _), CC_DT)
#define CC_WA CC_CAT(CC_CAT3(winograd_at8_, CC_NAME, _), CC_DT)
#define CC_WC CC_CAT(CC_CAT3(winograd_col_, CC_NAME, _), CC_DT)
#define CC_WR CC_CAT(CC_CAT3(winograd_row_, CC_NAME, _), CC_DT)
#define CC_WP CC_CAT(CC_CAT3(winograd_put_, CC_NAME, _), CC_DT)
#define CC_WM CC_CAT(CC_CAT3(cc_winograd_mask_, CC_NAME, _), CC_DT)
#define CC_WW CC_CAT(CC_CAT3(winograd_weights_, CC_NAME, _), CC_DT)

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

/* y[e*ld + t] = (A^T M A)[e] (e = row*4 + column) of m[p*ms + t], t < n. tmp: 24*ld. */
CC_TARGET static void CC_WO(const CC_T *restrict m, Py_ssize_t ms, Py_ssize_t ld, Py_ssize_t n,
                            CC_T *restrict tmp, CC_T *restrict y)
{
    for (Py_ssize_t j = 0; j < 6; j++)
        CC_WA(m + j * ms, 6 * ms, tmp + j * ld, 6 * ld, n);
    for (Py_ssize_t k = 0; k < 4; k++)
        CC_WA(tmp + k * 6 * ld, ld, y + k * 4 * ld, ld, n);
}

/* B^T down the columns: y[k*ys + t] = sum_i B^T[k][i] x[i*xs + t], t < n. */
CC_TARGET static void CC_WC(const CC_T *restrict x, Py_ssize_t xs, CC_T *restrict y,
                            Py_ssize_t ys, Py_ssize_t n)
{
    CC_WB(x, xs, y, ys, n);
}

#if defined(__GNUC__) && !defined(__clang__)
/* Lane indices for __builtin_shuffle: an integer vector of the dtype's width. */
typedef CC_CAT(cc_winograd_int_, CC_DT) CC_WM __attribute__((vector_size(CC_VBYTES)));
#define CC_W_SHUFFLE 1
#endif

/* B^T along the rows: v[k*vs + t] = sum_j B^T[k][j] x_j(t), t < n, where tile t's elements
   are x_0..x_3 = q[4t..4t+3] and x_4, x_5 = e[2t], e[2t+1]; the same arithmetic as CC_WB. */
CC_TARGET static void CC_WR(const CC_T *restrict q, const CC_T *restrict e, CC_T *restrict v,
                            Py_ssize_t vs, Py_ssize_t n)
{
    Py_ssize_t t = 0;
#ifdef CC_W_SHUFFLE
    CC_WM ev, od;
    for (int i = 0; i < CC_VL; i++) {
        ev[i] = 2 * i;
        od[i] = 2 * i + 1;
    }
    for (; t + CC_VL <= n; t += CC_VL) {
        /* Two rounds of even/odd splits take the 4 elements of CC_VL tiles to 4 vectors. */
        const CC_T *qt = q + 4 * t;
        const CC_V a0 = *(const CC_VU *)qt, a1 = *(const CC_VU *)(qt + CC_VL);
        const CC_V a2 = *(const CC_VU *)(qt + 2 * CC_VL), a3 = *(const CC_VU *)(qt + 3 * CC_VL);
        const CC_V e0 = __builtin_shuffle(a0, a1, ev), o0 = __builtin_shuffle(a0, a1, od);
        const CC_V e1 = __builtin_shuffle(a2, a3, ev), o1 = __builtin_shuffle(a2, a3, od);
        const CC_V x0 = __builtin_shuffle(e0, e1, ev), x2 = __builtin_shuffle(e0, e1, od);
        const CC_V x1 = __builtin_shuffle(o0, o1, ev), x3 = __builtin_shuffle(o0, o1, od);
        const CC_V b0 = *(const CC_VU *)(e + 2 * t), b1 = *(const CC_VU *)(e + 2 * t + CC_VL);
        const CC_V x4 = __builtin_shuffle(b0, b1, ev), x5 = __builtin_shuffle(b0, b1, od);
        *(CC_VU *)(v + t) = (CC_T)4 * x0 - (CC_T)5 * x2 + x4;
        *(CC_VU *)(v + vs + t) = (x3 + x4) - (CC_T)4 * (x1 + x2);
        *(CC_VU *)(v + 2 * vs + t) = (x4 - x3) + (CC_T)4 * (x1 - x2);
        *(CC_VU *)(v + 3 * vs + t) = (x4 - x2) + (CC_T)2 * (x3 - x1);
        *(CC_VU *)(v + 4 * vs + t) = (x4 - x2) - (CC_T)2 * (x3 - x1);
        *(CC_VU *)(v + 5 * vs + t) = (CC_T)4 * x1 - (CC_T)5 * x3 + x5;
    }
#endif
    for (; t < n; t++) {
        const CC_T x0 = q[4 * t], x1 = q[4 * t + 1], x2 = q[4 * t + 2], x3 = q[4 * t + 3];
        const CC_T x4 = e[2 * t], x5 = e[2 * t + 1];
        v[t] = (CC_T)4 * x0 - (CC_T)5 * x2 + x4;
        v[vs + t] = (x3 + x4) - (CC_T)4 * (x1 + x2);
        v[2 * vs + t] = (x4 - x3) + (CC_T)4 * (x1 - x2);
        v[3 * vs + t] = (x4 - x2) + (CC_T)2 * (x3 - x1);
        v[4 * vs + t] = (x4 - x2) - (CC_T)2 * (x3 - x1);
        v[5 * vs + t] = (CC_T)4 * x1 - (CC_T)5 * x3 + x5;
    }
}

/* o[4t + j] = y[j*ys + t] + b, j < 4, t < n: one output row of n tiles. */
CC_TARGET static void CC_WP(const CC_T *restrict y, Py_ssize_t ys, CC_T *restrict o,
                            Py_ssize_t n, CC_T b)
{
    for (Py_ssize_t t = 0; t < n; t++) {
        o[4 * t] = y[t] + b;
        o[4 * t + 1] = y[ys + t] + b;
        o[4 * t + 2] = y[2 * ys + t] + b;
        o[4 * t + 3] = y[3 * ys + t] + b;
    }
}

/* The six rows of G h for three values h0, h1, h2 (a column or a row of a filter), with G's
   rows (1/4, 0, 0), -(1, 1, 1)/6, -(1, -1, 1)/6, (1/24, 1/12, 1/6), (1/24, -1/12, 1/6),
   (0, 0, 1): the sums the rows share computed once. */
#define CC_WG_ROWS(h0, h1, h2, r0, r1, r2, r3, r4, r5)                                        \
    do {                                                                                     \
        const double s_ = (h0) + (h2), u_ = (h0) * (1.0 / 24) + (h2) * (1.0 / 6);            \
        const double v_ = (h1) * (1.0 / 12);                                                 \
        r0 = (h0) * (1.0 / 4);                                                               \
        r1 = (s_ + (h1)) * (-1.0 / 6);                                                       \
        r2 = (s_ - (h1)) * (-1.0 / 6);                                                       \
        r3 = u_ + v_;                                                                        \
        r4 = u_ - v_;                                                                        \
        r5 = (h2);                                                                           \
    } while (0)

/* dst[p*ps + q] = (G g_q G^T)[p], p < 36, q = c*r + i < nb*r, for the filters g_q =
   w[i*ws + 9c ..] (r rows of nb <= 16 input channels, r <= 12): in double, each product and
   sum rounded as written (no contraction: the same bits on every instruction set), then once
   into the dtype. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
CC_TARGET static void CC_WW(const CC_T *restrict w, Py_ssize_t ws, Py_ssize_t r, Py_ssize_t nb,
                            CC_T *restrict dst, Py_ssize_t ps)
{
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    double gt[9][16 * 12], ta[6][3][16 * 12], y[6][16 * 12];
    const Py_ssize_t n = nb * r;
    for (Py_ssize_t c = 0; c < nb; c++)
        for (Py_ssize_t i = 0; i < r; i++)
            for (int e = 0; e < 9; e++)
                gt[e][c * r + i] = (double)w[i * ws + 9 * c + e];
    /* G g: the columns of each filter. */
    for (int j = 0; j < 3; j++)
        for (Py_ssize_t q = 0; q < n; q++)
            CC_WG_ROWS(gt[j][q], gt[3 + j][q], gt[6 + j][q], ta[0][j][q], ta[1][j][q],
                       ta[2][j][q], ta[3][j][q], ta[4][j][q], ta[5][j][q]);
    /* (G g) G^T: the rows of G g, each position's run written in one go. */
    for (int a = 0; a < 6; a++) {
        for (Py_ssize_t q = 0; q < n; q++)
            CC_WG_ROWS(ta[a][0][q], ta[a][1][q], ta[a][2][q], y[0][q], y[1][q], y[2][q],
                       y[3][q], y[4][q], y[5][q]);
        for (int b = 0; b < 6; b++) {
            CC_T *d = dst + (6 * a + b) * ps;
            for (Py_ssize_t q = 0; q < n; q++)
                d[q] = (CC_T)y[b][q];
        }
    }
}
#undef CC_WG_ROWS

/* The blocked GEMM tile: rows of CC_WROWS at most (a block's sums and the running sums
   both stay in registers: 4 vectors a row), each row count its own unrolled copy. */
/* Input channels a block sums before its sum joins the running one: blocked summation,
   whose rounding the output transform amplifies far less than one long sum's. */
#define CC_WSUB 16
/* How far ahead, in bytes, the GEMM prefetches the transformed weights: they stream past once
   per chunk, from memory in a network, and the hardware prefetcher alone left the GEMM
   waiting for them (decisions: Winograd prefetches its weights). */
#define CC_WPF 2048
#define CC_WROWS (CC_MRMAX / 2)
#define CC_WGR CC_CAT(CC_CAT3(winograd_gemm_rows_, CC_NAME, _), CC_DT)
#define CC_WGK CC_CAT(CC_CAT3(winograd_gemm_, CC_NAME, _), CC_DT)

/* c[i*ldc + j] (first: =, else +=) sum over k < kc of a[k*as + i] * b[k*ldb + j], i < R,
   j < NV CC_VL (NV = 1 or 2 vectors): the products summed CC_WSUB k at a time from zero,
   those sums added in order, and their total added to c once. */
CC_TARGET static inline __attribute__((always_inline)) void CC_WGR(
    const int R, const int NV, Py_ssize_t kc, const CC_T *restrict a, Py_ssize_t as, const CC_T *restrict b,
    Py_ssize_t ldb, CC_T *restrict c, Py_ssize_t ldc, int first)
{
    const CC_V zero = {0};
    CC_V r0[CC_WROWS], r1[CC_WROWS], s0[CC_WROWS], s1[CC_WROWS];
#pragma GCC unroll 16
    for (int i = 0; i < R; i++)
        r0[i] = r1[i] = zero;
    for (Py_ssize_t k0 = 0; k0 < kc; k0 += CC_WSUB) {
        const Py_ssize_t k1 = k0 + CC_WSUB < kc ? k0 + CC_WSUB : kc;
#pragma GCC unroll 16
        for (int i = 0; i < R; i++)
            s0[i] = s1[i] = zero;
        for (Py_ssize_t k = k0; k < k1; k++) {
            const CC_T *ak = a + k * as;
            __builtin_prefetch((const char *)ak + CC_WPF);
            const CC_V b0 = *(const CC_VU *)(b + k * ldb);
            CC_V b1 = zero;
            if (NV == 2)
                b1 = *(const CC_VU *)(b + k * ldb + CC_VL);
#pragma GCC unroll 16
            for (int i = 0; i < R; i++) {
                const CC_T ai = ak[i];
                s0[i] += b0 * ai;
                if (NV == 2)
                    s1[i] += b1 * ai;
            }
        }
#pragma GCC unroll 16
        for (int i = 0; i < R; i++) {
            if (k0 == 0) {
                r0[i] = s0[i];
                r1[i] = s1[i];
            } else {
                r0[i] += s0[i];
                r1[i] += s1[i];
            }
        }
    }
#pragma GCC unroll 16
    for (int i = 0; i < R; i++) {
        CC_T *ci = c + i * ldc;
        if (first) {
            *(CC_VU *)ci = r0[i];
            if (NV == 2)
                *(CC_VU *)(ci + CC_VL) = r1[i];
        } else {
            *(CC_VU *)ci = *(const CC_VU *)ci + r0[i];
            if (NV == 2)
                *(CC_VU *)(ci + CC_VL) = *(const CC_VU *)(ci + CC_VL) + r1[i];
        }
    }
}

/* CC_WGR for r rows (any count, CC_WROWS at a time) and nv vectors of columns (1: a last,
   narrow tile). Assumes: kc >= 1. */
#define CC_WGCASE(n)                                                                         \
    case n:                                                                                  \
        if (nv == 2)                                                                         \
            CC_WGR(n, 2, kc, ai, as, b, ldb, ci, ldc, first);                                \
        else                                                                                 \
            CC_WGR(n, 1, kc, ai, as, b, ldb, ci, ldc, first);                                \
        break;
CC_TARGET static void CC_WGK(Py_ssize_t r, int nv, Py_ssize_t kc, const CC_T *restrict a,
                             Py_ssize_t as, const CC_T *restrict b, Py_ssize_t ldb,
                             CC_T *restrict c, Py_ssize_t ldc, int first)
{
    for (Py_ssize_t i0 = 0; i0 < r; i0 += CC_WROWS) {
        const Py_ssize_t n = r - i0 < CC_WROWS ? r - i0 : CC_WROWS;
        const CC_T *ai = a + i0;
        CC_T *ci = c + i0 * ldc;
        switch (n) {
#if CC_WROWS >= 6
        CC_WGCASE(6)
#endif
#if CC_WROWS >= 5
        CC_WGCASE(5)
#endif
#if CC_WROWS >= 4
        CC_WGCASE(4)
#endif
#if CC_WROWS >= 3
        CC_WGCASE(3)
#endif
        CC_WGCASE(2)
        default: CC_WGCASE(1)
        }
    }
}

#undef CC_WSUB
#undef CC_WPF
#undef CC_WROWS
#undef CC_WGR
#undef CC_WGK
#undef CC_WGCASE
#undef CC_W_SHUFFLE
#undef CC_WC
#undef CC_WR
#undef CC_WP
#undef CC_WM
#undef CC_WW
#undef CC_WO
#undef CC_WB
#undef CC_WA

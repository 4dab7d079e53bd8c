/*
 * The activations and the epilogue row (the CC_BODY of epilogue.h; see instantiate.h for the
 * macros it is given), written on whole vectors so that each variant's build runs them in
 * its SIMD registers, with torch's formulas (aten/src/ATen/native/cpu/Activation.cpp):
 *
 *   relu         x < 0 ? 0 : x                    (NaN and -0 pass through, as torch's)
 *   relu6        min(max(x, 0), 6)                clamp  min(max(x, p0), p1)
 *   leaky_relu   x > 0 ? x : x * p0
 *   sigmoid      1 / (1 + exp(-x))                silu   x / (1 + exp(-x))
 *   hardswish    x * relu6(x + 3) / 6             hardsigmoid  relu6(x + 3) / 6
 *   tanh         -expm1(-2|x|) / (2 + expm1(-2|x|)), with x's sign
 *   gelu         x * 0.5 * (1 + erf(x / sqrt 2)), 1 + erf(z) taken as erfc(-z) below 0 and
 *                2 - erfc(z) above, so it keeps its relative accuracy where it is small
 *   gelu_tanh    0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3)
 *
 * exp and expm1: x = k ln2 + r with ln2 in two parts (k ln2_hi exact), |r| <= ln2/2, the
 * Taylor polynomial of expm1(r) (degree 7 in float32, 13 in float64: below half an ulp), and
 * 2^k applied in two factors so that results in the subnormal range round once. erfc(z) for
 * z >= 0: t exp(-z*z + g(t)), t = 2 / (2 + z), g a polynomial fitted by tools/fit_erfc.py,
 * z*z split exactly in two parts. Out-of-range arguments are clamped where the result has
 * already saturated (NaN passes every clamp: each is a comparison that is false for NaN).
 *
 *   cc_act_<isa>_<dt>(src, dst, n, act, p0, p1)          dst[j] = act(src[j]), j < n
 *   cc_ep_row_<isa>_<dt>(ep, ch, src, dst, res, n)       epilogue.h's row
 * (dst may be src.)
 */
#define CC_AF(name) CC_CAT(CC_CAT3(name, _, CC_NAME), CC_CAT(_, CC_DT))
#define CC_IV CC_AF(cc_iv)
#define CC_FN CC_TARGET CC_NO_CONTRACT_ATTR static
#define CC_LOADU(p) (*(const CC_VU *)(p))
#define CC_STOREU(p, v) (*(CC_VU *)(p) = (v))
#define CC_B(c) (zero + (CC_T)(c))

typedef __typeof__((CC_V){0} < (CC_V){0}) CC_IV;

#if CC_VBYTES / CC_VL == 4
#define CC_MANT 23
#define CC_EXPBIAS 127
#define CC_SPLIT 4097.0
#define CC_MAGIC 12582912.0
#define CC_LN2_HI 0.693145751953125
#define CC_LN2_LO 1.428606765330187e-06
#define CC_EXP_LO -104.0
#define CC_EXP_HI 89.0
#define CC_TANH_LO -20.0
#define CC_ERFC_ZMAX 10.1
#define CC_ERFC_A 2.3960396039603960396
#define CC_ERFC_B -1.3960396039603960396
#else
#define CC_MANT 52
#define CC_EXPBIAS 1023
#define CC_SPLIT 134217729.0
#define CC_MAGIC 6755399441055744.0
#define CC_LN2_HI 6.93147180369123816490e-01
#define CC_LN2_LO 1.90821492927058770002e-10
#define CC_EXP_LO -746.0
#define CC_EXP_HI 710.0
#define CC_TANH_LO -45.0
#define CC_ERFC_ZMAX 27.3
#define CC_ERFC_A 2.1465201465201465201
#define CC_ERFC_B -1.1465201465201465201
#endif

/* m ? a : b lane by lane (C has no vector ?:). */
CC_FN inline CC_V CC_AF(cc_sel)(CC_IV m, CC_V a, CC_V b)
{
    return (CC_V)((m & (CC_IV)a) | (~m & (CC_IV)b));
}

/* 2^k for k in the normal exponent range. */
CC_FN inline CC_V CC_AF(cc_pow2)(CC_IV k)
{
    return (CC_V)((k + CC_EXPBIAS) << CC_MANT);
}

/* x = k ln2 + r: returns r, sets k. Assumes: |x| / ln2 < 2^(mantissa bits - 2). */
CC_FN inline CC_V CC_AF(cc_reduce)(CC_V x, CC_IV *k)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
    const CC_V t = x * (CC_T)1.4426950408889634 + (CC_T)CC_MAGIC;
    const CC_V kf = t - (CC_T)CC_MAGIC;
    *k = (CC_IV)t - (CC_IV)CC_B(CC_MAGIC);
    return (x - kf * (CC_T)CC_LN2_HI) - kf * (CC_T)CC_LN2_LO;
}

/* expm1(r) for |r| <= ln2/2: its Taylor polynomial. */
CC_FN inline CC_V CC_AF(cc_expm1_small)(CC_V r)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
#if CC_VBYTES / CC_VL == 4
    CC_V q = CC_B(1.0 / 5040);
    q = q * r + (CC_T)(1.0 / 720);
    q = q * r + (CC_T)(1.0 / 120);
    q = q * r + (CC_T)(1.0 / 24);
#else
    CC_V q = CC_B(1.0 / 6227020800.0);
    q = q * r + (CC_T)(1.0 / 479001600.0);
    q = q * r + (CC_T)(1.0 / 39916800.0);
    q = q * r + (CC_T)(1.0 / 3628800.0);
    q = q * r + (CC_T)(1.0 / 362880.0);
    q = q * r + (CC_T)(1.0 / 40320.0);
    q = q * r + (CC_T)(1.0 / 5040.0);
    q = q * r + (CC_T)(1.0 / 720.0);
    q = q * r + (CC_T)(1.0 / 120.0);
    q = q * r + (CC_T)(1.0 / 24.0);
#endif
    q = q * r + (CC_T)(1.0 / 6);
    q = q * r + (CC_T)0.5;
    return r + (r * r) * q;
}

CC_FN inline CC_V CC_AF(cc_exp)(CC_V x)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
    CC_IV k;
    x = CC_AF(cc_sel)(x > (CC_T)CC_EXP_HI, CC_B(CC_EXP_HI), x);
    x = CC_AF(cc_sel)(x < (CC_T)CC_EXP_LO, CC_B(CC_EXP_LO), x);
    const CC_V p = 1 + CC_AF(cc_expm1_small)(CC_AF(cc_reduce)(x, &k));
    const CC_IV k1 = k >> 1;
    return p * CC_AF(cc_pow2)(k1) * CC_AF(cc_pow2)(k - k1);
}

CC_FN inline CC_V CC_AF(cc_tanh)(CC_V x)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
    const CC_IV sign = (CC_IV)(-zero);
    CC_IV k;
    CC_V y = (CC_V)((CC_IV)x & ~sign) * (CC_T)-2;
    y = CC_AF(cc_sel)(y < (CC_T)CC_TANH_LO, CC_B(CC_TANH_LO), y);
    const CC_V r = CC_AF(cc_reduce)(y, &k);
    const CC_V t = CC_AF(cc_pow2)(k);
    const CC_V em = t * CC_AF(cc_expm1_small)(r) + (t - 1);       /* expm1(y), in (-1, 0] */
    const CC_V th = -em / (2 + em);
    return (CC_V)(((CC_IV)th & ~sign) | ((CC_IV)x & sign));
}

/* erfc(a) for 0 <= a <= CC_ERFC_ZMAX (see the header). */
CC_FN inline CC_V CC_AF(cc_erfc)(CC_V a)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
    const CC_V t = 2 / (2 + a);
    const CC_V s = t * (CC_T)CC_ERFC_A + (CC_T)CC_ERFC_B;
#if CC_VBYTES / CC_VL == 4
    CC_V g = CC_B(-4.8108353873656874066e-6);
    g = g * s + (CC_T)-0.000023045045500573425639;
    g = g * s + (CC_T)0.000069219870314059633659;
    g = g * s + (CC_T)0.00013032283159010018836;
    g = g * s + (CC_T)-0.00055534412271495416618;
    g = g * s + (CC_T)-0.00027209883730089113901;
    g = g * s + (CC_T)0.0037466352568994984041;
    g = g * s + (CC_T)-0.0010834529034161304144;
    g = g * s + (CC_T)-0.029610673085274022698;
    g = g * s + (CC_T)0.01594378015923529342;
    g = g * s + (CC_T)0.57119743170731170676;
    g = g * s + (CC_T)-0.55953796718478261023;
#else
    CC_V g = CC_B(5.5937898247131743268e-11);
    g = g * s + (CC_T)7.1066204007061323739e-10;
    g = g * s + (CC_T)-2.6400533507551038435e-9;
    g = g * s + (CC_T)-3.0225243190590276721e-9;
    g = g * s + (CC_T)2.3460469665207292906e-8;
    g = g * s + (CC_T)-1.9031232010916444837e-8;
    g = g * s + (CC_T)-8.8372860246780581481e-8;
    g = g * s + (CC_T)2.3312744812177886454e-7;
    g = g * s + (CC_T)3.1703456688196911477e-8;
    g = g * s + (CC_T)-1.0921270469600950717e-6;
    g = g * s + (CC_T)1.4838542507088257071e-6;
    g = g * s + (CC_T)2.5643281926098432793e-6;
    g = g * s + (CC_T)-9.6487448717787990047e-6;
    g = g * s + (CC_T)1.7228746812289918607e-6;
    g = g * s + (CC_T)0.000037287439318034291311;
    g = g * s + (CC_T)-0.000049492087671344198227;
    g = g * s + (CC_T)-0.000098828297665132165993;
    g = g * s + (CC_T)0.00030189508030072984859;
    g = g * s + (CC_T)0.00013611672444332708788;
    g = g * s + (CC_T)-0.00141275977313650269;
    g = g * s + (CC_T)0.0004164201647127710277;
    g = g * s + (CC_T)0.006541199607032453706;
    g = g * s + (CC_T)-0.0050978439762160999392;
    g = g * s + (CC_T)-0.03977323842407753254;
    g = g * s + (CC_T)0.032548912685879204515;
    g = g * s + (CC_T)0.63212952271303881343;
    g = g * s + (CC_T)-0.62567439803246901574;
#endif
    /* a*a = hi + lo exactly (Dekker's split), so that exp(-a*a) keeps its accuracy. */
    const CC_V c = a * (CC_T)CC_SPLIT;
    const CC_V ah = c - (c - a), al = a - ah;
    const CC_V hi = a * a;
    const CC_V lo = ((ah * ah - hi) + (ah * al + ah * al)) + al * al;
    return (t * CC_AF(cc_exp)(g - lo)) * CC_AF(cc_exp)(-hi);
}

CC_FN inline CC_V CC_AF(cc_gelu)(CC_V x)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
    const CC_V z = x * (CC_T)0.70710678118654752440;
    CC_V a = (CC_V)((CC_IV)z & ~(CC_IV)(-zero));
    a = CC_AF(cc_sel)(a > (CC_T)CC_ERFC_ZMAX, CC_B(CC_ERFC_ZMAX), a);
    const CC_V e = CC_AF(cc_erfc)(a);
    return x * (CC_T)0.5 * CC_AF(cc_sel)(z < 0, e, 2 - e);
}

CC_FN inline CC_V CC_AF(cc_relu6)(CC_V x)
{
    const CC_V zero = {0};
    x = CC_AF(cc_sel)(x < 0, zero, x);
    return CC_AF(cc_sel)(x > 6, CC_B(6), x);
}

#define CC_ACT_LOOP(EXPR)                                                                    \
    for (; i + CC_VL <= n; i += CC_VL) {                                                     \
        const CC_V x = CC_LOADU(src + i);                                                    \
        CC_STOREU(dst + i, (EXPR));                                                          \
    }                                                                                        \
    if (i < n) {                                                                             \
        CC_T buf[CC_VL];                                                                     \
        for (Py_ssize_t u = 0; u < CC_VL; u++)                                               \
            buf[u] = i + u < n ? src[i + u] : (CC_T)0;                                       \
        const CC_V x = CC_LOADU(buf);                                                        \
        CC_STOREU(buf, (EXPR));                                                              \
        for (Py_ssize_t u = 0; i + u < n; u++)                                               \
            dst[i + u] = buf[u];                                                             \
    }

/* CC_ACT_LOOP with x = src * scale + shift + res, each step where its operand is given;
   the scalar tail rounds each step as the vector lanes do. */
#define CC_EP_LOOP(EXPR)                                                                     \
    for (; i + CC_VL <= n; i += CC_VL) {                                                     \
        CC_V x = CC_LOADU(src + i);                                                          \
        if (scale)                                                                           \
            x = x * sv;                                                                      \
        if (shift)                                                                           \
            x = x + tv;                                                                      \
        if (res)                                                                             \
            x = x + CC_LOADU(res + i);                                                       \
        CC_STOREU(dst + i, (EXPR));                                                          \
    }                                                                                        \
    if (i < n) {                                                                             \
        CC_T tail[CC_VL];                                                                    \
        for (Py_ssize_t u = 0; u < CC_VL; u++) {                                             \
            CC_T v = (CC_T)0;                                                                \
            if (i + u < n) {                                                                 \
                v = src[i + u];                                                              \
                if (scale)                                                                   \
                    v = v * s;                                                               \
                if (shift)                                                                   \
                    v = v + t;                                                               \
                if (res)                                                                     \
                    v = v + res[i + u];                                                      \
            }                                                                                \
            tail[u] = v;                                                                     \
        }                                                                                    \
        const CC_V x = CC_LOADU(tail);                                                       \
        CC_STOREU(tail, (EXPR));                                                             \
        for (Py_ssize_t u = 0; i + u < n; u++)                                               \
            dst[i + u] = tail[u];                                                            \
    }

__attribute__((noinline)) CC_FN void CC_AF(cc_act)(const CC_T *src, CC_T *dst, Py_ssize_t n,
                                                    int act, CC_T p0, CC_T p1)
{
    CC_NO_CONTRACT
    const CC_V zero = {0};
    Py_ssize_t i = 0;
    switch (act) {
    case CC_ACT_RELU:
        CC_ACT_LOOP(CC_AF(cc_sel)(x < 0, zero, x))
        break;
    case CC_ACT_RELU6:
        CC_ACT_LOOP(CC_AF(cc_relu6)(x))
        break;
    case CC_ACT_CLAMP:
        CC_ACT_LOOP(CC_AF(cc_sel)(x > p1, CC_B(p1), CC_AF(cc_sel)(x < p0, CC_B(p0), x)))
        break;
    case CC_ACT_LEAKY_RELU:
        CC_ACT_LOOP(CC_AF(cc_sel)(x > 0, x, x * p0))
        break;
    case CC_ACT_SIGMOID:
        CC_ACT_LOOP(1 / (1 + CC_AF(cc_exp)(-x)))
        break;
    case CC_ACT_SILU:
        CC_ACT_LOOP(x / (1 + CC_AF(cc_exp)(-x)))
        break;
    case CC_ACT_HARDSWISH:
        CC_ACT_LOOP(x * CC_AF(cc_relu6)(x + 3) / 6)
        break;
    case CC_ACT_HARDSIGMOID:
        CC_ACT_LOOP(CC_AF(cc_relu6)(x + 3) / 6)
        break;
    case CC_ACT_GELU:
        CC_ACT_LOOP(CC_AF(cc_gelu)(x))
        break;
    case CC_ACT_GELU_TANH:
        CC_ACT_LOOP(x / (1 + CC_AF(cc_exp)((x + (CC_T)0.044715 * (x * x * x))
                                           * (CC_T)-1.5957691216057307)))
        break;
    case CC_ACT_TANH:
        CC_ACT_LOOP(CC_AF(cc_tanh)(x))
        break;
    default:
        if (dst != src) {
            CC_ACT_LOOP(x)
        }
        break;
    }
}

__attribute__((noinline)) CC_FN void CC_AF(cc_ep_row)(const cc_epilogue *ep, Py_ssize_t ch,
                                                       const CC_T *src, CC_T *dst,
                                                       const CC_T *res, Py_ssize_t n)
{
    CC_NO_CONTRACT
    const CC_T *scale = (const CC_T *)ep->scale, *shift = (const CC_T *)ep->shift;
    const CC_T p0 = (CC_T)ep->p0, p1 = (CC_T)ep->p1;
    if (!scale && !shift && !res) {
        CC_AF(cc_act)(src, dst, n, ep->act, p0, p1);
        return;
    }
    const CC_V zero = {0};
    const CC_T s = scale ? scale[ch] : (CC_T)1, t = shift ? shift[ch] : (CC_T)0;
    const CC_V sv = zero + s, tv = zero + t;
    Py_ssize_t i = 0;
    /* The piecewise-linear activations in the same pass as the affine part: they cost less
       than a second pass over the row would. */
    switch (ep->act) {
    case CC_ACT_NONE:
        CC_EP_LOOP(x)
        return;
    case CC_ACT_RELU:
        CC_EP_LOOP(CC_AF(cc_sel)(x < 0, zero, x))
        return;
    case CC_ACT_RELU6:
        CC_EP_LOOP(CC_AF(cc_relu6)(x))
        return;
    case CC_ACT_CLAMP:
        CC_EP_LOOP(CC_AF(cc_sel)(x > p1, CC_B(p1), CC_AF(cc_sel)(x < p0, CC_B(p0), x)))
        return;
    case CC_ACT_LEAKY_RELU:
        CC_EP_LOOP(CC_AF(cc_sel)(x > 0, x, x * p0))
        return;
    default:
        break;
    }
    /* The others: the affine part a chunk at a time into a buffer in L1, then the
       activation from it. */
    CC_T buf[256] __attribute__((aligned(64)));
    for (; i < n; i += 256) {
        const Py_ssize_t m = n - i < 256 ? n - i : 256;
        Py_ssize_t j = 0;
        for (; j + CC_VL <= m; j += CC_VL) {
            CC_V v = CC_LOADU(src + i + j);
            if (scale)
                v = v * sv;
            if (shift)
                v = v + tv;
            if (res)
                v = v + CC_LOADU(res + i + j);
            CC_STOREU(buf + j, v);
        }
        for (; j < m; j++) {
            CC_T v = src[i + j];
            if (scale)
                v = v * s;
            if (shift)
                v = v + t;
            if (res)
                v = v + res[i + j];
            buf[j] = v;
        }
        CC_AF(cc_act)(buf, dst + i, m, ep->act, p0, p1);
    }
}

#undef CC_ACT_LOOP
#undef CC_EP_LOOP
#undef CC_AF
#undef CC_IV
#undef CC_FN
#undef CC_LOADU
#undef CC_STOREU
#undef CC_B
#undef CC_MANT
#undef CC_EXPBIAS
#undef CC_SPLIT
#undef CC_MAGIC
#undef CC_LN2_HI
#undef CC_LN2_LO
#undef CC_EXP_LO
#undef CC_EXP_HI
#undef CC_TANH_LO
#undef CC_ERFC_ZMAX
#undef CC_ERFC_A
#undef CC_ERFC_B

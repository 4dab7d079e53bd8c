/*
 * The depthwise micro-kernels (the CC_BODY of dwconv_dispatch.h; see instantiate.h for the
 * macros they are given): one output row, with its columns or its channels in the lanes.
 *
 * dwconv_ukernel_<isa>_<dt>: columns in the lanes, one channel.
 *
 *     out[j] = bias + sum_t w[t] * base[toff[t] + j]        j < n, t < taps
 *
 * base + toff[t] is the contiguous run of (phase-split, zero-padded) input that tap t reads
 * for the row, so every tap is a plain unaligned vector load; the output columns run along the SIMD
 * lanes, four vectors at a time, with the taps looped inside so the accumulators stay in
 * registers. Assumes: every base + toff[t] may be read up to the next multiple of CC_VL past n.
 */
#define CC_DW CC_CAT(CC_CAT3(dwconv_ukernel_, CC_NAME, _), CC_DT)
#define CC_LOADU(p) (*(const CC_VU *)(p))
#define CC_STOREU(p, v) (*(CC_VU *)(p) = (v))

CC_TARGET static void CC_DW(Py_ssize_t taps, const CC_T *base, const Py_ssize_t *toff,
                            const CC_T *w, CC_T bias, CC_T *out, Py_ssize_t n)
{
    const CC_V zero = {0};
    Py_ssize_t j = 0;
    for (; j + 4 * CC_VL <= n; j += 4 * CC_VL) {
        CC_V a0 = zero + bias, a1 = a0, a2 = a0, a3 = a0;
        for (Py_ssize_t t = 0; t < taps; t++) {
            const CC_T *r = base + toff[t] + j;
            const CC_T wt = w[t];
            a0 += CC_LOADU(r) * wt;
            a1 += CC_LOADU(r + CC_VL) * wt;
            a2 += CC_LOADU(r + 2 * CC_VL) * wt;
            a3 += CC_LOADU(r + 3 * CC_VL) * wt;
        }
        CC_STOREU(out + j, a0);
        CC_STOREU(out + j + CC_VL, a1);
        CC_STOREU(out + j + 2 * CC_VL, a2);
        CC_STOREU(out + j + 3 * CC_VL, a3);
    }
    for (; j < n; j += CC_VL) {
        CC_V a0 = zero + bias;
        for (Py_ssize_t t = 0; t < taps; t++)
            a0 += CC_LOADU(base + toff[t] + j) * w[t];
        if (j + CC_VL <= n) {
            CC_STOREU(out + j, a0);
        } else {
            CC_T tail[CC_VL];
            CC_STOREU(tail, a0);
            for (Py_ssize_t u = 0; u < n - j; u++)
                out[j + u] = tail[u];
        }
    }
}

/*
 * dwconv_cl_ukernel_<isa>_<dt>: channels in the lanes, CC_VL channels of one output row.
 *
 *     out[j*VL + l] = bias[l] + sum_t w[t*VL + l] * base[j*step + toff[t] + l]   j < n, l < VL
 *
 * base is a (rows, columns, VL channels) block of input; toff[t] is where tap t of output 0
 * lies in it and `step` how far the next output column's taps are. Four output columns at a
 * time share each tap's weight vector. Each lane sums in the same order as dwconv_ukernel
 * (the bias, then the taps in order, one fused multiply-add each), so both orientations give
 * the same bits.
 */
#define CC_DWCL CC_CAT(CC_CAT3(dwconv_cl_ukernel_, CC_NAME, _), CC_DT)

CC_TARGET static void CC_DWCL(Py_ssize_t taps, const CC_T *base, const Py_ssize_t *toff,
                              Py_ssize_t step, const CC_T *w, const CC_T *bias, CC_T *out,
                              Py_ssize_t n)
{
    const CC_V zero = {0};
    const CC_V b = zero + CC_LOADU(bias);
    Py_ssize_t j = 0;
    for (; j + 4 <= n; j += 4) {
        CC_V a0 = b, a1 = b, a2 = b, a3 = b;
        const CC_T *r = base + j * step;
        for (Py_ssize_t t = 0; t < taps; t++) {
            const CC_T *q = r + toff[t];
            const CC_V wt = CC_LOADU(w + t * CC_VL);
            a0 += CC_LOADU(q) * wt;
            a1 += CC_LOADU(q + step) * wt;
            a2 += CC_LOADU(q + 2 * step) * wt;
            a3 += CC_LOADU(q + 3 * step) * wt;
        }
        CC_STOREU(out + j * CC_VL, a0);
        CC_STOREU(out + (j + 1) * CC_VL, a1);
        CC_STOREU(out + (j + 2) * CC_VL, a2);
        CC_STOREU(out + (j + 3) * CC_VL, a3);
    }
    for (; j < n; j++) {
        CC_V a0 = b;
        for (Py_ssize_t t = 0; t < taps; t++)
            a0 += CC_LOADU(base + j * step + toff[t]) * CC_LOADU(w + t * CC_VL);
        CC_STOREU(out + j * CC_VL, a0);
    }
}

#undef CC_DWCL
#undef CC_DW
#undef CC_LOADU
#undef CC_STOREU

/*
 * The fused epilogue of the convolution kernels and the element-wise activations of cconv.nn:
 * one source (activation.h, instantiated per instruction-set variant and dtype like the
 * micro-kernels) for both.
 *
 * A kernel applies the epilogue to each output row of one channel once its sum is final, in
 * PyTorch's unfused order:
 *
 *     y = conv + bias;  y = y * scale[c] + shift[c];  y = y + residual;  y = act(y)
 *
 * through cc_ep_row_f32/_f64(isa): dst[j] = act(src[j] * scale[ch] + shift[ch] + res[j]),
 * j < n, where a NULL scale, shift or res skips that step (so y + 0 never turns -0 into +0).
 * The arithmetic of the scale and shift is never contracted into a fused multiply-add, as
 * PyTorch rounds each operation, and every path of every kernel calls the same function:
 * results do not depend on which path (or how many threads) produced an element.
 *
 * The record a kernel is given (its fields as an interface for further kernels):
 *   scale, shift   per output channel (C_out entries of the output's dtype), or NULL
 *   residual       laid out as the output (same shape, C-contiguous), or NULL; a kernel
 *                  reads residual[i] for the output element out[i] it writes
 *   act            an enum cc_act; p0, p1 its parameters (clamp: min, max; leaky_relu: the
 *                  negative slope in p0), converted to the dtype where used
 */
#ifndef CCONV_EPILOGUE_H
#define CCONV_EPILOGUE_H

#include "isa.h"

enum cc_act {
    CC_ACT_NONE = 0,
    CC_ACT_RELU = 1,
    CC_ACT_RELU6 = 2,
    CC_ACT_CLAMP = 3,
    CC_ACT_LEAKY_RELU = 4,
    CC_ACT_SIGMOID = 5,
    CC_ACT_SILU = 6,
    CC_ACT_HARDSWISH = 7,
    CC_ACT_HARDSIGMOID = 8,
    CC_ACT_GELU = 9,
    CC_ACT_GELU_TANH = 10,
    CC_ACT_TANH = 11
};

typedef struct cc_epilogue {
    const void *scale;
    const void *shift;
    const void *residual;
    int act;
    double p0, p1;
} cc_epilogue;

/* Operations rounded one at a time: splitting a product exactly (activation.h's erfc) and
   PyTorch's separately rounded scale and shift need it; -ffp-contract=fast holds elsewhere. */
#if defined(__clang__)
#define CC_NO_CONTRACT_ATTR
#define CC_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define CC_NO_CONTRACT_ATTR __attribute__((optimize("fp-contract=off")))
#define CC_NO_CONTRACT
#endif

#define CC_BODY "activation.h"
#include "instantiate.h"

typedef void (*cc_act_f32_fn)(const float *, float *, Py_ssize_t, int, float, float);
typedef void (*cc_act_f64_fn)(const double *, double *, Py_ssize_t, int, double, double);
typedef void (*cc_ep_row_f32_fn)(const cc_epilogue *, Py_ssize_t, const float *, float *,
                                 const float *, Py_ssize_t);
typedef void (*cc_ep_row_f64_fn)(const cc_epilogue *, Py_ssize_t, const double *, double *,
                                 const double *, Py_ssize_t);

#define CC_EP_NAME(kind, id, dt) CC_CAT(CC_CAT3(kind, CC_NAME_##id, _), dt)
#define CC_ACT_F32_OF(id) CC_EP_NAME(cc_act_, id, f32)
#define CC_ACT_F64_OF(id) CC_EP_NAME(cc_act_, id, f64)
#define CC_EP_ROW_F32_OF(id) CC_EP_NAME(cc_ep_row_, id, f32)
#define CC_EP_ROW_F64_OF(id) CC_EP_NAME(cc_ep_row_, id, f64)

/* Variant isa's functions. Assumes: 0 <= isa < CC_NUM_ISAS. */
static inline cc_act_f32_fn cc_act_f32(int isa) { CC_ISA_PICK(isa, CC_ACT_F32_OF) }
static inline cc_act_f64_fn cc_act_f64(int isa) { CC_ISA_PICK(isa, CC_ACT_F64_OF) }
static inline cc_ep_row_f32_fn cc_ep_row_f32(int isa) { CC_ISA_PICK(isa, CC_EP_ROW_F32_OF) }
static inline cc_ep_row_f64_fn cc_ep_row_f64(int isa) { CC_ISA_PICK(isa, CC_EP_ROW_F64_OF) }

#endif /* CCONV_EPILOGUE_H */

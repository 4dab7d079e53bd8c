/*
 * The max pooling micro-kernels of every instruction-set variant (isa.h), and
 * cc_maxpool_ukernel_f32/_f64(isa): variant `isa`'s function (maxpool_ukernel.h: one output
 * row of max pooling without indices, in torch's visiting order).
 */
#ifndef CCONV_POOLING_H
#define CCONV_POOLING_H

#include <Python.h>

/* A call's columns: the row's width W, the output's Wo, the window's KW columns at stride sw,
   padding pw and dilation dw; a <= j < b are the output columns whose windows lie inside the
   row (a == b: none). */
typedef struct cc_maxpool_geom {
    Py_ssize_t W, Wo, KW, sw, pw, dw, a, b;
} cc_maxpool_geom;

#define CC_BODY "maxpool_ukernel.h"
#include "instantiate.h"

typedef void (*cc_maxpool_f32_fn)(const cc_maxpool_geom *, const float *, Py_ssize_t,
                                  Py_ssize_t, float *);
typedef void (*cc_maxpool_f64_fn)(const cc_maxpool_geom *, const double *, Py_ssize_t,
                                  Py_ssize_t, double *);

#define CC_MAXPOOL_F32_OF(id) CC_CAT(CC_CAT3(maxpool_ukernel_, CC_NAME_##id, _), f32)
#define CC_MAXPOOL_F64_OF(id) CC_CAT(CC_CAT3(maxpool_ukernel_, CC_NAME_##id, _), f64)

/* Variant isa's function. Assumes: 0 <= isa < CC_NUM_ISAS. */
static inline cc_maxpool_f32_fn cc_maxpool_ukernel_f32(int isa)
{
    CC_ISA_PICK(isa, CC_MAXPOOL_F32_OF)
}
static inline cc_maxpool_f64_fn cc_maxpool_ukernel_f64(int isa)
{
    CC_ISA_PICK(isa, CC_MAXPOOL_F64_OF)
}

#endif /* CCONV_POOLING_H */

/*
 * The depthwise row micro-kernels of every instruction-set variant (isa.h), and
 * cc_dwconv_ukernel_f32/_f64(isa): the row function of variant `isa`.
 */
#ifndef CCONV_DWCONV_DISPATCH_H
#define CCONV_DWCONV_DISPATCH_H

#define CC_BODY "dwconv_ukernel.h"
#include "instantiate.h"

typedef void (*cc_dwconv_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                 const float *, float, float *, Py_ssize_t);
typedef void (*cc_dwconv_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                 const double *, double, double *, Py_ssize_t);

#define CC_DW_NAME(id, dt) CC_CAT(CC_CAT3(dwconv_ukernel_, CC_NAME_##id, _), dt)

/* Assumes: 0 <= isa < CC_NUM_ISAS. */
static inline cc_dwconv_f32_fn cc_dwconv_ukernel_f32(int isa)
{
    switch (isa) {
#if CC_NUM_ISAS > 2
    case 2: return CC_DW_NAME(2, f32);
#endif
#if CC_NUM_ISAS > 1
    case 1: return CC_DW_NAME(1, f32);
#endif
    default: return CC_DW_NAME(0, f32);
    }
}

static inline cc_dwconv_f64_fn cc_dwconv_ukernel_f64(int isa)
{
    switch (isa) {
#if CC_NUM_ISAS > 2
    case 2: return CC_DW_NAME(2, f64);
#endif
#if CC_NUM_ISAS > 1
    case 1: return CC_DW_NAME(1, f64);
#endif
    default: return CC_DW_NAME(0, f64);
    }
}

/* Lanes of variant isa's vectors for this dtype size: how far a row may be over-read. */
static inline Py_ssize_t cc_dwconv_lanes(int isa, Py_ssize_t itemsize)
{
    return cc_isa_vector_bytes(isa) / itemsize;
}

#endif /* CCONV_DWCONV_DISPATCH_H */

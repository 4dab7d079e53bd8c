/*
 * The depthwise row micro-kernels of every instruction-set variant (isa.h), and
 * cc_dwconv_ukernel_f32/_f64(isa) (columns in the lanes) and cc_dwconv_cl_ukernel_f32/_f64(isa)
 * (channels in the lanes): the row functions of variant `isa`.
 */
#ifndef CCONV_DWCONV_DISPATCH_H
#define CCONV_DWCONV_DISPATCH_H

#define CC_BODY "dwconv_ukernel.h"
#include "instantiate.h"

typedef void (*cc_dwconv_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *,
                                 const float *, float, float *, Py_ssize_t);
typedef void (*cc_dwconv_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *,
                                 const double *, double, double *, Py_ssize_t);

typedef void (*cc_dwconv_cl_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *, Py_ssize_t,
                                    const float *, const float *, float *, Py_ssize_t);
typedef void (*cc_dwconv_cl_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *, Py_ssize_t,
                                    const double *, const double *, double *, Py_ssize_t);

#define CC_DW_NAME(kind, id, dt) CC_CAT(CC_CAT3(kind, CC_NAME_##id, _), dt)

/* Variant isa's function of a family, by CC_ISA_PICK. Assumes: 0 <= isa < CC_NUM_ISAS. */
#define CC_DW_PICK(kind, dt) CC_ISA_PICK(isa, CC_DW_PICK_##kind##dt)
#define CC_DW_PICK_dwconv_ukernel_f32(id) CC_DW_NAME(dwconv_ukernel_, id, f32)
#define CC_DW_PICK_dwconv_ukernel_f64(id) CC_DW_NAME(dwconv_ukernel_, id, f64)
#define CC_DW_PICK_dwconv_cl_ukernel_f32(id) CC_DW_NAME(dwconv_cl_ukernel_, id, f32)
#define CC_DW_PICK_dwconv_cl_ukernel_f64(id) CC_DW_NAME(dwconv_cl_ukernel_, id, f64)

static inline cc_dwconv_f32_fn cc_dwconv_ukernel_f32(int isa) { CC_DW_PICK(dwconv_ukernel_, f32) }
static inline cc_dwconv_f64_fn cc_dwconv_ukernel_f64(int isa) { CC_DW_PICK(dwconv_ukernel_, f64) }
static inline cc_dwconv_cl_f32_fn cc_dwconv_cl_ukernel_f32(int isa)
{
    CC_DW_PICK(dwconv_cl_ukernel_, f32)
}
static inline cc_dwconv_cl_f64_fn cc_dwconv_cl_ukernel_f64(int isa)
{
    CC_DW_PICK(dwconv_cl_ukernel_, f64)
}

/* Lanes of variant isa's vectors for this dtype size: how far a row may be over-read. */
static inline Py_ssize_t cc_dwconv_lanes(int isa, Py_ssize_t itemsize)
{
    return cc_isa_vector_bytes(isa) / itemsize;
}

#endif /* CCONV_DWCONV_DISPATCH_H */

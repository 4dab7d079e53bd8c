/*
 * Instantiate one micro-kernel family for every instruction-set variant (isa.h) and dtype.
 * The includer defines CC_BODY, the family's per-(variant, dtype) header, and includes this
 * file once; this file includes itself once per dtype (the part below `#else`) and that part
 * includes CC_BODY once per variant. The body sees:
 *   CC_ID, CC_NAME       the variant's id and name token (sse2, avx2, avx512, neon, scalar)
 *   CC_TARGET            its function attribute (empty for the baseline)
 *   CC_VBYTES, CC_MRMAX  its vector bytes and gemm tile rows
 *   CC_T, CC_DT          the scalar type and its token (float/f32, double/f64)
 *   CC_V, CC_VU, CC_VL   the vector type, its unaligned alias, and its lanes
 */
#ifndef CC_T
#include "isa.h"

#ifndef CC_VECTOR_TYPES_DEFINED
#define CC_VECTOR_TYPES_DEFINED
#define CC_V_TYPES(name, bytes)                                                              \
    typedef float CC_CAT(cc_vf_, name) __attribute__((vector_size(bytes)));                 \
    typedef float CC_CAT(cc_vfu_, name)                                                      \
        __attribute__((vector_size(bytes), aligned(4), may_alias));                          \
    typedef double CC_CAT(cc_vd_, name) __attribute__((vector_size(bytes)));                \
    typedef double CC_CAT(cc_vdu_, name)                                                     \
        __attribute__((vector_size(bytes), aligned(8), may_alias));
CC_V_TYPES(CC_NAME_0, CC_VBYTES_0)
#if CC_NUM_ISAS > 1
CC_V_TYPES(CC_NAME_1, CC_VBYTES_1)
#endif
#if CC_NUM_ISAS > 2
CC_V_TYPES(CC_NAME_2, CC_VBYTES_2)
#endif
#endif

#define CC_VBYTES CC_CAT(CC_VBYTES_, CC_ID)
#define CC_MRMAX CC_CAT(CC_MRMAX_, CC_ID)
#define CC_TARGET CC_CAT(CC_TARGET_, CC_ID)
#define CC_NAME CC_CAT(CC_NAME_, CC_ID)

#define CC_T float
#define CC_DT f32
#define CC_V CC_CAT(cc_vf_, CC_NAME)
#define CC_VU CC_CAT(cc_vfu_, CC_NAME)
#define CC_VL (CC_VBYTES / 4)
#include "instantiate.h"
#undef CC_T
#undef CC_DT
#undef CC_V
#undef CC_VU
#undef CC_VL

#define CC_T double
#define CC_DT f64
#define CC_V CC_CAT(cc_vd_, CC_NAME)
#define CC_VU CC_CAT(cc_vdu_, CC_NAME)
#define CC_VL (CC_VBYTES / 8)
#include "instantiate.h"
#undef CC_T
#undef CC_DT
#undef CC_V
#undef CC_VU
#undef CC_VL

#undef CC_VBYTES
#undef CC_MRMAX
#undef CC_TARGET
#undef CC_NAME
#undef CC_BODY

#else /* one dtype: the body once per variant */

#define CC_ID 0
#include CC_BODY
#undef CC_ID
#if CC_NUM_ISAS > 1
#define CC_ID 1
#include CC_BODY
#undef CC_ID
#endif
#if CC_NUM_ISAS > 2
#define CC_ID 2
#include CC_BODY
#undef CC_ID
#endif

#endif

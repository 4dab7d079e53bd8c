/*
 * gemm_ukernel.h instantiated for each row count MR = 1..CC_MRMAX of one variant and dtype,
 * and the table cc_gemm_<dt>_v<id>[MR] that dispatch reads (entry 0 unused).
 * The CC_BODY of gemm_dispatch.h (see instantiate.h for the macros it is given).
 */
#define CC_NRTOK CC_CAT3(CC_NR_, CC_DT, CC_CAT(_, CC_VBYTES))
#define CC_UKNAME(mr) CC_CAT(CC_CAT3(CC_CAT3(gemm_ukernel_, mr, x), CC_NRTOK, _), CC_CAT3(CC_NAME, _, CC_DT))

#define CC_MR 1
#define CC_UK CC_UKNAME(1)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#if CC_MRMAX >= 2
#define CC_MR 2
#define CC_UK CC_UKNAME(2)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 3
#define CC_MR 3
#define CC_UK CC_UKNAME(3)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 4
#define CC_MR 4
#define CC_UK CC_UKNAME(4)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 5
#define CC_MR 5
#define CC_UK CC_UKNAME(5)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 6
#define CC_MR 6
#define CC_UK CC_UKNAME(6)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 7
#define CC_MR 7
#define CC_UK CC_UKNAME(7)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 8
#define CC_MR 8
#define CC_UK CC_UKNAME(8)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 9
#define CC_MR 9
#define CC_UK CC_UKNAME(9)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 10
#define CC_MR 10
#define CC_UK CC_UKNAME(10)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 11
#define CC_MR 11
#define CC_UK CC_UKNAME(11)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif
#if CC_MRMAX >= 12
#define CC_MR 12
#define CC_UK CC_UKNAME(12)
#include "gemm_ukernel.h"
#undef CC_MR
#undef CC_UK
#endif

static void (*const CC_CAT(CC_CAT3(cc_gemm_, CC_DT, _v), CC_ID)[13])(
    Py_ssize_t, const CC_T *, const Py_ssize_t *, Py_ssize_t, const CC_T *, const Py_ssize_t *,
    CC_T *, Py_ssize_t, Py_ssize_t, const CC_T *, const CC_T *, int, Py_ssize_t) = {
    0,
    CC_UKNAME(1),
#if CC_MRMAX >= 2
    CC_UKNAME(2),
#endif
#if CC_MRMAX >= 3
    CC_UKNAME(3),
#endif
#if CC_MRMAX >= 4
    CC_UKNAME(4),
#endif
#if CC_MRMAX >= 5
    CC_UKNAME(5),
#endif
#if CC_MRMAX >= 6
    CC_UKNAME(6),
#endif
#if CC_MRMAX >= 7
    CC_UKNAME(7),
#endif
#if CC_MRMAX >= 8
    CC_UKNAME(8),
#endif
#if CC_MRMAX >= 9
    CC_UKNAME(9),
#endif
#if CC_MRMAX >= 10
    CC_UKNAME(10),
#endif
#if CC_MRMAX >= 11
    CC_UKNAME(11),
#endif
#if CC_MRMAX >= 12
    CC_UKNAME(12),
#endif
};
#undef CC_UKNAME
#undef CC_NRTOK

/*
 * The gemm micro-kernels of every instruction-set variant of this architecture (isa.h), and
 * cc_gemm_ukernel_f32/_f64(isa, mr): the tile function for variant `isa` with `mr` rows.
 * The tile is mr x NR with NR = cc_gemm_nr(isa, dtype bytes) = two vectors.
 */
#ifndef CCONV_GEMM_DISPATCH_H
#define CCONV_GEMM_DISPATCH_H

#include "isa.h"

/* NR (two vectors of lanes) as a literal, for the micro-kernels' names. */
#define CC_NR_f32_16 8
#define CC_NR_f32_32 16
#define CC_NR_f32_64 32
#define CC_NR_f64_16 4
#define CC_NR_f64_32 8
#define CC_NR_f64_64 16

#define CC_BODY "gemm_tables.h"
#include "instantiate.h"

typedef void (*cc_gemm_f32_fn)(Py_ssize_t, const float *, const Py_ssize_t *, Py_ssize_t,
                               const float *, const Py_ssize_t *, float *, Py_ssize_t,
                               Py_ssize_t, const float *, const float *, int, Py_ssize_t);
typedef void (*cc_gemm_f64_fn)(Py_ssize_t, const double *, const Py_ssize_t *, Py_ssize_t,
                               const double *, const Py_ssize_t *, double *, Py_ssize_t,
                               Py_ssize_t, const double *, const double *, int, Py_ssize_t);

/* Assumes: 0 <= isa < CC_NUM_ISAS and 1 <= mr <= cc_isa_mr_max(isa). */
#define CC_GEMM_F32_OF(id) cc_gemm_f32_v##id[mr]
#define CC_GEMM_F64_OF(id) cc_gemm_f64_v##id[mr]
static inline cc_gemm_f32_fn cc_gemm_ukernel_f32(int isa, Py_ssize_t mr)
{
    CC_ISA_PICK(isa, CC_GEMM_F32_OF)
}

static inline cc_gemm_f64_fn cc_gemm_ukernel_f64(int isa, Py_ssize_t mr)
{
    CC_ISA_PICK(isa, CC_GEMM_F64_OF)
}

/* Columns (pixels) of a tile: two vectors of `itemsize`-byte lanes. */
static inline Py_ssize_t cc_gemm_nr(int isa, Py_ssize_t itemsize)
{
    return 2 * cc_isa_vector_bytes(isa) / itemsize;
}

#endif /* CCONV_GEMM_DISPATCH_H */

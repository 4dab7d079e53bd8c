/*
 * The Winograd tile transforms of every instruction-set variant (isa.h), and
 * cc_winograd_output_f32/_f64(isa), cc_winograd_col/_row/_put/_weights/_gemm_f32/_f64(isa):
 * variant isa's function.
 */
#ifndef CCONV_WINOGRAD_DISPATCH_H
#define CCONV_WINOGRAD_DISPATCH_H

/* The lane-index element of each dtype (winograd_transform.h's shuffles). */
typedef int cc_winograd_int_f32;
typedef long long cc_winograd_int_f64;

#define CC_BODY "winograd_transform.h"
#include "instantiate.h"

typedef void (*cc_wo_f32_fn)(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, float *,
                             float *);
typedef void (*cc_wo_f64_fn)(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, double *,
                             double *);


typedef void (*cc_wc_f32_fn)(const float *, Py_ssize_t, float *, Py_ssize_t, Py_ssize_t);
typedef void (*cc_wc_f64_fn)(const double *, Py_ssize_t, double *, Py_ssize_t, Py_ssize_t);
typedef void (*cc_wr_f32_fn)(const float *, const float *, float *, Py_ssize_t, Py_ssize_t);
typedef void (*cc_wr_f64_fn)(const double *, const double *, double *, Py_ssize_t,
                             Py_ssize_t);
typedef void (*cc_wp_f32_fn)(const float *, Py_ssize_t, float *, Py_ssize_t, float);
typedef void (*cc_wp_f64_fn)(const double *, Py_ssize_t, double *, Py_ssize_t, double);

typedef void (*cc_wg_f32_fn)(Py_ssize_t, int, Py_ssize_t, const float *, Py_ssize_t,
                             const float *, Py_ssize_t, float *, Py_ssize_t, int);
typedef void (*cc_wg_f64_fn)(Py_ssize_t, int, Py_ssize_t, const double *, Py_ssize_t,
                             const double *, Py_ssize_t, double *, Py_ssize_t, int);

typedef void (*cc_ww_f32_fn)(const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, float *,
                             Py_ssize_t);
typedef void (*cc_ww_f64_fn)(const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, double *,
                             Py_ssize_t);

#define CC_WG_NAME(kind, id, dt) CC_CAT(CC_CAT3(kind, CC_NAME_##id, _), dt)
#define CC_WG_PICK_wo_f32(id) CC_WG_NAME(winograd_output_, id, f32)
#define CC_WG_PICK_wo_f64(id) CC_WG_NAME(winograd_output_, id, f64)
#define CC_WG_PICK_wc_f32(id) CC_WG_NAME(winograd_col_, id, f32)
#define CC_WG_PICK_wc_f64(id) CC_WG_NAME(winograd_col_, id, f64)
#define CC_WG_PICK_wr_f32(id) CC_WG_NAME(winograd_row_, id, f32)
#define CC_WG_PICK_wr_f64(id) CC_WG_NAME(winograd_row_, id, f64)
#define CC_WG_PICK_wp_f32(id) CC_WG_NAME(winograd_put_, id, f32)
#define CC_WG_PICK_wp_f64(id) CC_WG_NAME(winograd_put_, id, f64)
#define CC_WG_PICK_ww_f32(id) CC_WG_NAME(winograd_weights_, id, f32)
#define CC_WG_PICK_ww_f64(id) CC_WG_NAME(winograd_weights_, id, f64)
#define CC_WG_PICK_wg_f32(id) CC_WG_NAME(winograd_gemm_, id, f32)
#define CC_WG_PICK_wg_f64(id) CC_WG_NAME(winograd_gemm_, id, f64)

/* Assumes: 0 <= isa < CC_NUM_ISAS. */
static inline cc_wo_f32_fn cc_winograd_output_f32(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wo_f32) }
static inline cc_wo_f64_fn cc_winograd_output_f64(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wo_f64) }
static inline cc_wc_f32_fn cc_winograd_col_f32(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wc_f32) }
static inline cc_wc_f64_fn cc_winograd_col_f64(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wc_f64) }
static inline cc_wr_f32_fn cc_winograd_row_f32(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wr_f32) }
static inline cc_wr_f64_fn cc_winograd_row_f64(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wr_f64) }
static inline cc_wp_f32_fn cc_winograd_put_f32(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wp_f32) }
static inline cc_wp_f64_fn cc_winograd_put_f64(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wp_f64) }
static inline cc_ww_f32_fn cc_winograd_weights_f32(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_ww_f32) }
static inline cc_ww_f64_fn cc_winograd_weights_f64(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_ww_f64) }
static inline cc_wg_f32_fn cc_winograd_gemm_f32(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wg_f32) }
static inline cc_wg_f64_fn cc_winograd_gemm_f64(int isa) { CC_ISA_PICK(isa, CC_WG_PICK_wg_f64) }

#endif /* CCONV_WINOGRAD_DISPATCH_H */

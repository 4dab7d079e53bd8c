/* The inner loop of max pooling without indices, over output columns whose windows lie
 * inside the image's columns: o[j] = max(o[j], xr[j * sw]), j < n, NaN winning and staying
 * (torch's `val > max || isnan(val)`). Called once per window row and column offset in the
 * order torch visits a window (rows, then columns), so every output element sees its values
 * in torch's order; the column loop then has no branch and the compiler vectorises it (a
 * constant stride for the common strides 1 and 2).
 */
#ifndef CCONV_POOLING_H
#define CCONV_POOLING_H

#include <Python.h>

#define CC_MAX_ROW(T, NAME)                                                                  \
    static inline void NAME(const T *xr, T *o, Py_ssize_t n, Py_ssize_t sw)                \
    {                                                                                        \
        Py_ssize_t j;                                                                        \
        if (sw == 1) {                                                                       \
            for (j = 0; j < n; j++) {                                                        \
                const T v = xr[j], m = o[j];                                                 \
                o[j] = (v > m || v != v) ? v : m;                                            \
            }                                                                                \
        } else if (sw == 2) {                                                                \
            for (j = 0; j < n; j++) {                                                        \
                const T v = xr[2 * j], m = o[j];                                             \
                o[j] = (v > m || v != v) ? v : m;                                            \
            }                                                                                \
        } else {                                                                             \
            for (j = 0; j < n; j++) {                                                        \
                const T v = xr[j * sw], m = o[j];                                            \
                o[j] = (v > m || v != v) ? v : m;                                            \
            }                                                                                \
        }                                                                                    \
    }

CC_MAX_ROW(float, cc_max_row_f32)
CC_MAX_ROW(double, cc_max_row_f64)

#undef CC_MAX_ROW
#endif /* CCONV_POOLING_H */

# cython: language_level=3
"""Element-wise activations over a flat contiguous buffer, y[i] = f(x[i]), with torch's
formulas (torch/aten/src/ATen/native/cpu/Activation.cpp):

    relu         x < 0 ? 0 : x                   (NaN and -0 pass through, as torch's)
    relu6        min(max(x, 0), 6)               (likewise)
    leaky_relu   x > 0 ? x : x * negative_slope
    sigmoid      1 / (1 + exp(-x)) for x >= 0, exp(x) / (1 + exp(x)) below: exp never
                 overflows, so no inf / inf for large |x|
    tanh         tanh(x)
    silu         x * sigmoid(x)
    hardswish    x * relu6(x + 3) / 6
    hardsigmoid  relu6(x + 3) / 6
    gelu         x * 0.5 * (1 + erf(x / sqrt(2)))                         (approximate='none')
                 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))    (approximate='tanh')

Layout: x and y are the arrays' data read as one C-contiguous vector (any shape); y may be
x itself (inplace=True), as each element is read before it is written and by the same
iteration. cconv.nn.activation validates and picks the thread count; every constant is
converted to the element type first, so float32 is computed in float32 as torch does.

Work items are chunks of CHUNK elements at fixed offsets, dealt statically to the threads:

    x: | chunk 0 | chunk 1 | chunk 2 | ... | chunk k (short) |
         thread 0  thread 0  thread 1        thread t

Every element is computed by the same code whatever the thread count (a chunk's boundaries
do not move), so results are bitwise identical for any number of threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport erf, erff, exp, expf, tanh, tanhf

cdef enum:
    # A chunk is long enough that scheduling it costs nothing next to computing it, and
    # short enough to share a large array evenly among the threads.
    CHUNK = 16384

cdef enum Op:
    RELU
    RELU6
    LEAKY_RELU
    SIGMOID
    TANH
    SILU
    HARDSWISH
    HARDSIGMOID
    GELU
    GELU_TANH

# The operations by name, for cconv.nn.activation.
OPS = {"relu": RELU, "relu6": RELU6, "leaky_relu": LEAKY_RELU, "sigmoid": SIGMOID,
       "tanh": TANH, "silu": SILU, "hardswish": HARDSWISH, "hardsigmoid": HARDSIGMOID,
       "gelu": GELU, "gelu_tanh": GELU_TANH}
CHUNK_ELEMENTS = CHUNK


cdef inline floating exp_(floating v) noexcept nogil:
    """exp in the element type (float32 through expf, as torch computes it in float)."""
    if floating is float:
        return expf(v)
    else:
        return exp(v)


cdef inline floating tanh_(floating v) noexcept nogil:
    """tanh in the element type."""
    if floating is float:
        return tanhf(v)
    else:
        return tanh(v)


cdef inline floating erf_(floating v) noexcept nogil:
    """erf in the element type."""
    if floating is float:
        return erff(v)
    else:
        return erf(v)


cdef inline floating clamp6(floating v) noexcept nogil:
    """min(max(v, 0), 6), NaN passing through (a comparison with NaN is false)."""
    if v < 0:
        return 0
    if v > 6:
        return 6
    return v


cdef inline floating sigmoid_of(floating v) noexcept nogil:
    """1 / (1 + exp(-v)), through exp of a non-positive number only."""
    cdef floating e
    if v >= 0:
        return 1 / (1 + exp_(-v))
    e = exp_(v)
    return e / (1 + e)


cdef void relu_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = relu(x) over n elements."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = 0 if x[i] < 0 else x[i]


cdef void relu6_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = relu6(x) over n elements."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = clamp6(x[i])


cdef void leaky_relu_ukernel(const floating *x, floating *y, Py_ssize_t n,
                             floating slope) noexcept nogil:
    """y = leaky_relu(x, slope) over n elements."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = x[i] if x[i] > 0 else x[i] * slope


cdef void sigmoid_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = sigmoid(x) over n elements."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = sigmoid_of(x[i])


cdef void tanh_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = tanh(x) over n elements."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = tanh_(x[i])


cdef void silu_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = x * sigmoid(x) over n elements."""
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        y[i] = v * sigmoid_of(v)


cdef void hardswish_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = x * relu6(x + 3) / 6 over n elements."""
    cdef Py_ssize_t i
    cdef floating v
    for i in range(n):
        v = x[i]
        y[i] = v * clamp6(v + 3) / 6


cdef void hardsigmoid_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = relu6(x + 3) / 6 over n elements."""
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = clamp6(x[i] + 3) / 6


cdef void gelu_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = x * 0.5 * (1 + erf(x / sqrt(2))) over n elements."""
    cdef Py_ssize_t i
    cdef floating v
    cdef floating half = 0.5
    cdef floating sqrt1_2 = 0.70710678118654752440
    for i in range(n):
        v = x[i]
        y[i] = v * half * (1 + erf_(v * sqrt1_2))


cdef void gelu_tanh_ukernel(const floating *x, floating *y, Py_ssize_t n) noexcept nogil:
    """y = 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) over n elements."""
    cdef Py_ssize_t i
    cdef floating v
    cdef floating half = 0.5
    cdef floating beta = 0.79788456080286535588      # sqrt(2/pi)
    cdef floating kappa = 0.044715
    for i in range(n):
        v = x[i]
        y[i] = half * v * (1 + tanh_(beta * (v + kappa * (v * v * v))))


cdef void run_chunk(Op op, const floating *x, floating *y, Py_ssize_t n,
                    floating slope) noexcept nogil:
    """y = op(x) over n elements."""
    if op == RELU:
        relu_ukernel(x, y, n)
    elif op == RELU6:
        relu6_ukernel(x, y, n)
    elif op == LEAKY_RELU:
        leaky_relu_ukernel(x, y, n, slope)
    elif op == SIGMOID:
        sigmoid_ukernel(x, y, n)
    elif op == TANH:
        tanh_ukernel(x, y, n)
    elif op == SILU:
        silu_ukernel(x, y, n)
    elif op == HARDSWISH:
        hardswish_ukernel(x, y, n)
    elif op == HARDSIGMOID:
        hardsigmoid_ukernel(x, y, n)
    elif op == GELU:
        gelu_ukernel(x, y, n)
    else:
        gelu_tanh_ukernel(x, y, n)


cdef void run(Op op, const floating *x, floating *y, Py_ssize_t n, floating slope,
              int nthreads) noexcept nogil:
    """y = op(x) over n elements, chunk by chunk, on nthreads threads.
    Assumes: n >= 1; nthreads >= 1."""
    cdef Py_ssize_t chunks = (n + CHUNK - 1) // CHUNK
    cdef Py_ssize_t c, start
    if nthreads == 1 or chunks == 1:
        # No parallel region for one thread: it would cost more than a small array.
        for c in range(chunks):
            start = c * CHUNK
            run_chunk(op, x + start, y + start, min(<Py_ssize_t>CHUNK, n - start), slope)
        return
    for c in prange(chunks, num_threads=nthreads, schedule="static"):
        start = c * CHUNK
        run_chunk(op, x + start, y + start, min(<Py_ssize_t>CHUNK, n - start), slope)


def apply(int op, const floating[::1] x, floating[::1] out, double slope, int nthreads):
    """out = op(x) (an entry of OPS) over the flat vector x; out may be x. slope: leaky_relu's
    negative_slope (ignored otherwise).
    Assumes (checked by the caller): len(out) == len(x); nthreads >= 1."""
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    cdef const floating *xp = &x[0]
    cdef floating *yp = &out[0]
    with nogil:
        run(<Op>op, xp, yp, n, <floating>slope, nthreads)

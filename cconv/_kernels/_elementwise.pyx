# cython: language_level=3
"""Element-wise activations over a flat contiguous buffer, y[i] = f(x[i]), and the epilogue
of a convolution whose output needs no kernel, both by the vector code of activation.h (its
header lists the formulas: torch's, aten/src/ATen/native/cpu/Activation.cpp), the same code
the convolution kernels' fused epilogue runs.

Layout: x and y are the arrays' data read as one C-contiguous vector (any shape); y may be
x itself (inplace=True), as each element is read before it is written and by the same
iteration. cconv.nn.activation validates and picks the thread count and the instruction-set
variant; every constant is converted to the element type first, so float32 is computed in
float32 as torch does.

Work items are chunks of CHUNK elements at fixed offsets (rows, for the epilogue), taken in
contiguous shares by the threads of the pool (_driver.run_plain):

    x: | chunk 0 | chunk 1 | chunk 2 | ... | chunk k (short) |
         thread 0  thread 0  thread 1        thread t

Every element is computed by the same code whatever the thread count (a chunk's boundaries
do not move, and the vector code has no lane that depends on its neighbours), so results are
bitwise identical for any number of threads.
"""
from cython cimport floating

from ._buffers cimport release, take
from ._driver cimport run_plain
from ._epilogue cimport act_run, cc_epilogue, ep_row, ep_take

cdef extern from "epilogue.h":
    enum cc_act:
        CC_ACT_RELU
        CC_ACT_RELU6
        CC_ACT_CLAMP
        CC_ACT_LEAKY_RELU
        CC_ACT_SIGMOID
        CC_ACT_SILU
        CC_ACT_HARDSWISH
        CC_ACT_HARDSIGMOID
        CC_ACT_GELU
        CC_ACT_GELU_TANH
        CC_ACT_TANH

cdef enum:
    # A chunk is long enough that scheduling it costs nothing next to computing it, and
    # short enough to share a large array evenly among the threads.
    CHUNK = 16384

# The operations by name (epilogue.h's codes), for cconv.nn.activation and cconv._epilogue.
OPS = {"relu": CC_ACT_RELU, "relu6": CC_ACT_RELU6, "clamp": CC_ACT_CLAMP,
       "leaky_relu": CC_ACT_LEAKY_RELU, "sigmoid": CC_ACT_SIGMOID, "silu": CC_ACT_SILU,
       "hardswish": CC_ACT_HARDSWISH, "hardsigmoid": CC_ACT_HARDSIGMOID, "gelu": CC_ACT_GELU,
       "gelu_tanh": CC_ACT_GELU_TANH, "tanh": CC_ACT_TANH}
CHUNK_ELEMENTS = CHUNK


cdef struct Chunks:
    int isa, op
    const void *x
    void *y
    Py_ssize_t n
    double p0, p1


cdef void chunk_f32(const void *ctx, Py_ssize_t c, char *ws) noexcept nogil:
    """Work item c of a float32 call: elements c*CHUNK .. (c + 1)*CHUNK - 1 (fewer at the
    end)."""
    cdef const Chunks *k = <const Chunks *> ctx
    cdef Py_ssize_t start = c * CHUNK
    act_run(k.isa, <const float *> k.x + start, <float *> k.y + start,
            min(<Py_ssize_t>CHUNK, k.n - start), k.op, <float> k.p0, <float> k.p1)


cdef void chunk_f64(const void *ctx, Py_ssize_t c, char *ws) noexcept nogil:
    """Work item c of a float64 call (as chunk_f32)."""
    cdef const Chunks *k = <const Chunks *> ctx
    cdef Py_ssize_t start = c * CHUNK
    act_run(k.isa, <const double *> k.x + start, <double *> k.y + start,
            min(<Py_ssize_t>CHUNK, k.n - start), k.op, k.p0, k.p1)


def apply(int op, const floating[::1] x, floating[::1] out, double p0, double p1,
          int isa, int nthreads):
    """out = op(x) (an entry of OPS) over the flat vector x by instruction-set variant isa;
    out may be x. p0, p1: leaky_relu's negative_slope (p0), clamp's min and max.
    Assumes (checked by the caller): len(out) == len(x); nthreads >= 1."""
    cdef Py_ssize_t n = x.shape[0]
    if n == 0:
        return
    cdef Chunks call
    call.isa, call.op, call.x, call.y, call.n = isa, op, &x[0], &out[0], n
    call.p0, call.p1 = p0, p1
    with nogil:
        if floating is float:
            run_plain(chunk_f32, &call, (n + CHUNK - 1) // CHUNK, nthreads)
        else:
            run_plain(chunk_f64, &call, (n + CHUNK - 1) // CHUNK, nthreads)


cdef struct Rows:
    int isa
    const cc_epilogue *ep
    void *out
    Py_ssize_t C, HW


cdef void row_f32(const void *ctx, Py_ssize_t r, char *ws) noexcept nogil:
    """Work item r of a float32 epilogue: row r (of HW elements, channel r % C), in place."""
    cdef const Rows *k = <const Rows *> ctx
    cdef float *out = <float *> k.out
    ep_row(k.isa, k.ep, out, r % k.C, out + r * k.HW, out + r * k.HW, k.HW)


cdef void row_f64(const void *ctx, Py_ssize_t r, char *ws) noexcept nogil:
    """Work item r of a float64 epilogue (as row_f32)."""
    cdef const Rows *k = <const Rows *> ctx
    cdef double *out = <double *> k.out
    ep_row(k.isa, k.ep, out, r % k.C, out + r * k.HW, out + r * k.HW, k.HW)


def epilogue(out, args, int isa, int nthreads):
    """Apply the epilogue args (cconv._epilogue.Bound.args()) to out (N, C, H, W), in place:
    a convolution whose outputs are (some of them) their bias alone, with no kernel to fuse
    it. Assumes: out is C-contiguous float32 or float64 of the epilogue's dtype."""
    cdef Py_buffer v[4]
    cdef int held = 0
    cdef cc_epilogue ep
    cdef Rows call
    cdef Py_ssize_t itemsize = out.dtype.itemsize
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1], HW = out.shape[2] * out.shape[3]
    try:
        take(out, v, &held, itemsize, True)
        ep_take(args, &ep, v, &held, itemsize, C, N * C * HW)
        if N * C * HW == 0:
            return
        call.isa, call.ep, call.out, call.C, call.HW = isa, &ep, v[0].buf, C, HW
        with nogil:
            run_plain(row_f32 if itemsize == 4 else row_f64, &call, N * C, nthreads)
    finally:
        release(v, held)

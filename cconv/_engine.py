"""The engine: how a convolution call flows from the user's arguments to a micro-kernel.

    functional.conv2d(x, w, ...)      modules.Conv2d(...)(x)
            |                                 |
    _params       check the arguments (every user-facing error), one frozen ConvParams
            |
    _lowering     the convolution as problems: implicit GEMMs (one for conv2d, one per
                  stride phase of a transposed convolution, or one 1x1 GEMM copied depth to
                  space) or one depthwise pass; taps that only read padding dropped
            |
    _planner      ordered rules and a cost model choose the Algorithm and its tiling (band
                  rows, K blocks, panels per block) and threads: a pure-data Plan
            |
    _engine       binds the plan to its compiled kernel, once (bind -> Bound), and runs it:
                    prepare_weight(bound, w)          packed once (a module's weights)
                    execute(bound, x, w, b, out, epilogue=None, residual=None)
            |
    _kernels      Cython drivers, one algorithm per file, each implementing one interface:
                    Kernel.pack(w, dst)                raw weights -> what run() reads
                    Kernel.run(x, w, packed, bias, out, threads, pack_first, epilogue)
                    Kernel.packed_size, workspace_elems, workspace_elems_raw
                  _igemm.pyx (implicit GEMM, pixels or channels in the SIMD lanes) and
                  _depthwise.pyx (depthwise, columns or channels in the lanes), both over
                  the band buffer (_band.pxd), and _winograd.pyx (3x3 stride 1: F(4x4, 3x3),
                  its 36 GEMMs on the same tiles), all through the parallel driver
                  (_driver.pxd), calling
                  register-tiled C micro-kernels (gemm_ukernel.h, dwconv_ukernel.h), one
                  build per instruction set, chosen at import (_isa); a fused epilogue
                  (_epilogue: scale, shift, residual, activation) is applied as each output
                  row is finished, by epilogue.h's vector code

Where each decision is made: the thread count in _threads (kernels get a plain int); the
instruction set in _isa; the algorithm, tiling and workspace in _planner; whether a
functional call packs its weights first in _planner.pack_first. A comment that says
"(decisions: NAME)" points to the entry of docs/decisions.md whose title starts with NAME:
its figures, date, machine and rejected alternatives. Results are bitwise identical for any
thread count: the reduction blocking never depends on it, and each output element is summed
by one thread.
"""
import numpy as np

from . import _cache, _epilogue, _lowering
from ._kernels import _depthwise, _elementwise, _igemm, _runtime, _winograd

__all__ = ["Bound", "bind", "prepare_weight", "execute", "aligned_empty"]

CACHE_LINE = 64


class Bound:
    """A plan bound to its compiled kernel (None when every output is its bias): what a
    functional call or a module keeps from one preparation and runs on every call."""
    __slots__ = ("plan", "kernel", "weight_key")

    def __init__(self, plan, params):
        self.plan = plan
        self.kernel = _kernel(plan, params) if plan.layout else None
        self.weight_key = plan.weight_key


def _kernel(plan, params):
    """The compiled kernel that runs plan on params."""
    itemsize = plan.dtype.itemsize
    if plan.algorithm.winograd:
        return _winograd.Winograd(params, plan.isa, itemsize, plan.cpb, plan.rows, plan.ppb)
    if plan.algorithm.depthwise:
        return _depthwise.Depthwise(_lowering.depthwise(params), plan.mode, plan.isa, itemsize,
                                    plan.rows)
    lowering = _lowering.depth_to_space(params) if plan.d2s else _lowering.gemm(params)
    return _igemm.IGemm(_igemm.Problems(lowering), plan.mode, plan.isa, itemsize, plan.cpb,
                        plan.rows, plan.ppb)


@_cache.memo
def bind(plan, params):
    """plan's Bound for params, prepared once."""
    return Bound(plan, params)


def aligned_empty(n, dtype):
    """An uninitialised 1-D array of n elements starting on a cache line (for weights packed
    once: a vector load that straddles two lines costs about twice one that does not)."""
    dtype = np.dtype(dtype)
    raw = np.empty(n + CACHE_LINE // dtype.itemsize, dtype=dtype)
    skip = _runtime.line_offset(raw.view(np.uint8)) // dtype.itemsize
    return raw[skip:skip + n]


def prepare_weight(bound, weight):
    """The weights as bound's kernel reads them, packed once (a module's weights)."""
    if bound.kernel is None:
        return np.empty(0, dtype=bound.plan.dtype)
    packed = aligned_empty(bound.kernel.packed_size, bound.plan.dtype)
    bound.kernel.pack(weight.reshape(-1), packed)
    return packed


def execute(bound, x, weight, bias, out, packed=True, pack_first=False, epilogue=None,
            residual=None):
    """Run bound's plan: x (N, C_in, H, W) and out (N, C_out, H_out, W_out), C-contiguous.
    weight: prepare_weight()'s result, or (packed false) the weight array itself, which the
    kernel reads in place or packs as it goes, or, with pack_first (a plan made with
    prepacked=True), packs whole into a buffer of the call first and then runs as with
    prepare_weight()'s result, bitwise alike. epilogue (a checked cconv.Epilogue or None)
    and residual (an array of out's shape and dtype, C-contiguous, not sharing memory with
    out, or None) are fused into the writing of out (_epilogue)."""
    if out.size == 0:
        return out
    plan = bound.plan
    args = _epilogue.kernel_args(epilogue, residual, plan.dtype)
    if plan.bias_fill:
        out[...] = 0 if bias is None else bias[:, None, None]
        if args is not None:
            # Outputs no tap reaches are their bias: their epilogue here, compiled; the
            # kernel then writes the others whole, epilogue included.
            _elementwise.epilogue(out, args, plan.isa, plan.threads)
    if bound.kernel is not None:
        bound.kernel.run(x, weight, packed, bias, out, plan.threads, pack_first, args)
    return out

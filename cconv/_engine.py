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
    _engine       binds the plan to its compiled kernel (cached) and runs it:
                    prepare_weight(plan, params, w)   packed once (a module's weights)
                    execute(plan, params, x, w, b, out)
            |
    _kernels      Cython drivers, one algorithm per file, each implementing one interface:
                    Kernel.pack(w, dst)                raw weights -> what run() reads
                    Kernel.run(x, w, packed, bias, out, threads, pack_first)
                    Kernel.packed_size, workspace_elems, workspace_elems_raw
                  _igemm.pyx (implicit GEMM, pixels or channels in the SIMD lanes) and
                  _depthwise.pyx (depthwise, columns or channels in the lanes), both over
                  the band buffer (_band.pxd) and the parallel driver (_driver.pxd), calling
                  register-tiled C micro-kernels (gemm_ukernel.h, dwconv_ukernel.h), one
                  build per instruction set, chosen at import (_isa)

Where each decision is made: the thread count in _threads (kernels get a plain int); the
instruction set in _isa; the algorithm, tiling and workspace in _planner. A comment that
says "(decisions: NAME)" points to the entry of docs/decisions.md whose title starts with
NAME, where its figures, date, machine and rejected alternatives are; whether a functional call packs its weights
first in _planner.pack_first. Results are bitwise identical for any thread count: the
reduction blocking never depends on it, and each output element is summed by one thread.
"""
import numpy as np

from . import _cache, _lowering
from ._kernels import _depthwise, _igemm, _runtime

__all__ = ["kernel", "prepare_weight", "execute", "aligned_empty"]

CACHE_LINE = 64

_KERNELS = _cache.Cache()


def _bind(plan, params):
    """The compiled kernel that runs plan on params."""
    itemsize = plan.dtype.itemsize
    if plan.algorithm.depthwise:
        return _depthwise.Depthwise(_lowering.depthwise(params), plan.mode, plan.isa, itemsize,
                                    plan.rows)
    lowering = _lowering.depth_to_space(params) if plan.d2s else _lowering.gemm(params)
    return _igemm.IGemm(_igemm.Problems(lowering), plan.mode, plan.isa, itemsize, plan.cpb,
                        plan.rows, plan.ppb)


def kernel(plan, params):
    """The prepared kernel of plan (None when every output is its bias), cached."""
    if not plan.layout:
        return None
    key = (plan, params)
    bound = _KERNELS.get(key)
    if bound is None:
        bound = _KERNELS.put(key, _bind(plan, params))
    return bound


def aligned_empty(n, dtype):
    """An uninitialised 1-D array of n elements starting on a cache line (for weights packed
    once: a vector load that straddles two lines costs about twice one that does not)."""
    dtype = np.dtype(dtype)
    raw = np.empty(n + CACHE_LINE // dtype.itemsize, dtype=dtype)
    skip = _runtime.line_offset(raw.view(np.uint8)) // dtype.itemsize
    return raw[skip:skip + n]


def prepare_weight(plan, params, weight):
    """The weights as the plan's kernel reads them, packed once (a module's weights)."""
    bound = kernel(plan, params)
    if bound is None:
        return np.empty(0, dtype=plan.dtype)
    packed = aligned_empty(bound.packed_size, plan.dtype)
    bound.pack(weight.reshape(-1), packed)
    return packed


def execute(plan, params, x, weight, bias, out, packed=True, pack_first=False):
    """Run the plan: x (N, C_in, H, W) and out (N, C_out, H_out, W_out), C-contiguous.
    weight: prepare_weight()'s result, or (packed false) the weight array itself, which the
    kernel reads in place or packs as it goes, or, with pack_first (a plan made with
    prepacked=True), packs whole into a buffer of the call first and then runs as with
    prepare_weight()'s result, bitwise alike."""
    if out.size == 0:
        return out
    if plan.bias_fill:
        out[...] = 0 if bias is None else bias[:, None, None]
    bound = kernel(plan, params)
    if bound is not None:
        bound.run(x, weight, packed, bias, out, plan.threads, pack_first)
    return out

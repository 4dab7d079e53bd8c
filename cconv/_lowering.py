"""A convolution as the problems the kernels solve: implicit GEMMs, or one depthwise pass.

conv2d is one GEMM over the whole output: grid pixel (i, j) is output (i, j) and reads input
(i*sh + offh[th], j*sw + offw[tw]) with offh = kh*dilation - padding per kernel row (likewise
columns). Taps that only ever read padding are dropped.

conv_transpose2d is one GEMM per stride phase: the outputs r, r + s, r + 2s, ... of an axis
receive the taps k with k*dilation - padding = r (mod s), each reading input i + offset for
the phase's i-th output (_transposed_phases). Outputs that no tap reaches hold the bias
(bias_fill). A transposed convolution whose kernel is its stride, unpadded and undilated
(U-Net's 2x2/s2), is also one 1x1 GEMM of kh*kw rows per output channel, copied depth to
space (depth_to_space); the planner chooses between the two.

Everything here is plain data computed once per geometry; the kernels read the named fields.
"""
from dataclasses import dataclass

from . import _cache, _params

__all__ = ["GemmProblem", "GemmLowering", "DepthwiseLowering", "gemm", "depth_to_space",
           "depthwise", "conv_taps"]


@dataclass(frozen=True)
class GemmProblem:
    """One implicit GEMM: grid pixel (i, j), i < Hp, j < Wp, reads input (i*sh + offh[th],
    j*sw + offw[tw]) with weight tap (kh[th], kw[tw]) and lands at output (oy0 + i*oys,
    ox0 + j*oxs)."""
    kh: tuple
    kw: tuple
    offh: tuple
    offw: tuple
    sh: int
    sw: int
    Hp: int
    Wp: int
    oy0: int
    oys: int
    ox0: int
    oxs: int


@dataclass(frozen=True)
class GemmLowering:
    """The GEMMs of a convolution. params: the geometry they see (depth to space: the 1x1
    convolution with fy*fx times the output channels); weight_strides (sg, sm, sc): elements
    between groups, output channels and input channels of the weight; d2s: (fy, fx), the
    depth-to-space factors, (1, 1) for none; bias_fill: some outputs are reached by no tap,
    so the output is filled with the bias first."""
    params: _params.ConvParams
    problems: tuple
    weight_strides: tuple
    bias_fill: bool
    d2s: tuple = (1, 1)

    @property
    def taps_of_problem(self):
        """Per GEMM, the weight taps (kh list, kw list) it uses."""
        return tuple((p.kh, p.kw) for p in self.problems)


@dataclass(frozen=True)
class DepthwiseLowering:
    """A depthwise convolution (one input channel per group): its kept taps kh, kw and their
    input offsets offh, offw at output 0; bias_fill: no tap is kept (every output is its
    bias)."""
    params: _params.ConvParams
    kh: tuple
    kw: tuple
    offh: tuple
    offw: tuple

    @property
    def bias_fill(self):
        return not (self.kh and self.kw)


def _cdiv(a, b):
    return -(-a // b)


def _reaches(offset, stride, n_out, size):
    """Whether input index i*stride + offset lies in [0, size) for some i in [0, n_out)."""
    lo = max(0, _cdiv(-offset, stride))
    hi = min(n_out - 1, (size - 1 - offset) // stride)
    return lo <= hi


def conv_taps(params):
    """conv2d's taps [(k, input offset)] along rows and along columns, without those that
    only ever read padding (huge dilations would otherwise make the band span the padding)."""
    p = params
    th = [(kh, kh * p.dilation[0] - p.padding[0]) for kh in range(p.KH)]
    tw = [(kw, kw * p.dilation[1] - p.padding[2]) for kw in range(p.KW)]
    return ([(k, off) for k, off in th if _reaches(off, p.stride[0], p.H_out, p.H)],
            [(k, off) for k, off in tw if _reaches(off, p.stride[1], p.W_out, p.W)])


def _transposed_phases(size_out, size_in, stride, pad, dilation, kernel):
    """The output phases of a transposed convolution along one axis that some tap reaches:
    [(r, taps, n_out)] for outputs r, r + stride, ..., n_out of them, with taps [(k, input
    offset)] (input index = i + offset for the phase's i-th output), and whether every
    output is in one of them.

    Output o receives x[ih] * w[k] where ih*stride - pad + k*dilation == o: for o = r +
    stride*i that needs r == (k*dilation - pad) mod stride, then ih = i + (r + pad -
    k*dilation) / stride. So at most `kernel` phases have taps, whatever the stride: the
    others hold only the bias and are not listed (no work or memory per stride phase).
    """
    by_phase = {}
    for k in range(kernel):
        r = (k * dilation - pad) % stride
        if r < size_out:
            by_phase.setdefault(r, []).append((k, (r + pad - k * dilation) // stride))
    phases = []
    for r in sorted(by_phase):
        n_out = _cdiv(size_out - r, stride)
        taps = [(k, off) for k, off in by_phase[r] if _reaches(off, 1, n_out, size_in)]
        if taps:
            phases.append((r, taps, n_out))
    return phases, len(phases) == min(stride, size_out)


def _weight_strides(p):
    taps = p.KH * p.KW
    if p.transposed:  # weight (C_in, C_out/groups, kh, kw)
        return (p.Cg * p.Mg * taps, taps, p.Mg * taps)
    return (p.Mg * p.Cg * taps, p.Cg * taps, taps)  # weight (C_out, C_in/groups, kh, kw)


@_cache.memo
def gemm(params):
    """The implicit GEMMs of params: one for conv2d, one per stride phase with taps of a
    transposed convolution."""
    p = params
    if not p.transposed:
        # conv2d: one GEMM over the whole output; input index = i*stride + k*dilation - pad.
        th, tw = conv_taps(params)
        rows = [(0, th, p.H_out)] if th else []
        cols = [(0, tw, p.W_out)] if tw else []
        steps, covered = (1, 1, p.stride[0], p.stride[1]), bool(th and tw)
    else:
        rows, all_rows = _transposed_phases(p.H_out, p.H, p.stride[0], p.padding[0],
                                            p.dilation[0], p.KH)
        cols, all_cols = _transposed_phases(p.W_out, p.W, p.stride[1], p.padding[2],
                                            p.dilation[1], p.KW)
        steps, covered = (p.stride[0], p.stride[1], 1, 1), all_rows and all_cols
    oys, oxs, sh, sw = steps
    problems = tuple(
        GemmProblem(tuple(k for k, _ in th), tuple(k for k, _ in tw),
                    tuple(off for _, off in th), tuple(off for _, off in tw),
                    sh, sw, hp, wp, rh, oys, rw, oxs)
        for rh, th, hp in rows for rw, tw, wp in cols)
    return GemmLowering(params, problems, _weight_strides(p), not covered)


@_cache.memo
def depth_to_space(params):
    """A transposed convolution whose kernel is its stride, unpadded and undilated (U-Net's
    2x2/s2), as the 1x1 transposed convolution it is to the GEMM: fy*fx times the output
    channels (weight (C_in, C_out/groups * kh*kw), row m = (co*kh + a)*kw + b), on the input
    grid, each output pixel (i, j) of row m landing at (i*fy + a, j*fx + b) of channel co.
    None for any other convolution."""
    p = params
    if not (p.transposed and (p.KH, p.KW) == p.stride and p.stride != (1, 1)
            and p.padding == (0, 0, 0, 0) and p.dilation == (1, 1)
            and p.output_padding == (0, 0)):
        return None
    virtual = _params.ConvParams(p.N, p.C_in, p.H, p.W, p.C_out * p.KH * p.KW, 1, 1, (1, 1),
                                 (0, 0, 0, 0), (1, 1), p.groups, p.H, p.W, transposed=True)
    lowered = gemm(virtual)
    return GemmLowering(virtual, lowered.problems, lowered.weight_strides, lowered.bias_fill,
                        d2s=p.stride)


@_cache.memo
def depthwise(params):
    """params (one input channel per group) as one depthwise pass over its kept taps."""
    th, tw = conv_taps(params)
    return DepthwiseLowering(params, tuple(k for k, _ in th), tuple(k for k, _ in tw),
                             tuple(off for _, off in th), tuple(off for _, off in tw))

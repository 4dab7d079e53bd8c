"""conv2d and conv_transpose2d, as in torch.nn.functional: validate -> plan -> run.

Arguments, their order, defaults, output shapes and errors follow PyTorch. Arrays are numpy
arrays or anything numpy can read (lists, read-only or memory-mapped arrays, any strides or
byte order, torch CPU tensors); float32 and float64 are computed natively, in the input's
dtype. `out=` receives the result when given. `algorithm=` forces one of
cconv._planner.ALGORITHMS (for tests and benchmarks); by default the planner chooses.
"""
import numpy as np

from . import _params, _planner

__all__ = ["conv2d"]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None,
           algorithm=None):
    """2-D convolution (cross-correlation) of input (N, C_in, H, W) or (C_in, H, W) with
    weight (C_out, C_in/groups, kH, kW), as torch.nn.functional.conv2d.

    stride, dilation: int or pair >= 1. padding: int or pair >= 0, 'valid', or 'same'
    (stride 1 only; an odd total padding puts the extra row/column at the bottom/right).
    groups: splits the channels into groups convolved separately (groups == C_in:
    depthwise). Returns (N, C_out, H_out, W_out), or (C_out, H_out, W_out) for an unbatched
    input, with H_out = (H + pad_top + pad_bottom - dilation*(kH-1) - 1) // stride + 1.
    """
    fn = "conv2d"
    x = _params.as_float_array(fn, "input", input)
    w = _params.as_float_array(fn, "weight", weight)
    b = None if bias is None else _params.as_float_array(fn, "bias", bias)
    dtype = _params.check_same_dtype(fn, x, w, b)
    x4, unbatched = _params.batched(fn, x)
    _params.check_weight(fn, w)
    _params.check_bias(fn, b, w, w.shape[0])
    groups = _params.positive_int(fn, "groups", groups)
    stride = _params.int_pair(fn, "stride", stride, 1)
    dilation = _params.int_pair(fn, "dilation", dilation, 1)
    pads = _params.conv_padding(fn, padding, w.shape[2:], dilation, stride)
    params = _params.conv2d_params(fn, x4.shape, w.shape, stride, pads, dilation, groups)
    shape = params.output_shape[1:] if unbatched else params.output_shape
    result = _params.check_out(fn, out, shape, dtype, x, w, b)
    if result is None:
        result = np.empty(shape, dtype=dtype)
    plan = _planner.plan(params, dtype, algorithm)
    packed = _planner.prepare_weight(plan, params, _params.contiguous(w, dtype))
    _planner.execute(plan, params, _params.contiguous(x4, dtype), packed,
                     None if b is None else _params.contiguous(b, dtype),
                     result.reshape(params.output_shape))
    return result


"""conv2d and conv_transpose2d, as in torch.nn.functional: validate -> plan -> run.

Arguments, their order, defaults, output shapes and errors follow PyTorch. Arrays are numpy
arrays or anything numpy can read (lists, read-only or memory-mapped arrays, any strides or
byte order, torch CPU tensors); float32 and float64 are computed natively, in the input's
dtype. `out=` receives the result when given. `algorithm=` forces one of
cconv._planner.ALGORITHMS (for tests and benchmarks); by default the planner chooses.
`epilogue=` (a cconv.Epilogue) and `residual=` (an array of the output's shape and dtype)
are fused into the writing of the output: act(conv * scale + shift + residual), in one pass
(cconv._epilogue).
"""
import numpy as np

from . import _cache, _engine, _epilogue, _isa, _params, _planner, _threads

__all__ = ["conv2d", "conv_transpose2d"]


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None,
           algorithm=None, epilogue=None, residual=None):
    """2-D convolution (cross-correlation) of input (N, C_in, H, W) or (C_in, H, W) with
    weight (C_out, C_in/groups, kH, kW), as torch.nn.functional.conv2d.

    stride, dilation: int or pair >= 1. padding: int or pair >= 0, 'valid', or 'same'
    (stride 1 only; an odd total padding puts the extra row/column at the bottom/right).
    groups: splits the channels into groups convolved separately (groups == C_in:
    depthwise). Returns (N, C_out, H_out, W_out), or (C_out, H_out, W_out) for an unbatched
    input, with H_out = (H + pad_top + pad_bottom - dilation*(kH-1) - 1) // stride + 1.
    epilogue, residual: fused into the output as it is written (module docstring); a
    residual that is out itself is read before out is written (an in-place add).
    """
    fn = "conv2d"
    x, w, b, dtype = _arrays(fn, input, weight, bias)
    x4, unbatched = _params.batched(fn, x)
    _params.check_bias(fn, b, w, w.shape[0])
    call = _prepared((fn, x4.shape, w.shape, stride, padding, dilation, groups), dtype,
                     algorithm, _params.conv2d_geometry)
    return _run(fn, call, x4, w, b, dtype, unbatched, out, epilogue, residual)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0,
                     groups=1, dilation=1, *, out=None, algorithm=None, epilogue=None,
                     residual=None):
    """2-D transposed convolution (the adjoint of conv2d; "deconvolution") of input
    (N, C_in, H, W) or (C_in, H, W) with weight (C_in, C_out/groups, kH, kW), as
    torch.nn.functional.conv_transpose2d.

    Output size: (H - 1)*stride - 2*padding + dilation*(kH - 1) + output_padding + 1, where
    output_padding (< stride or < dilation) adds rows/columns at the bottom/right.
    epilogue, residual: as conv2d's.
    """
    fn = "conv_transpose2d"
    x, w, b, dtype = _arrays(fn, input, weight, bias)
    x4, unbatched = _params.batched(fn, x)
    call = _prepared((fn, x4.shape, w.shape, stride, padding, output_padding, groups, dilation),
                     dtype, algorithm, _params.conv_transpose2d_geometry)
    _params.check_bias(fn, b, w, call[0].C_out)
    return _run(fn, call, x4, w, b, dtype, unbatched, out, epilogue, residual)


def _arrays(fn, input, weight, bias):
    """input, weight, bias as float arrays of one dtype, and that dtype."""
    if (type(input) is np.ndarray and type(weight) is np.ndarray and weight.ndim == 4
            and input.dtype in _params.DTYPES and weight.dtype == input.dtype
            and (bias is None or (type(bias) is np.ndarray and bias.dtype == input.dtype))
            and weight.shape[2] and weight.shape[3]):
        return input, weight, bias, input.dtype      # the common case, fast
    x = _params.as_float_array(fn, "input", input)
    w = _params.as_float_array(fn, "weight", weight)
    b = None if bias is None else _params.as_float_array(fn, "bias", bias)
    dtype = _params.check_same_dtype(fn, x, w, b)
    _params.check_weight(fn, w)
    return x, w, b, dtype


# Prepared calls: (fn, shapes, the user's geometry arguments, dtype, algorithm, variant,
# threads, whether Winograd may run) -> (ConvParams, pack_first, bound plan), for arguments
# that can key a cache (_params.plain): a repeated call skips the checks it already passed
# and the planner, in one lookup. Only results are kept: a bad argument is refused again on
# every call.
_PREPARED = _cache.Cache()


def _prepared(key, dtype, algorithm, geometry):
    """(params, pack_first, bound) of a call: geometry(*key), whether to pack the weights
    first, and the plan bound to its kernel (None when the output is empty: nothing runs)."""
    call_key = None
    if (algorithm is None or type(algorithm) is str) and _params.plain(key[3:]):
        call_key = (key, dtype, algorithm, _isa.current(), _threads.get_num_threads(),
                    _planner.get_winograd())
        call = _PREPARED.get(call_key)
        if call is not None:
            return call
    params = geometry(*key)
    if 0 in params.output_shape:
        if algorithm is not None:   # checked as for any other call
            _planner.check_algorithm(params, algorithm)
        call = (params, False, None)
    else:
        # Weights used many times are packed first, as a module's, in the kernel; others
        # are read raw.
        pack_first = _planner.pack_first(params)
        plan = _planner.plan(params, dtype, algorithm, prepacked=pack_first)
        call = (params, pack_first, _engine.bind(plan, params))
    if call_key is not None:
        _PREPARED.put(call_key, call)
    return call


def _run(fn, call, x4, w, b, dtype, unbatched, out, epilogue=None, residual=None):
    params, pack_first, bound = call
    shape = params.output_shape[1:] if unbatched else params.output_shape
    epilogue = _epilogue.check_epilogue(fn, epilogue, params.C_out)
    residual = _epilogue.check_residual(fn, residual, shape, dtype, out)
    result = np.empty(shape, dtype=dtype) if out is None else _params.check_out(
        fn, out, shape, dtype, x4, w, b)
    if bound is None:
        return result
    # A misaligned out= (np.frombuffer at an odd offset) is filled from an aligned result.
    target = result if result.flags.aligned else np.empty(shape, dtype=dtype)
    _engine.execute(bound, _params.contiguous(x4, dtype), _params.contiguous(w, dtype),
                    None if b is None else _params.contiguous(b, dtype),
                    target.reshape(params.output_shape) if unbatched else target,
                    packed=False, pack_first=pack_first, epilogue=epilogue, residual=residual)
    if target is not result:
        result[...] = target
    return result

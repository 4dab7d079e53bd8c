"""Pooling layers and their functional forms, as torch.nn's: MaxPool2d, AvgPool2d,
AdaptiveAvgPool2d, AdaptiveMaxPool2d (max_pool2d, avg_pool2d, adaptive_avg_pool2d,
adaptive_max_pool2d), on numpy arrays of float32 or float64, (N, C, H, W) or (C, H, W).

Every argument is checked here, in torch's order and words, and the output sizes computed by
torch's rules; the compiled kernel (cconv/_kernels/_pool.pyx) then runs over the N*C planes.
"""
import math
import operator

import numpy as np

from .. import _isa, _params, _threads
from .._kernels import _pool
from .module import Module, to_numpy

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "max_pool2d",
           "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]


# ---- argument checking ----------------------------------------------------------------------
def _ints(fn, name, value, allow_empty=False):
    """`value` (an int or a sequence of one or two) as a pair of ints; None for an empty
    sequence when allowed (stride: the kernel size)."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if allow_empty and not items:
        return None
    if len(items) not in (1, 2):
        omitted = " be omitted," if allow_empty else " be"
        raise ValueError(f"{fn}: {name} must either{omitted} a single int, or a tuple of two "
                         f"ints")
    pair = []
    for v in items:
        if isinstance(v, bool) or not _params._is_int(v):
            raise TypeError(f"{fn}(): argument '{name}' must be tuple of ints, not "
                            f"{type(v).__name__}")
        v = operator.index(v)
        if abs(v) > _params.SIZE_LIMIT:
            raise ValueError(f"{fn}(): {name}={value!r} is too large (at most "
                             f"{_params.SIZE_LIMIT})")
        pair.append(v)
    return (pair[0], pair[-1])


def _half(a):
    """a / 2 rounded toward zero, as C++ divides (torch's checks use it on signed sizes)."""
    return -(-a // 2) if a < 0 else a // 2


def _input(fn, input, expected="3D or 4D (batch mode) tensor with optional 0 dim batch size "
                               "for input, but got:"):
    """(input as a 4-D float array, whether it was unbatched); `expected`: torch's words when
    the input has another number of dimensions."""
    x = _params.as_float_array(fn, "input", to_numpy(input))
    if x.ndim not in (3, 4):
        raise ValueError(f"{fn}(): Expected {expected} {list(x.shape)}")
    return (x[None], True) if x.ndim == 3 else (x, False)


def _output_size(fn, size, kernel, pad, stride, dilation, ceil_mode):
    """torch's pooling_output_shape: the checks of one dimension, then its output size."""
    if stride == 0:
        raise ValueError(f"{fn}(): stride should not be zero")
    if pad < 0:
        raise ValueError(f"{fn}(): pad must be non-negative, but got pad: {pad}")
    if pad > _half((kernel - 1) * dilation + 1):
        raise ValueError(f"{fn}(): pad should be at most half of effective kernel size, but "
                         f"got pad={pad}, kernel_size={kernel} and dilation={dilation}")
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
           ) // stride + 1
    # The last window must start inside the input or its left padding.
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def _pool_shape(fn, shape, kernel, stride, padding, dilation, ceil_mode):
    """(H_out, W_out) of max/avg pooling an input of 4-D `shape`, checked as torch's
    pooling_output_shape and pool2d_shape_check, in their order."""
    (KH, KW), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    _, C, H, W = shape
    Ho = _output_size(fn, H, KH, ph, sh, dh, ceil_mode)
    Wo = _output_size(fn, W, KW, pw, sw, dw, ceil_mode)
    if KH <= 0 or KW <= 0:
        raise ValueError(f"{fn}(): kernel size should be greater than zero, but got kH: {KH} "
                         f"kW: {KW}")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"{fn}(): stride should be greater than zero, but got dH: {sh} "
                         f"dW: {sw}")
    if dh <= 0 or dw <= 0:
        raise ValueError(f"{fn}(): dilation should be greater than zero, but got dilationH: "
                         f"{dh} dilationW: {dw}")
    if not (C and H and W):
        raise ValueError(f"{fn}(): Expected 3D or 4D (batch mode) tensor with optional 0 dim "
                         f"batch size for input, but got: {list(shape)}")
    if ph > _half(KH) or pw > _half(KW):
        raise ValueError(f"{fn}(): pad should be smaller than or equal to half of kernel "
                         f"size, but got padW = {pw}, padH = {ph}, kW = {KW}, kH = {KH}")
    if Ho < 1 or Wo < 1:
        raise ValueError(f"{fn}(): Given input size: ({C}x{H}x{W}). Calculated output size: "
                         f"({C}x{Ho}x{Wo}). Output size is too small")
    return Ho, Wo


def _adaptive_size(fn, output_size, shape):
    """(H_out, W_out) from output_size: an int, or a pair whose None entries keep the input's
    size."""
    items = list(output_size) if isinstance(output_size, (list, tuple)) else [output_size] * 2
    if len(items) != 2:
        raise ValueError(f"{fn}: output_size must be 2")
    sizes = []
    for v, size in zip(items, shape[2:]):
        if v is None:
            sizes.append(size)
        elif isinstance(v, bool) or not _params._is_int(v):
            raise TypeError(f"{fn}(): argument 'output_size' must be tuple of ints, not "
                            f"{type(v).__name__}")
        else:
            sizes.append(operator.index(v))
    if min(sizes) < 0:
        raise ValueError(f"{fn}: elements of output_size must be greater than or equal to 0 "
                         f"but received {{{sizes[0]}, {sizes[1]}}}")
    # The kernel forms i*H for each output row i < H_out (start_index), likewise columns.
    if max(o * i for o, i in zip(sizes, shape[2:])) > _params.SIZE_LIMIT:
        raise ValueError(f"{fn}(): output_size={output_size!r} is too large for an input of "
                         f"{shape[2]}x{shape[3]} (output size times input size at most "
                         f"{_params.SIZE_LIMIT})")
    return tuple(sizes)


def _check_adaptive_input(fn, shape, unbatched, every_dim):
    """torch's check: the spatial dimensions (max pooling: every non-batch one) non-empty.
    (torch's adaptive_avg_pool2d to (1, 1) skips it and returns NaN, the mean of nothing;
    cconv refuses that input whatever the output size.)"""
    dims = range(1, 4) if every_dim else range(2, 4)
    for d in dims:
        if shape[d] == 0:
            sizes = list(shape[1:]) if unbatched else list(shape)
            raise ValueError(f"{fn}(): Expected input to have non-zero size for non-batch "
                             f"dimensions, but input has sizes {sizes} with dimension "
                             f"{d - unbatched} being empty")


# ---- running the kernel -----------------------------------------------------------------
def _run(mode, x, out_hw, unbatched, window=(1, 1), stride=(1, 1), padding=(0, 0),
         dilation=(1, 1), count_include_pad=True, divisor=0, return_indices=False,
         reads=1):
    """The pooling `mode` of x (4-D), output planes of out_hw; `reads`: input elements each
    output element reads, for the thread count. Returns the output (and the indices)."""
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    _params.check_sizes("pool2d", (N, C, Ho, Wo), itemsize=x.dtype.itemsize)
    dtype = np.dtype(x.dtype.name)
    out = np.empty((N * C, Ho, Wo), dtype)
    indices = np.empty((N * C, Ho, Wo) if return_indices else (0, 0, 0), np.int64)
    planes = N * C
    if planes and Ho and Wo:
        xc = _params.contiguous(x, dtype).reshape(planes, H, W)
        # Each element read counts as one operation against the convolutions' threshold
        # (_threads.MIN_FLOPS_PARALLEL); no threshold of pooling's own has been measured.
        nthreads = _threads.threads_for(planes, planes * Ho * Wo * reads,
                                        _threads.get_num_threads())
        _pool.pool2d(mode, xc, out, indices, return_indices, window[0], window[1], stride[0],
                     stride[1], padding[0], padding[1], dilation[0], dilation[1],
                     count_include_pad, divisor, _isa.current(), nthreads)
    shape = (C, Ho, Wo) if unbatched else (N, C, Ho, Wo)
    out = out.reshape(shape)
    if return_indices:
        return out, indices.reshape(shape)
    return out


# ---- functional forms -------------------------------------------------------------------
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling (torch.nn.functional.max_pool2d): each output element is the largest
    input element of its (dilated) window; padding never wins, NaN does. With return_indices,
    also each maximum's flat index h*W + w in its plane (int64)."""
    fn = "max_pool2d"
    kernel = _ints(fn, "kernel_size", kernel_size)
    stride = kernel if stride is None else (_ints(fn, "stride", stride, True) or kernel)
    padding = _ints(fn, "padding", padding)
    dilation = _ints(fn, "dilation", dilation)
    x, unbatched = _input(fn, input)
    out_hw = _pool_shape(fn, x.shape, kernel, stride, padding, dilation, bool(ceil_mode))
    return _run(_pool.MODE_MAX, x, out_hw, unbatched, kernel, stride, padding, dilation,
                return_indices=bool(return_indices), reads=kernel[0] * kernel[1])


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling (torch.nn.functional.avg_pool2d): the sum of each window's input
    elements divided by divisor_override, else by the window's size (clipped to the padded
    input with count_include_pad, to the input without)."""
    fn = "avg_pool2d"
    kernel = _ints(fn, "kernel_size", kernel_size)
    stride = kernel if stride is None else (_ints(fn, "stride", stride, True) or kernel)
    padding = _ints(fn, "padding", padding)
    divisor = 0
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not _params._is_int(divisor_override):
            raise TypeError(f"{fn}(): argument 'divisor_override' must be int, not "
                            f"{type(divisor_override).__name__}")
        divisor = operator.index(divisor_override)
        if divisor == 0:
            raise ValueError(f"{fn}(): divisor must be not zero")
        if abs(divisor) > _params.SIZE_LIMIT:
            raise ValueError(f"{fn}(): divisor_override={divisor} is too large (at most "
                             f"{_params.SIZE_LIMIT})")
    x, unbatched = _input(fn, input)
    out_hw = _pool_shape(fn, x.shape, kernel, stride, padding, (1, 1), bool(ceil_mode))
    return _run(_pool.MODE_AVG, x, out_hw, unbatched, kernel, stride, padding,
                count_include_pad=bool(count_include_pad), divisor=divisor,
                reads=kernel[0] * kernel[1])


def _reads(in_hw, out_hw):
    """About how many input elements an adaptive window reads (windows overlap by up to one
    row and column)."""
    return math.prod(-(-i // max(o, 1)) + 1 for i, o in zip(in_hw, out_hw))


def adaptive_avg_pool2d(input, output_size):
    """2-D adaptive average pooling (torch.nn.functional.adaptive_avg_pool2d): output row i
    averages input rows floor(i*H/H_out) .. ceil((i+1)*H/H_out) - 1, likewise columns."""
    fn = "adaptive_avg_pool2d"
    x, unbatched = _input(fn, input, "3D or 4D tensor, but got")
    out_hw = _adaptive_size(fn, output_size, x.shape)
    _check_adaptive_input(fn, x.shape, unbatched, every_dim=False)
    return _run(_pool.MODE_ADAPTIVE_AVG, x, out_hw, unbatched,
                reads=_reads(x.shape[2:], out_hw))


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """2-D adaptive max pooling (torch.nn.functional.adaptive_max_pool2d): the windows of
    adaptive_avg_pool2d, their largest element (NaN wins); with return_indices, also each
    maximum's flat index h*W + w in its plane (int64)."""
    fn = "adaptive_max_pool2d"
    x, unbatched = _input(fn, input, "3D or 4D tensor, but got:")
    out_hw = _adaptive_size(fn, output_size, x.shape)
    _check_adaptive_input(fn, x.shape, unbatched, every_dim=True)
    return _run(_pool.MODE_ADAPTIVE_MAX, x, out_hw, unbatched,
                return_indices=bool(return_indices), reads=_reads(x.shape[2:], out_hw))


# ---- layers -----------------------------------------------------------------------------
class MaxPool2d(Module):
    """2-D max pooling (torch.nn.MaxPool2d); stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, "
                f"ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """2-D average pooling (torch.nn.AvgPool2d); stride defaults to kernel_size."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input):
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """2-D adaptive average pooling (torch.nn.AdaptiveAvgPool2d) to output_size: an int or a
    pair, None keeping that dimension's size."""

    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def forward(self, input):
        return adaptive_avg_pool2d(input, self.output_size)

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """2-D adaptive max pooling (torch.nn.AdaptiveMaxPool2d) to output_size: an int or a
    pair, None keeping that dimension's size."""

    def __init__(self, output_size, return_indices=False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input):
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)

    def extra_repr(self):
        return f"output_size={self.output_size}"

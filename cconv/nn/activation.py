"""Activations as torch.nn's (ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, SiLU, Hardswish,
Hardsigmoid, GELU, Softmax) and their functional forms under torch.nn.functional's names, on
numpy arrays of float32 or float64 of any shape.

The element-wise ones validate here and run compiled (cconv._kernels._elementwise) over the
array's data as one flat vector. With inplace=True the result is written into the input when
it can hold it (a writeable, C-contiguous, aligned ndarray of float32 or float64 in native
byte order) and the input is returned; any other input gets a new array, as with
inplace=False. Softmax runs compiled too (cconv._kernels._softmax), the maximum along `dim`
subtracted before exp.
"""
import math
import numbers
import operator
import warnings

import numpy as np

from .. import _isa, _params, _threads
from .._kernels import _elementwise
from .._kernels import _softmax as _softmax_kernel
from .module import Module

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "SiLU", "Hardswish",
           "Hardsigmoid", "GELU", "Softmax", "relu", "relu6", "leaky_relu", "sigmoid", "tanh",
           "silu", "hardswish", "hardsigmoid", "gelu", "softmax"]

_OPS = _elementwise.OPS
# Rough floating-point operations per element, what _threads.threads_for weighs: an exp,
# tanh or erf (a vector polynomial) counts as about twenty.
_FLOPS = {"relu": 1, "relu6": 2, "leaky_relu": 2, "hardswish": 4, "hardsigmoid": 3,
          "sigmoid": 20, "tanh": 20, "silu": 22, "gelu": 24, "gelu_tanh": 28, "softmax": 24}
_GELU_APPROXIMATIONS = ("none", "tanh")


def _writes_in_place(x):
    flags = x.flags
    return (flags.writeable and flags.c_contiguous and flags.aligned
            and x.dtype.isnative)


def _elementwise_op(fn, op, input, inplace=False, p0=0.0, p1=0.0):
    """op (an entry of _elementwise.OPS) applied to each element of input, in place if
    inplace and the input can hold the result."""
    x = _params.as_float_array(fn, "input", input)
    if inplace and x is input and _writes_in_place(x):
        out = x
    else:
        x = _params.contiguous(x, x.dtype.newbyteorder("="))
        out = np.empty(x.shape, x.dtype)
    n = x.size
    chunks = -(-n // _elementwise.CHUNK_ELEMENTS)
    nthreads = _threads.threads_for(chunks, n * _FLOPS[op], _threads.get_num_threads())
    _elementwise.apply(_OPS[op], x.reshape(-1), out.reshape(-1), p0, p1, _isa.current(),
                       nthreads)
    return out


def relu(input, inplace=False):
    """max(input, 0) element-wise (torch.nn.functional.relu): NaN stays NaN."""
    return _elementwise_op("relu", "relu", input, inplace)


def relu6(input, inplace=False):
    """min(max(input, 0), 6) element-wise (torch.nn.functional.relu6)."""
    return _elementwise_op("relu6", "relu6", input, inplace)


def _slope(fn, negative_slope):
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, numbers.Real):
        raise TypeError(f"{fn}(): negative_slope must be a number, got "
                        f"{type(negative_slope).__name__} {negative_slope!r}")
    return float(negative_slope)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """input where positive, else input * negative_slope (torch.nn.functional.leaky_relu)."""
    slope = _slope("leaky_relu", negative_slope)
    return _elementwise_op("leaky_relu", "leaky_relu", input, inplace, slope)


def sigmoid(input):
    """1 / (1 + exp(-input)) element-wise (torch.sigmoid), without overflow for large |x|."""
    return _elementwise_op("sigmoid", "sigmoid", input)


def tanh(input):
    """tanh element-wise (torch.tanh)."""
    return _elementwise_op("tanh", "tanh", input)


def silu(input, inplace=False):
    """input * sigmoid(input) element-wise (torch.nn.functional.silu)."""
    return _elementwise_op("silu", "silu", input, inplace)


def hardswish(input, inplace=False):
    """input * relu6(input + 3) / 6 element-wise (torch.nn.functional.hardswish)."""
    return _elementwise_op("hardswish", "hardswish", input, inplace)


def hardsigmoid(input, inplace=False):
    """relu6(input + 3) / 6 element-wise (torch.nn.functional.hardsigmoid)."""
    return _elementwise_op("hardsigmoid", "hardsigmoid", input, inplace)


def _approximate(fn, approximate):
    if not isinstance(approximate, str) or approximate not in _GELU_APPROXIMATIONS:
        raise ValueError(f"{fn}(): approximate argument must be either none or tanh, got "
                         f"{approximate!r}")
    return approximate


def gelu(input, approximate="none"):
    """input * Phi(input) element-wise (torch.nn.functional.gelu): with approximate='none'
    the exact erf form, with 'tanh' torch's tanh approximation."""
    op = "gelu" if _approximate("gelu", approximate) == "none" else "gelu_tanh"
    return _elementwise_op("gelu", op, input)


def _softmax_dim(ndim, stacklevel):
    """torch's implicit dim (deprecated, with its warning): 0 for 0, 1 or 3 dims, else 1."""
    warnings.warn("Implicit dimension choice for softmax has been deprecated. Change the call "
                  "to include dim=X as an argument.", UserWarning, stacklevel=stacklevel + 1)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax(input, dim, dtype, stacklevel):
    fn = "softmax"
    x = _params.as_float_array(fn, "input", input)
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{fn}(): dtype must be float32, float64 or None, got "
                            f"{dtype!r}")
        x = x.astype(dtype)
    if dim is None:
        dim = _softmax_dim(x.ndim, stacklevel + 1)
    if isinstance(dim, bool):
        raise TypeError(f"{fn}(): argument 'dim' must be int, not bool")
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"{fn}(): argument 'dim' must be int, not "
                        f"{type(dim).__name__}") from None
    # As torch, a 0-dim array has one dimension here.
    ndim = max(x.ndim, 1)
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {dim})")
    dim %= ndim
    x = _params.contiguous(x, x.dtype.newbyteorder("="))
    out = np.empty(x.shape, x.dtype)
    shape = x.shape or (1,)
    outer, inner = math.prod(shape[:dim]), math.prod(shape[dim + 1:])
    n = x.size
    nthreads = _threads.threads_for(outer * inner, n * _FLOPS["softmax"],
                                    _threads.get_num_threads())
    _softmax_kernel.softmax(x.reshape(-1), out.reshape(-1), outer, shape[dim], inner, nthreads)
    return out


def softmax(input, dim=None, dtype=None):
    """exp(input) / sum(exp(input)) along dim (torch.nn.functional.softmax), computed in
    `dtype` (float32 or float64) when given. dim=None picks torch's deprecated implicit
    dimension, with its warning."""
    return _softmax(input, dim, dtype, 2)


class _InplaceActivation(Module):
    """An activation with torch's `inplace` flag; its repr shows it when set."""
    _fn = None

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def forward(self, input):
        return type(self)._fn(input, inplace=self.inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """relu as a layer (torch.nn.ReLU)."""
    _fn = staticmethod(relu)

    def __init__(self, inplace=False):
        super().__init__(inplace)


class ReLU6(_InplaceActivation):
    """relu6 as a layer (torch.nn.ReLU6, a Hardtanh from 0 to 6)."""
    _fn = staticmethod(relu6)

    def __init__(self, inplace=False):
        super().__init__(inplace)
        self.min_val = 0.0
        self.max_val = 6.0


class LeakyReLU(Module):
    """leaky_relu as a layer (torch.nn.LeakyReLU)."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        _slope("LeakyReLU", negative_slope)
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input):
        return leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        inplace = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace}"


class Sigmoid(Module):
    """sigmoid as a layer (torch.nn.Sigmoid)."""

    def forward(self, input):
        return sigmoid(input)


class Tanh(Module):
    """tanh as a layer (torch.nn.Tanh)."""

    def forward(self, input):
        return tanh(input)


class SiLU(_InplaceActivation):
    """silu as a layer (torch.nn.SiLU)."""
    _fn = staticmethod(silu)

    def __init__(self, inplace=False):
        super().__init__(inplace)


class Hardswish(_InplaceActivation):
    """hardswish as a layer (torch.nn.Hardswish; its repr never shows `inplace`, as
    torch's)."""
    _fn = staticmethod(hardswish)

    def __init__(self, inplace=False):
        super().__init__(inplace)

    def extra_repr(self):
        return ""


class Hardsigmoid(_InplaceActivation):
    """hardsigmoid as a layer (torch.nn.Hardsigmoid; its repr never shows `inplace`, as
    torch's)."""
    _fn = staticmethod(hardsigmoid)

    def __init__(self, inplace=False):
        super().__init__(inplace)

    def extra_repr(self):
        return ""


class GELU(Module):
    """gelu as a layer (torch.nn.GELU); approximate is checked here, not at the first call."""

    def __init__(self, approximate="none"):
        super().__init__()
        self.approximate = _approximate("GELU", approximate)

    def forward(self, input):
        return gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """softmax along `dim` as a layer (torch.nn.Softmax); dim=None picks torch's deprecated
    implicit dimension at each call, with its warning."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        # The warning points at the caller of the module, past Module.__call__.
        return _softmax(input, self.dim, None, 3)

    def extra_repr(self):
        return f"dim={self.dim}"

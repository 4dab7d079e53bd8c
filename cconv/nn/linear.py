"""Linear and linear, as torch's: y = x @ weight.T + bias on (..., in_features).

On cconv's own GEMM, as a 1x1 convolution of the rows (1, in_features, rows, 1): its threads
are cconv's (set_num_threads), where numpy's BLAS started threads of its own that kept
spinning on the other cores after the product and slowed every convolution after it
(decisions: Linear on cconv's GEMM).
"""
import math

import numpy as np

from .. import _module_params, _params
from ..functional import conv2d
from ..modules import Conv2d
from .module import Module

__all__ = ["Linear", "linear"]


def _check_input(x, in_features, weight):
    """x (..., in_features) fits in_features, errors worded as torch's for weight."""
    if x.ndim == 0:
        raise ValueError("linear: expected input with at least 1 dim (..., in_features), got "
                         "a 0-dim array")
    if x.shape[-1] != in_features:
        rows = math.prod(x.shape[:-1])
        raise ValueError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x.shape[-1]} "
                         f"and {weight.shape[1]}x{weight.shape[0]})")


def linear(input, weight, bias=None):
    """torch.nn.functional.linear on numpy arrays: input (..., in_features), weight
    (out_features, in_features), bias (out_features,) or None; one dtype for all."""
    fn = "linear"
    x = _params.as_float_array(fn, "input", input)
    w = _params.as_float_array(fn, "weight", weight)
    b = None if bias is None else _params.as_float_array(fn, "bias", bias)
    dtype = _params.check_same_dtype(fn, x, w, b)
    if w.ndim != 2:
        raise ValueError(f"linear: expected weight with 2 dims (out_features, in_features), "
                         f"got shape {w.shape}")
    _check_input(x, w.shape[1], w)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({w.shape[0]},), got shape "
                         f"{b.shape}")
    return _rows_through(x.astype(dtype, copy=False), b, w.shape[0],
                         lambda image: conv2d(image, w.reshape(*w.shape, 1, 1), b))


def _rows_through(x, bias, out_features, conv):
    """x (..., in_features) as the image (1, in_features, rows, 1), through conv (a 1x1
    convolution to out_features channels), back as (..., out_features)."""
    rows = math.prod(x.shape[:-1])
    if rows == 0 or x.shape[-1] == 0 or out_features == 0:
        # Nothing to sum: torch gives the bias (or zeros).
        out = np.zeros((*x.shape[:-1], out_features), x.dtype)
        return out if bias is None else out + bias
    image = np.ascontiguousarray(x.reshape(rows, x.shape[-1]).T)[None, :, :, None]
    y = conv(image)[0, :, :, 0]
    return np.ascontiguousarray(y.T).reshape(*x.shape[:-1], out_features)


class Linear(Module):
    """torch.nn.Linear: parameters weight (out_features, in_features) and bias
    (out_features,), under torch's names.

    Linear(in_features, out_features, bias=True, dtype=numpy.float32, *, rng=None)

    rng: a seed or numpy Generator for the initial weights (torch's init: weight and bias
    uniform in +-1/sqrt(in_features)). A floating input of another dtype is cast to the
    module's.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, *, rng=None):
        super().__init__()
        fn = type(self).__name__
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{fn}: {name} must be a non-negative int, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.dtype = _module_params.module_dtype(fn, dtype)
        has_bias = _module_params.bias_flag(fn, bias)
        self.register_parameter("weight", np.zeros((self.out_features, self.in_features),
                                                   self.dtype))
        self.register_parameter("bias", np.zeros(self.out_features, self.dtype)
                                if has_bias else None)
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        """torch's initialisation: weight and bias uniform in +-1/sqrt(in_features) (its
        kaiming_uniform_ with a=sqrt(5) gives this bound). rng: a seed or numpy Generator."""
        rng = _module_params.as_rng(type(self).__name__, rng)
        bound = 1.0 / np.sqrt(self.in_features) if self.in_features else 0.0
        self.weight = rng.uniform(-bound, bound, self.weight.shape).astype(self.dtype)
        if self.bias is not None:
            self.bias = rng.uniform(-bound, bound, self.bias.shape).astype(self.dtype)

    def _conv(self):
        """The 1x1 Conv2d that computes this layer (its weights packed once), rebuilt when
        weight or bias is replaced (they are read-only: replaced, never changed in place)."""
        mirror = self.__dict__.get("_mirror")
        if mirror is None or mirror[0] is not self.weight or mirror[1] is not self.bias:
            conv = Conv2d(self.in_features, self.out_features, 1, bias=self.bias is not None,
                          dtype=self.dtype)
            conv.weight = self.weight.reshape(self.out_features, self.in_features, 1, 1)
            if self.bias is not None:
                conv.bias = self.bias
            mirror = (self.weight, self.bias, conv)
            object.__setattr__(self, "_mirror", mirror)
        return mirror[2]

    def forward(self, input):
        fn = type(self).__name__
        x = _module_params.floating_array(fn, "input", input)
        _check_input(x, self.in_features, self.weight)
        return _rows_through(x.astype(self.dtype, copy=False), self.bias, self.out_features,
                             lambda image: self._conv()(image))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

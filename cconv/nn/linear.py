"""Linear and linear, as torch's: y = x @ weight.T + bias on (..., in_features).

In numpy, not compiled: a linear layer is one matrix product, which numpy hands to its BLAS
(already multithreaded and tiled for the machine); a cconv kernel would add nothing.
"""
import math

import numpy as np

from .. import _module_params, _params
from .module import Module

__all__ = ["Linear", "linear"]


def _mat_shapes(x, weight):
    rows = math.prod(x.shape[:-1])
    return (f"mat1 and mat2 shapes cannot be multiplied ({rows}x{x.shape[-1]} and "
            f"{weight.shape[1]}x{weight.shape[0]})")


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
    if x.ndim == 0:
        raise ValueError("linear: expected input with at least 1 dim (..., in_features), got "
                         "a 0-dim array")
    if x.shape[-1] != w.shape[1]:
        raise ValueError(_mat_shapes(x, w))
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: expected bias of shape ({w.shape[0]},), got shape "
                         f"{b.shape}")
    # C-ordered and native, so BLAS takes the same path (and gives the same bits) for any
    # layout of the input.
    out = np.matmul(np.ascontiguousarray(x, dtype=dtype), w.T)
    if b is not None:
        out += b
    return out.astype(dtype, copy=False)


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

    def forward(self, input):
        x = _module_params.floating_array(type(self).__name__, "input", input)
        return linear(x.astype(self.dtype, copy=False), self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")

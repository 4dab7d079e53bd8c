"""The fused epilogue: what a convolution does to each output element as it writes it, in
PyTorch's unfused order,

    y = conv(x, w) + bias
    y = y * scale[c] + shift[c]        (per output channel c; either may be absent)
    y = y + residual                   (a per-call array of the output's shape and dtype)
    y = activation(y)

in one pass over the output and no memory beyond it: the kernels apply it to each output row
while it is still in cache (cconv/_kernels/epilogue.h), with the vector code cconv.nn's
activations run, so `conv2d(x, w, b, epilogue=E, residual=r)` equals
`act(conv2d(x, w, b) * scale + shift + r)` computed by cconv step by step, to the bit. The
arguments are checked here; the kernels take Epilogue.kernel_args().
"""
import numbers

import numpy as np

from ._kernels import _elementwise

__all__ = ["Epilogue", "ACTIVATIONS", "kernel_args", "check_residual"]

# Activation names, as torch.nn.functional's (clamp is hardtanh; gelu_tanh is
# gelu(approximate='tanh')).
ACTIVATIONS = ("relu", "relu6", "clamp", "leaky_relu", "sigmoid", "silu", "hardswish",
               "hardsigmoid", "gelu", "gelu_tanh", "tanh")


def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"Epilogue: {name} must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    return float(value)


def _channels(name, value):
    """scale or shift as a read-only 1-D float64 array, or None."""
    if value is None:
        return None
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"Epilogue: {name} must be None or a 1-D array of numbers (one per "
                        f"output channel), got {type(value).__name__}") from None
    if np.asarray(value).dtype.kind not in "iuf" or arr.ndim != 1:
        raise ValueError(f"Epilogue: {name} must be a 1-D array of real numbers (one per "
                         f"output channel), got shape {arr.shape} of "
                         f"{np.asarray(value).dtype}")
    arr.flags.writeable = False
    return arr


class Epilogue:
    """What a convolution applies to its output as it writes it (conv2d's and
    conv_transpose2d's `epilogue=`, Conv2d's and ConvTranspose2d's `.epilogue`):

        Epilogue(scale=None, shift=None, activation=None, *, min=None, max=None,
                 negative_slope=None)

    scale, shift: one number per output channel (array-like), or None: y * scale + shift,
    each rounded as PyTorch rounds them (a folded batch norm, a per-channel affine).
    activation: None or one of ACTIVATIONS: 'relu', 'relu6', 'clamp' (hardtanh: min and max,
    default -1 and 1), 'leaky_relu' (negative_slope, default 0.01), 'sigmoid', 'silu',
    'hardswish', 'hardsigmoid', 'gelu' (erf), 'gelu_tanh' (gelu(approximate='tanh')),
    'tanh', with torch.nn.functional's semantics (NaN, -0, saturation). A residual, added
    before the activation, is an argument of each call (`residual=`). Immutable.
    """
    __slots__ = ("scale", "shift", "activation", "min", "max", "negative_slope", "_args")

    def __init__(self, scale=None, shift=None, activation=None, *, min=None, max=None,
                 negative_slope=None):
        if activation is not None and not isinstance(activation, str):
            raise TypeError(f"Epilogue: activation must be None or a str, got "
                            f"{type(activation).__name__} {activation!r}")
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"Epilogue: unknown activation {activation!r}, expected None or "
                             f"one of {ACTIVATIONS}")
        if activation != "clamp" and (min is not None or max is not None):
            raise ValueError(f"Epilogue: min and max apply to activation='clamp', not "
                             f"{activation!r}")
        if activation != "leaky_relu" and negative_slope is not None:
            raise ValueError(f"Epilogue: negative_slope applies to activation='leaky_relu', "
                             f"not {activation!r}")
        set_ = object.__setattr__
        set_(self, "scale", _channels("scale", scale))
        set_(self, "shift", _channels("shift", shift))
        set_(self, "activation", activation)
        set_(self, "min", None)
        set_(self, "max", None)
        set_(self, "negative_slope", None)
        if activation == "clamp":
            lo = -1.0 if min is None else _number("min", min)
            hi = 1.0 if max is None else _number("max", max)
            if not lo <= hi:
                raise ValueError(f"Epilogue: clamp needs min <= max, got min={lo}, max={hi}")
            set_(self, "min", lo)
            set_(self, "max", hi)
        if activation == "leaky_relu":
            set_(self, "negative_slope", 0.01 if negative_slope is None
                 else _number("negative_slope", negative_slope))
        set_(self, "_args", {})

    def __setattr__(self, name, value):
        raise AttributeError(f"Epilogue is immutable: build a new one to change {name}")

    def __reduce__(self):
        return (_rebuild, (self.scale, self.shift, self.activation, self.min, self.max,
                           self.negative_slope))

    def __eq__(self, other):
        if not isinstance(other, Epilogue):
            return NotImplemented
        return (self.activation, self.min, self.max, self.negative_slope) == (
            other.activation, other.min, other.max, other.negative_slope) and all(
            (a is None and b is None) or (a is not None and b is not None
                                          and np.array_equal(a, b))
            for a, b in ((self.scale, other.scale), (self.shift, other.shift)))

    __hash__ = None

    def __repr__(self):
        parts = []
        for name in ("scale", "shift"):
            arr = getattr(self, name)
            if arr is not None:
                parts.append(f"{name}=[{len(arr)} channels]")
        if self.activation is not None:
            parts.append(f"activation={self.activation!r}")
        if self.activation == "clamp":
            parts.append(f"min={self.min}, max={self.max}")
        if self.activation == "leaky_relu":
            parts.append(f"negative_slope={self.negative_slope}")
        return f"Epilogue({', '.join(parts)})"

    def check(self, fn, C_out):
        """scale and shift have one entry per output channel (C_out)."""
        for name in ("scale", "shift"):
            arr = getattr(self, name)
            if arr is not None and len(arr) != C_out:
                raise ValueError(f"{fn}(): epilogue {name} has {len(arr)} entries, expected "
                                 f"one per output channel ({C_out})")

    def _kernel_args(self, dtype):
        """(scale, shift, act, p0, p1) in dtype, converted once per dtype."""
        args = self._args.get(dtype)
        if args is None:
            act = self.activation
            p0, p1 = 0.0, 0.0
            if act == "clamp":
                p0, p1 = self.min, self.max
            elif act == "leaky_relu":
                p0 = self.negative_slope
            args = tuple(None if a is None else np.ascontiguousarray(a, dtype=dtype)
                         for a in (self.scale, self.shift)) + (
                0 if act is None else _elementwise.OPS[act], p0, p1)
            self._args[dtype] = args
        return args

    @property
    def identity(self):
        """Whether it leaves every element as it is."""
        return self.scale is None and self.shift is None and self.activation is None


def _rebuild(scale, shift, activation, min, max, negative_slope):
    return Epilogue(scale, shift, activation, min=min, max=max, negative_slope=negative_slope)


def check_epilogue(fn, epilogue, C_out):
    """epilogue: None or an Epilogue whose per-channel arrays fit C_out."""
    if epilogue is None:
        return None
    if not isinstance(epilogue, Epilogue):
        raise TypeError(f"{fn}(): epilogue must be None or a cconv.Epilogue, got "
                        f"{type(epilogue).__name__}")
    epilogue.check(fn, C_out)
    return epilogue


def check_residual(fn, residual, shape, dtype, out=None):
    """residual as a C-contiguous native array of the output's shape and dtype, or None.
    One that shares memory with out (out=, residual=out: an in-place residual add) is
    copied first, as the kernels read it while they write out."""
    if residual is None:
        return None
    if not isinstance(residual, np.ndarray):
        raise TypeError(f"{fn}(): residual must be a numpy.ndarray, got "
                        f"{type(residual).__name__}")
    if tuple(residual.shape) != tuple(shape):
        raise ValueError(f"{fn}(): residual has shape {tuple(residual.shape)}, expected the "
                         f"output's {tuple(shape)}")
    dtype = np.dtype(dtype)
    if residual.dtype.newbyteorder("=") != dtype.newbyteorder("="):
        raise TypeError(f"{fn}(): residual has dtype {residual.dtype}, expected the output's "
                        f"{np.dtype(dtype)}")
    if out is not None and np.may_share_memory(residual, out):
        return np.array(residual, dtype=np.dtype(dtype).newbyteorder("="), order="C")
    if not (residual.flags.c_contiguous and residual.dtype.isnative):
        return np.ascontiguousarray(residual, dtype=np.dtype(dtype).newbyteorder("="))
    return residual


def kernel_args(epilogue, residual, dtype):
    """What a kernel's run() takes (_kernels/_epilogue.pxd): (scale, shift, residual, act,
    p0, p1) in dtype, or None when there is nothing to do."""
    if residual is None and (epilogue is None or epilogue.identity):
        return None
    if epilogue is None:
        return (None, None, residual, 0, 0.0, 0.0)
    scale, shift, act, p0, p1 = epilogue._kernel_args(np.dtype(dtype))
    return (scale, shift, residual, act, p0, p1)

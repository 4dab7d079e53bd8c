"""The modules' own arguments (Conv2d, ConvTranspose2d): constructor arguments, weights, the
input, the padding modes' limits and output_size. Checked here in PyTorch's words, as
_params.py checks a call's.
"""
import numpy as np

from . import _params

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def module_channels(fn, in_channels, out_channels, groups):
    """(in_channels, out_channels, groups) of a module: positive ints, the channel counts
    divisible by groups."""
    C = _params.positive_int(fn, "in_channels", in_channels)
    M = _params.positive_int(fn, "out_channels", out_channels)
    g = _params.positive_int(fn, "groups", groups)
    if C % g:
        raise ValueError(f"{fn}: in_channels must be divisible by groups, got "
                         f"in_channels={in_channels}, groups={groups}")
    if M % g:
        raise ValueError(f"{fn}: out_channels must be divisible by groups, got "
                         f"out_channels={out_channels}, groups={groups}")
    return C, M, g


def transposed_module_arguments(fn, padding_mode, padding):
    """ConvTranspose2d takes only zero padding, given as numbers (as PyTorch)."""
    if padding_mode != "zeros":
        raise ValueError(f'Only "zeros" padding mode is supported for ConvTranspose2d, '
                         f"got padding_mode={padding_mode!r}")
    if isinstance(padding, str):
        raise TypeError(f"{fn}: padding must be an int or a pair of ints, got {padding!r}")


def module_padding_mode(fn, mode):
    if mode not in PADDING_MODES:
        raise ValueError(f"{fn}: padding_mode must be one of {PADDING_MODES}, but got "
                         f"padding_mode={mode!r}")
    return mode


def module_dtype(fn, dtype):
    """A module's dtype: float32 (None, the default, as torch's default dtype) or float64."""
    given = dtype
    try:
        dtype = np.dtype(np.float32 if dtype is None else dtype)
    except TypeError:
        dtype = None
    # (A dtype compares equal to None, as np.dtype(None) is float64: test `is None`.)
    if dtype is None or dtype not in _params.DTYPES:
        raise TypeError(f"{fn}: dtype must be float32 or float64, got dtype={given!r}")
    return dtype


def bias_flag(fn, bias):
    if not isinstance(bias, (bool, int, np.bool_)):
        raise TypeError(f"{fn}: bias must be True or False, got {type(bias).__name__}")
    return bool(bias)


def check_weight_elements(fn, shape, kernel_size):
    """A module's weight must be an array this platform can hold."""
    count = 1
    for size in shape:
        count *= size
    if count > _params.SIZE_LIMIT:
        raise ValueError(f"{fn}: a weight of shape {shape} is too large "
                         f"(kernel_size={kernel_size}); at most {_params.SIZE_LIMIT} elements")


def as_rng(fn, rng):
    """A numpy Generator from rng: None, a Generator, or a non-negative int seed."""
    if rng is None or isinstance(rng, np.random.Generator):
        return np.random.default_rng(rng)
    if isinstance(rng, bool) or not isinstance(rng, (int, np.integer)):
        raise TypeError(f"{fn}: rng must be None, an int seed or a numpy Generator, got "
                        f"{type(rng).__name__} {rng!r}")
    if rng < 0:
        raise ValueError(f"{fn}: rng must be a non-negative seed, got rng={rng}")
    return np.random.default_rng(rng)


def module_array(fn, name, value, shape, dtype):
    """A new weight or bias `value`: a C-contiguous copy in dtype, of exactly `shape`."""
    arr = _params.as_float_array(f"{fn}.{name}", name, value)
    if tuple(arr.shape) != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {tuple(arr.shape)}")
    return np.array(arr, dtype=dtype, order="C", copy=True)


def floating_array(fn, name, value):
    """`value` as an ndarray of any floating dtype (a module casts it to its own)."""
    arr = value if isinstance(value, np.ndarray) else _params.as_float_array(fn, name, value)
    if arr.dtype.kind != "f":
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype "
                        f"{arr.dtype}")
    return arr


def check_padding_mode_limits(fn, mode, pads, x_shape):
    """PyTorch's limits of the padding modes, on the unpadded input (4-D shape): 'reflect'
    needs padding smaller than the input, 'circular' at most its size; an input with no
    pixels is refused first, as conv2d refuses it."""
    _params.check_nonempty(fn, x_shape)
    pt, pb, pl, pr = pads
    H, W = x_shape[2], x_shape[3]
    for size, before, after, dim in ((H, pt, pb, 2), (W, pl, pr, 3)):
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(f"{fn}: padding_mode='reflect' needs padding smaller than "
                             f"the input, got padding ({before}, {after}) at dimension "
                             f"{dim} of input {list(x_shape)}")
        if mode == "circular" and max(before, after) > size:
            raise ValueError(f"{fn}: padding_mode='circular' needs padding at most the "
                             f"input size, got padding ({before}, {after}) at dimension "
                             f"{dim} of input {list(x_shape)}")


def output_padding_for(fn, output_size, ndim, spatial, stride, padding, dilation, kernel_size):
    """The output_padding that makes a ConvTranspose2d's output `output_size` (2 numbers, or
    the whole output shape), as torch picks it, for an input of `ndim` dims and `spatial`
    (H, W)."""
    if (isinstance(output_size, (str, bytes)) or not hasattr(output_size, "__len__")
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in output_size)):
        raise TypeError(f"{fn}: output_size must be a sequence of ints, got "
                        f"{output_size!r}")
    size = [int(v) for v in output_size]
    leading = ndim - 2
    if len(size) == leading + 2:
        size = size[leading:]
    if len(size) != 2:
        raise ValueError(f"{fn}: for {ndim}D input, output_size must have 2 or "
                         f"{leading + 2} elements (got {len(size)})")
    lo = [(spatial[d] - 1) * stride[d] - 2 * padding[d]
          + dilation[d] * (kernel_size[d] - 1) + 1 for d in range(2)]
    hi = [lo[d] + stride[d] - 1 for d in range(2)]
    if any(not lo[d] <= size[d] <= hi[d] for d in range(2)):
        raise ValueError(f"{fn}: requested an output size of {size}, but valid sizes "
                         f"range from {lo} to {hi} (for an input of {list(spatial)})")
    return (size[0] - lo[0], size[1] - lo[1])

"""Layers that move pixels without arithmetic on them, or with little: Upsample and interpolate
('nearest' and 'bilinear' on (N, C, H, W)), PixelShuffle, ChannelShuffle, as torch's.

In numpy, not compiled: each is a gather or a reshape-and-transpose copy (bilinear adds two
multiply-adds per output element), which numpy's indexing and copying already do at memory
speed.

Indices and weights follow torch's CPU kernels to the rounding: 'nearest' computes its source
index in float32 (torch's, whatever the input's dtype), 'bilinear' its source coordinate in the
input's dtype; both use 1 / scale_factor when a scale factor is given (torch's default
recompute_scale_factor=None), else input size / output size.
"""
import math
import numbers
import operator

import numpy as np

from .. import _params
from .module import Module

__all__ = ["Upsample", "PixelShuffle", "ChannelShuffle", "interpolate", "pixel_shuffle",
           "channel_shuffle"]

# torch's modes, named in its error for an unknown one; cconv computes the first two.
_MODES = ("nearest", "bilinear")
_TORCH_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "lanczos", "area",
                "nearest-exact")


def _nearest_index(in_size, out_size, scale):
    """Source index of each output index along one axis, as torch's nearest_idx."""
    out = np.arange(out_size)
    if out_size == in_size:
        return out
    if out_size == 2 * in_size:
        return out >> 1
    step = (np.float32(1.0 / scale) if scale is not None and scale > 0
            else np.float32(in_size) / np.float32(out_size))
    # float32 arithmetic, as torch's floorf(dst_index * scale).
    src = np.floor(out.astype(np.float32) * step).astype(np.int64)
    return np.minimum(src, in_size - 1)


def _linear_weights(in_size, out_size, scale, align_corners, dtype):
    """(index0, index1, weight0, weight1) along one axis, as torch's
    compute_source_index_and_lambda, in the input's dtype."""
    t = dtype.type
    out = np.arange(out_size)
    if out_size == in_size:
        return out, out, np.ones(out_size, dtype), np.zeros(out_size, dtype)
    if align_corners:
        ratio = t(in_size - 1) / t(out_size - 1) if out_size > 1 else t(0)
        src = ratio * out.astype(dtype)
    else:
        ratio = t(1.0 / scale) if scale is not None and scale > 0 else t(in_size) / t(out_size)
        # Rounded once, as the fused multiply-add torch's kernel is compiled to (on CPUs with
        # FMA): src is the coordinate whose fraction weighs the two neighbours, so one more
        # rounding moves the output by an ulp of src times their difference.
        src = (ratio.astype(np.float64) * (out + 0.5) - 0.5).astype(dtype)
        src = np.maximum(src, t(0))
    index0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    weight1 = np.clip(src - index0.astype(dtype), t(0), t(1))
    index1 = index0 + (index0 < in_size - 1)
    return index0, index1, t(1) - weight1, weight1


def _spatial(value, dim, in_spatial, what):
    """size or scale_factor as `dim` values, in torch's words when its length is wrong."""
    if not isinstance(value, (list, tuple)):
        return [value] * dim
    if len(value) != dim:
        if what == "size":
            raise ValueError(
                f"Input and output must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(in_spatial)} and output size of "
                f"{value}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
                f"output size in (o1, o2, ...,oK) format.")
        raise ValueError(
            f"Input and scale_factor must have the same number of spatial dimensions, but got "
            f"input with spatial dimensions of {list(in_spatial)} and scale_factor of shape "
            f"{tuple(value)}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
            f"scale_factor in (s1, s2, ...,sK) format.")
    return list(value)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """torch.nn.functional.interpolate on a numpy array (N, C, H, W) of float32 or float64,
    for mode 'nearest' and 'bilinear' (with or without align_corners); the others, and
    antialias=True, are refused."""
    fn = "interpolate"
    x = _params.as_float_array(fn, "input", input)
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError("align_corners option can only be set with the interpolating "
                             "modes: linear | bilinear | bicubic | trilinear")
    elif align_corners is None:
        align_corners = False
    dim = x.ndim - 2
    in_spatial = x.shape[2:]
    if size is not None and scale_factor is not None:
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        output_size = _spatial(size, dim, in_spatial, "size")
        scales = [None] * dim
    elif scale_factor is not None:
        scales = _spatial(scale_factor, dim, in_spatial, "scale_factor")
        if not all(isinstance(s, numbers.Real) for s in scales):
            raise TypeError(f"interpolate: scale_factor must be a number or a sequence of "
                            f"numbers, got {scale_factor!r}")
        scales = [float(s) for s in scales]
        if not all(math.isfinite(s) for s in scales):
            raise ValueError(f"interpolate: scale_factor must be finite, got {scale_factor!r}")
        output_size = None
    else:
        raise ValueError("either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError("recompute_scale_factor is not meaningful with an explicit size.")
    if recompute_scale_factor:
        output_size = [math.floor(float(n) * s) for n, s in zip(in_spatial, scales)]
        scales = [None] * dim
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and x.ndim == 4):
        raise ValueError("Anti-alias option is restricted to bilinear, bicubic, and lanczos "
                         "modes and requires a 4-D tensor as input")
    if x.ndim == 4 and mode in _MODES and antialias:
        raise NotImplementedError("interpolate: cconv does not implement antialias=True")
    if mode == "bilinear" and x.ndim != 4:
        raise NotImplementedError(f"Got {x.ndim}D input, but bilinear mode needs 4D input")
    if x.ndim != 4 or mode not in _MODES:
        if mode in _TORCH_MODES and x.ndim in (3, 4, 5):
            raise NotImplementedError(
                f"interpolate: cconv implements mode 'nearest' and 'bilinear' on 4-D input "
                f"(N, C, H, W), got mode={mode!r} on {x.ndim}-D input")
        raise NotImplementedError(
            f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {x.ndim}D) for the "
            f"modes: {' | '.join(_TORCH_MODES)} (got {mode})")
    if output_size is None:
        # torch's C++ truncates in_size * scale_factor (a double) to an integer.
        output_size = [int(n * s) for n, s in zip(in_spatial, scales)]
    else:
        output_size = [_int(fn, "size", n) for n in output_size]
    (h, w), (oh, ow) = in_spatial, output_size
    if min(h, w, oh, ow) <= 0:
        raise ValueError(f"Input and output sizes should be greater than 0, but got input "
                         f"(H: {h}, W: {w}) output (H: {oh}, W: {ow})")
    _params.check_sizes(fn, (*x.shape[:2], oh, ow), itemsize=x.itemsize)
    dtype = x.dtype.newbyteorder("=")
    if mode == "nearest":
        rows = _nearest_index(h, oh, scales[0])
        cols = _nearest_index(w, ow, scales[1])
        return x[:, :, rows[:, None], cols].astype(dtype, copy=False)
    r0, r1, a0, a1 = _linear_weights(h, oh, scales[0], align_corners, dtype)
    c0, c1, b0, b1 = _linear_weights(w, ow, scales[1], align_corners, dtype)
    # Along W first, then H, as torch's kernel nests the two.
    top, bottom = x[:, :, r0, :], x[:, :, r1, :]
    top = top[..., c0] * b0 + top[..., c1] * b1
    bottom = bottom[..., c0] * b0 + bottom[..., c1] * b1
    return (top * a0[:, None] + bottom * a1[:, None]).astype(dtype, copy=False)


def _int(fn, name, value):
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} "
                        f"{value!r}") from None


def _positive(fn, name, value, message):
    value = _int(fn, name, value)
    if value <= 0:
        raise ValueError(message.format(value))
    return value


def pixel_shuffle(input, upscale_factor):
    """torch.nn.functional.pixel_shuffle: (*, C * r * r, H, W) -> (*, C, H * r, W * r)."""
    fn = "pixel_shuffle"
    x = _params.as_float_array(fn, "input", input)
    r = _positive(fn, "upscale_factor", upscale_factor,
                  "pixel_shuffle expects a positive upscale_factor, but got {}")
    if x.ndim < 3:
        raise ValueError(f"pixel_shuffle expects input to have at least 3 dimensions, but got "
                         f"input with {x.ndim} dimension(s)")
    *batch, c, h, w = x.shape
    if c % (r * r):
        raise ValueError(f"pixel_shuffle expects its input's 'channel' dimension to be "
                         f"divisible by the square of upscale_factor, but input.size(-3)={c} "
                         f"is not divisible by {r * r}")
    nb = len(batch)
    y = x.reshape(*batch, c // (r * r), r, r, h, w)
    y = y.transpose(*range(nb), nb, nb + 3, nb + 1, nb + 4, nb + 2)
    y = np.ascontiguousarray(y, dtype=x.dtype.newbyteorder("="))
    return y.reshape(*batch, c // (r * r), h * r, w * r)


def channel_shuffle(input, groups):
    """torch.nn.functional.channel_shuffle: channels (axis 1) regrouped from (groups, C / groups)
    to (C / groups, groups)."""
    fn = "channel_shuffle"
    x = _params.as_float_array(fn, "input", input)
    g = _positive(fn, "groups", groups, "Number of groups to divide channels in must be "
                  "positive. Value of groups:{}")
    if x.ndim <= 2:
        raise ValueError(f"channel_shuffle expects input with > 2 dims, but got input with "
                         f"sizes {list(x.shape)}")
    n, c, *rest = x.shape
    if c % g:
        raise ValueError(f"Number of channels must be divisible by groups. Got {c} channels "
                         f"and {g} groups.")
    y = x.reshape(n, g, c // g, *rest).swapaxes(1, 2)
    return np.ascontiguousarray(y, dtype=x.dtype.newbyteorder("=")).reshape(x.shape)


class Upsample(Module):
    """torch.nn.Upsample: interpolate with the settings given here ('nearest' or 'bilinear').

    Upsample(size=None, scale_factor=None, mode='nearest', align_corners=None,
             recompute_scale_factor=None)
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        # As torch stores it (a zero scale_factor counts as none).
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                           recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"


class PixelShuffle(Module):
    """torch.nn.PixelShuffle: pixel_shuffle(input, upscale_factor)."""

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return pixel_shuffle(input, self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class ChannelShuffle(Module):
    """torch.nn.ChannelShuffle: channel_shuffle(input, groups)."""

    def __init__(self, groups):
        super().__init__()
        self.groups = groups

    def forward(self, input):
        return channel_shuffle(input, self.groups)

    def extra_repr(self):
        return f"groups={self.groups}"

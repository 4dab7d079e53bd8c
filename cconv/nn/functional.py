"""torch.nn.functional's inference subset under torch's names, on numpy arrays (float32 and
float64). Each operation lives with its layer (activation.py, pooling.py, normalization.py,
linear.py, resample.py); this module gathers their functional forms, as torch.nn.functional
does. The convolutions are cconv.conv2d and cconv.conv_transpose2d, re-exported here."""
from ..functional import conv2d, conv_transpose2d
from .activation import (
    gelu,
    hardsigmoid,
    hardswish,
    leaky_relu,
    relu,
    relu6,
    sigmoid,
    silu,
    softmax,
    tanh,
)
from .linear import linear
from .normalization import batch_norm
from .pooling import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d
from .resample import channel_shuffle, interpolate, pixel_shuffle

__all__ = ["conv2d", "conv_transpose2d", "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu",
           "hardswish", "hardsigmoid", "gelu", "softmax", "batch_norm", "linear", "interpolate",
           "pixel_shuffle", "channel_shuffle", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "adaptive_max_pool2d"]

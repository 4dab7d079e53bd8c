from ..functional import conv2d as conv2d
from ..functional import conv_transpose2d as conv_transpose2d
from .activation import gelu as gelu
from .activation import hardsigmoid as hardsigmoid
from .activation import hardswish as hardswish
from .activation import leaky_relu as leaky_relu
from .activation import relu as relu
from .activation import relu6 as relu6
from .activation import sigmoid as sigmoid
from .activation import silu as silu
from .activation import softmax as softmax
from .activation import tanh as tanh
from .linear import linear as linear
from .normalization import batch_norm as batch_norm
from .pooling import adaptive_avg_pool2d as adaptive_avg_pool2d
from .pooling import adaptive_max_pool2d as adaptive_max_pool2d
from .pooling import avg_pool2d as avg_pool2d
from .pooling import max_pool2d as max_pool2d
from .resample import channel_shuffle as channel_shuffle
from .resample import interpolate as interpolate
from .resample import pixel_shuffle as pixel_shuffle

__all__ = ["conv2d", "conv_transpose2d", "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu",
           "hardswish", "hardsigmoid", "gelu", "softmax", "batch_norm", "linear", "interpolate",
           "pixel_shuffle", "channel_shuffle", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "adaptive_max_pool2d"]

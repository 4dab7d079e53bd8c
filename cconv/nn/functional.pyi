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

__all__ = ["conv2d", "conv_transpose2d", "relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu",
           "hardswish", "hardsigmoid", "gelu", "softmax"]

from ..functional import conv2d as conv2d
from ..functional import conv_transpose2d as conv_transpose2d
from .pooling import adaptive_avg_pool2d as adaptive_avg_pool2d
from .pooling import adaptive_max_pool2d as adaptive_max_pool2d
from .pooling import avg_pool2d as avg_pool2d
from .pooling import max_pool2d as max_pool2d

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "adaptive_max_pool2d"]

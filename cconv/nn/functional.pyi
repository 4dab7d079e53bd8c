from ..functional import conv2d as conv2d
from ..functional import conv_transpose2d as conv_transpose2d

__all__ = ["conv2d", "conv_transpose2d"]

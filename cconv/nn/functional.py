"""torch.nn.functional's inference subset under torch's names, on numpy arrays (float32 and
float64). Each operation lives with its layer (activation.py, pooling.py, layers.py); this
module gathers their functional forms, as torch.nn.functional does. The convolutions are
cconv.conv2d and cconv.conv_transpose2d, re-exported here."""
from ..functional import conv2d, conv_transpose2d
from .pooling import adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
           "adaptive_max_pool2d"]

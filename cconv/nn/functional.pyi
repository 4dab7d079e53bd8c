from ..functional import conv2d as conv2d
from ..functional import conv_transpose2d as conv_transpose2d
from .linear import linear as linear
from .normalization import batch_norm as batch_norm
from .resample import channel_shuffle as channel_shuffle
from .resample import interpolate as interpolate
from .resample import pixel_shuffle as pixel_shuffle

__all__ = ["conv2d", "conv_transpose2d", "batch_norm", "linear", "interpolate",
           "pixel_shuffle", "channel_shuffle"]

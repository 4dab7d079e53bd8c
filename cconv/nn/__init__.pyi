from ..modules import Conv2d as Conv2d
from ..modules import ConvTranspose2d as ConvTranspose2d
from . import functional as functional
from .containers import ModuleDict as ModuleDict
from .containers import ModuleList as ModuleList
from .containers import Sequential as Sequential
from .linear import Linear as Linear
from .module import Module as Module
from .normalization import BatchNorm2d as BatchNorm2d
from .resample import ChannelShuffle as ChannelShuffle
from .resample import PixelShuffle as PixelShuffle
from .resample import Upsample as Upsample
from .views import Dropout as Dropout
from .views import Flatten as Flatten
from .views import Identity as Identity

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Conv2d", "ConvTranspose2d",
           "Identity", "Flatten", "Dropout", "BatchNorm2d", "Linear", "Upsample",
           "PixelShuffle", "ChannelShuffle", "functional"]

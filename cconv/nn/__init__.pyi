from ..modules import Conv2d as Conv2d
from ..modules import ConvTranspose2d as ConvTranspose2d
from . import functional as functional
from .activation import GELU as GELU
from .activation import Hardsigmoid as Hardsigmoid
from .activation import Hardswish as Hardswish
from .activation import LeakyReLU as LeakyReLU
from .activation import ReLU as ReLU
from .activation import ReLU6 as ReLU6
from .activation import Sigmoid as Sigmoid
from .activation import SiLU as SiLU
from .activation import Softmax as Softmax
from .activation import Tanh as Tanh
from .containers import ModuleDict as ModuleDict
from .containers import ModuleList as ModuleList
from .containers import Sequential as Sequential
from .fusion import fuse as fuse
from .linear import Linear as Linear
from .module import Module as Module
from .normalization import BatchNorm2d as BatchNorm2d
from .pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from .pooling import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from .pooling import AvgPool2d as AvgPool2d
from .pooling import MaxPool2d as MaxPool2d
from .resample import ChannelShuffle as ChannelShuffle
from .resample import PixelShuffle as PixelShuffle
from .resample import Upsample as Upsample
from .views import Dropout as Dropout
from .views import Flatten as Flatten
from .views import Identity as Identity

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Conv2d", "ConvTranspose2d",
           "Identity", "Flatten", "Dropout", "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh",
           "SiLU", "Hardswish", "Hardsigmoid", "GELU", "Softmax", "BatchNorm2d",
           "Linear", "Upsample", "PixelShuffle", "ChannelShuffle", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "functional", "fuse"]

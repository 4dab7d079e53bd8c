from ..modules import Conv2d as Conv2d
from ..modules import ConvTranspose2d as ConvTranspose2d
from . import functional as functional
from .containers import ModuleDict as ModuleDict
from .containers import ModuleList as ModuleList
from .containers import Sequential as Sequential
from .module import Module as Module
from .pooling import AdaptiveAvgPool2d as AdaptiveAvgPool2d
from .pooling import AdaptiveMaxPool2d as AdaptiveMaxPool2d
from .pooling import AvgPool2d as AvgPool2d
from .pooling import MaxPool2d as MaxPool2d
from .views import Dropout as Dropout
from .views import Flatten as Flatten
from .views import Identity as Identity

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Conv2d", "ConvTranspose2d",
           "Identity", "Flatten", "Dropout", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
           "AdaptiveMaxPool2d", "functional"]

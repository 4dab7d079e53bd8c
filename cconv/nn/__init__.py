"""torch.nn's inference subset, under torch's names: Module and the containers hold a model
whose state_dict keys are torch's, so a trained model loads from its checkpoint.

    Module                             as torch.nn.Module: children, parameters, buffers,
                                       state_dict / load_state_dict, eval(), repr
    Sequential, ModuleList, ModuleDict as torch.nn's containers
    Conv2d, ConvTranspose2d            cconv's layers (the same classes as cconv.Conv2d)
    Identity, Flatten, Dropout         as torch.nn's in eval mode (Dropout is the identity)
    ReLU, ReLU6, LeakyReLU, Sigmoid,   the activations, compiled
    Tanh, SiLU, Hardswish, Hardsigmoid,
    GELU, Softmax
    BatchNorm2d, Linear                as torch.nn's, in numpy (normalization.py, linear.py)
    Upsample, PixelShuffle,            as torch.nn's, numpy copies (resample.py)
    ChannelShuffle
    MaxPool2d, AvgPool2d,              as torch.nn's pooling layers, compiled
    AdaptiveAvgPool2d, AdaptiveMaxPool2d
"""
from ..modules import Conv2d, ConvTranspose2d
from . import functional
from .activation import (
    GELU,
    Hardsigmoid,
    Hardswish,
    LeakyReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from .containers import ModuleDict, ModuleList, Sequential
from .linear import Linear
from .module import Module
from .normalization import BatchNorm2d
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d
from .resample import ChannelShuffle, PixelShuffle, Upsample
from .views import Dropout, Flatten, Identity

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Conv2d", "ConvTranspose2d",
           "Identity", "Flatten", "Dropout", "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh",
           "SiLU", "Hardswish", "Hardsigmoid", "GELU", "Softmax", "BatchNorm2d",
           "Linear", "Upsample", "PixelShuffle", "ChannelShuffle", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "functional"]

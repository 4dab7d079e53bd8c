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
    fuse                               a model with BatchNorm and activations folded into
                                       its convolutions (fusion.py)
"""
import importlib

from ..modules import Conv2d, ConvTranspose2d
from .containers import ModuleDict, ModuleList, Sequential
from .module import Module
from .views import Dropout, Flatten, Identity

# The layers that compute, and the functional forms, load on first use (PEP 562): `import
# cconv` stays as quick as the convolutions need, on a board too.
_LAZY = {
    **dict.fromkeys(["ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "SiLU", "Hardswish",
                     "Hardsigmoid", "GELU", "Softmax"], "activation"),
    "BatchNorm2d": "normalization",
    "fuse": "fusion",
    "Linear": "linear",
    **dict.fromkeys(["Upsample", "PixelShuffle", "ChannelShuffle"], "resample"),
    **dict.fromkeys(["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"],
                    "pooling"),
}

__all__ = ["Module", "Sequential", "ModuleList", "ModuleDict", "Conv2d", "ConvTranspose2d",
           "Identity", "Flatten", "Dropout", "ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh",
           "SiLU", "Hardswish", "Hardsigmoid", "GELU", "Softmax", "BatchNorm2d",
           "Linear", "Upsample", "PixelShuffle", "ChannelShuffle", "MaxPool2d", "AvgPool2d",
           "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "functional", "fuse"]


def __getattr__(name):
    if name == "functional":
        return importlib.import_module(".functional", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..modules import Conv2d
from ..nn.activation import ReLU
from ..nn.containers import Sequential
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet50"]

_Rng = int | np.random.Generator | None

class BasicBlock(Module):
    expansion: int
    conv1: Conv2d
    bn1: BatchNorm2d
    relu: ReLU
    conv2: Conv2d
    bn2: BatchNorm2d
    downsample: Sequential | None
    stride: int
    residual_fused: bool
    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Sequential | None = None,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

class Bottleneck(Module):
    expansion: int
    conv1: Conv2d
    bn1: BatchNorm2d
    conv2: Conv2d
    bn2: BatchNorm2d
    conv3: Conv2d
    bn3: BatchNorm2d
    relu: ReLU
    downsample: Sequential | None
    stride: int
    residual_fused: bool
    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: Sequential | None = None,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

class ResNet(Module):
    inplanes: int
    conv1: Conv2d
    bn1: BatchNorm2d
    relu: ReLU
    maxpool: MaxPool2d
    layer1: Sequential
    layer2: Sequential
    layer3: Sequential
    layer4: Sequential
    avgpool: AdaptiveAvgPool2d
    fc: Linear
    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: list[int],
        num_classes: int = 1000,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = 0,
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

def resnet18(num_classes: int = 1000, *, dtype: DTypeLike = ..., rng: _Rng = 0) -> ResNet: ...
def resnet50(num_classes: int = 1000, *, dtype: DTypeLike = ..., rng: _Rng = 0) -> ResNet: ...

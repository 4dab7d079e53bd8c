from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..nn.containers import Sequential
from ..nn.module import Module

__all__ = ["MobileNetV2", "InvertedResidual", "Conv2dNormActivation", "mobilenet_v2"]

_Rng = int | np.random.Generator | None

def make_divisible(value: float, divisor: int = 8) -> int: ...

class Conv2dNormActivation(Sequential):
    out_channels: int
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...

class InvertedResidual(Module):
    stride: int
    use_res_connect: bool
    conv: Sequential
    out_channels: int
    def __init__(
        self,
        inp: int,
        oup: int,
        stride: int,
        expand_ratio: float,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = None,
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

class MobileNetV2(Module):
    last_channel: int
    features: Sequential
    classifier: Sequential
    def __init__(
        self,
        num_classes: int = 1000,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = 0,
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

def mobilenet_v2(
    num_classes: int = 1000, width_mult: float = 1.0, *, dtype: DTypeLike = ..., rng: _Rng = 0
) -> MobileNetV2: ...

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ..modules import Conv2d, ConvTranspose2d
from ..nn.containers import Sequential
from ..nn.module import Module

__all__ = ["UNet", "DoubleConv", "Down", "Up", "OutConv", "unet"]

_Rng = int | np.random.Generator | None

class DoubleConv(Module):
    double_conv: Sequential
    def __init__(
        self, in_channels: int, out_channels: int, *, dtype: DTypeLike = ..., rng: _Rng = None
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

class Down(Module):
    maxpool_conv: Sequential
    def __init__(
        self, in_channels: int, out_channels: int, *, dtype: DTypeLike = ..., rng: _Rng = None
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

class Up(Module):
    up: ConvTranspose2d
    conv: DoubleConv
    def __init__(
        self, in_channels: int, out_channels: int, *, dtype: DTypeLike = ..., rng: _Rng = None
    ) -> None: ...
    def forward(self, x: ArrayLike, skip: ArrayLike) -> NDArray[np.floating[Any]]: ...

class OutConv(Module):
    conv: Conv2d
    def __init__(
        self, in_channels: int, out_channels: int, *, dtype: DTypeLike = ..., rng: _Rng = None
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

class UNet(Module):
    depth: int
    inc: DoubleConv
    outc: OutConv
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 1,
        base: int = 32,
        depth: int = 4,
        *,
        dtype: DTypeLike = ...,
        rng: _Rng = 0,
    ) -> None: ...
    def forward(self, x: ArrayLike) -> NDArray[np.floating[Any]]: ...

def unet(
    in_channels: int = 3,
    out_channels: int = 1,
    base: int = 32,
    depth: int = 4,
    *,
    dtype: DTypeLike = ...,
    rng: _Rng = 0,
) -> UNet: ...

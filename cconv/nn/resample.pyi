from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .module import Module

__all__ = ["Upsample", "PixelShuffle", "ChannelShuffle", "interpolate", "pixel_shuffle",
           "channel_shuffle"]

_Mode = Literal["nearest", "bilinear"]

def interpolate(
    input: ArrayLike,
    size: int | tuple[int, int] | list[int] | None = None,
    scale_factor: float | tuple[float, float] | list[float] | None = None,
    mode: _Mode = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> NDArray[np.floating[Any]]: ...
def pixel_shuffle(input: ArrayLike, upscale_factor: int) -> NDArray[np.floating[Any]]: ...
def channel_shuffle(input: ArrayLike, groups: int) -> NDArray[np.floating[Any]]: ...

class Upsample(Module):
    name: str
    size: int | tuple[int, int] | None
    scale_factor: float | tuple[float, ...] | None
    mode: _Mode
    align_corners: bool | None
    recompute_scale_factor: bool | None
    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale_factor: float | tuple[float, float] | None = None,
        mode: _Mode = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ) -> None: ...
    def forward(self, input: ArrayLike) -> NDArray[np.floating[Any]]: ...

class PixelShuffle(Module):
    upscale_factor: int
    def __init__(self, upscale_factor: int) -> None: ...
    def forward(self, input: ArrayLike) -> NDArray[np.floating[Any]]: ...

class ChannelShuffle(Module):
    groups: int
    def __init__(self, groups: int) -> None: ...
    def forward(self, input: ArrayLike) -> NDArray[np.floating[Any]]: ...

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "max_pool2d",
           "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]

_Array = np.ndarray[Any, Any]
_Size = int | tuple[int, ...] | list[int]
_OutputSize = int | None | tuple[int | None, ...] | list[int | None]
_WithIndices = _Array | tuple[_Array, _Array]

def max_pool2d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None,
               padding: _Size = 0, dilation: _Size = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> _WithIndices: ...
def avg_pool2d(input: ArrayLike, kernel_size: _Size, stride: _Size | None = None,
               padding: _Size = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> _Array: ...
def adaptive_avg_pool2d(input: ArrayLike, output_size: _OutputSize) -> _Array: ...
def adaptive_max_pool2d(input: ArrayLike, output_size: _OutputSize,
                        return_indices: bool = False) -> _WithIndices: ...

class MaxPool2d(Module):
    kernel_size: _Size
    stride: _Size
    padding: _Size
    dilation: _Size
    return_indices: bool
    ceil_mode: bool
    def __init__(self, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
                 dilation: _Size = 1, return_indices: bool = False,
                 ceil_mode: bool = False) -> None: ...
    def forward(self, input: ArrayLike) -> _WithIndices: ...
    def extra_repr(self) -> str: ...

class AvgPool2d(Module):
    kernel_size: _Size
    stride: _Size
    padding: _Size
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None
    def __init__(self, kernel_size: _Size, stride: _Size | None = None, padding: _Size = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None) -> None: ...
    def forward(self, input: ArrayLike) -> _Array: ...
    def extra_repr(self) -> str: ...

class AdaptiveAvgPool2d(Module):
    output_size: _OutputSize
    def __init__(self, output_size: _OutputSize) -> None: ...
    def forward(self, input: ArrayLike) -> _Array: ...
    def extra_repr(self) -> str: ...

class AdaptiveMaxPool2d(Module):
    output_size: _OutputSize
    return_indices: bool
    def __init__(self, output_size: _OutputSize, return_indices: bool = False) -> None: ...
    def forward(self, input: ArrayLike) -> _WithIndices: ...
    def extra_repr(self) -> str: ...

from collections.abc import Sequence
from typing import Any, Literal, SupportsIndex

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from ._epilogue import Epilogue
from .nn.module import IncompatibleKeys as IncompatibleKeys
from .nn.module import Module

__all__ = ["Conv2d", "ConvTranspose2d"]

_Size = SupportsIndex | Sequence[SupportsIndex]
_Float = np.float32 | np.float64
_PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
_Rng = int | np.integer[Any] | np.random.Generator | None

PADDING_MODES: tuple[str, ...]

class _ConvNd(Module):
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] | str
    dilation: tuple[int, int]
    output_padding: tuple[int, int]
    groups: int
    padding_mode: str
    dtype: np.dtype[_Float]
    transposed: bool
    @property
    def weight(self) -> NDArray[_Float]: ...
    @weight.setter
    def weight(self, value: ArrayLike) -> None: ...
    @property
    def bias(self) -> NDArray[_Float] | None: ...
    @bias.setter
    def bias(self, value: ArrayLike | None) -> None: ...
    @property
    def epilogue(self) -> Epilogue | None: ...
    @epilogue.setter
    def epilogue(self, value: Epilogue | None) -> None: ...
    def reset_parameters(self, rng: _Rng = None) -> None: ...
    def extra_repr(self) -> str: ...

class Conv2d(_ConvNd):
    def __init__(
        self,
        in_channels: SupportsIndex,
        out_channels: SupportsIndex,
        kernel_size: _Size,
        stride: _Size = 1,
        padding: _Size | Literal["valid", "same"] = 0,
        dilation: _Size = 1,
        groups: SupportsIndex = 1,
        bias: bool = True,
        padding_mode: _PaddingMode = "zeros",
        dtype: DTypeLike = ...,
        *,
        rng: _Rng = None,
    ) -> None: ...
    def forward(
        self, input: ArrayLike, residual: NDArray[_Float] | None = None
    ) -> NDArray[_Float]: ...
    def __call__(
        self, input: ArrayLike, residual: NDArray[_Float] | None = None
    ) -> NDArray[_Float]: ...

class ConvTranspose2d(_ConvNd):
    def __init__(
        self,
        in_channels: SupportsIndex,
        out_channels: SupportsIndex,
        kernel_size: _Size,
        stride: _Size = 1,
        padding: _Size = 0,
        output_padding: _Size = 0,
        groups: SupportsIndex = 1,
        bias: bool = True,
        dilation: _Size = 1,
        padding_mode: Literal["zeros"] = "zeros",
        dtype: DTypeLike = ...,
        *,
        rng: _Rng = None,
    ) -> None: ...
    def forward(
        self,
        input: ArrayLike,
        output_size: Sequence[SupportsIndex] | None = None,
        residual: NDArray[_Float] | None = None,
    ) -> NDArray[_Float]: ...
    def __call__(
        self,
        input: ArrayLike,
        output_size: Sequence[SupportsIndex] | None = None,
        residual: NDArray[_Float] | None = None,
    ) -> NDArray[_Float]: ...

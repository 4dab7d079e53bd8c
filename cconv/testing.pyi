from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["pair", "conv2d_padding", "conv2d_output_size", "pad_input", "conv2d_ref",
           "conv2d_module_ref", "conv_transpose2d_output_size", "conv_transpose2d_ref",
           "absolute", "conv2d_abs", "conv_transpose2d_abs", "unfold"]

_Size = int | Sequence[int]
_Mode = Literal["zeros", "reflect", "replicate", "circular"]
_F64 = NDArray[np.float64]

NUMPY_PAD_MODES: dict[str, str]

def pair(value: _Size) -> tuple[int, int]: ...
def conv2d_padding(
    padding: _Size | Literal["valid", "same"], kernel: _Size, dilation: _Size = 1
) -> tuple[int, int, int, int]: ...
def conv2d_output_size(
    size: int, kernel: int, stride: int, pad_before: int, pad_after: int, dilation: int
) -> int: ...
def pad_input(
    x: NDArray[Any], pads: tuple[int, int, int, int], mode: _Mode = "zeros"
) -> NDArray[Any]: ...
def conv2d_ref(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None = None,
    stride: _Size = 1,
    padding: _Size | Literal["valid", "same"] = 0,
    dilation: _Size = 1,
    groups: int = 1,
) -> _F64: ...
def conv2d_module_ref(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None = None,
    stride: _Size = 1,
    padding: _Size | Literal["valid", "same"] = 0,
    dilation: _Size = 1,
    groups: int = 1,
    padding_mode: _Mode = "zeros",
) -> _F64: ...
def conv_transpose2d_output_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int: ...
def conv_transpose2d_ref(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None = None,
    stride: _Size = 1,
    padding: _Size = 0,
    output_padding: _Size = 0,
    groups: int = 1,
    dilation: _Size = 1,
) -> _F64: ...
def absolute(ref: Callable[..., _F64]) -> Callable[..., _F64]: ...

# absolute(conv2d_ref) and absolute(conv_transpose2d_ref): the same arguments as those.
def conv2d_abs(
    x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *args: Any, **kwargs: Any
) -> _F64: ...
def conv_transpose2d_abs(
    x: ArrayLike, w: ArrayLike, b: ArrayLike | None = None, *args: Any, **kwargs: Any
) -> _F64: ...
def unfold(
    x: ArrayLike,
    kernel: tuple[int, int],
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int, int, int] = (0, 0, 0, 0),
    dilation: tuple[int, int] = (1, 1),
) -> _F64: ...

from collections.abc import Sequence
from typing import Literal, SupportsIndex

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._epilogue import Epilogue

__all__ = ["conv2d", "conv_transpose2d"]

# An int (or anything operator.index takes), or a sequence of one or two of them.
_Size = SupportsIndex | Sequence[SupportsIndex]
_Algorithm = Literal["igemm", "igemm_cl", "depthwise", "depthwise_cl", "winograd"]
_Float = np.float32 | np.float64

def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _Size = 1,
    padding: _Size | Literal["valid", "same"] = 0,
    dilation: _Size = 1,
    groups: SupportsIndex = 1,
    *,
    out: NDArray[_Float] | None = None,
    algorithm: _Algorithm | None = None,
    epilogue: Epilogue | None = None,
    residual: NDArray[_Float] | None = None,
) -> NDArray[_Float]: ...
def conv_transpose2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: _Size = 1,
    padding: _Size = 0,
    output_padding: _Size = 0,
    groups: SupportsIndex = 1,
    dilation: _Size = 1,
    *,
    out: NDArray[_Float] | None = None,
    algorithm: _Algorithm | None = None,
    epilogue: Epilogue | None = None,
    residual: NDArray[_Float] | None = None,
) -> NDArray[_Float]: ...

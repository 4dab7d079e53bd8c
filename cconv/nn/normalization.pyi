from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .module import Module

__all__ = ["BatchNorm2d", "batch_norm"]

def batch_norm(
    input: ArrayLike,
    running_mean: NDArray[np.floating[Any]] | None,
    running_var: NDArray[np.floating[Any]] | None,
    weight: ArrayLike | None = None,
    bias: ArrayLike | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-05,
) -> NDArray[np.floating[Any]]: ...

class BatchNorm2d(Module):
    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool
    dtype: np.dtype[Any]
    weight: NDArray[np.floating[Any]] | None
    bias: NDArray[np.floating[Any]] | None
    running_mean: NDArray[np.floating[Any]] | None
    running_var: NDArray[np.floating[Any]] | None
    num_batches_tracked: NDArray[np.int64] | None
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike = ...,
        *,
        bias: bool = True,
    ) -> None: ...
    def forward(self, input: ArrayLike) -> NDArray[np.floating[Any]]: ...

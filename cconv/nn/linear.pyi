from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .module import Module

__all__ = ["Linear", "linear"]

def linear(
    input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None
) -> NDArray[np.floating[Any]]: ...

class Linear(Module):
    in_features: int
    out_features: int
    dtype: np.dtype[Any]
    weight: NDArray[np.floating[Any]]
    bias: NDArray[np.floating[Any]] | None
    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: DTypeLike = ...,
        *,
        rng: int | np.random.Generator | None = None,
    ) -> None: ...
    def reset_parameters(self, rng: int | np.random.Generator | None = None) -> None: ...
    def forward(self, input: ArrayLike) -> NDArray[np.floating[Any]]: ...

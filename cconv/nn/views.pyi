from typing import Any, TypeVar

import numpy as np
from numpy.typing import ArrayLike

from .module import Module

__all__ = ["Identity", "Flatten", "Dropout"]

_T = TypeVar("_T")

class Identity(Module):
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def forward(self, input: _T) -> _T: ...

class Flatten(Module):
    start_dim: int
    end_dim: int
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None: ...
    def forward(self, input: ArrayLike) -> np.ndarray[Any, Any]: ...

class Dropout(Module):
    p: float
    inplace: bool
    def __init__(self, p: float = 0.5, inplace: bool = False) -> None: ...
    def forward(self, input: _T) -> _T: ...

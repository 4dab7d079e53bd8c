from typing import TypeVar

from numpy.typing import ArrayLike

from .module import Module

__all__ = ["fuse"]

_M = TypeVar("_M", bound=Module)

def fuse(model: _M, example_input: ArrayLike | None = None) -> _M: ...

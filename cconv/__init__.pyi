from collections import OrderedDict
from os import PathLike
from typing import Any, Protocol, SupportsIndex

from numpy.typing import NDArray

from . import models as models
from . import nn as nn
from ._epilogue import Epilogue as Epilogue
from .functional import conv2d as conv2d
from .functional import conv_transpose2d as conv_transpose2d
from .modules import Conv2d as Conv2d
from .modules import ConvTranspose2d as ConvTranspose2d

__version__: str
__all__ = ["conv2d", "conv_transpose2d", "Conv2d", "ConvTranspose2d", "Epilogue", "nn",
           "models", "set_num_threads", "get_num_threads", "set_winograd", "get_winograd",
           "show_config", "load", "__version__"]

class _Writer(Protocol):
    def write(self, s: str, /) -> object: ...

# cconv._threads
def get_num_threads() -> int: ...
def set_num_threads(n: SupportsIndex | None) -> None: ...

# cconv._planner
def set_winograd(enabled: bool) -> None: ...
def get_winograd() -> bool: ...

# cconv._config
def show_config(file: _Writer | None = None) -> None: ...

# cconv._checkpoint
def load(path: str | bytes | PathLike[str] | PathLike[bytes]) -> OrderedDict[str, NDArray[Any]]:
    ...

"""What every contender is: one callable convolution, and how to say it cannot run."""
import importlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["Contender", "UnavailableError", "optional"]


class UnavailableError(Exception):
    """This contender cannot run this layer (not installed, not implemented yet)."""


@dataclass
class Contender:
    name: str
    call: Callable           # one convolution
    to_numpy: Callable = np.asarray


_imported = {}


def optional(name):
    """The module `name` (a dotted name gives the submodule), or None when it is not
    installed (looked up once)."""
    if name not in _imported:
        try:
            if name == "onnxruntime":
                import onnx  # noqa: F401  (needed to build the model)
            _imported[name] = importlib.import_module(name)
        except Exception:  # not installed, or broken: the peer is skipped with a note
            _imported[name] = None
    return _imported[name]

"""Layers that move no data at inference: Identity and Dropout return their input, Flatten a
view of it (a copy only where numpy's reshape needs one), as torch.nn's do in eval mode.
"""
import math

import numpy as np

from .module import Module

__all__ = ["Identity", "Flatten", "Dropout"]


class Identity(Module):
    """Returns its input (torch.nn.Identity); its arguments are accepted and ignored."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input


def _dim(dim, ndim):
    """`dim` (negative from the end) as a position among `ndim` dimensions, in torch's
    words when it is not one."""
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {dim})")
    return dim % ndim


class Flatten(Module):
    """Flattens dimensions start_dim..end_dim of a numpy array into one (torch.nn.Flatten);
    Flatten() keeps the batch dimension."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        x = input if isinstance(input, np.ndarray) else np.asarray(input)
        # torch counts a 0-dim tensor as having one dimension here.
        ndim = max(x.ndim, 1)
        start, end = _dim(self.start_dim, ndim), _dim(self.end_dim, ndim)
        if start > end:
            raise ValueError("flatten() has invalid args: start_dim cannot come after "
                             "end_dim")
        if x.ndim == 0:
            return x.reshape(1)
        if start == end:
            return x
        shape = x.shape
        return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """torch.nn.Dropout at inference: returns its input, whatever `training` says (cconv does
    not train)."""

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return input

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"

"""The benchmarked layers: a re-export of cconv._layers, their single source of truth."""
from cconv._layers import LAYERS, QUICK, Layer, by_name, select

__all__ = ["Layer", "LAYERS", "QUICK", "by_name", "select"]

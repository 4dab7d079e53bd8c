"""The benchmarked layers: a re-export of cconv.bench.layers, their single source of truth."""
from cconv.bench.layers import LAYERS, QUICK, Layer, by_name, select

__all__ = ["Layer", "LAYERS", "QUICK", "by_name", "select"]

"""The caches of prepared work: one bounded store, one eviction policy.

A geometry is lowered, planned and bound to a kernel once; repeated calls look the result
up. Keys are plain hashable data (ConvParams, Plan, dtypes, ints, strings). A full cache
forgets its oldest entry: a program that cycles through more geometries than a cache holds
recomputes them, and memory stays bounded whatever it does.
"""
import functools

__all__ = ["Cache", "memo", "MAXSIZE"]

# Entries per cache: far more distinct geometries than a network has layers.
MAXSIZE = 512


class Cache(dict):
    """A dict of at most `maxsize` entries; put() forgets the oldest one when full. Lookups
    are plain dict.get (a functional call's hot path)."""
    __slots__ = ("maxsize",)

    def __init__(self, maxsize=MAXSIZE):
        super().__init__()
        self.maxsize = maxsize

    def put(self, key, value):
        if len(self) >= self.maxsize and key not in self:
            try:
                del self[next(iter(self))]
            except (KeyError, RuntimeError, StopIteration):
                pass    # another thread changed it meanwhile: it stays about as full
        self[key] = value
        return value


_MISSING = object()     # a result may be None (depth_to_space of most convolutions)


def memo(fn):
    """fn(*args) computed once per argument tuple, in a Cache of its own."""
    cache = Cache()

    @functools.wraps(fn)
    def cached(*args):
        value = cache.get(args, _MISSING)
        if value is _MISSING:
            value = cache.put(args, fn(*args))
        return value

    cached.cache = cache
    cached.cache_clear = cache.clear
    return cached

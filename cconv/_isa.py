"""Which instruction-set variant of the micro-kernels runs: the one source of truth.

The build compiles every variant of the architecture (cconv/_kernels/isa.h); at import the
widest one this CPU supports is chosen. `CCONV_ISA=<name>` (e.g. sse2, avx2) forces a lower
one; tests run every supported variant through `forced()`.

`Isa` is isa.h's enum cc_isa, read from the build (its names in id order), so C and Python
share one list; the kernels take a member as the plain int it is.
"""
import contextlib
import enum
import os
import warnings

from ._kernels import _runtime

NAMES = _runtime.isa_names()
SUPPORTED = tuple(name for name, ok in zip(NAMES, _runtime.isa_supported()) if ok)
Isa = enum.IntEnum("Isa", {name.upper(): i for i, name in enumerate(NAMES)})


def _initial():
    best = NAMES.index(SUPPORTED[-1])
    wanted = os.environ.get("CCONV_ISA", "").strip().lower()
    if not wanted:
        return Isa(best)
    if wanted not in NAMES:
        raise ImportError(f"CCONV_ISA={wanted!r} is not a variant of this build; "
                          f"expected one of {', '.join(NAMES)}")
    if wanted not in SUPPORTED:
        warnings.warn(f"CCONV_ISA={wanted!r}: this CPU does not support it; using "
                      f"{SUPPORTED[-1]!r}", RuntimeWarning, stacklevel=2)
        return Isa(best)
    return Isa(NAMES.index(wanted))


_current = _initial()


def current():
    """The variant in use (an Isa: its id indexes NAMES; kernels take it as a plain int)."""
    return _current


def current_name():
    return NAMES[_current]


@contextlib.contextmanager
def forced(name):
    """Run the enclosed calls on variant `name` (for tests and benchmarks; not thread-safe)."""
    global _current
    if name not in SUPPORTED:
        raise ValueError(f"isa {name!r} is not supported here; supported: {SUPPORTED}")
    previous, _current = _current, Isa(NAMES.index(name))
    try:
        yield
    finally:
        _current = previous

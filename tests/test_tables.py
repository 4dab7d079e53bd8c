"""The tests' own tables cover every algorithm cconv has."""
import numpy as np
from conftest import APPLIES, DTYPES, TOLERANCE

from cconv import _planner


def test_every_algorithm_has_a_tolerance_and_a_rule():
    for algorithm in _planner.ALGORITHMS:
        assert algorithm in APPLIES, f"add {algorithm!r} to conftest.APPLIES"
        for dtype in DTYPES:
            assert (algorithm, dtype) in TOLERANCE, f"add ({algorithm!r}, {dtype}) to TOLERANCE"
    assert {a for a, _ in TOLERANCE} == set(_planner.ALGORITHMS)
    assert all(0 < f <= 16 for f in TOLERANCE.values())
    assert {np.dtype(d) for _, d in TOLERANCE} == set(DTYPES)

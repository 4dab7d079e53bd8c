"""Shared test machinery: the tolerance table, comparison with the float64 reference, random
data, and fixtures for every instruction-set variant, both dtypes and (optional) torch.

Tests import the helpers with `from conftest import ...` (pytest puts tests/ on sys.path).
"""
import functools
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import cconv
from cconv import _isa, _params, _planner
from cconv.testing import absolute, conv2d_module_ref, conv2d_ref, conv_transpose2d_ref

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# THE tolerance table: (algorithm, dtype) -> factor. A result y of a convolution with
# reduction length K (input channels per group * kh * kw) must satisfy, elementwise,
#     |y - ref| <= factor * eps(dtype) * sqrt(K) * (|x| conv |w| + |b|) + TINY[dtype]
# against the float64 reference. Rounding errors of a sum of K terms grow like sqrt(K) times
# the sum of the terms' magnitudes when they are not systematic, and the kernels block the
# reduction, so the factor is small; it covers the reference's own rounding in float64 too.
# Every algorithm of cconv._planner.ALGORITHMS needs an entry (tests/test_tables.py checks).
# Measured worst case over tests/test_conv2d.py's sweep (all ISAs): 0.73 (float32) and 1.14
# (float64, where the reference's own rounding is of the same size); for K <= factor**2 the
# factor also covers the deterministic worst case, about K * eps.
TOLERANCE = {
    ("igemm", np.dtype(np.float32)): 3.0,
    ("igemm", np.dtype(np.float64)): 4.0,
    ("igemm_cl", np.dtype(np.float32)): 3.0,
    ("igemm_cl", np.dtype(np.float64)): 4.0,
    ("depthwise", np.dtype(np.float32)): 3.0,
    ("depthwise", np.dtype(np.float64)): 4.0,
    ("depthwise_cl", np.dtype(np.float32)): 3.0,
    ("depthwise_cl", np.dtype(np.float64)): 4.0,
    # Winograd F(4x4, 3x3): the transforms' constants (up to 8, and 5 in B) amplify the
    # products' rounding; tests/test_winograd.py checks its own max-relative bound too.
    ("winograd", np.dtype(np.float32)): 16.0,
    ("winograd", np.dtype(np.float64)): 16.0,
}
# Absolute slack for results whose exact value is (near) zero.
TINY = {dt: 16 * np.finfo(dt).tiny for dt in DTYPES}

# Which algorithms apply to a convolution, by rule (test_tables checks every algorithm of
# cconv._planner.ALGORITHMS has one): (C_in, groups, transposed) -> bool.
APPLIES = {
    "igemm": lambda C_in, groups, transposed: True,
    "igemm_cl": lambda C_in, groups, transposed: True,
    "depthwise": lambda C_in, groups, transposed: C_in == groups and not transposed,
    "depthwise_cl": lambda C_in, groups, transposed: C_in == groups and not transposed,
    # Winograd needs a 3x3 kernel, stride 1, dilation 1, which this rule cannot see: the
    # generic sweeps leave it out, tests/test_winograd.py covers it.
    "winograd": lambda C_in, groups, transposed: False,
}

# Where the cconv under test lives: a child Python must import this one, not the source tree
# of the working directory (which has no compiled kernels when cconv was pip-installed).
CCONV_HOME = str(Path(cconv.__file__).resolve().parents[1])


def run_python(args, *, env=None, cwd=None, **kwargs):
    """subprocess.run([python, *args]) importing the cconv under test: run from a scratch
    directory (python -c / -m put the working directory first on sys.path) with that cconv's
    home first on PYTHONPATH. `env` defaults to os.environ; output is captured as text.
    With `cwd`, run there with PYTHONPATH unset instead: the cconv in that directory is
    imported (as from a source checkout). Skips where no child Python can start: under qemu
    user-mode emulation without binfmt_misc (tools/test-arm.sh) sys.executable is an ARM
    binary the host cannot exec."""
    if os.environ.get("CCONV_TEST_NO_CHILD_PYTHON") == "1":
        pytest.skip("no child Python can start here (CCONV_TEST_NO_CHILD_PYTHON=1)")
    env = dict(os.environ if env is None else env)
    if cwd is not None:
        env.pop("PYTHONPATH", None)
        return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                              text=True, **kwargs)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [CCONV_HOME, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as scratch:
        return subprocess.run([sys.executable, *args], cwd=scratch, env=env,
                              capture_output=True, text=True, **kwargs)


def _asan_loaded():
    """Whether AddressSanitizer's runtime is in this process (tools/sanitize.sh asan)."""
    try:
        with open("/proc/self/maps") as f:
            return "libasan" in f.read()
    except OSError:
        return False


# Under AddressSanitizer freed memory sits in a quarantine, so RSS tests mean nothing.
ASAN = _asan_loaded()


def operation(name):
    """cconv's conv2d or conv_transpose2d by name."""
    return getattr(cconv, name)


def tolerance_factor(algorithm, dtype):
    """The table's factor; algorithm None (the planner's choice) gets the largest factor
    of any algorithm the planner chooses by itself for that dtype (winograd included:
    _planner.WINOGRAD_MIN_CHANNELS)."""
    dtype = np.dtype(dtype)
    if algorithm is None:
        return max(f for (a, dt), f in TOLERANCE.items() if dt == dtype)
    return TOLERANCE[algorithm, dtype]


def error_bound(scale, K, dtype, algorithm=None):
    """Elementwise bound on |y - ref| for a result of magnitude scale (|x| conv |w| + |b|)."""
    dtype = np.dtype(dtype)
    factor = tolerance_factor(algorithm, dtype)
    return factor * np.finfo(dtype).eps * np.sqrt(max(K, 1)) * scale + TINY[dtype]


def assert_within(y, ref, bound, what=""):
    """|y - ref| <= bound elementwise; NaN exactly where ref is NaN, the same infinities."""
    y = np.asarray(y)
    assert y.shape == ref.shape, f"{what}: shape {y.shape}, expected {ref.shape}"
    y64 = y.astype(np.float64)
    nan_y, nan_ref = np.isnan(y64), np.isnan(ref)
    assert np.array_equal(nan_y, nan_ref), (
        f"{what}: NaN at {np.argwhere(nan_y != nan_ref)[:5].tolist()} "
        f"({int(nan_y.sum())} NaN in result, {int(nan_ref.sum())} in reference)")
    inf = np.isinf(ref) | np.isinf(y64)
    assert np.array_equal(y64[inf], ref[inf]), f"{what}: infinities differ"
    finite = np.isfinite(ref)
    err = np.where(finite, np.abs(y64 - np.where(finite, ref, 0)), 0)
    bad = err > bound
    if bad.any():
        ratio = np.where(finite, err / bound, 0)
        worst = np.unravel_index(np.argmax(ratio), ratio.shape)
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {y.size} elements outside the bound; worst at "
            f"{tuple(int(i) for i in worst)}: got {y64[worst]!r}, expected {ref[worst]!r}, "
            f"error {err[worst]:.3g} = {ratio[worst]:.3g} x bound {bound[worst]:.3g}")


def conv2d_reduction(w_shape):
    """K of conv2d from the weight's shape: input channels per group * kh * kw."""
    return w_shape[1] * w_shape[2] * w_shape[3]


def conv_transpose2d_reduction(w_shape, groups=1):
    """K of conv_transpose2d (at most) from the weight's shape: input channels per group *
    kh * kw."""
    return w_shape[0] // groups * w_shape[2] * w_shape[3]


# The operations the tests check: name -> (float64 reference, K from (weight shape, groups)).
REFERENCES = {
    "conv2d": (conv2d_ref, lambda w_shape, groups: conv2d_reduction(w_shape)),
    "conv2d_module": (conv2d_module_ref, lambda w_shape, groups: conv2d_reduction(w_shape)),
    "conv_transpose2d": (conv_transpose2d_ref, conv_transpose2d_reduction),
}


def reference_bound(op, x, w, b=None, *, dtype, algorithm=None, **kwargs):
    """The table's elementwise error bound for operation op (a REFERENCES key)."""
    ref, reduction = REFERENCES[op]
    K = reduction(np.shape(w), kwargs.get("groups", 1))
    return error_bound(absolute(ref)(x, w, b, **kwargs), K, dtype, algorithm)


def check(op, y, x, w, b=None, *, algorithm=None, dtype=None, slack=1.0, what="", **kwargs):
    """Assert y is op(x, w, b, **kwargs) (op: a REFERENCES key; kwargs in torch's words)
    within slack times the table's bound for the algorithm and dtype (dtype: the expected
    result dtype, by default w's)."""
    dtype = np.dtype(dtype or np.asarray(w).dtype)
    what = what or op
    assert np.asarray(y).dtype == dtype, f"{what}: dtype {np.asarray(y).dtype}, expected {dtype}"
    bound = reference_bound(op, x, w, b, dtype=dtype, algorithm=algorithm, **kwargs)
    assert_within(y, REFERENCES[op][0](x, w, b, **kwargs), slack * bound, what)


check_conv2d = functools.partial(check, "conv2d")
check_conv2d_module = functools.partial(check, "conv2d_module")
check_conv_transpose2d = functools.partial(check, "conv_transpose2d")


def sample_cases(draw, count, seed, budget):
    """count cases draw(rng) whose .macs (multiply-adds) fit the budget: a seeded,
    reproducible sample of a parameter grid."""
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        case = draw(rng)
        if case.macs <= budget:
            cases.append(case)
    return cases


def case_id(name, bias, **fields):
    """A readable test id: name:n2-c3-... with pairs written 1x2."""
    def text(value):
        return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)
    body = "-".join(f"{key}{text(value)}" for key, value in fields.items())
    body += "" if bias else "-nobias"
    return f"{name}:{body}" if name else body


def seed_of(*parts):
    """A stable seed from any printable parts (a test case's id)."""
    return zlib.crc32(repr(parts).encode())


# Arguments above this are refused (ValueError, naming them) before any size arithmetic: on
# 64-bit 2**59, on 32-bit platforms (armv7) 2**27. Tests of huge arguments expect that there.
SIZE_LIMIT = _params.SIZE_LIMIT


def huge_expectation(values, exc, match, names):
    """(exception, regex) a call with these argument values raises: (exc, match) where the
    platform takes them, else the ValueError that names one of `names` as too large."""
    if max(abs(v) for v in values) > SIZE_LIMIT and not any(v < 0 for v in values):
        return ValueError, rf"({names}).*too large"
    return exc, match


def random_arrays(seed, x_shape, w_shape, bias, dtype, channels=None):
    """Standard-normal x, w and (if bias) b of length channels (default w_shape[0], the
    output channels of conv2d), in dtype."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(channels or w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def applicable_algorithms(C_in, groups, transposed=False):
    """The algorithms of cconv._planner.ALGORITHMS that apply, by APPLIES (one missing
    there is left out here, and fails test_tables)."""
    return [a for a in _planner.ALGORITHMS if a in APPLIES and APPLIES[a](C_in, groups,
                                                                           transposed)]


@pytest.fixture(params=_isa.SUPPORTED)
def isa(request):
    """Run the test on one instruction-set variant (every one this CPU supports)."""
    with _isa.forced(request.param):
        yield request.param


@pytest.fixture(params=DTYPES, ids=str)
def dtype(request):
    return request.param


@pytest.fixture(scope="session")
def torch():
    """torch, or skip: torch comparisons are optional."""
    return pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _default_threads():
    """Every test starts and ends with the default thread count."""
    cconv.set_num_threads(None)
    yield
    cconv.set_num_threads(None)


def pytest_configure(config):
    # torch's note that 'same' padding with even kernels copies the input: expected here.
    config.addinivalue_line("filterwarnings",
                            "ignore:Using padding='same' with even kernel:UserWarning")

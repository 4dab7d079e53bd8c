"""Properties over random valid arguments (hypothesis, within a budget of multiply-adds):
agreement with the reference, linearity in the input, and adjointness with
conv_transpose2d."""
import numpy as np
from conftest import (
    DTYPES,
    applicable_algorithms,
    assert_within,
    check_conv2d,
    conv2d_reduction,
    error_bound,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import cconv
from cconv import _isa
from cconv.testing import conv2d_abs, conv2d_output_size, conv2d_padding

MAC_BUDGET = 300_000
SETTINGS = settings(deadline=None, max_examples=40,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@st.composite
def conv2d_problems(draw, padding_strings=True, min_batch=0):
    """(x shape, w shape, kwargs) of a valid conv2d within MAC_BUDGET."""
    groups = draw(st.integers(1, 4))
    Cg, Mg = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kernel = draw(st.tuples(st.integers(1, 5), st.integers(1, 5)))
    stride, dilation = draw(pairs), draw(pairs)
    paddings = st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3)))
    if padding_strings:
        paddings = st.one_of(paddings, st.sampled_from(["valid", "same"]))
    padding = draw(paddings)
    if padding == "same":
        stride = (1, 1)
    pads = conv2d_padding(padding, kernel, dilation)
    size = []
    for axis in range(2):
        smallest = max(1, dilation[axis] * (kernel[axis] - 1) + 1 - pads[2 * axis]
                       - pads[2 * axis + 1])
        size.append(draw(st.integers(smallest, smallest + 20)))
    w_shape = (Mg * groups, Cg, *kernel)
    out = [conv2d_output_size(size[a], kernel[a], stride[a], pads[2 * a], pads[2 * a + 1],
                              dilation[a]) for a in range(2)]
    image_macs = Mg * groups * out[0] * out[1] * conv2d_reduction(w_shape)
    assume(image_macs <= MAC_BUDGET)
    N = draw(st.integers(min_batch, max(min_batch, min(3, MAC_BUDGET // image_macs))))
    x_shape = (N, Cg * groups, *size)
    return x_shape, w_shape, dict(stride=stride, padding=padding, dilation=dilation,
                                  groups=groups)


def arrays(seed, shapes, dtype):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@SETTINGS
@given(problem=conv2d_problems(), dtype=st.sampled_from(DTYPES), bias=st.booleans(),
       isa=st.sampled_from(_isa.SUPPORTED), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_agrees_with_reference(problem, dtype, bias, isa, data, seed):
    x_shape, w_shape, kwargs = problem
    algorithm = data.draw(st.sampled_from(applicable_algorithms(x_shape[1],
                                                                kwargs["groups"])))
    x, w, b = arrays(seed, [x_shape, w_shape, (w_shape[0],)], dtype)
    with _isa.forced(isa):
        y = cconv.conv2d(x, w, b if bias else None, **kwargs, algorithm=algorithm)
    check_conv2d(y, x, w, b if bias else None, algorithm=algorithm, **kwargs)


@SETTINGS
@given(problem=conv2d_problems(), dtype=st.sampled_from(DTYPES),
       a=st.floats(-4, 4, allow_nan=False), seed=st.integers(0, 2**32 - 1))
def test_linear_in_the_input(problem, dtype, a, seed):
    """conv(a*x1 + x2) == a*conv(x1) + conv(x2), to rounding (no bias)."""
    x_shape, w_shape, kwargs = problem
    x1, x2, w = arrays(seed, [x_shape, x_shape, w_shape], dtype)
    combined = (dtype.type(a) * x1 + x2).astype(dtype)
    lhs = cconv.conv2d(combined, w, **kwargs)
    rhs = a * cconv.conv2d(x1, w, **kwargs).astype(np.float64) + cconv.conv2d(x2, w, **kwargs)
    # Three convolutions' errors, and the rounding of a*x1 + x2, all scale with this.
    scale = conv2d_abs(abs(a) * np.abs(x1.astype(np.float64)) + np.abs(x2), w, **kwargs)
    bound = 4 * error_bound(scale, conv2d_reduction(w_shape), dtype)
    assert_within(lhs, rhs, bound, "linearity")


@SETTINGS
@given(problem=conv2d_problems(padding_strings=False, min_batch=1),
       seed=st.integers(0, 2**32 - 1))
def test_adjoint_of_conv_transpose2d(problem, seed):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> with the same stride, padding,
    dilation and groups (output_padding chosen to give back x's shape)."""
    x_shape, w_shape, kwargs = problem
    x, w = arrays(seed, [x_shape, w_shape], np.float64)
    y = cconv.conv2d(x, w, **kwargs)
    (dy,) = arrays(seed + 1, [y.shape], np.float64)
    stride, padding = kwargs["stride"], kwargs["padding"]
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    output_padding = tuple(
        x_shape[2 + a] - ((y.shape[2 + a] - 1) * stride[a] - 2 * (ph, pw)[a]
                          + kwargs["dilation"][a] * (w_shape[2 + a] - 1) + 1)
        for a in range(2))
    back = cconv.conv_transpose2d(dy, w, None, stride, padding, output_padding,
                                  kwargs["groups"], kwargs["dilation"])
    assert back.shape == x.shape
    lhs, rhs = np.vdot(y, dy), np.vdot(x, back)
    magnitude = np.vdot(conv2d_abs(x, w, **kwargs), np.abs(dy))
    assert abs(lhs - rhs) <= 1e-12 * np.sqrt(conv2d_reduction(w_shape)) * magnitude + 1e-300, \
        (lhs, rhs)

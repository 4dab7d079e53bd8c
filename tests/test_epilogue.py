"""The fused epilogue (cconv.Epilogue, residual=): every activation x dtype x algorithm x
(scale, shift, residual, bias) against the same steps taken one at a time by cconv (the
convolution without epilogue, numpy's * and +, cconv.nn's activation): equal to the bit, but
below the normal range (the kernels flush subnormals); against torch's unfused graph;
thread-count independence; modules against functional calls; the bias-only paths;
residuals that alias the output or the input; argument errors."""
import pickle

import numpy as np
import pytest

import cconv
from cconv import Epilogue
from cconv.nn import functional as F  # noqa: N812  (torch's spelling)

DTYPES = [np.float32, np.float64]
ACTS = [(None, {}), ("relu", {}), ("relu6", {}), ("clamp", {"min": -0.5, "max": 0.75}),
        ("leaky_relu", {"negative_slope": 0.2}), ("sigmoid", {}), ("silu", {}),
        ("hardswish", {}), ("hardsigmoid", {}), ("gelu", {}), ("gelu_tanh", {}), ("tanh", {})]
# (name, transposed, x shape, w shape, kwargs, algorithm): every kernel path.
PATHS = [
    ("igemm", False, (2, 5, 9, 13), (7, 5, 3, 3), {"padding": 1}, "igemm"),
    ("igemm_1x1_in_place", False, (2, 6, 8, 8), (11, 6, 1, 1), {}, "igemm"),
    ("igemm_padded_band", False, (1, 4, 7, 9), (5, 4, 3, 3), {"padding": 2}, "igemm"),
    ("igemm_cl", False, (2, 5, 9, 13), (7, 5, 3, 3), {"padding": 1}, "igemm_cl"),
    ("igemm_groups", False, (2, 6, 8, 7), (9, 2, 3, 2), {"groups": 3, "stride": 2}, "igemm"),
    ("depthwise", False, (2, 6, 10, 37), (12, 1, 3, 3), {"padding": 1, "groups": 6},
     "depthwise"),
    ("depthwise_flat", False, (2, 6, 6, 5), (6, 1, 3, 3), {"padding": 1, "groups": 6},
     "depthwise"),
    ("depthwise_cl", False, (2, 19, 7, 6), (19, 1, 3, 3), {"padding": 1, "groups": 19},
     "depthwise_cl"),
    ("transposed_phases", True, (2, 5, 6, 7), (5, 4, 3, 3), {"stride": 2, "padding": 1},
     "igemm"),
    ("transposed_phases_cl", True, (2, 5, 6, 7), (5, 4, 3, 3), {"stride": 2, "padding": 1},
     "igemm_cl"),
    ("transposed_stride3", True, (1, 3, 5, 4), (3, 4, 2, 3), {"stride": 3}, "igemm"),
    ("depth_to_space", True, (2, 6, 5, 7), (6, 3, 2, 2), {"stride": 2}, "igemm"),
    ("depth_to_space_3", True, (1, 4, 4, 5), (4, 2, 3, 3), {"stride": 3}, "igemm"),
    ("winograd", False, (2, 5, 9, 13), (7, 5, 3, 3), {"padding": 1}, "winograd"),
    ("winograd_groups", False, (1, 6, 11, 6), (9, 2, 3, 3), {"groups": 3, "padding": (2, 0)},
     "winograd"),
]


def data(shape, dtype, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def conv(transposed, x, w, b, kwargs, **extra):
    fn = cconv.conv_transpose2d if transposed else cconv.conv2d
    return fn(x, w, b, **kwargs, **extra)


def activation(y, name, params):
    """cconv.nn's activation, the same vector code the epilogue runs."""
    if name is None:
        return y
    if name == "clamp":
        lo, hi = y.dtype.type(params["min"]), y.dtype.type(params["max"])
        return np.where(y < lo, lo, np.where(y > hi, hi, y))
    if name == "leaky_relu":
        return F.leaky_relu(y, params["negative_slope"])
    if name == "gelu_tanh":
        return F.gelu(y, approximate="tanh")
    return getattr(F, name)(y)


def unfused(y, epilogue, residual):
    """act(y * scale + shift + residual), one step at a time, each rounded to y's dtype."""
    dt = y.dtype
    if epilogue is not None and epilogue.scale is not None:
        y = y * epilogue.scale.astype(dt)[:, None, None]
    if epilogue is not None and epilogue.shift is not None:
        y = y + epilogue.shift.astype(dt)[:, None, None]
    if residual is not None:
        y = y + residual
    if epilogue is None:
        return y
    params = {k: getattr(epilogue, k) for k in ("min", "max", "negative_slope")}
    return activation(y, epilogue.activation, params)


def assert_same(got, want):
    """Equal to the bit, NaN included, except where the result is subnormal (the kernels
    flush subnormals to zero, the element-wise activations do not)."""
    tiny = np.finfo(got.dtype).tiny
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=0, atol=64 * tiny, equal_nan=True)
    normal = np.abs(want) >= 64 * tiny
    np.testing.assert_array_equal(got[normal], want[normal])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("act", "params"), ACTS, ids=[str(a) for a, _ in ACTS])
@pytest.mark.parametrize("parts", ["scale+shift+residual+bias", "bias", "shift+residual",
                                   "scale", "residual"])
@pytest.mark.parametrize("path", PATHS, ids=[p[0] for p in PATHS])
def test_fused_equals_unfused(path, parts, act, params, dtype):
    _, transposed, x_shape, w_shape, kwargs, algorithm = path
    groups = kwargs.get("groups", 1)
    C_out = w_shape[1] * groups if transposed else w_shape[0]
    x = data(x_shape, dtype, 1) * 2
    w = data(w_shape, dtype, 2)
    b = data((C_out,), dtype, 3) if "bias" in parts else None
    rng = np.random.default_rng(4)
    epilogue = Epilogue(rng.uniform(-2, 2, C_out) if "scale" in parts else None,
                        rng.uniform(-1, 1, C_out) if "shift" in parts else None, act,
                        **params)
    plain = conv(transposed, x, w, b, kwargs, algorithm=algorithm)
    residual = data(plain.shape, dtype, 5) if "residual" in parts else None
    got = conv(transposed, x, w, b, kwargs, algorithm=algorithm, epilogue=epilogue,
               residual=residual)
    assert_same(got, unfused(plain, epilogue, residual))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu", "clamp"])
@pytest.mark.parametrize("path", PATHS, ids=[p[0] for p in PATHS])
def test_relu_and_clamp_with_bias_are_exact(path, act, dtype):
    """Only a bias and relu/clamp fused: no rounding beyond the convolution's, so the result
    is numpy's max/min of the plain convolution, to the bit (subnormals included)."""
    _, transposed, x_shape, w_shape, kwargs, algorithm = path
    groups = kwargs.get("groups", 1)
    C_out = w_shape[1] * groups if transposed else w_shape[0]
    x, w, b = data(x_shape, dtype, 1), data(w_shape, dtype, 2), data((C_out,), dtype, 3)
    plain = conv(transposed, x, w, b, kwargs, algorithm=algorithm)
    if act == "relu":
        epilogue, want = Epilogue(activation="relu"), np.where(plain < 0, 0, plain)
    else:
        epilogue = Epilogue(activation="clamp", min=0.0, max=6.0)
        want = np.minimum(np.where(plain < 0, 0, plain), 6).astype(dtype)
    got = conv(transposed, x, w, b, kwargs, algorithm=algorithm, epilogue=epilogue)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["relu6", "silu", "gelu", "hardswish"])
def test_matches_torch_unfused_graph(act, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    x, w, b = data((2, 8, 12, 12), dtype, 1), data((16, 8, 3, 3), dtype, 2), data((16,),
                                                                                   dtype, 3)
    rng = np.random.default_rng(0)
    scale, shift = rng.uniform(0.5, 2, 16), rng.uniform(-1, 1, 16)
    residual = data((2, 16, 12, 12), dtype, 4)
    got = cconv.conv2d(x, w, b, padding=1, epilogue=Epilogue(scale, shift, act),
                       residual=residual)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=dtype))  # noqa: E731
    y = tf.conv2d(t(x), t(w), t(b), padding=1) * t(scale)[:, None, None] + t(shift)[:, None,
                                                                                       None]
    want = getattr(tf, act)(y + t(residual)).numpy()
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12,
                                                                     "atol": 1e-12}
    np.testing.assert_allclose(got, want, **tol)


@pytest.mark.parametrize("path", PATHS, ids=[p[0] for p in PATHS])
def test_thread_count_bitwise(path):
    _, transposed, x_shape, w_shape, kwargs, algorithm = path
    groups = kwargs.get("groups", 1)
    C_out = w_shape[1] * groups if transposed else w_shape[0]
    x_shape = (4,) + x_shape[1:2] + (x_shape[2] * 3, x_shape[3] * 3)
    x, w, b = data(x_shape, np.float32, 1), data(w_shape, np.float32, 2), data((C_out,),
                                                                               np.float32, 3)
    epilogue = Epilogue(np.linspace(0.5, 2, C_out), np.linspace(-1, 1, C_out), "gelu")
    residual = data(conv(transposed, x, w, b, kwargs).shape, np.float32, 4)
    results = []
    before = cconv.get_num_threads()
    try:
        for n in (1, 2, 3):
            cconv.set_num_threads(n)
            results.append(conv(transposed, x, w, b, kwargs, algorithm=algorithm,
                                epilogue=epilogue, residual=residual))
    finally:
        cconv.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_modules_equal_functional(dtype):
    rng = np.random.default_rng(0)
    m = cconv.Conv2d(4, 6, 3, padding=1, dtype=dtype, rng=1)
    m.epilogue = Epilogue(rng.uniform(size=6), rng.uniform(size=6), "silu")
    x = data((2, 4, 9, 9), dtype, 2)
    r = data((2, 6, 9, 9), dtype, 3)
    want = cconv.conv2d(x, m.weight, m.bias, padding=1, epilogue=m.epilogue, residual=r)
    np.testing.assert_array_equal(m(x, r), want)
    np.testing.assert_array_equal(m.forward(x, residual=r), want)
    np.testing.assert_array_equal(m(x[0], r[0]), want[0])       # unbatched
    t = cconv.ConvTranspose2d(4, 3, 3, stride=2, padding=1, dtype=dtype, rng=1)
    t.epilogue = Epilogue(shift=[1.0, -1.0, 0.5], activation="clamp", min=0.0, max=1.0)
    rt = data((2, 3, 17, 17), dtype, 4)
    want = cconv.conv_transpose2d(x, t.weight, t.bias, stride=2, padding=1,
                                  epilogue=t.epilogue, residual=rt)
    np.testing.assert_array_equal(t(x, residual=rt), want)


def test_module_repr_pickle_and_default():
    m = cconv.Conv2d(3, 4, 3)
    assert m.epilogue is None and "epilogue" not in repr(m)
    m.epilogue = Epilogue([1, 2, 3, 4], None, "leaky_relu", negative_slope=0.1)
    assert repr(m).endswith("epilogue=Epilogue(scale=[4 channels], activation='leaky_relu', "
                            "negative_slope=0.1))")
    x = data((1, 3, 6, 6), np.float32, 0)
    copy = pickle.loads(pickle.dumps(m))
    assert copy.epilogue == m.epilogue
    np.testing.assert_array_equal(copy(x), m(x))
    assert pickle.loads(pickle.dumps(m.epilogue)) == m.epilogue
    m.epilogue = None
    np.testing.assert_array_equal(m(x), cconv.conv2d(x, m.weight, m.bias))
    assert "epilogue" not in m.state_dict()


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_only_outputs(dtype):
    """No kernel (no input channels), and a transposed convolution whose stride skips
    outputs no tap reaches: those are their bias, and get the epilogue too."""
    epilogue = Epilogue([2.0, -1.0], [0.5, 0.25], "sigmoid")
    b = np.array([0.3, -0.7], dtype)
    x = np.zeros((2, 0, 5, 5), dtype)
    w = np.zeros((2, 0, 3, 3), dtype)
    r = data((2, 2, 3, 3), dtype, 1)
    assert_same(cconv.conv2d(x, w, b, epilogue=epilogue, residual=r),
                unfused(cconv.conv2d(x, w, b), epilogue, r))
    x, w = data((1, 3, 4, 4), dtype, 2), data((3, 2, 1, 1), dtype, 3)
    plain = cconv.conv_transpose2d(x, w, b, stride=3)
    r = data(plain.shape, dtype, 4)
    for algorithm in ("igemm", "igemm_cl"):
        got = cconv.conv_transpose2d(x, w, b, stride=3, algorithm=algorithm,
                                     epilogue=epilogue, residual=r)
        assert_same(got, unfused(plain, epilogue, r))


def test_residual_may_be_out_or_input():
    """residual=out is an in-place add (out's old values are read first); a residual that is
    the input is only read."""
    x, w, b = data((2, 6, 7, 7), np.float32, 1), data((6, 6, 1, 1), np.float32, 2), None
    epilogue = Epilogue(activation="relu")
    out = data((2, 6, 7, 7), np.float32, 3)
    want = unfused(cconv.conv2d(x, w, b), epilogue, out.copy())
    got = cconv.conv2d(x, w, b, out=out, epilogue=epilogue, residual=out)
    assert got is out
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(cconv.conv2d(x, w, epilogue=epilogue, residual=x),
                                  unfused(cconv.conv2d(x, w), epilogue, x))


def test_residual_layouts_are_read_as_values():
    x, w = data((1, 3, 6, 6), np.float64, 1), data((4, 3, 3, 3), np.float64, 2)
    r = np.asfortranarray(data((1, 4, 4, 4), np.float64, 3))
    want = cconv.conv2d(x, w) + r
    np.testing.assert_array_equal(cconv.conv2d(x, w, residual=r), want)
    np.testing.assert_array_equal(cconv.conv2d(x, w, residual=r.astype(">f8")), want)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"activation": "swish"}, ValueError, "unknown activation 'swish'"),
    ({"activation": 3}, TypeError, "activation must be None or a str"),
    ({"activation": "relu", "min": 0.0}, ValueError, "min and max apply to"),
    ({"activation": "clamp", "min": 2.0, "max": 1.0}, ValueError, "min <= max"),
    ({"activation": "clamp", "min": "0"}, TypeError, "min must be a real number"),
    ({"activation": "sigmoid", "negative_slope": 0.1}, ValueError, "negative_slope applies"),
    ({"scale": [[1.0, 2.0]]}, ValueError, "scale must be a 1-D array"),
    ({"shift": ["a", "b"]}, TypeError, "shift must be None or a 1-D array of numbers"),
    ({"scale": object()}, TypeError, "scale must be None or a 1-D array of numbers"),
    ({"scale": [True, False]}, ValueError, "scale must be a 1-D array of real numbers"),
])
def test_epilogue_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        Epilogue(**kwargs)


def test_call_errors():
    x, w = data((1, 3, 6, 6), np.float32, 1), data((4, 3, 3, 3), np.float32, 2)
    with pytest.raises(ValueError, match=r"epilogue scale has 3 entries, expected one per "
                                         r"output channel \(4\)"):
        cconv.conv2d(x, w, epilogue=Epilogue(scale=[1, 2, 3]))
    with pytest.raises(TypeError, match="epilogue must be None or a cconv.Epilogue"):
        cconv.conv2d(x, w, epilogue="relu")
    with pytest.raises(ValueError, match=r"residual has shape \(1, 4, 5, 4\), expected the "
                                         r"output's \(1, 4, 4, 4\)"):
        cconv.conv2d(x, w, residual=np.zeros((1, 4, 5, 4), np.float32))
    with pytest.raises(TypeError, match="residual has dtype float64, expected the output's "
                                        "float32"):
        cconv.conv2d(x, w, residual=np.zeros((1, 4, 4, 4)))
    with pytest.raises(TypeError, match="residual must be a numpy.ndarray"):
        cconv.conv2d(x, w, residual=[[0.0]])
    with pytest.raises(ValueError, match="epilogue shift has 2 entries"):
        cconv.conv_transpose2d(x, w.transpose(1, 0, 2, 3).copy(), epilogue=Epilogue(
            shift=[1, 2]))
    m = cconv.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"Conv2d\(\): epilogue scale has 2 entries"):
        m.epilogue = Epilogue(scale=[1, 2])
    with pytest.raises(ValueError, match=r"Conv2d\(\): residual has shape"):
        m(x, np.zeros((1, 4, 5, 4), np.float32))
    with pytest.raises(AttributeError, match="immutable"):
        Epilogue().activation = "relu"

"""cconv.nn's activations against torch's: every layer and functional form on float32 and
float64 arrays of several shapes (empty, 0-dim, 1-D, 4-D, large enough to run on several
threads) and special values (+-0, large +-, NaN, +-inf); exact where torch's formula has no
rounding (relu, relu6, leaky_relu, hardsigmoid), to a few ulps elsewhere; inplace semantics,
repr, thread-count independence and argument errors. The parts without torch run without
it."""
import warnings

import numpy as np
import pytest

import cconv
from cconv import nn
from cconv.nn import functional as F  # noqa: N812  (torch's spelling)

SPECIAL = [np.nan, -0.0, 0.0, -np.inf, np.inf, -3.0, 3.0, -6.0, 6.0, 1e30, -1e30, 1e-40, -1e-40,
           80.0, -80.0, 700.0, -700.0, 0.5, -0.5, 1e-3, -1e-3]
SHAPES = [(0,), (2, 0, 3), (), (7,), (2, 3, 5, 4), (1, 70000)]
DTYPES = [np.float32, np.float64]
# (name, call on cconv, call on torch, exact): exact ones have no rounding in torch either.
CASES = [
    ("relu", lambda m, x: m.relu(x), True),
    ("relu6", lambda m, x: m.relu6(x), True),
    ("leaky_relu", lambda m, x: m.leaky_relu(x), True),
    ("leaky_relu_0.2", lambda m, x: m.leaky_relu(x, 0.2), True),
    ("sigmoid", lambda m, x: m.sigmoid(x), False),
    ("tanh", lambda m, x: m.tanh(x), False),
    ("silu", lambda m, x: m.silu(x), False),
    ("hardswish", lambda m, x: m.hardswish(x), False),
    ("hardsigmoid", lambda m, x: m.hardsigmoid(x), True),
    ("gelu", lambda m, x: m.gelu(x), False),
    ("gelu_tanh", lambda m, x: m.gelu(x, approximate="tanh"), False),
    ("softmax_last", lambda m, x: m.softmax(x, dim=-1), False),
    ("softmax_0", lambda m, x: m.softmax(x, 0), False),
]
LAYERS = [
    ("ReLU", (), {}), ("ReLU", (), {"inplace": True}), ("ReLU6", (), {}),
    ("ReLU6", (True,), {}), ("LeakyReLU", (), {}), ("LeakyReLU", (0.2, True), {}),
    ("Sigmoid", (), {}), ("Tanh", (), {}), ("SiLU", (), {}), ("SiLU", (), {"inplace": True}),
    ("Hardswish", (), {}), ("Hardswish", (True,), {}), ("Hardsigmoid", (), {}),
    ("Hardsigmoid", (), {"inplace": True}), ("GELU", (), {}), ("GELU", ("tanh",), {}),
    ("Softmax", (), {"dim": 1}), ("Softmax", (-1,), {}), ("Softmax", (), {}),
]
ELEMENTWISE = ["relu", "relu6", "leaky_relu", "sigmoid", "tanh", "silu", "hardswish",
               "hardsigmoid", "gelu"]


def sample(shape, dtype, seed=0):
    """Random values of several magnitudes with the special values spread over them."""
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape) * rng.choice([0.1, 1.0, 4.0, 30.0], size=shape))
    flat = x.reshape(-1)
    for i, v in enumerate(SPECIAL[:flat.size]):
        flat[(i * 7919) % flat.size] = v
    return x.astype(dtype)


def tolerance(dtype, name=""):
    if dtype == np.float64:
        return {"rtol": 1e-13, "atol": 1e-15}
    # torch's vectorised float32 erf is off by about 1e-6 absolute near |x| = 3.5, where
    # cconv's (libm's erff) is within an ulp of the float64 value.
    return {"rtol": 2e-6, "atol": 5e-6 if name in ("gelu", "GELU") else 1e-6}


def fix_exact_gelu(x, got, want):
    """torch's float32 exact gelu is NaN at +inf (its erf); the formula's limit, which cconv
    gives, is inf: check that and take it as torch's."""
    if x.dtype == np.float32:
        inf = np.isposinf(x)
        assert np.all(got[inf] == np.inf)
        want[inf] = np.inf


def torch_result(torch, call, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return call(torch.nn.functional, torch.from_numpy(x.copy())).numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(("name", "call", "exact"), CASES, ids=[c[0] for c in CASES])
def test_functional_matches_torch(name, call, exact, shape, dtype):
    torch = pytest.importorskip("torch")
    if name == "softmax_0" and shape == (1, 70000):
        shape = (70000, 3)
    x = sample(shape, dtype)
    got = call(F, x)
    want = torch_result(torch, call, x)
    assert got.dtype == dtype and got.shape == want.shape
    if name == "gelu":
        fix_exact_gelu(x, got, want)
    if exact:
        np.testing.assert_array_equal(got, want)
        # -0 as torch: relu(-0) is -0, relu(-3) is +0 (a NaN's sign is no one's business).
        number = ~np.isnan(want)
        np.testing.assert_array_equal(np.signbit(got[number]), np.signbit(want[number]))
    else:
        np.testing.assert_allclose(got, want, equal_nan=True, **tolerance(dtype, name))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "args", "kwargs"), LAYERS,
                         ids=[f"{n}{a}{k}" for n, a, k in LAYERS])
def test_layer_matches_torch(name, args, kwargs, dtype):
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    x = sample((2, 3, 5, 4), dtype, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        want = theirs(torch.from_numpy(x.copy())).numpy()
        got = ours(x.copy())
    if name == "GELU" and not args:
        fix_exact_gelu(x, got, want)
    np.testing.assert_allclose(got, want, equal_nan=True, **tolerance(dtype, name))


@pytest.mark.parametrize("name", ["Sigmoid", "Tanh", "Softmax"])
def test_layers_in_a_sequential_repr_as_torch(name):
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(inplace=True), getattr(nn, name)(),
                         nn.GELU("tanh"), nn.LeakyReLU(0.1))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(inplace=True),
                                 getattr(torch.nn, name)(), torch.nn.GELU("tanh"),
                                 torch.nn.LeakyReLU(0.1))
    assert repr(ours) == repr(theirs)


def test_reexported():
    for name in ELEMENTWISE + ["softmax"]:
        assert getattr(F, name) is getattr(nn.activation, name)
        assert name in F.__all__
    for name in ["ReLU", "ReLU6", "LeakyReLU", "Sigmoid", "Tanh", "SiLU", "Hardswish",
                 "Hardsigmoid", "GELU", "Softmax"]:
        assert issubclass(getattr(nn, name), nn.Module) and name in nn.__all__


# ---- without torch ---------------------------------------------------------------------------

def test_known_values():
    x = np.array([np.nan, -0.0, 0.0, -np.inf, np.inf, -3.0, 3.0, 7.0, -1.0])
    nan = np.nan
    np.testing.assert_array_equal(F.relu(x), [nan, -0.0, 0, 0, np.inf, 0, 3, 7, 0])
    np.testing.assert_array_equal(F.relu6(x), [nan, -0.0, 0, 0, 6, 0, 3, 6, 0])
    np.testing.assert_array_equal(F.leaky_relu(x, 0.5),
                                  [nan, -0.0, 0, -np.inf, np.inf, -1.5, 3, 7, -0.5])
    np.testing.assert_array_equal(F.hardsigmoid(x), [nan, 0.5, 0.5, 0, 1, 0, 1, 1, 1 / 3])
    np.testing.assert_array_equal(F.hardswish(x), [nan, -0.0, 0, nan, np.inf, 0, 3, 7, -1 / 3])
    np.testing.assert_allclose(F.sigmoid(x), [nan, 0.5, 0.5, 0, 1, 1 / (1 + np.exp(3)),
                                              1 / (1 + np.exp(-3)), 1 / (1 + np.exp(-7)),
                                              1 / (1 + np.e)], rtol=1e-15)
    # silu(-inf) is -inf * 0: NaN, as torch.
    assert np.isnan(F.silu(x)[3]) and F.gelu(x)[4] == np.inf


def test_sigmoid_is_stable_for_large_magnitudes():
    for dtype in DTYPES:
        x = np.array([-1e30, -1000.0, -100.0, 100.0, 1000.0, 1e30], dtype)
        with np.errstate(all="raise"):
            y = F.sigmoid(x)
        assert np.all(np.isfinite(y)) and y[0] == 0 and y[-1] == 1
        assert 0 < F.sigmoid(np.array([-100.0]))[0] < 1e-43


def test_float32_is_computed_in_float32():
    x = np.linspace(-8, 8, 1001, dtype=np.float32)
    for name in ELEMENTWISE:
        y = getattr(F, name)(x)
        assert y.dtype == np.float32
        ref = getattr(F, name)(x.astype(np.float64))
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("name", ["relu", "relu6", "leaky_relu", "silu", "hardswish",
                                  "hardsigmoid"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_writes_into_the_input(name, dtype):
    fn = getattr(F, name)
    x = sample((3, 4, 5), dtype)
    want = fn(x)
    y = fn(x, inplace=True)
    assert y is x
    np.testing.assert_array_equal(x, want)
    layer = {"relu": nn.ReLU, "relu6": nn.ReLU6, "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU,
             "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid}[name](inplace=True)
    x = sample((3, 4, 5), dtype)
    assert layer(x) is x
    np.testing.assert_array_equal(x, want)


@pytest.mark.parametrize("make", [
    lambda x: x[:, ::2],                                     # not contiguous
    lambda x: np.asfortranarray(x),                          # not C-contiguous
    lambda x: x.astype(x.dtype.newbyteorder()),              # other byte order
    lambda x: x.tolist(),                                    # not an array
], ids=["strided", "fortran", "swapped", "list"])
def test_inplace_on_what_cannot_hold_it_gives_a_new_array(make):
    x = sample((4, 6), np.float64)
    arg = make(x)
    before = np.array(arg, copy=True)
    y = F.relu(arg, inplace=True)
    assert y is not arg and y.flags.c_contiguous
    np.testing.assert_array_equal(y, F.relu(before))
    np.testing.assert_array_equal(np.asarray(arg), before)


def test_inplace_on_read_only_gives_a_new_array():
    x = sample((4, 6), np.float32)
    x.flags.writeable = False
    y = F.silu(x, inplace=True)
    assert y is not x and y.flags.writeable
    np.testing.assert_array_equal(y, F.silu(x))


def test_not_inplace_leaves_the_input():
    x = sample((4, 6), np.float32)
    before = x.copy()
    for name in ELEMENTWISE:
        y = getattr(F, name)(x)
        assert y is not x
    F.softmax(x, 1)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", ELEMENTWISE + ["gelu_tanh", "softmax_1", "softmax_last"])
def test_one_thread_equals_two_bitwise(name):
    # Large enough that even relu runs on two threads, with a short last chunk.
    x = sample((2_100_003,), np.float32, seed=2)
    calls = {"gelu_tanh": lambda a: F.gelu(a, "tanh"),
             "softmax_1": lambda a: F.softmax(a[:2_100_000].reshape(3, 7000, 100), 1),
             "softmax_last": lambda a: F.softmax(a[:2_100_000].reshape(21000, 100), -1)}
    call = calls.get(name) or getattr(F, name)
    try:
        cconv.set_num_threads(1)
        one = call(x)
        cconv.set_num_threads(2)
        two = call(x)
    finally:
        cconv.set_num_threads(None)
    assert one.tobytes() == two.tobytes()


def test_large_arrays_use_several_threads():
    from cconv import _threads
    from cconv._kernels import _elementwise
    n = 2_100_003
    chunks = -(-n // _elementwise.CHUNK_ELEMENTS)
    assert _threads.threads_for(chunks, n, 2) == 2


def test_strided_and_read_only_inputs():
    x = sample((6, 8), np.float64)
    view = x[::-2, 1::3]
    ro = x.copy()
    ro.flags.writeable = False
    for name in ELEMENTWISE:
        fn = getattr(F, name)
        np.testing.assert_array_equal(fn(view), fn(np.ascontiguousarray(view)))
        np.testing.assert_array_equal(fn(ro), fn(x))


def test_softmax():
    x = sample((3, 4, 5), np.float64)[:, :, ::-1]
    x[np.isnan(x) | np.isinf(x)] = 1.0
    for dim in range(-3, 3):
        y = F.softmax(x, dim)
        e = np.exp(x - x.max(axis=dim, keepdims=True))
        np.testing.assert_allclose(y, e / e.sum(axis=dim, keepdims=True), rtol=1e-15)
    big = np.array([[1000.0, 1000.0], [-1000.0, -1001.0]], np.float32)
    np.testing.assert_allclose(F.softmax(big, 1), [[0.5, 0.5], [1 / (1 + np.exp(-1.0)),
                                                               1 / (1 + np.e)]], rtol=1e-6)
    assert F.softmax(np.float32(3.0), 0) == 1 and F.softmax(np.zeros((0, 3)), 1).shape == (0, 3)
    assert F.softmax(x, 1, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize(("ndim", "dim"), [(0, 0), (1, 0), (2, 1), (3, 0), (4, 1), (5, 1)])
def test_softmax_implicit_dim_as_torch(ndim, dim):
    x = sample((2,) * ndim, np.float64)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax") as record:
        y = F.softmax(x)
    assert record[0].filename == __file__
    np.testing.assert_array_equal(y, F.softmax(x, dim))
    with pytest.warns(UserWarning) as record:
        nn.Softmax()(x)
    assert record[0].filename == __file__


def test_errors():
    ints = np.arange(4)
    for name in ELEMENTWISE + ["softmax"]:
        with pytest.raises(TypeError, match=rf"{name}\(\): input must have dtype float32 or "
                                            r"float64, got int64"):
            getattr(F, name)(ints)
    with pytest.raises(TypeError, match="input must have dtype float32 or float64, got "
                                        "float16"):
        nn.ReLU()(np.zeros(3, np.float16))
    with pytest.raises(ValueError, match="approximate argument must be either none or tanh"):
        F.gelu(np.zeros(3), approximate="fast")
    with pytest.raises(ValueError, match="approximate argument must be either none or tanh"):
        nn.GELU("erf")
    with pytest.raises(TypeError, match="negative_slope must be a number, got str"):
        F.leaky_relu(np.zeros(3), "0.1")
    with pytest.raises(TypeError, match="negative_slope must be a number"):
        nn.LeakyReLU(None)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                         r"of \[-2, 1\], but got 2\)"):
        F.softmax(np.zeros((2, 3)), 2)
    with pytest.raises(IndexError, match=r"range of \[-1, 0\], but got 1"):
        nn.Softmax(1)(np.float64(1.0))
    with pytest.raises(TypeError, match="argument 'dim' must be int, not float"):
        F.softmax(np.zeros(3), 1.5)
    with pytest.raises(TypeError, match="dtype must be float32, float64 or None"):
        F.softmax(np.zeros(3), 0, dtype=np.int32)


# ---- accuracy of the vector code (activation.h) against a higher-precision reference ------
ULPS = 5


def wide_sample(dtype, n=3000, seed=0):
    """Magnitudes from the least subnormal to the largest finite, both signs, with the
    specials (+-0, +-inf, NaN, the extremes) and a dense band where the functions bend."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    lo, hi = np.log10(info.smallest_subnormal), np.log10(info.max)
    mags = 10.0 ** rng.uniform(lo, hi, n)
    dense = rng.uniform(-30, 30, n)
    special = [np.nan, 0.0, -0.0, np.inf, -np.inf, info.max, -info.max,
               info.smallest_subnormal, -info.smallest_subnormal, info.tiny, -info.tiny]
    x = np.concatenate([mags * rng.choice([-1, 1], n), dense, special])
    return x.astype(dtype)


def _exp_saturating(arg, dtype, exp):
    """exp(arg) as torch's formula meets it: inf where the dtype's exp overflows."""
    big = float(np.log(np.finfo(dtype).max))
    return [np.inf if a > big else exp(a) for a in arg]


def reference(name, x, dtype, exp, erfc, tanh):
    """name(x), each element computed in the reference's precision from the arguments the
    vector code forms in dtype (gelu's x/sqrt(2) and gelu_tanh's inner sum are rounded to
    dtype in torch's formula too)."""
    xs = [float(v) for v in x]
    if name == "sigmoid":
        return [1 / (1 + e) for e in _exp_saturating([-v for v in xs], dtype, exp)]
    if name == "silu":
        return [v / (1 + e) for v, e in zip(xs, _exp_saturating([-v for v in xs], dtype, exp))]
    if name == "tanh":
        return [tanh(v) for v in xs]
    if name == "gelu":
        with np.errstate(over="ignore", invalid="ignore"):
            z = x * dtype(0.70710678118654752440)
        return [v * 0.5 * erfc(-float(zz)) for v, zz in zip(xs, z)]
    with np.errstate(over="ignore", invalid="ignore"):      # gelu_tanh
        arg = (x + dtype(0.044715) * (x * x * x)) * dtype(-1.5957691216057307)
    return [v / (1 + e) for v, e in zip(xs, _exp_saturating([float(a) for a in arg], dtype,
                                                             exp))]


def assert_ulps(got, want, dtype):
    """got within ULPS units in the last place of want (want in a wider precision), within
    the least normal number where want is below it, NaN and infinities where want has
    them."""
    want64 = np.array([float(w) if w == w else np.nan for w in want])
    nan = np.isnan(want64)
    np.testing.assert_array_equal(np.isnan(got), nan)
    inf = np.isinf(want64)
    np.testing.assert_array_equal(got[inf], want64[inf])
    ok = ~(nan | inf)
    err = np.abs(got[ok].astype(np.float64) - want64[ok])
    with np.errstate(over="ignore"):
        ulp = np.spacing(np.abs(want64[ok]).astype(dtype)).astype(np.float64)
    bound = np.where(np.abs(want64[ok]) < np.finfo(dtype).tiny, np.finfo(dtype).tiny,
                     ULPS * ulp)
    bad = np.flatnonzero(err > bound)
    assert bad.size == 0, (f"{bad.size} beyond {ULPS} ulps, e.g. x={got[ok][bad[0]]!r} "
                           f"error {err[bad[0]] / ulp[bad[0]]:.3g} ulps")


TRANSCENDENTAL = {"sigmoid": F.sigmoid, "silu": F.silu, "tanh": F.tanh, "gelu": F.gelu,
                  "gelu_tanh": lambda x: F.gelu(x, approximate="tanh")}


@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_float32_within_a_few_ulps(name):
    """float32 against the same formula in float64 (numpy's exp and tanh, math.erfc)."""
    import math
    x = wide_sample(np.float32)
    with np.errstate(all="ignore"):
        want = reference(name, x, np.float32, math.exp, math.erfc, math.tanh)
    assert_ulps(TRANSCENDENTAL[name](x), want, np.float32)


@pytest.mark.parametrize("name", TRANSCENDENTAL)
def test_float64_within_a_few_ulps(name):
    """float64 against the same formula in 40-digit arithmetic (mpmath)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    x = wide_sample(np.float64, n=300)

    def exp(a):
        return mp.exp(a) if not abs(a) >= 1e6 else (mp.inf if a > 0 else mp.mpf(0))

    def tanh(a):
        return mp.tanh(a) if not abs(a) >= 1e3 else mp.sign(a)

    def erfc(a):
        return mp.erfc(a) if not abs(a) >= 1e6 else (mp.mpf(0) if a > 0 else mp.mpf(2))

    with np.errstate(all="ignore"):
        want = reference(name, x, np.float64, exp, erfc, tanh)
    assert_ulps(TRANSCENDENTAL[name](x), want, np.float64)

"""cconv.nn's pooling (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d and their
functional forms) against torch's: output sizes and values over a grid of kernels, strides,
paddings, dilations, ceil_mode and divisors on prime-sized inputs; NaN and infinities; the
indices; one thread against two; errors in torch's words; repr. The parts without torch run
without it."""
import itertools

import numpy as np
import pytest

import cconv
from cconv import _threads, nn

F = nn.functional

DTYPES = (np.float32, np.float64)


def data(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def torch_call(torch, name, x, *args, **kwargs):
    out = getattr(torch.nn.functional, name)(torch.from_numpy(x), *args, **kwargs)
    if isinstance(out, tuple):
        return tuple(o.numpy() for o in out)
    return out.numpy()


def assert_close(y, ref, dtype):
    assert y.shape == ref.shape and y.dtype == ref.dtype
    rtol = 1e-5 if np.dtype(dtype) == np.float32 else 1e-12
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=rtol)


def torch_errors(torch, name, x, *args, **kwargs):
    """torch's message for the call, or None when torch accepts it."""
    try:
        torch_call(torch, name, x, *args, **kwargs)
    except (RuntimeError, ValueError, IndexError) as exc:
        return str(exc).split("\n")[0]
    return None


# ---- max and avg over a grid, against torch ------------------------------------------------
KERNELS = [1, 2, 3, 4, (2, 3), (4, 1)]
STRIDES = [None, 1, 2, (3, 2)]
SHAPES = [(3, 2, 7, 11), (1, 1, 5, 5), (0, 2, 7, 5), (3, 13, 17)]


def paddings(kernel):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    # Every padding torch allows (0 .. k // 2), and one too many.
    return [0] + sorted({(ph, pw) for ph in range(kh // 2 + 1) for pw in range(kw // 2 + 1)}
                        | {(kh // 2 + 1, 0)})


def grid(with_dilation):
    for kernel, stride in itertools.product(KERNELS, STRIDES):
        for padding in paddings(kernel):
            for dilation in ([1, 2, (1, 3)] if with_dilation else [1]):
                for ceil_mode in (False, True):
                    yield kernel, stride, padding, dilation, ceil_mode


MAX_GRID = list(grid(True))
AVG_GRID = list(grid(False))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_pool2d_equals_torch(torch, shape, dtype):
    x = data(shape, dtype)
    checked = 0
    for kernel, stride, padding, dilation, ceil_mode in MAX_GRID:
        args = (kernel, stride, padding, dilation)
        message = torch_errors(torch, "max_pool2d", x, *args, ceil_mode=ceil_mode)
        if message is not None:
            with pytest.raises(ValueError) as info:
                F.max_pool2d(x, *args, ceil_mode=ceil_mode)
            assert message in str(info.value) or "3D or 4D" in message, (args, message)
            continue
        ref, ref_idx = torch_call(torch, "max_pool2d", x, *args, ceil_mode=ceil_mode,
                                  return_indices=True)
        y, idx = F.max_pool2d(x, *args, ceil_mode=ceil_mode, return_indices=True)
        np.testing.assert_array_equal(y, ref, err_msg=str(args))
        assert y.dtype == ref.dtype and y.shape == ref.shape
        np.testing.assert_array_equal(idx, ref_idx, err_msg=str(args))
        np.testing.assert_array_equal(F.max_pool2d(x, *args, ceil_mode=ceil_mode), y)
        checked += 1
    assert checked > len(MAX_GRID) // 3


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_avg_pool2d_equals_torch(torch, shape, dtype):
    x = data(shape, dtype)
    checked = 0
    for kernel, stride, padding, _, ceil_mode in AVG_GRID:
        for count_include_pad, divisor in [(True, None), (False, None), (True, 5),
                                           (False, -3)]:
            args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor)
            message = torch_errors(torch, "avg_pool2d", x, *args)
            if message is not None:
                with pytest.raises(ValueError) as info:
                    F.avg_pool2d(x, *args)
                assert message in str(info.value) or "3D or 4D" in message, (args, message)
                continue
            assert_close(F.avg_pool2d(x, *args), torch_call(torch, "avg_pool2d", x, *args),
                         dtype)
            checked += 1
    assert checked > len(AVG_GRID)


# ---- adaptive -------------------------------------------------------------------------------
OUTPUT_SIZES = [1, (1, 1), 2, (3, 4), (7, 11), (8, 13), 20, (None, 3), (4, None), (None, None),
                (0, 2)]


@pytest.mark.parametrize("shape", [(3, 2, 7, 11), (0, 2, 5, 7), (3, 7, 11), (1, 1, 1, 1)],
                         ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_adaptive_pool2d_equals_torch(torch, shape, dtype):
    x = data(shape, dtype)
    for size in OUTPUT_SIZES:
        assert_close(F.adaptive_avg_pool2d(x, size),
                     torch_call(torch, "adaptive_avg_pool2d", x, size), dtype)
        ref, ref_idx = torch_call(torch, "adaptive_max_pool2d", x, size, True)
        y, idx = F.adaptive_max_pool2d(x, size, True)
        np.testing.assert_array_equal(y, ref, err_msg=str(size))
        np.testing.assert_array_equal(idx, ref_idx, err_msg=str(size))
        np.testing.assert_array_equal(F.adaptive_max_pool2d(x, size), y)


# ---- NaN and infinities ------------------------------------------------------------------------
def special(dtype):
    x = data((2, 3, 6, 7), dtype, seed=1)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 2:4, 2:5] = -np.inf
    x[1, 0, :, :] = -np.inf
    x[1, 1, 3, 3] = np.inf
    x[1, 2, 0, 0] = np.nan
    x[1, 2, 0, 1] = np.inf
    return x


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_nan_and_inf_as_torch(torch, dtype):
    x = special(dtype)
    for args in [(2,), (3, 1, 1), (3, 2, 1, 2), (2, 1, 1, 3), ((3, 2), 2, (1, 1), 1, True)]:
        ref, ref_idx = torch_call(torch, "max_pool2d", x, *args, return_indices=True)
        y, idx = F.max_pool2d(x, *args, return_indices=True)
        np.testing.assert_array_equal(y, ref)
        np.testing.assert_array_equal(idx, ref_idx)
    for size in [1, 2, (4, 5), 9]:
        ref, ref_idx = torch_call(torch, "adaptive_max_pool2d", x, size, True)
        y, idx = F.adaptive_max_pool2d(x, size, True)
        np.testing.assert_array_equal(y, ref)
        np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_values_bit_for_bit_as_torch(torch, dtype):
    """Without indices, max pooling visits a window in torch's order too: of +0 and -0 (equal)
    the first seen stays, and a NaN wins, to the bit."""
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([0.0, -0.0, 1.0, -1.0, np.nan], dtype), size=(2, 3, 23, 29),
                   p=[0.35, 0.35, 0.1, 0.15, 0.05])
    for args in [(3, 2, 1), (2,), (3, 1, 1, 2), ((2, 3), (1, 2), (1, 0)), (5, 3, 2, 1, True)]:
        ref = torch_call(torch, "max_pool2d", x, *args)
        y = F.max_pool2d(x, *args)
        assert y.tobytes() == ref.tobytes(), args


VECTOR_WIDTHS = [15, 16, 17, 31, 33, 34, 47, 64, 67, 101]


@pytest.mark.parametrize("width", VECTOR_WIDTHS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_max_vector_rows_bit_for_bit_as_torch(torch, width, dtype, isa):
    """The micro-kernel's paths on every variant (pooling.h): interiors below, at and above one
    and two vectors of every lane count (2 to 16) and not multiples of them, strides 1, 2
    (even lanes of two loads) and 3 (a load per lane), dilation, borders on either side; a
    NaN (of either sign: the last one seen stays) and signed zeros to the bit."""
    rng = np.random.default_rng(width)
    x = rng.choice(np.array([0.0, -0.0, 1.0, -1.0, 2.0, np.nan, -np.nan], dtype),
                   size=(2, 2, 7, width), p=[0.3, 0.3, 0.1, 0.1, 0.1, 0.05, 0.05])
    x[1, 1] = data((7, width), dtype, seed=width)
    for args in [(3, 2, 1), (2, 2), (3, 1, 1), (1, 1), (3, 3), (3, (1, 3), (0, 1)),
                 ((2, 3), 2, (1, 1), 2), ((1, 5), (2, 2), (0, 2), (1, 3), True), (4, 2, 2)]:
        ref = torch_call(torch, "max_pool2d", x, *args)
        y = F.max_pool2d(x, *args)
        assert y.tobytes() == ref.tobytes(), args


def test_max_nan_wins_and_padding_never_does():
    x = -np.ones((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = np.nan
    assert np.isnan(F.max_pool2d(x, 3, 1, 1)).all()
    y = F.max_pool2d(-np.ones((1, 1, 2, 2)), 3, 1, 1)
    assert (y == -1).all()


def test_max_window_of_padding_only_is_minus_inf(torch):
    # kernel 2, dilation 3, padding 1 on 2 rows: the window reads rows -1 and 2 only.
    x = data((1, 1, 2, 2))
    y = F.max_pool2d(x, 2, 1, 1, 3)
    np.testing.assert_array_equal(y, torch_call(torch, "max_pool2d", x, 2, 1, 1, 3))
    assert np.isneginf(y).all()


# ---- threads, layouts -------------------------------------------------------------------------
CALLS = {
    "max": lambda x: F.max_pool2d(x, 3, 2, 1, 2, ceil_mode=True),
    "avg": lambda x: F.avg_pool2d(x, (3, 2), 2, 1, True, False),
    "adaptive_avg": lambda x: F.adaptive_avg_pool2d(x, (5, 7)),
    "adaptive_max": lambda x: F.adaptive_max_pool2d(x, (5, 7)),
}


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_threads_bitwise_equal(name, dtype, monkeypatch):
    # Any problem is threaded here, and the spy checks that two threads did run.
    monkeypatch.setattr(_threads, "MIN_FLOPS_PARALLEL", 0)
    chosen = []
    threads_for = _threads.threads_for
    monkeypatch.setattr(_threads, "threads_for", lambda *a: chosen.append(threads_for(*a))
                        or chosen[-1])
    x = data((3, 5, 37, 41), dtype)
    try:
        cconv.set_num_threads(1)
        one = CALLS[name](x)
        cconv.set_num_threads(2)
        two = CALLS[name](x)
    finally:
        cconv.set_num_threads(None)
    assert chosen == [1, 2]
    assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("name", CALLS)
def test_any_layout_gives_the_same_result(name):
    x = data((2, 3, 13, 11), np.float64)
    y = CALLS[name](x)
    fortran = np.asfortranarray(x)
    readonly = x.copy()
    readonly.flags.writeable = False
    reversed_ = x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]
    for variant in (fortran, readonly, reversed_, x.astype(">f8")):
        np.testing.assert_array_equal(CALLS[name](variant), y)


def test_unbatched_input_gives_unbatched_output():
    x = data((3, 9, 8))
    for name in CALLS:
        np.testing.assert_array_equal(CALLS[name](x), CALLS[name](x[None])[0])


# ---- layers ---------------------------------------------------------------------------------
LAYERS = [
    ("MaxPool2d", (2,), {}),
    ("MaxPool2d", (3, 2, 1, 2), {"ceil_mode": True}),
    ("MaxPool2d", ((2, 3),), {"return_indices": True}),
    ("AvgPool2d", (3, 2, 1), {}),
    ("AvgPool2d", ((2, 3),), {"ceil_mode": True, "count_include_pad": False,
                              "divisor_override": 2}),
    ("AdaptiveAvgPool2d", ((1, 1),), {}),
    ("AdaptiveAvgPool2d", (3,), {}),
    ("AdaptiveAvgPool2d", ((None, 2),), {}),
    ("AdaptiveMaxPool2d", (2,), {}),
    ("AdaptiveMaxPool2d", ((3, None), True), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), LAYERS, ids=lambda v: str(v))
def test_layer_repr_and_output_as_torch(torch, name, args, kwargs):
    layer = getattr(nn, name)(*args, **kwargs)
    ref_layer = getattr(torch.nn, name)(*args, **kwargs)
    assert repr(layer) == repr(ref_layer)
    assert layer.state_dict() == {} and list(layer.parameters()) == []
    x = data((2, 3, 9, 10), np.float64)
    y, ref = layer(x), ref_layer(torch.from_numpy(x))
    for a, b in zip(y if isinstance(y, tuple) else (y,),
                    ref if isinstance(ref, tuple) else (ref,)):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-12, atol=1e-12)


def test_layers_in_a_model(torch):
    def model(lib):
        return lib.Sequential(lib.Conv2d(3, 4, 3, padding=1), lib.MaxPool2d(2),
                              lib.AvgPool2d(3, 1, 1), lib.AdaptiveAvgPool2d((1, 1)),
                              lib.Flatten())
    torch.manual_seed(0)
    tm = model(torch.nn).eval()
    cm = model(nn).eval()
    cm.load_state_dict(tm.state_dict())
    assert repr(cm) == repr(tm)
    x = data((2, 3, 16, 15))
    np.testing.assert_allclose(cm(x), tm(torch.from_numpy(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)


def test_layers_are_exported():
    for name in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        assert name in nn.__all__ and issubclass(getattr(nn, name), nn.Module)
    for name in ("max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"):
        assert name in F.__all__ and callable(getattr(F, name))


# ---- errors ----------------------------------------------------------------------------------
ERRORS = [
    ("max_pool2d", (2, 2, 2), "pad should be at most half of effective kernel size"),
    ("max_pool2d", (3, 1, 2, 2), "pad should be smaller than or equal to half of kernel size"),
    ("max_pool2d", (2, None, -1), "pad must be non-negative"),
    ("max_pool2d", (2, 0), "stride should not be zero"),
    ("max_pool2d", (2, -1), "stride should be greater than zero"),
    ("max_pool2d", (0, 1), "kernel size should be greater than zero"),
    ("max_pool2d", (2, 1, 0, 0), "dilation should be greater than zero"),
    ("max_pool2d", (7,), "Output size is too small"),
    ("max_pool2d", ((2, 3, 4),), "kernel_size must either be a single int, or a tuple of two"),
    ("avg_pool2d", (2, 2, 2), "pad should be at most half of effective kernel size"),
    ("avg_pool2d", (7,), "Output size is too small"),
    ("avg_pool2d", (2, 2, 0, False, True, 0), "divisor must be not zero"),
    ("avg_pool2d", (2, (1, 2, 3)), "stride must either be omitted, a single int, or a tuple"),
    ("adaptive_avg_pool2d", ((2, 3, 4),), "output_size must be 2"),
    ("adaptive_avg_pool2d", (-1,), "elements of output_size must be greater than or equal"),
]


@pytest.mark.parametrize(("name", "args", "words"), ERRORS, ids=lambda v: str(v))
def test_errors_in_torchs_words(torch, name, args, words):
    x = data((1, 2, 5, 5))
    message = torch_errors(torch, name, x, *args)
    assert message is not None and words in message
    with pytest.raises(ValueError, match=words.replace("(", r"\(")) as info:
        getattr(F, name)(x, *args)
    assert message in str(info.value) or name.startswith("adaptive")


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("shape", [(5, 5), (1, 1, 2, 5, 5), (2, 0, 5, 5), (2, 2, 0, 5),
                                   (0, 5, 5)], ids=str)
def test_bad_input_shapes_are_refused_as_torch(torch, name, shape):
    x = np.zeros(shape, np.float32)
    assert torch_errors(torch, name, x, 2) is not None
    with pytest.raises(ValueError, match="Expected 3D or 4D"):
        getattr(F, name)(x, 2)


@pytest.mark.parametrize("name", ["adaptive_avg_pool2d", "adaptive_max_pool2d"])
@pytest.mark.parametrize("shape", [(5, 5), (1, 1, 2, 5, 5), (2, 2, 0, 5), (2, 5, 0)], ids=str)
def test_bad_adaptive_input_shapes_are_refused_as_torch(torch, name, shape):
    x = np.zeros(shape, np.float32)
    message = torch_errors(torch, name, x, 2)
    assert message is not None
    with pytest.raises(ValueError) as info:
        getattr(F, name)(x, 2)
    assert str(info.value) == message


def test_empty_channels_as_torch(torch):
    x = np.zeros((2, 0, 5, 5), np.float32)
    assert F.adaptive_avg_pool2d(x, 2).shape == (2, 0, 2, 2)
    assert torch_errors(torch, "adaptive_max_pool2d", x, 2) is not None
    with pytest.raises(ValueError, match="dimension 1 being empty"):
        F.adaptive_max_pool2d(x, 2)


@pytest.mark.parametrize("name", list(CALLS))
@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex64, bool])
def test_bad_dtype_is_refused(name, dtype):
    with pytest.raises(TypeError, match="float32 or float64"):
        CALLS[name](np.zeros((1, 2, 8, 8), dtype))


def test_impossible_sizes_fail_before_touching_memory():
    x = data((1, 2, 5, 5))
    with pytest.raises(ValueError, match="too large"):
        F.adaptive_max_pool2d(x, (2**60, 1))
    with pytest.raises(ValueError, match="too large"):
        F.max_pool2d(x, 2**62)
    with pytest.raises((ValueError, MemoryError)):
        F.adaptive_avg_pool2d(x, (2**57, 1))
    with pytest.raises(ValueError, match="Output size is too small"):
        F.max_pool2d(x, 2**40, dilation=2**20)


def test_bad_argument_types_are_refused():
    x = data((1, 2, 5, 5))
    with pytest.raises(TypeError, match="kernel_size"):
        F.max_pool2d(x, 2.5)
    with pytest.raises(TypeError, match="output_size"):
        F.adaptive_avg_pool2d(x, (2, 1.5))
    with pytest.raises(TypeError, match="divisor_override"):
        F.avg_pool2d(x, 2, divisor_override=1.5)

"""Conv2d: torch.nn.Conv2d's results (all padding modes) from a torch state_dict, PyTorch's
initialisation, weights that always take effect, torch's repr, dtypes, and equality with the
functional call."""
import numpy as np
import pytest
from conftest import (
    SIZE_LIMIT,
    assert_within,
    check_conv2d,
    check_conv2d_module,
    conv2d_reduction,
    error_bound,
    random_arrays,
    seed_of,
)

import cconv
from cconv.testing import absolute, conv2d_module_ref

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

# (in_channels, out_channels, kernel_size, kwargs, input shape)
CONFIGS = [
    (3, 8, 3, dict(padding=1), (2, 3, 9, 11)),
    (4, 6, (2, 4), dict(padding="same"), (1, 4, 7, 10)),
    (4, 4, (4, 2), dict(padding="same", dilation=(1, 3), groups=4), (2, 4, 9, 8)),
    (6, 9, (3, 2), dict(stride=(2, 1), padding=(2, 1), groups=3, bias=False), (1, 6, 11, 6)),
    (2, 5, 5, dict(stride=3, padding=(4, 2), dilation=(1, 2)), (1, 2, 13, 17)),
    (5, 10, 3, dict(padding="valid", groups=5), (3, 5, 6, 7)),
    (3, 7, (1, 3), dict(padding=(0, 3)), (3, 5, 4)),   # unbatched; padding = width - 1
]


def config_id(config):
    cin, cout, k, kwargs, shape = config
    return f"{cin}-{cout}-k{k}-" + "-".join(f"{a}={v}" for a, v in kwargs.items())


def torch_twin(torch, cin, cout, k, kwargs, dtype, padding_mode="zeros"):
    """A seeded torch.nn.Conv2d and the cconv.Conv2d loaded with its state_dict()."""
    torch.manual_seed(seed_of(cin, cout, k, kwargs))
    tm = torch.nn.Conv2d(cin, cout, k, padding_mode=padding_mode, **kwargs,
                         dtype=getattr(torch, np.dtype(dtype).name))
    cm = cconv.Conv2d(cin, cout, k, padding_mode=padding_mode, **kwargs, dtype=dtype)
    assert cm.load_state_dict(tm.state_dict()) == ([], [])
    return tm, cm


def module_kwargs(cm):
    return dict(stride=cm.stride, padding=cm.padding, dilation=cm.dilation, groups=cm.groups,
                padding_mode=cm.padding_mode)


@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_matches_torch_module(config, padding_mode, dtype, torch):
    cin, cout, k, kwargs, shape = config
    tm, cm = torch_twin(torch, cin, cout, k, kwargs, dtype, padding_mode)
    x = np.random.default_rng(seed_of(config)).standard_normal(shape).astype(dtype)
    y = cm(x)
    with torch.no_grad():
        t = tm(torch.from_numpy(x)).numpy()
    assert y.shape == t.shape and y.dtype == t.dtype == dtype
    w, b = cm.weight, cm.bias
    check_conv2d_module(y, x, w, b, **module_kwargs(cm))
    scale = absolute(conv2d_module_ref)(x, w, b, **module_kwargs(cm))
    assert_within(y, t.astype(np.float64),
                  2 * error_bound(scale, conv2d_reduction(w.shape), dtype), "cconv vs torch")


@pytest.mark.parametrize(("mode", "padding", "size"), [
    ("reflect", 3, 4), ("circular", 4, 4), ("replicate", 9, 4), ("zeros", 9, 4)])
def test_padding_mode_at_its_limit(mode, padding, size, torch):
    """The largest padding each mode allows (reflect: size - 1; circular: size)."""
    tm, cm = torch_twin(torch, 2, 3, 3, dict(padding=padding), np.float64, mode)
    x = np.random.default_rng(0).standard_normal((1, 2, size, size))
    with torch.no_grad():
        t = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(cm(x), t, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["replicate", "reflect", "circular"])
def test_padding_mode_on_an_empty_batch(mode):
    """An empty batch gives an empty result of the output's shape, with no padded copy. With
    padding 2**31 - 1 on both axes that copy would be 2**32 x 2**32 pixels, which numpy
    refused to describe ("array is too big", from np.pad; found by the long fuzz profile;
    torch 2.13 fails there too, "Stride calculation overflowed", on its own padded copy).
    The modes' limits still hold: reflect and circular refuse such padding. On 32-bit
    platforms (armv7) the padding is the largest whose padded size is valid, about 2**26:
    a copy of 2**27 x 2**27 pixels, as impossible there."""
    big = min(2**31 - 1, (SIZE_LIMIT - 1) // 2)
    m = cconv.Conv2d(1, 1, 1, stride=big, dilation=big, padding=big, padding_mode=mode)
    x = np.zeros((0, 1, 1, 1), np.float32)
    if mode == "replicate":
        y = m(x)
        assert y.shape == (0, 1, 3, 3) and y.dtype == np.float32
    else:
        with pytest.raises(ValueError, match=f"padding_mode='{mode}'"):
            m(x)
    m = cconv.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    assert m(np.zeros((0, 2, 4, 5), np.float32)).shape == (0, 3, 4, 5)


# Argument combinations for repr: (args, kwargs).
REPR_CASES = [
    ((3, 8, 3), {}),
    ((3, 8, (3, 5)), dict(stride=(2, 1))),
    ((3, 8, 3), dict(padding=1)),
    ((3, 8, 3), dict(padding=(1, 2))),
    ((3, 8, 4), dict(padding="same")),
    ((3, 8, 3), dict(padding="valid")),
    ((3, 8, 3), dict(padding=1, padding_mode="reflect")),
    ((3, 8, 3), dict(padding=2, padding_mode="circular", bias=False)),
    ((3, 8, 3), dict(padding_mode="replicate")),
    ((4, 8, 3), dict(groups=4, bias=False)),
    ((4, 8, 3), dict(dilation=2)),
    ((4, 8, (1, 7)), dict(stride=3, padding=(0, 3), dilation=(1, 2), groups=2)),
    ((4, 8, 2), dict(padding="same", padding_mode="reflect", dilation=3, groups=2)),
    ((1, 1, 1), dict(bias=False, padding=0, stride=1)),
]


@pytest.mark.parametrize(("args", "kwargs"), REPR_CASES, ids=str)
def test_repr_is_torchs(args, kwargs, torch):
    assert repr(cconv.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))


@pytest.mark.parametrize(("args", "kwargs"), [
    ((6, 8, (3, 5)), dict(groups=2)), ((64, 32, 3), {}), ((5, 5, 7), dict(groups=5))])
def test_initialisation_is_uniform_in_pytorchs_bounds(args, kwargs):
    conv = cconv.Conv2d(*args, **kwargs, rng=1)
    cin, cout, k = args
    kh, kw = (k, k) if isinstance(k, int) else k
    bound = 1 / np.sqrt(cin // kwargs.get("groups", 1) * kh * kw)
    assert conv.weight.shape == (cout, cin // kwargs.get("groups", 1), kh, kw)
    for values in (conv.weight.ravel(), conv.bias):
        assert values.dtype == np.float32
        assert np.abs(values).max() <= bound
        # Kolmogorov-Smirnov against uniform(-bound, bound): a seeded draw, 0.1% level.
        u = np.sort((values.astype(np.float64) + bound) / (2 * bound))
        n = u.size
        ks = max(np.max(np.arange(1, n + 1) / n - u), np.max(u - np.arange(n) / n))
        assert ks < 1.95 / np.sqrt(n), f"KS statistic {ks:.3g} for {n} values"
    if conv.weight.size > 1000:
        assert np.abs(conv.weight).max() > 0.99 * bound      # fills its range


def test_initialisation_is_reproducible():
    def state(rng, **kw):
        return cconv.Conv2d(4, 6, 3, rng=rng, **kw).state_dict()
    a, b = state(7), state(np.random.default_rng(7))
    for key in ("weight", "bias"):
        np.testing.assert_array_equal(a[key], b[key])
        assert not np.array_equal(a[key], state(8)[key])
        assert not np.array_equal(state(None)[key], state(None)[key])
    assert state(7, dtype=np.float64)["weight"].dtype == np.float64
    assert list(state(7, bias=False)) == ["weight"]


def test_state_dict_returns_copies():
    conv = cconv.Conv2d(4, 6, 3, rng=0)
    state = conv.state_dict()
    saved = {k: v.copy() for k, v in state.items()}
    for value in state.values():
        assert value.flags.writeable
        value[...] = 0
    for key, value in conv.state_dict().items():
        np.testing.assert_array_equal(value, saved[key])


def test_weights_are_read_only():
    conv = cconv.Conv2d(4, 6, 3, rng=0)
    for arr in (conv.weight, conv.bias):
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = 1


# Modules whose weights get replaced: dense (igemm) and depthwise.
LAYERS = {"dense": ((4, 6, (3, 2)), dict(padding=1)),
          "depthwise": ((4, 8, 3), dict(groups=4, padding="same")),
          "reflect": ((3, 5, 3), dict(padding=1, padding_mode="reflect"))}


@pytest.mark.parametrize("layer", LAYERS)
def test_new_weights_always_take_effect(layer, dtype, isa):
    args, kwargs = LAYERS[layer]
    conv = cconv.Conv2d(*args, **kwargs, dtype=dtype, rng=0)
    x = np.random.default_rng(1).standard_normal((2, args[0], 7, 9)).astype(dtype)
    rng = np.random.default_rng(2)

    def check(what):
        y = conv(x)
        check_conv2d_module(y, x, conv.weight, conv.bias, **module_kwargs(conv), what=what)
        return y

    first = check("initial weights")
    w = rng.standard_normal(conv.weight.shape)
    conv.weight = w
    w[...] = 0                                     # the module took a copy
    assert not np.array_equal(check("assigned weight"), first)
    conv.bias = rng.standard_normal(conv.bias.shape).astype(dtype)
    check("assigned bias")
    state = {"weight": rng.standard_normal(conv.weight.shape),
             "bias": rng.standard_normal(conv.bias.shape)}
    conv.load_state_dict(state)
    np.testing.assert_array_equal(conv.weight, state["weight"].astype(dtype))
    check("loaded state")
    conv.bias = None
    assert "bias=False" in repr(conv) and conv.bias is None
    check("bias removed")


def test_load_state_dict_from_torch_parameters(torch):
    """Tensors that require grad (named_parameters, not state_dict) load too."""
    tm = torch.nn.Conv2d(3, 4, 3)
    cm = cconv.Conv2d(3, 4, 3)
    cm.load_state_dict(dict(tm.named_parameters()))
    np.testing.assert_array_equal(cm.weight, tm.weight.detach().numpy())
    np.testing.assert_array_equal(cm.bias, tm.bias.detach().numpy())


def test_float64_module(isa):
    conv = cconv.Conv2d(5, 7, (3, 4), padding=(1, 2), dtype=np.float64, rng=3)
    assert conv.weight.dtype == conv.bias.dtype == np.float64
    x = np.random.default_rng(4).standard_normal((2, 5, 8, 9))
    y = conv(x)
    assert y.dtype == np.float64
    check_conv2d(y, x, conv.weight, conv.bias, padding=(1, 2))


@pytest.mark.parametrize(("module_dtype", "input_dtype"), [
    (np.float32, np.float64), (np.float64, np.float32), (np.float32, np.float16),
    (np.float32, ">f8")])
def test_floating_input_is_cast_to_the_module_dtype(module_dtype, input_dtype):
    conv = cconv.Conv2d(3, 4, 3, dtype=module_dtype, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 7)).astype(input_dtype)
    y = conv(x)
    assert y.dtype == module_dtype
    np.testing.assert_array_equal(y, conv(x.astype(module_dtype)))


FUNCTIONAL_CASES = [
    ((3, 8, 3), dict(padding=1), (2, 3, 10, 9)),
    ((6, 6, (2, 5)), dict(stride=(1, 2), padding=(1, 2), groups=3), (1, 6, 7, 12)),
    ((4, 12, 3), dict(groups=4, dilation=2, padding="same"), (3, 4, 9, 9)),
    ((2, 3, (4, 2)), dict(padding="same", bias=False), (2, 5, 6)),
    ((64, 32, 3), dict(padding=1), (1, 64, 12, 12)),
]


@pytest.mark.parametrize(("args", "kwargs", "shape"), FUNCTIONAL_CASES, ids=str)
def test_module_equals_functional_call(args, kwargs, shape, dtype):
    conv = cconv.Conv2d(*args, **kwargs, dtype=dtype, rng=5)
    x, _, _ = random_arrays(6, shape, (1, 1, 1, 1), False, dtype)
    y = conv(x)
    expected = cconv.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding,
                            conv.dilation, conv.groups)
    np.testing.assert_array_equal(y, expected)
    assert conv.forward(x).shape == y.shape


@pytest.mark.parametrize("layer", LAYERS)
def test_module_calls_with_varying_input_sizes(layer, isa):
    """One module, inputs of changing sizes, batches and dtypes: every call is right."""
    args, kwargs = LAYERS[layer]
    conv = cconv.Conv2d(*args, **kwargs, rng=0)
    rng = np.random.default_rng(1)
    for n, h, w in [(1, 3, 3), (2, 17, 5), (1, 3, 3), (3, 9, 40), (1, 30, 30), (0, 4, 4)]:
        x = rng.standard_normal((n, args[0], h, w)).astype(np.float32)
        check_conv2d_module(conv(x), x, conv.weight, conv.bias, **module_kwargs(conv),
                            what=f"input {x.shape}")


def test_packed_weights_stay_bounded():
    """A module called at many sizes keeps at most PACKED_LAYOUTS_MAX packed copies of its
    weights, and every call stays right. (Of a 5x5 kernel dilated 3 and padded 6, inputs 1 to
    3 wide reach only the middle column of taps, 4 to 6 the middle three, wider all: each
    (height, width) class its own layout.)"""
    from cconv import modules
    conv = cconv.Conv2d(3, 4, 5, padding=6, dilation=3, rng=2)
    rng = np.random.default_rng(3)
    layouts = set()
    for h, w in [(1, 1), (1, 4), (4, 1), (4, 4), (7, 1), (1, 7), (7, 7), (4, 7), (1, 1)]:
        x = rng.standard_normal((1, 3, h, w)).astype(np.float32)
        check_conv2d_module(conv(x), x, conv.weight, conv.bias, **module_kwargs(conv),
                            what=f"input {x.shape}")
        layouts |= set(conv._snapshot.packed)
        assert 1 <= len(conv._snapshot.packed) <= modules.PACKED_LAYOUTS_MAX
    assert len(layouts) > modules.PACKED_LAYOUTS_MAX    # the bound was reached


@pytest.mark.parametrize("copy_of", ["pickle", "deepcopy"])
def test_a_called_module_pickles_and_copies(copy_of):
    """A module that has run (its caches hold compiled kernels and packed weights) pickles
    and deep-copies, as workers of multiprocessing or Dask need: the copy computes the same
    bits, its weights stay read-only, and new weights loaded into it leave the original as
    it was."""
    import copy
    import pickle
    model = cconv.nn.Sequential(cconv.Conv2d(3, 4, 3, padding=1, rng=0),
                                cconv.ConvTranspose2d(4, 2, 2, stride=2, rng=1))
    x = np.random.default_rng(2).standard_normal((2, 3, 8, 8)).astype(np.float32)
    y = model(x)
    twin = pickle.loads(pickle.dumps(model)) if copy_of == "pickle" else copy.deepcopy(model)
    np.testing.assert_array_equal(twin(x), y)
    assert not twin[0].weight.flags.writeable
    twin[0].weight = np.zeros_like(twin[0].weight)
    np.testing.assert_array_equal(model(x), y)
    assert not np.array_equal(twin(x), y)

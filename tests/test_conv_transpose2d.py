"""conv_transpose2d and ConvTranspose2d: the scatter-add reference and torch over a seeded
sweep, torch's module (output_size included), repr and init, and bad inputs."""
import functools
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import (
    applicable_algorithms,
    assert_within,
    case_id,
    check_conv_transpose2d,
    conv_transpose2d_reduction,
    error_bound,
    huge_expectation,
    random_arrays,
    sample_cases,
    seed_of,
)

import cconv
from cconv.testing import conv_transpose2d_abs, conv_transpose2d_output_size, conv_transpose2d_ref

MAC_BUDGET = 3_000_000
CHANNELS = (1, 2, 3, 5, 6, 7, 8, 12, 13, 16, 17, 24, 25, 33)


@dataclass(frozen=True)
class TCase:
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    output_padding: tuple = (0, 0)
    groups: int = 1
    dilation: tuple = (1, 1)
    bias: bool = True
    name: str = ""

    @property
    def x_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def w_shape(self):
        return (self.C_in, self.C_out // self.groups, *self.kernel)

    @property
    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding,
                    output_padding=self.output_padding, groups=self.groups,
                    dilation=self.dilation)

    @property
    def output_hw(self):
        return tuple(conv_transpose2d_output_size((self.H, self.W)[a], self.kernel[a],
                                                  self.stride[a], self.padding[a],
                                                  self.output_padding[a], self.dilation[a])
                     for a in range(2))

    @property
    def macs(self):
        ho, wo = self.output_hw
        return self.N * self.C_out * ho * wo * conv_transpose2d_reduction(self.w_shape,
                                                                          self.groups)

    def __str__(self):
        return case_id(self.name, self.bias, n=self.N, c=self.C_in, i=(self.H, self.W),
                       o=self.C_out, k=self.kernel, s=self.stride, p=self.padding,
                       op=self.output_padding, d=self.dilation, g=self.groups)


NAMED = [
    TCase(1, 16, 8, 8, 8, (4, 4), (2, 2), (1, 1), name="dcgan-up"),
    TCase(2, 6, 5, 7, 9, (3, 3), (2, 2), (1, 1), (1, 1), groups=3, name="output-padding"),
    TCase(1, 4, 6, 5, 4, (3, 2), (3, 2), (0, 1), (2, 0), groups=4, name="depthwise-like"),
    TCase(1, 3, 4, 4, 5, (1, 1), (3, 3), name="1x1-stride3-gaps"),
    TCase(1, 2, 1, 1, 3, (1, 1), (1, 2), (0, 0), name="1x1-one-pixel"),
    TCase(1, 1, 1, 2, 1, (1, 1), (1, 2), (0, 1), name="no-tap-reaches-the-output"),
    TCase(1, 2, 3, 3, 2, (2, 2), (3, 3), (1, 1), (2, 1), bias=True, name="bias-only-phases"),
    TCase(2, 5, 7, 6, 4, (5, 3), (1, 1), (2, 1), dilation=(2, 3), name="dilated"),
    TCase(1, 3, 4, 5, 4, (3, 3), (2, 2), (1, 1), (1, 2), dilation=(2, 3),
          name="output-padding-below-dilation"),
    TCase(1, 64, 6, 6, 32, (3, 3), (2, 2), (1, 1), (1, 1), name="K576"),
    TCase(0, 4, 5, 5, 6, (3, 3), (2, 2), name="batch0"),
]


def _random_case(rng):
    groups = int(rng.choice((1, 1, 2, 3)))
    Cg, Mg = int(rng.choice(CHANNELS)), int(rng.choice(CHANNELS))
    kernel = tuple(int(k) for k in rng.integers(1, 6, 2))
    stride = tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.choice((1, 1, 2, 3), 2))
    size = tuple(int(s) for s in rng.choice((1, 2, 3, 5, 7, 8, 11, 13), 2))
    padding, output_padding = [], []
    for a in range(2):
        full = (size[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1
        padding.append(int(rng.integers(0, min(3, (full - 1) // 2) + 1)))
        output_padding.append(int(rng.integers(0, max(stride[a], dilation[a]))))
    return TCase(int(rng.choice((0, 1, 1, 2, 3))), Cg * groups, size[0], size[1], Mg * groups,
                 kernel, stride, tuple(padding), tuple(output_padding), groups, dilation,
                 bias=bool(rng.random() < 0.8))


CASES = NAMED + sample_cases(_random_case, 40, seed=7, budget=MAC_BUDGET)
CASE_ALGORITHMS = [pytest.param(c, a, id=f"{c}-{a}") for c in CASES
                   for a in applicable_algorithms(c.C_in, c.groups, transposed=True)]


@functools.cache
def case_data(case, dtype):
    x, w, b = random_arrays(seed_of(str(case)), case.x_shape, case.w_shape, case.bias, dtype,
                            channels=case.C_out)
    return (x, w, b, conv_transpose2d_ref(x, w, b, **case.kwargs),
            conv_transpose2d_abs(x, w, b, **case.kwargs))


@pytest.mark.parametrize(("case", "algorithm"), CASE_ALGORITHMS)
def test_matches_reference(case, algorithm, dtype, isa):
    x, w, b, ref, scale = case_data(case, dtype)
    y = cconv.conv_transpose2d(x, w, b, **case.kwargs, algorithm=algorithm)
    assert y.dtype == dtype and y.shape == ref.shape and y.flags.c_contiguous
    bound = error_bound(scale, conv_transpose2d_reduction(w.shape, case.groups), dtype,
                        algorithm)
    assert_within(y, ref, bound, f"{case} {algorithm} {dtype} {isa}")


@pytest.mark.parametrize("case", NAMED + CASES[len(NAMED)::3], ids=str)
def test_matches_torch(case, dtype, torch):
    x, w, b, ref, scale = case_data(case, dtype)
    t = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(w), None if b is None else torch.from_numpy(b),
        **case.kwargs).numpy()
    y = cconv.conv_transpose2d(x, w, b, **case.kwargs)
    assert y.shape == t.shape
    bound = error_bound(scale, conv_transpose2d_reduction(w.shape, case.groups), dtype)
    assert_within(y, t.astype(np.float64), 2 * bound, "cconv vs torch")


def test_unbatched_and_out(dtype, isa):
    case = NAMED[1]
    x, w, b, ref, _ = case_data(case, dtype)
    out = np.full(ref.shape[1:], np.nan, dtype)
    y = cconv.conv_transpose2d(x[1], w, b, **case.kwargs, out=out)
    assert y is out
    check_conv_transpose2d(y, x[1], w, b, **case.kwargs)


# ---- ConvTranspose2d -------------------------------------------------------------------------

MODULE_CONFIGS = [
    ((4, 6, 3), dict(stride=2, padding=1, output_padding=1), (2, 4, 5, 6)),
    ((6, 4, (2, 4)), dict(stride=(1, 3), groups=2, bias=False), (1, 6, 4, 3)),
    ((3, 3, 3), dict(stride=2, dilation=2, padding=2, groups=3), (3, 5, 5)),
]


@pytest.mark.parametrize(("args", "kwargs", "shape"), MODULE_CONFIGS, ids=str)
def test_module_matches_torch(args, kwargs, shape, dtype, torch):
    torch.manual_seed(seed_of(args))
    tm = torch.nn.ConvTranspose2d(*args, **kwargs, dtype=getattr(torch, np.dtype(dtype).name))
    cm = cconv.ConvTranspose2d(*args, **kwargs, dtype=dtype)
    cm.load_state_dict(tm.state_dict())
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    call_kwargs = {k: kwargs[k] for k in ("stride", "padding", "output_padding", "groups",
                                          "dilation") if k in kwargs}
    with torch.no_grad():
        t = tm(torch.from_numpy(x)).numpy()
        y = cm(x)
        check_conv_transpose2d(y, x, cm.weight, cm.bias, **call_kwargs)
        assert y.shape == t.shape
        # output_size picks output_padding as torch does: every size it allows.
        stride = cm.stride
        for extra in np.ndindex(*stride):
            size = [t.shape[-2] - cm.output_padding[0] + extra[0],
                    t.shape[-1] - cm.output_padding[1] + extra[1]]
            t2 = tm(torch.from_numpy(x), output_size=size).numpy()
            y2 = cm(x, output_size=size)
            assert y2.shape == t2.shape
            np.testing.assert_allclose(y2, t2, rtol=1e-4 if dtype == np.float32 else 1e-10,
                                       atol=1e-5 if dtype == np.float32 else 1e-12)
            np.testing.assert_array_equal(cm(x, output_size=list(y2.shape)), y2)


REPR_CASES = [
    ((3, 8, 3), {}),
    ((3, 8, 4), dict(stride=2, padding=1)),
    ((3, 8, 3), dict(stride=2, output_padding=1)),
    ((4, 8, (3, 1)), dict(groups=2, bias=False, dilation=(2, 1))),
    ((4, 4, 5), dict(stride=(2, 3), padding=(1, 2), output_padding=(1, 0), groups=4)),
]


@pytest.mark.parametrize(("args", "kwargs"), REPR_CASES, ids=str)
def test_module_repr_is_torchs(args, kwargs, torch):
    assert repr(cconv.ConvTranspose2d(*args, **kwargs)) == \
        repr(torch.nn.ConvTranspose2d(*args, **kwargs))


def test_module_initialisation_bounds():
    conv = cconv.ConvTranspose2d(6, 32, (3, 5), groups=2, rng=0)
    assert conv.weight.shape == (6, 16, 3, 5)
    bound = 1 / np.sqrt(16 * 3 * 5)          # fan_in = weight.shape[1] * kh * kw, as torch
    for values in (conv.weight, conv.bias):
        assert np.abs(values).max() <= bound
    assert np.abs(conv.weight).max() > 0.98 * bound


def test_module_new_weights_take_effect(isa):
    conv = cconv.ConvTranspose2d(4, 6, 3, stride=2, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 5)).astype(np.float32)
    conv(x)
    conv.weight = np.random.default_rng(2).standard_normal(conv.weight.shape)
    check_conv_transpose2d(conv(x), x, conv.weight, conv.bias, stride=2)


# ---- bad inputs ------------------------------------------------------------------------------

X = np.zeros((1, 4, 5, 5), np.float32)
W = np.zeros((4, 3, 3, 3), np.float32)

FUNCTIONAL_ERRORS = {
    "output-padding-not-below-stride-or-dilation": (
        dict(stride=2, output_padding=2), ValueError,
        r"output padding must be smaller than either stride or dilation.*2"),
    "output-padding-width": (dict(stride=(2, 1), output_padding=(1, 1)), ValueError,
                             r"output_padding_width: 1 stride_width: 1 dilation_width: 1"),
    "output-padding-negative": (dict(output_padding=-1), ValueError, r"output_padding.*-1"),
    "channel-mismatch": (dict(input=np.zeros((1, 5, 5, 5), np.float32)), ValueError,
                         r"weight of size \[4, 3, 3, 3\].*4 channels.*got 5 channels"),
    "groups-not-dividing": (dict(groups=3), ValueError, r"groups=3"),
    "groups-0": (dict(groups=0), ValueError, r"groups.*0"),
    "stride-0": (dict(stride=0), ValueError, r"stride.*0"),
    "dilation-0": (dict(dilation=0), ValueError, r"dilation.*0"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding.*-1"),
    "padding-string": (dict(padding="same"), TypeError, r"padding.*'same'"),
    "output-too-small": (dict(padding=4), ValueError, r"too small"),
    "bias-wrong-length": (dict(bias=np.zeros(4, np.float32)), ValueError, r"bias.*3.*\[4\]"),
    "mixed-dtypes": (dict(weight=W.astype(np.float64)), TypeError, r"weight.*float64"),
    "int-input": (dict(input=X.astype(np.int32)), TypeError, r"input.*int32"),
    "weight-3d": (dict(weight=W[0]), ValueError, r"weight.*\[3, 3, 3\]"),
    "depthwise-forced": (dict(algorithm="depthwise"), ValueError, r"depthwise"),
    "unknown-algorithm": (dict(algorithm="fft"), ValueError, r"algorithm='fft'"),
    "huge-stride": (dict(stride=2**62), ValueError, r"stride"),
    "huge-padding": (dict(padding=2**62), ValueError, r"padding"),
    "huge-output": (dict(stride=2**31, output_padding=(0, 0)), MemoryError, r"shape"),
    "out-wrong-shape": (dict(out=np.zeros((1, 3, 7, 8), np.float32)), ValueError,
                        r"out.*\(1, 3, 7, 8\).*\(1, 3, 7, 7\)"),
}


@pytest.mark.parametrize("case", FUNCTIONAL_ERRORS)
def test_functional_rejects(case):
    overrides, exc, match = FUNCTIONAL_ERRORS[case]
    huge = [v for k, v in overrides.items() if k in ("stride", "padding") and isinstance(v, int)]
    if huge:
        exc, match = huge_expectation(huge, exc, match, "stride|padding")
    args = dict(input=X, weight=W)
    args.update(overrides)
    with pytest.raises(exc, match=match):
        cconv.conv_transpose2d(**args)


@pytest.mark.parametrize(("args", "kwargs", "exc", "match"), [
    ((4, 6, 3), dict(padding_mode="reflect"), ValueError, r"zeros.*'reflect'"),
    ((4, 6, 3), dict(padding="same"), TypeError, r"padding.*'same'"),
    ((4, 6, 3), dict(groups=3), ValueError, r"in_channels.*groups"),
    ((4, 6, 3), dict(output_padding=-1), ValueError, r"output_padding.*-1"),
])
def test_module_rejects(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cconv.ConvTranspose2d(*args, **kwargs)


@pytest.mark.parametrize(("output_size", "exc", "match"), [
    ([20, 20], ValueError, r"output size of \[20, 20\].*\[11, 11\] to \[12, 12\]"),
    ([10, 11], ValueError, r"\[10, 11\]"),
    ([1, 2, 3], ValueError, r"output_size must have 2 or 4 elements"),
    (5, TypeError, r"output_size.*5"),
])
def test_module_rejects_bad_output_size(output_size, exc, match):
    conv = cconv.ConvTranspose2d(4, 6, 3, stride=2, padding=0)
    with pytest.raises(exc, match=match):
        conv(np.zeros((1, 4, 5, 5), np.float32), output_size=output_size)


@pytest.mark.parametrize(("args", "kwargs"), [
    ((2, 3, 3), dict(stride=3, padding=1)),
    ((4, 6, (4, 2)), dict(stride=(2, 3), padding=(1, 0), groups=2)),
    ((3, 2, 5), dict(stride=4, padding=2, dilation=2, output_padding=1)),
])
def test_module_calls_with_varying_input_sizes(args, kwargs, isa):
    """One module, inputs of changing sizes (which change the stride phases that exist):
    every call is right, whatever the previous calls were."""
    conv = cconv.ConvTranspose2d(*args, **kwargs, rng=0)
    call_kwargs = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation,
                       groups=conv.groups)
    rng = np.random.default_rng(1)
    for h, w in [(1, 1), (2, 2), (5, 3), (1, 1), (3, 7), (2, 2)]:
        x = rng.standard_normal((2, args[0], h, w)).astype(np.float32)
        check_conv_transpose2d(conv(x), x, conv.weight, conv.bias,
                               output_padding=conv.output_padding, **call_kwargs,
                               what=f"input {h}x{w}")
        size = [s + e for s, e in zip(conv(x).shape[2:], (-conv.output_padding[0], 0))]
        check_conv_transpose2d(conv(x, output_size=size), x, conv.weight, conv.bias,
                               output_padding=(0, conv.output_padding[1]), **call_kwargs,
                               what=f"input {h}x{w}, output_size {size}")

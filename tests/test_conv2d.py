"""conv2d against the float64 reference (and torch) over a seeded sweep of the geometries
that break kernels, for every applicable algorithm, both dtypes and every ISA variant."""
import functools
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import (
    DTYPES,
    applicable_algorithms,
    assert_within,
    case_id,
    check_conv2d,
    conv2d_reduction,
    error_bound,
    random_arrays,
    sample_cases,
    seed_of,
)

import cconv
from cconv.testing import conv2d_abs, conv2d_output_size, conv2d_padding, conv2d_ref

# Most multiply-adds of one sampled case (keeps the sweep fast on a shared 2-core machine).
MAC_BUDGET = 4_000_000
PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
# Below, at and above the micro-kernels' tiles (rows 4/6/12, columns 4/8/16/32), not
# multiples of them.
CHANNELS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47,
            64, 65, 70)
OUTPUT_WIDTHS = (1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33)


@dataclass(frozen=True)
class Case:
    """One conv2d geometry; padding as conv2d takes it (int, pair, 'same' or 'valid')."""
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kernel: tuple
    stride: tuple = (1, 1)
    padding: object = 0
    dilation: tuple = (1, 1)
    groups: int = 1
    bias: bool = True
    name: str = ""

    @property
    def x_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def w_shape(self):
        return (self.C_out, self.C_in // self.groups, *self.kernel)

    @property
    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)

    @property
    def output_hw(self):
        pads = conv2d_padding(self.padding, self.kernel, self.dilation)
        return (conv2d_output_size(self.H, self.kernel[0], self.stride[0], pads[0], pads[1],
                                   self.dilation[0]),
                conv2d_output_size(self.W, self.kernel[1], self.stride[1], pads[2], pads[3],
                                   self.dilation[1]))

    @property
    def macs(self):
        ho, wo = self.output_hw
        return self.N * self.C_out * ho * wo * int(np.prod(self.w_shape[1:]))

    def __str__(self):
        return case_id(self.name, self.bias, n=self.N, c=self.C_in, i=(self.H, self.W),
                       o=self.C_out, k=self.kernel, s=self.stride, p=self.padding,
                       d=self.dilation, g=self.groups)


NAMED = [
    # The founding examples.
    Case(1, 1, 10, 10, 1, (3, 3), name="founding-10x10"),
    Case(1, 256, 24, 24, 128, (3, 3), padding=(1, 1), name="founding-24x24x256"),
    Case(32, 3, 24, 24, 8, (3, 3), padding=(1, 1), name="founding-batch32-rgb"),
    # Reductions K = C_in/groups * kh * kw around the K blocks (256 rows in pixel mode, 128 in
    # channel mode: K256 and K257-1x1 are two and three blocks there).
    Case(1, 17, 9, 11, 13, (5, 3), padding=(2, 1), name="K255"),
    Case(2, 16, 7, 8, 12, (4, 4), padding="same", name="K256"),
    Case(1, 256, 5, 17, 7, (1, 1), name="K256-1x1"),
    Case(1, 257, 6, 9, 25, (1, 1), name="K257-1x1"),
    Case(1, 57, 8, 10, 6, (3, 3), stride=(2, 1), padding=(1, 1), name="K513"),
    Case(1, 114, 7, 9, 14, (3, 3), groups=2, name="K513-groups2"),
    # 1x1 layers read the input in place; strided ones do not.
    Case(2, 33, 9, 13, 17, (1, 1), name="1x1"),
    Case(2, 33, 9, 13, 17, (1, 1), stride=(2, 2), name="1x1-stride2"),
    Case(1, 9, 5, 7, 11, (1, 1), padding=(1, 2), name="1x1-padded"),
    # Depthwise, with channel multipliers, and single-input-channel layers.
    Case(2, 7, 11, 13, 7, (3, 3), padding=(1, 1), groups=7, name="depthwise"),
    Case(1, 7, 11, 13, 21, (3, 5), stride=(2, 1), padding="valid", groups=7,
         name="depthwise-x3"),
    Case(1, 70, 9, 17, 140, (7, 7), padding="same", dilation=(1, 2), groups=70, bias=False,
         name="depthwise-70x2"),
    Case(4, 1, 28, 28, 8, (5, 5), name="mnist-first"),
    Case(1, 3, 17, 33, 6, (3, 3), stride=(2, 2), padding=(1, 1), groups=3,
         name="depthwise-stride2"),
    # Output widths around the tile widths; odd-sized, asymmetric everything.
    Case(1, 5, 3, 33, 13, (1, 2), padding="same", name="width33-same-even"),
    Case(1, 4, 4, 18, 6, (2, 3), padding=(0, 1), name="width18"),
    Case(2, 12, 19, 23, 24, (7, 1), stride=(3, 2), padding=(3, 0), dilation=(1, 3),
         name="asym"),
    Case(1, 6, 31, 29, 70, (2, 6), stride=(1, 3), padding=(2, 3), dilation=(3, 2),
         groups=2, name="groups2-c70"),
    # Batch 0.
    Case(0, 4, 7, 7, 5, (3, 3), name="batch0"),
    Case(0, 4, 7, 7, 4, (3, 3), groups=4, name="batch0-depthwise"),
]


def _random_case(rng):
    kind = rng.choice(["dense", "dense", "groups2", "depthwise", "grouped"])
    groups = {"dense": 1, "groups2": 2, "depthwise": int(rng.choice(CHANNELS)),
              "grouped": int(rng.choice((3, 4, 5)))}[kind]
    Cg = 1 if kind == "depthwise" else int(rng.choice(CHANNELS[:19]))
    Mg = int(rng.choice((1, 2, 3)) if kind == "depthwise" else rng.choice(CHANNELS))
    kernel = tuple(int(k) for k in rng.integers(1, 8, 2))
    stride = tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = tuple(int(d) for d in rng.choice((1, 1, 2, 3), 2))
    padding_kind = rng.choice(["int", "pair", "valid", "same"])
    if padding_kind == "same" and stride != (1, 1):
        stride = (1, 1)
    padding = {"int": int(rng.integers(0, 4)),
               "pair": tuple(int(p) for p in rng.integers(0, 4, 2)),
               "valid": "valid", "same": "same"}[padding_kind]
    pads = conv2d_padding(padding, kernel, dilation)
    sizes = []
    for axis in range(2):
        extent = dilation[axis] * (kernel[axis] - 1) + 1
        before, after = pads[2 * axis], pads[2 * axis + 1]
        if rng.random() < 0.5:   # a prime size, at least the kernel's extent
            size = next((p for p in PRIMES if p + before + after >= extent), extent)
            size = max(size, int(rng.choice(PRIMES)))
        else:                    # the size that gives a chosen output size
            want = int(rng.choice(OUTPUT_WIDTHS if axis else (1, 2, 3, 4, 5, 7)))
            size = max((want - 1) * stride[axis] + extent - before - after, 1)
            while size + before + after < extent:
                size += 1
        sizes.append(size)
    N = int(rng.choice((0, 1, 1, 2, 3, 4)))
    return Case(N, Cg * groups, sizes[0], sizes[1], Mg * groups, kernel, stride, padding,
                dilation, groups, bias=bool(rng.random() < 0.8))


CASES = NAMED + sample_cases(_random_case, 60, seed=20240531, budget=MAC_BUDGET)
# (case, algorithm) for every algorithm that applies to the case.
CASE_ALGORITHMS = [pytest.param(c, a, id=f"{c}-{a}") for c in CASES
                   for a in applicable_algorithms(c.C_in, c.groups)]


@functools.cache
def case_data(case, dtype):
    """x, w, b of the case in dtype; the float64 reference and the error bound (no
    algorithm: the table's largest factor)."""
    x, w, b = random_arrays(seed_of(str(case)), case.x_shape, case.w_shape, case.bias, dtype)
    ref = conv2d_ref(x, w, b, **case.kwargs)
    scale = conv2d_abs(x, w, b, **case.kwargs)
    return x, w, b, ref, scale


def test_sweep_covers_the_grid():
    """The sampled sweep reaches what it claims to (a guard against a sampler that drifts)."""
    def seen(attr):
        return {getattr(c, attr) for c in CASES}
    assert {0, 1, 2, 3, 4} <= seen("N")
    assert {1, 2} <= seen("groups") and any(1 < c.groups == c.C_in for c in CASES)
    assert any(c.C_out > c.C_in == c.groups for c in CASES)
    assert {1, 2, 3} <= {s for c in CASES for s in c.stride + c.dilation}
    assert {"same", "valid"} <= {c.padding for c in CASES if isinstance(c.padding, str)}
    assert {255, 256, 257, 513} <= {conv2d_reduction(c.w_shape) for c in CASES}
    assert any(c.kernel[0] != c.kernel[1] for c in CASES)
    assert set(range(1, 8)) <= {k for c in CASES for k in c.kernel}
    assert {7, 8, 9, 15, 16, 17, 31, 32, 33} <= {c.output_hw[1] for c in CASES}


@pytest.mark.parametrize(("case", "algorithm"), CASE_ALGORITHMS)
def test_matches_reference(case, algorithm, dtype, isa):
    x, w, b, ref, scale = case_data(case, dtype)
    y = cconv.conv2d(x, w, b, **case.kwargs, algorithm=algorithm)
    assert y.dtype == dtype and y.shape == ref.shape and y.flags.c_contiguous
    bound = error_bound(scale, conv2d_reduction(w.shape), dtype, algorithm)
    assert_within(y, ref, bound, f"{case} {algorithm} {dtype} {isa}")


# The planner's choice, against torch: every named case and a third of the sample.
TORCH_CASES = NAMED + CASES[len(NAMED)::3]


@pytest.mark.parametrize("case", TORCH_CASES, ids=str)
def test_matches_torch(case, dtype, torch):
    x, w, b, ref, scale = case_data(case, dtype)
    t = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                   None if b is None else torch.from_numpy(b),
                                   **case.kwargs).numpy()
    y = cconv.conv2d(x, w, b, **case.kwargs)
    assert y.shape == t.shape and y.dtype == t.dtype
    # Both are within the bound of the exact result, so within twice it of each other.
    bound = error_bound(scale, conv2d_reduction(w.shape), dtype)
    assert_within(t, ref, bound, "torch vs reference")
    assert_within(y, t.astype(np.float64), 2 * bound, "cconv vs torch")


FOUNDING = {
    # name: (input shape, weight shape, padding, expected output shape)
    "10x10-image-3x3-kernel": ((1, 1, 10, 10), (1, 1, 3, 3), 0, (1, 1, 8, 8)),
    "10x10-unbatched": ((1, 10, 10), (1, 1, 3, 3), 0, (1, 8, 8)),
    "24x24x256-128-kernels-3x3x256": ((1, 256, 24, 24), (128, 256, 3, 3), 1,
                                      (1, 128, 24, 24)),
    "batch-32-rgb-24x24": ((32, 3, 24, 24), (16, 3, 3, 3), 0, (32, 16, 22, 22)),
}


@pytest.mark.parametrize("name", FOUNDING)
def test_founding_examples(name, dtype):
    x_shape, w_shape, padding, out_shape = FOUNDING[name]
    x, w, b = random_arrays(seed_of(name), x_shape, w_shape, True, dtype)
    y = cconv.conv2d(x, w, b, padding=padding)
    assert y.shape == out_shape
    check_conv2d(y, x, w, b, padding=padding)
    conv = cconv.Conv2d(w_shape[1], w_shape[0], w_shape[2:], padding=padding, dtype=dtype)
    conv.weight, conv.bias = w, b
    np.testing.assert_array_equal(conv(x), y)


def test_zero_input_channels_give_the_bias(dtype):
    x = np.zeros((2, 0, 5, 6), dtype)
    w = np.zeros((3, 0, 2, 2), dtype)
    b = np.array([1.5, -2.0, 0.25], dtype)
    y = cconv.conv2d(x, w, b)
    assert y.shape == (2, 3, 4, 5) and y.dtype == dtype
    np.testing.assert_array_equal(y, np.broadcast_to(b[:, None, None], y.shape))
    np.testing.assert_array_equal(cconv.conv2d(x, w), np.zeros(y.shape))


# Geometries for NaN/Inf propagation: (x shape, w shape, kwargs).
NONFINITE_GEOMETRIES = [
    ((1, 3, 9, 11), (4, 3, 3, 3), {}),
    ((2, 4, 13, 17), (6, 2, 3, 2), dict(stride=2, padding=(1, 2), groups=2)),
    ((1, 5, 12, 20), (5, 1, 3, 3), dict(padding=1, dilation=2, groups=5)),
    ((1, 2, 11, 35), (4, 1, 5, 3), dict(stride=(3, 2), groups=2)),
    ((1, 8, 7, 33), (13, 8, 2, 4), dict(padding="same", dilation=(2, 1))),
]
# Where the one non-finite input goes: corners, edges and interior of image 0 and the last.
PIXELS = [(0, 0, 0, 0), (-1, -1, -1, -1), (0, 1, 5, 3), (0, -1, 0, -1), (-1, 0, -1, 2)]


def receptive_mask(x_bad, w_shape, kwargs):
    """Outputs whose receptive field holds a marked input: conv of the marks with ones."""
    return conv2d_ref(x_bad.astype(np.float64), np.ones(w_shape), **kwargs) > 0


NONFINITE_CASES = [pytest.param(x_shape, w_shape, kwargs, algorithm, id=f"g{g}-{algorithm}")
                   for g, (x_shape, w_shape, kwargs) in enumerate(NONFINITE_GEOMETRIES)
                   for algorithm in applicable_algorithms(x_shape[1], kwargs.get("groups", 1))]


@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs", "algorithm"), NONFINITE_CASES)
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_nonfinite_input_reaches_exactly_its_receptive_field(x_shape, w_shape, kwargs,
                                                            algorithm, value, dtype, isa):
    x, w, b = random_arrays(seed_of(x_shape, w_shape), x_shape, w_shape, True, dtype)
    w = np.abs(w) + dtype.type(0.125)        # positive weights: Inf stays +Inf
    for pixel in PIXELS:
        bad = np.zeros(x_shape, bool)
        bad[pixel] = True
        y = cconv.conv2d(np.where(bad, value, x).astype(dtype), w, b, **kwargs,
                         algorithm=algorithm)
        mask = receptive_mask(bad, w_shape, kwargs)
        hit = np.isnan(y) if np.isnan(value) else np.isposinf(y)
        assert mask.any()
        assert np.array_equal(hit, mask), f"pixel {pixel}: wrong outputs are {value}"
        assert np.isfinite(y[~mask]).all(), f"pixel {pixel}: other outputs are not finite"


def test_nan_bias_reaches_exactly_its_channel(dtype, isa):
    x, w, b = random_arrays(3, (2, 6, 8, 9), (6, 1, 3, 3), True, dtype)
    b[4] = np.nan
    for algorithm in applicable_algorithms(6, 6):
        y = cconv.conv2d(x, w, b, groups=6, algorithm=algorithm)
        assert np.isnan(y[:, 4]).all()
        assert np.isfinite(np.delete(y, 4, axis=1)).all()


def test_dtypes_are_computed_natively():
    """float32 in, float32 out (not rounded through float64, nor the other way)."""
    x, w, b = random_arrays(5, (1, 64, 9, 9), (8, 64, 3, 3), True, np.float64)
    y64 = cconv.conv2d(x, w, b)
    y32 = cconv.conv2d(*(a.astype(np.float32) for a in (x, w, b)))
    assert y64.dtype == DTYPES[1] and y32.dtype == DTYPES[0]
    check_conv2d(y64, x, w, b)
    # float32 rounding is visible: the float64 result is far more accurate.
    ref = conv2d_ref(x, w, b)
    assert np.abs(y64 - ref).max() < 1e-3 * np.abs(y32 - ref).max()


def test_numpy_integer_arguments(dtype):
    x, w, b = random_arrays(9, (1, 4, 9, 8), (6, 2, 3, 2), True, dtype)
    kwargs = dict(stride=(np.int64(2), np.int32(1)), padding=np.uint8(1),
                  dilation=[np.int16(1), 2], groups=np.int64(2))
    y = cconv.conv2d(x, w, b, **kwargs)
    check_conv2d(y, x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2)

"""The float64 reference itself: hand-computed cases, adjointness of the pair, and torch."""
import numpy as np
import pytest
from conftest import seed_of

from cconv.testing import conv2d_abs, conv2d_padding, conv2d_ref, conv_transpose2d_ref, pad_input

GRID3 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)   # [[1 2 3] [4 5 6] [7 8 9]]
GRID5 = np.arange(25.0).reshape(1, 1, 5, 5)        # x[i, j] = 5i + j
K22 = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])


def image(rows):
    return np.array(rows, dtype=np.float64)[None, None]


# (x, w, b, kwargs, expected output of the single (image, channel))
CONV2D_CASES = {
    "2x2-kernel": (GRID3, K22, None, {}, [[37, 47], [67, 77]]),
    "bias": (GRID3, K22, [10.0], {}, [[47, 57], [77, 87]]),
    "padding-1": (image([[1, 2], [3, 4]]), K22, None, {"padding": 1},
                  [[4, 11, 6], [14, 30, 14], [6, 11, 4]]),
    "stride-2": (GRID5, np.full((1, 1, 1, 1), 2.0), None, {"stride": 2},
                 [[0, 4, 8], [20, 24, 28], [40, 44, 48]]),
    "stride-(1,2)": (GRID5[:, :, :2], np.ones((1, 1, 1, 1)), None, {"stride": (1, 2)},
                     [[0, 2, 4], [5, 7, 9]]),
    "dilation-2": (GRID5, np.ones((1, 1, 2, 2)), None, {"dilation": 2},
                   [[24, 28, 32], [44, 48, 52], [64, 68, 72]]),
    "same-even-kernel": (image([[1, 2, 3]]), image([[1, 10]]), None, {"padding": "same"},
                         [[21, 32, 3]]),
    "same-odd-kernel": (image([[1, 2, 3]]), image([[1, 10, 100]]), None,
                        {"padding": "same"}, [[210, 321, 32]]),
    "valid": (image([[1, 2, 3]]), image([[1, 10]]), None, {"padding": "valid"}, [[21, 32]]),
    "asymmetric-4-tuple": (image([[1, 2]]), image([[1], [10]]), None,
                           {"padding": (1, 0, 0, 2)}, [[10, 20, 0, 0]]),
    "non-square-kernel": (GRID3, image([[1, -1, 2]]), None, {},
                          [[5], [11], [17]]),
}


@pytest.mark.parametrize("case", CONV2D_CASES, ids=str)
def test_conv2d_ref_by_hand(case):
    x, w, b, kwargs, expected = CONV2D_CASES[case]
    np.testing.assert_array_equal(conv2d_ref(x, w, b, **kwargs)[0, 0], expected)


def test_conv2d_ref_groups_by_hand():
    x = np.stack([GRID3[0, 0], 10 * GRID3[0, 0]])[None]      # (1, 2, 3, 3)
    w = np.array([3.0, 5.0]).reshape(2, 1, 1, 1)
    grouped = conv2d_ref(x, w, groups=2)
    np.testing.assert_array_equal(grouped[0, 0], 3 * GRID3[0, 0])
    np.testing.assert_array_equal(grouped[0, 1], 50 * GRID3[0, 0])
    dense = conv2d_ref(x, w.reshape(1, 2, 1, 1), groups=1)
    np.testing.assert_array_equal(dense[0, 0], 53 * GRID3[0, 0])
    # Depthwise with a channel multiplier of 2: output channels 0, 1 read input channel 0.
    wm = np.array([1.0, -1.0, 2.0, 0.5]).reshape(4, 1, 1, 1)
    multi = conv2d_ref(x, wm, groups=2)
    np.testing.assert_array_equal(multi[0], [GRID3[0, 0], -GRID3[0, 0], 20 * GRID3[0, 0],
                                             5 * GRID3[0, 0]])


def test_conv2d_ref_batch_and_unbatched():
    x = np.stack([GRID3[0], -GRID3[0]])                       # (2, 1, 3, 3)
    y = conv2d_ref(x, K22)
    np.testing.assert_array_equal(y[:, 0], [[[37, 47], [67, 77]], [[-37, -47], [-67, -77]]])
    np.testing.assert_array_equal(conv2d_ref(GRID3[0], K22), [[[37, 47], [67, 77]]])
    assert conv2d_ref(np.zeros((0, 1, 3, 3)), K22).shape == (0, 1, 2, 2)


def test_conv2d_abs_is_conv_of_magnitudes():
    x = image([[1, -2], [-3, 4]])
    np.testing.assert_array_equal(conv2d_abs(x, -K22, [-1.0]), [[[[31]]]])


def test_padding_and_pad_modes_by_hand():
    assert conv2d_padding("same", (4, 3), (1, 2)) == (1, 2, 2, 2)
    assert conv2d_padding((1, 2), (3, 3)) == (1, 1, 2, 2)
    assert conv2d_padding(3, (3, 3)) == (3, 3, 3, 3)
    row = np.array([[1.0, 2.0, 3.0]])
    expected = {"zeros": [0, 1, 2, 3, 0], "reflect": [2, 1, 2, 3, 2],
                "replicate": [1, 1, 2, 3, 3], "circular": [3, 1, 2, 3, 1]}
    for mode, want in expected.items():
        np.testing.assert_array_equal(pad_input(row, (0, 0, 1, 1), mode)[0], want, mode)


# (x, w, kwargs, expected output of the single (image, channel)); w is (C_in, C_out, kh, kw)
TRANSPOSED_CASES = {
    "one-pixel": (image([[2]]), K22, {}, [[2, 4], [6, 8]]),
    "stride-1-overlap": (image([[1, 2]]), image([[1, 1]]), {}, [[1, 3, 2]]),
    "stride-2": (image([[1, 2]]), image([[1, 1]]), {"stride": 2}, [[1, 1, 2, 2]]),
    "padding-crops": (image([[1]]), GRID3, {"padding": 1}, [[5]]),
    "output-padding": (image([[1, 2]]), image([[1]]), {"stride": 2, "output_padding": (0, 1)},
                       [[1, 0, 2, 0]]),
    "dilation-3": (image([[1]]), image([[1, 2]]), {"dilation": 3}, [[1, 0, 0, 2]]),
    "stride-2-padding-1": (image([[1, 2, 3]]), image([[1, 10, 100]]),
                           {"stride": (1, 2), "padding": (0, 1)},
                           [[10, 100 + 2, 20, 200 + 3, 30]]),
}


@pytest.mark.parametrize("case", TRANSPOSED_CASES, ids=str)
def test_conv_transpose2d_ref_by_hand(case):
    x, w, kwargs, expected = TRANSPOSED_CASES[case]
    np.testing.assert_array_equal(conv_transpose2d_ref(x, w, **kwargs)[0, 0], expected)


def test_conv_transpose2d_ref_bias_groups_by_hand():
    x = np.stack([GRID3[0, 0], 10 * GRID3[0, 0]])[None]      # (1, 2, 3, 3)
    w = np.array([3.0, 5.0]).reshape(2, 1, 1, 1)              # 2 groups of 1 -> 1
    y = conv_transpose2d_ref(x, w, [1.0, -1.0], groups=2)
    np.testing.assert_array_equal(y[0], [3 * GRID3[0, 0] + 1, 50 * GRID3[0, 0] - 1])


# Random geometries: (N, C_in, H, W, C_out, (kh, kw), stride, padding, dilation, groups)
GEOMETRIES = [
    (2, 3, 7, 9, 4, (3, 2), (1, 2), (1, 0), (2, 1), 1),
    (1, 4, 11, 5, 6, (1, 3), (3, 1), (0, 2), (1, 2), 2),
    (3, 6, 8, 8, 12, (3, 3), (2, 2), (1, 1), (1, 1), 6),
    (1, 5, 13, 7, 5, (4, 2), (1, 1), "same", (2, 3), 5),
    (2, 2, 6, 10, 2, (2, 4), (1, 1), "valid", (1, 1), 1),
]


def geometry_arrays(geometry, transposed):
    N, C_in, H, W, C_out, k, _, _, _, groups = geometry
    rng = np.random.default_rng(seed_of(geometry, transposed))
    x = rng.standard_normal((N, C_in, H, W))
    if transposed:
        w = rng.standard_normal((C_in, C_out // groups, *k))
    else:
        w = rng.standard_normal((C_out, C_in // groups, *k))
    return x, w, rng.standard_normal(C_out)


def conv_kwargs(geometry):
    *_, stride, padding, dilation, groups = geometry
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("geometry", [g for g in GEOMETRIES if not isinstance(g[7], str)],
                         ids=str)
def test_references_are_adjoint(geometry):
    """<conv2d_ref(x, w), y> == <x, conv_transpose2d_ref(y, w)> (no torch needed)."""
    kw = conv_kwargs(geometry)
    x, w, _ = geometry_arrays(geometry, transposed=False)
    y = conv2d_ref(x, w, **kw)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    back = conv_transpose2d_ref(dy, w, **kw, output_padding=0)
    op = (x.shape[2] - back.shape[2], x.shape[3] - back.shape[3])
    back = conv_transpose2d_ref(dy, w, **kw, output_padding=op)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(x, back), rtol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_conv2d_ref_matches_torch(geometry, torch):
    x, w, b = geometry_arrays(geometry, transposed=False)
    kw = conv_kwargs(geometry)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                          torch.from_numpy(b), **kw).numpy()
    np.testing.assert_allclose(conv2d_ref(x, w, b, **kw), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_conv_transpose2d_ref_matches_torch(geometry, torch):
    x, w, b = geometry_arrays(geometry, transposed=True)
    kw = conv_kwargs(geometry)
    if isinstance(kw["padding"], str):
        kw["padding"] = 1
    kw["output_padding"] = tuple(max(s, d) - 1 for s, d in zip(kw["stride"], kw["dilation"]))
    expected = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                                    torch.from_numpy(b), **kw).numpy()
    np.testing.assert_allclose(conv_transpose2d_ref(x, w, b, **kw), expected, rtol=1e-12,
                               atol=1e-12)

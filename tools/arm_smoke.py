"""Smoke tests that every kernel path of this build runs and is right, on any architecture.

Run by tools/test-arm.sh under qemu (aarch64, armv7), where there is no torch: the reference
is cconv.testing's (numpy only, float64), on the unfolded input. Also runs natively:
`python -m pytest tools/arm_smoke.py`.

Covers, for every instruction-set variant the CPU supports (cconv._isa.SUPPORTED) and both
dtypes: the implicit GEMM with output-channel counts below, at and above the tile height and
output widths around the tile width, 1x1 read in place (and its partial last panel), reductions
around the K block, strided / dilated / asymmetric / 'same' padding, groups; the depthwise
kernel with multipliers 1 and 2; 1 thread vs 2 threads bitwise; the module against the
functional call; the fused epilogue on every kernel path against the same steps taken one at
a time, and the vector activations against float64; pooling and softmax against numpy, and a
small fused model against the unfused one; and sizes near Py_ssize_t's limits (31
bits on armv7), which must either compute the right result or raise ValueError /
MemoryError, never crash.
"""
import sys

import numpy as np
import pytest

import cconv
from cconv import _isa, _lowering, _params, _planner
from cconv._kernels import _igemm
from cconv.testing import conv2d_abs, conv2d_ref, unfold

ISAS = _isa.SUPPORTED
DTYPES = (np.float32, np.float64)
BITS = 64 if sys.maxsize > 2**32 else 32


# ---- reference ----------------------------------------------------------------------------
def assert_close(y, x, w, b, **geometry):
    """y equals the float64 reference within the rounding bound of a K-term dot product:
    |y - ref| <= 2 K eps (|x| * |w| + |b|), computed with the same geometry."""
    groups = geometry.pop("groups", 1)
    xu = unfold(x, w.shape[2:], **geometry)
    ref = conv2d_ref(xu, w, b, stride=w.shape[2:], groups=groups)
    mag = conv2d_abs(xu, w, b, stride=w.shape[2:], groups=groups)
    K = w.shape[1] * w.shape[2] * w.shape[3] + 1
    eps = np.finfo(y.dtype).eps
    assert y.shape == ref.shape
    err = np.abs(y.astype(np.float64) - ref)
    bound = 2 * K * eps * mag + np.finfo(y.dtype).tiny
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.size else None
    assert (err <= bound).all(), (f"max error {err.max():.3g} at {worst}, bound there "
                                  f"{bound[worst]:.3g}")


def data(shape, dtype, seed):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def pads4(padding):
    if isinstance(padding, int):
        return (padding,) * 4
    return (padding[0], padding[0], padding[1], padding[1])


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def check(isa, dtype, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, bias=True,
          algorithm=None, seed=0):
    x = data(x_shape, dtype, seed)
    w = data(w_shape, dtype, seed + 1)
    b = data((w_shape[0],), dtype, seed + 2) if bias else None
    with _isa.forced(isa):
        y = cconv.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, algorithm=algorithm)
    assert y.dtype == dtype
    if isinstance(padding, str):
        pads = _params.conv_padding("t", padding, w_shape[2:], pair(dilation), pair(stride))
    else:
        pads = pads4(padding)
    assert_close(y, x, w, b, stride=pair(stride), padding=pads, dilation=pair(dilation),
                 groups=groups)


def isa_id(name):
    return _isa.NAMES.index(name)


def test_unfold_is_the_padded_geometry():
    """conv2d_ref of the unfolded input equals conv2d_ref's own padding, striding and
    dilation (asymmetric, and padding wider than the kernel)."""
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 4, 7, 6)), rng.standard_normal((6, 2, 3, 2)), None
    kw = dict(stride=(2, 3), padding=(1, 4, 0, 5), dilation=(3, 2))
    expect = conv2d_ref(x, w, b, groups=2, **kw)
    got = conv2d_ref(unfold(x, (3, 2), **kw), w, b, stride=(3, 2), groups=2)
    np.testing.assert_allclose(got, expect, rtol=1e-13, atol=1e-13)


# ---- the build ----------------------------------------------------------------------------
def test_build_reports_thread_pool_and_variants():
    cfg = cconv._config.config()
    assert cfg["thread_pool"], "this build lost its thread pool"
    assert cfg["isa"] in cfg["isa_supported"]
    assert set(cfg["isa_supported"]) <= set(cfg["isa_compiled"])
    assert cfg["isa_compiled"][0] in cfg["isa_supported"], "the baseline must always run"


# ---- implicit GEMM ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
def test_igemm_channels_around_the_tile(isa, dtype):
    mr, nr = _igemm.tile(isa_id(isa), np.dtype(dtype).itemsize)
    for i, c_out in enumerate(sorted({1, mr - 1, mr, mr + 1, 2 * mr + 1} - {0})):
        for j, w_out in enumerate((nr - 1, nr, nr + 1, 2 * nr + 3)):
            if w_out < 1:
                continue
            # 3x3, padding 1: output width = input width.
            check(isa, dtype, (1, 3, 2, w_out), (c_out, 3, 3, 3), padding=1, seed=i * 7 + j,
                  algorithm="igemm")


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", [
    # (x shape, w shape, kwargs): each a distinct path of the driver
    ((2, 5, 7, 9), (6, 5, 1, 1), {}),                                  # 1x1 in place, partial tile
    ((1, 4, 4, 4), (3, 4, 1, 1), {}),                                  # 1x1 in place, 16 pixels
    ((1, 4, 5, 6), (3, 4, 1, 1), dict(stride=2)),                      # 1x1 strided: packed
    ((1, 3, 5, 6), (4, 3, 1, 1), dict(padding=1)),                     # 1x1 padded: packed
    ((2, 3, 9, 10), (5, 3, 3, 3), dict(stride=2, padding=1)),          # strided
    ((1, 3, 11, 9), (4, 3, 3, 2), dict(dilation=(2, 3), padding=(2, 1))),  # dilated, non-square
    ((1, 2, 7, 8), (3, 2, 2, 3), dict(stride=(1, 2), padding=(0, 2))),  # asymmetric
    ((1, 2, 6, 7), (3, 2, 4, 3), dict(padding="same")),                # 'same', odd total pad
    ((1, 2, 5, 5), (2, 2, 5, 5), dict(padding=4, dilation=2)),         # mostly padding
    ((2, 4, 6, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),           # grouped
    ((1, 6, 5, 5), (6, 1, 3, 3), dict(groups=6, algorithm="igemm")),   # depthwise via igemm
    ((1, 255, 3, 3), (2, 255, 1, 1), {}),                              # K = 255
    ((1, 32, 3, 3), (3, 32, 2, 4), dict(padding=1)),                   # K = 256 (pixel-mode block)
    ((1, 257, 2, 2), (3, 257, 1, 1), dict(padding=1)),                 # K = 257: two K blocks
    ((1, 60, 4, 5), (13, 60, 3, 3), dict(padding=1)),                  # K = 540: three K blocks
    ((0, 3, 5, 5), (2, 3, 3, 3), {}),                                  # batch 0
    ((1, 1, 13, 1), (1, 1, 3, 1), {}),                                 # one column
    ((1, 2, 4, 4), (3, 2, 3, 3), dict(bias=False, stride=3)),          # no bias
])
def test_igemm_paths(isa, dtype, case):
    x_shape, w_shape, kw = case
    check(isa, dtype, x_shape, w_shape, **kw)


# ---- depthwise ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("case", [
    ((2, 3, 9, 10), (3, 1, 3, 3), dict(groups=3, padding=1)),
    ((1, 4, 17, 19), (4, 1, 3, 3), dict(groups=4, stride=2, padding=1)),
    ((1, 2, 12, 13), (2, 1, 5, 5), dict(groups=2, padding=2, dilation=1)),
    ((1, 2, 12, 15), (2, 1, 3, 3), dict(groups=2, padding=(2, 3), dilation=(2, 3))),
    ((1, 3, 9, 37), (6, 1, 3, 3), dict(groups=3, padding=1)),               # multiplier 2
    ((1, 2, 8, 41), (2, 1, 1, 7), dict(groups=2, stride=(1, 3), padding=(0, 3))),
    ((1, 1, 10, 10), (4, 1, 3, 3), dict(padding=1)),                        # C_in 1 (MNIST)
    ((1, 2, 6, 6), (2, 1, 3, 3), dict(groups=2, padding="same", bias=False)),
])
@pytest.mark.parametrize("algorithm", ["depthwise", "depthwise_cl"])
def test_depthwise(isa, dtype, case, algorithm):
    """Both orientations (columns or channels along the lanes), each against the
    reference; the planner picks one of them."""
    x_shape, w_shape, kw = case
    plan = _planner.plan_for_conv2d(x_shape, w_shape, **{k: v for k, v in kw.items()
                                                         if k != "bias"})
    assert plan.algorithm in ("depthwise", "depthwise_cl")
    check(isa, dtype, x_shape, w_shape, **kw, algorithm=algorithm)


# ---- threads ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("x_shape, w_shape, kw", [
    ((1, 32, 16, 17), (24, 32, 3, 3), dict(padding=1)),
    ((2, 32, 24, 25), (32, 32, 1, 1), {}),
    ((1, 32, 64, 65), (32, 1, 3, 3), dict(groups=32, padding=1)),
    ((1, 192, 28, 28), (192, 1, 3, 3), dict(groups=192, padding=1)),
], ids=["igemm3x3", "igemm1x1", "depthwise", "depthwise_cl"])
def test_one_thread_equals_two_bitwise(isa, dtype, x_shape, w_shape, kw):
    x = data(x_shape, dtype, 10)
    w = data(w_shape, dtype, 11)
    b = data((w_shape[0],), dtype, 12)
    results = {}
    try:
        for n in (1, 2):
            cconv.set_num_threads(n)
            with _isa.forced(isa):
                plan = _planner.plan_for_conv2d(x_shape, w_shape, dtype=dtype, **kw)
                assert plan.threads == n, "the case is too small to use the threads"
                results[n] = cconv.conv2d(x, w, b, **kw)
    finally:
        cconv.set_num_threads(None)
    assert np.array_equal(results[1], results[2])
    assert_close(results[1], x, w, b, padding=pads4(kw.get("padding", 0)),
                 groups=kw.get("groups", 1))


# ---- the fused epilogue and the vector activations ----------------------------------------
EPILOGUE_PATHS = [
    (False, (2, 6, 9, 11), (10, 6, 3, 3), dict(padding=1), "igemm"),
    (False, (2, 6, 9, 11), (10, 6, 3, 3), dict(padding=1), "igemm_cl"),
    (False, (2, 6, 8, 40), (6, 1, 3, 3), dict(padding=1, groups=6), "depthwise"),
    (False, (1, 9, 7, 7), (9, 1, 3, 3), dict(padding=1, groups=9), "depthwise_cl"),
    (True, (1, 5, 6, 7), (5, 4, 3, 3), dict(stride=2, padding=1), "igemm"),
    (True, (1, 4, 5, 6), (4, 3, 2, 2), dict(stride=2), "igemm"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("act", ["relu", "gelu", "silu"])
@pytest.mark.parametrize("case", EPILOGUE_PATHS, ids=lambda c: f"{c[4]}-t{int(c[0])}")
def test_epilogue_equals_unfused(isa, dtype, act, case):
    transposed, x_shape, w_shape, kw, algorithm = case
    fn = cconv.conv_transpose2d if transposed else cconv.conv2d
    C = w_shape[1] if transposed else w_shape[0]
    x, w, b = data(x_shape, dtype, 20), data(w_shape, dtype, 21), data((C,), dtype, 22)
    scale, shift = np.linspace(0.5, 2, C), np.linspace(-1, 1, C)
    with _isa.forced(isa):
        plain = fn(x, w, b, algorithm=algorithm, **kw)
        r = data(plain.shape, dtype, 23)
        y = fn(x, w, b, algorithm=algorithm, residual=r,
               epilogue=cconv.Epilogue(scale, shift, act), **kw)
        z = plain * scale.astype(dtype)[:, None, None] + shift.astype(dtype)[:, None, None] + r
        want = getattr(cconv.nn.functional, act)(z)
    tiny = np.finfo(dtype).tiny
    normal = np.abs(want) >= 64 * tiny
    assert np.array_equal(y[normal], want[normal])
    assert np.all(np.abs(y - want) <= 64 * tiny)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
def test_vector_activations_against_float64(isa, dtype):
    """sigmoid, tanh and gelu of this variant's activation.h against numpy's float64 (gelu:
    the vector code's float64 erfc on the baseline variant; tests/test_activation.py checks
    it against mpmath), with the specials."""
    x = np.concatenate([np.linspace(-40, 40, 801), [0.0, -0.0, np.inf, -np.inf, np.nan,
                                                    1e-30, -1e-30, 1e30, -1e30]]).astype(dtype)
    f = cconv.nn.functional
    with _isa.forced(isa):
        sig, tanh, gelu = f.sigmoid(x), f.tanh(x), f.gelu(x)
    with _isa.forced(ISAS[0]):
        gelu64 = f.gelu(x.astype(np.float64))
    x64 = x.astype(np.float64)
    eps = np.finfo(dtype).eps
    with np.errstate(over="ignore"):
        sig64 = 1 / (1 + np.exp(-x64))
    # gelu's x/sqrt(2) is rounded to dtype (torch's formula): an error that grows as x*x.
    cond = np.minimum(1 + x64 * x64, 1e6)
    for got, want, k in ((sig, sig64, 1), (tanh, np.tanh(x64), 1), (gelu, gelu64, cond)):
        assert np.array_equal(np.isnan(got), np.isnan(want))
        inf = np.isinf(want)
        assert np.array_equal(got[inf], want[inf])
        ok = np.isfinite(want)
        bound = 8 * eps * (k * np.ones_like(x64))[ok] * np.abs(want[ok]) + np.finfo(dtype).tiny
        assert np.all(np.abs(got[ok] - want[ok]) <= bound)


# ---- the layers between convolutions, and fuse ---------------------------------------------
def _windows(x, k, s, p, fill):
    """(N, C, Ho, Wo, k*k) windows of x padded with `fill` (a numpy reference for pooling)."""
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return v.reshape(*v.shape[:4], k * k)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_pooling_and_softmax_against_numpy(dtype):
    x = data((2, 3, 11, 13), dtype, 30)
    nn = cconv.nn
    for k, st, pad in ((3, 2, 1), (2, 2, 0), (3, 1, 1)):
        want = _windows(x, k, st, pad, -np.inf).max(axis=-1)
        assert np.array_equal(nn.MaxPool2d(k, st, pad)(x), want)
        win = _windows(x.astype(np.float64), k, st, pad, 0.0)
        want = win.sum(axis=-1) / (k * k)           # count_include_pad, torch's default
        np.testing.assert_allclose(nn.AvgPool2d(k, st, pad)(x), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x)[..., 0, 0],
                               x.astype(np.float64).mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(nn.Softmax(dim=1)(x), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("isa", ISAS)
def test_fused_model_equals_unfused(isa):
    """A MobileNetV2-like block with random batch-norm statistics, fused and not."""
    nn = cconv.nn

    def bn(c, seed):
        b = nn.BatchNorm2d(c)
        rng = np.random.default_rng(seed)
        b.load_state_dict({"weight": rng.uniform(0.5, 1.5, c).astype(np.float32),
                           "bias": rng.uniform(-1, 1, c).astype(np.float32),
                           "running_mean": rng.uniform(-1, 1, c).astype(np.float32),
                           "running_var": rng.uniform(0.5, 2, c).astype(np.float32),
                           "num_batches_tracked": np.array(1, np.int64)})
        return b
    model = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False, rng=1), bn(16, 2), nn.ReLU6(),
                          nn.Conv2d(16, 16, 3, 1, 1, groups=16, bias=False, rng=3), bn(16, 4),
                          nn.SiLU(), nn.Conv2d(16, 8, 1, bias=False, rng=5), bn(8, 6),
                          nn.MaxPool2d(2)).eval()
    x = data((2, 3, 17, 19), np.float32, 31)
    with _isa.forced(isa):
        fused = nn.fuse(model)
        assert [type(m).__name__ for m in fused].count("BatchNorm2d") == 0
        y, want = fused(x), model(x)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# ---- the module ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_module_equals_functional(dtype):
    layer = cconv.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=1, dtype=dtype, rng=3)
    x = data((2, 4, 7, 8), dtype, 4)
    assert np.array_equal(layer(x), cconv.conv2d(x, layer.weight, layer.bias, stride=(2, 1),
                                                 padding=1))
    assert np.array_equal(layer(x[0]), layer(x)[0])


def test_readonly_and_strided_inputs():
    x = data((1, 3, 8, 10), np.float32, 5)
    w = data((4, 3, 3, 3), np.float32, 6)
    expect = cconv.conv2d(x, w)
    ro = x.copy()
    ro.flags.writeable = False
    assert np.array_equal(cconv.conv2d(ro, w), expect)
    assert np.array_equal(cconv.conv2d(np.asfortranarray(x), w), expect)
    flipped = x[:, :, ::-1, ::-1].copy()[:, :, ::-1, ::-1]
    assert np.array_equal(cconv.conv2d(flipped, w), expect)


# ---- sizes near the limits (Py_ssize_t is 31 bits + sign on armv7) ------------------------
SIZE_LIMIT = _params.SIZE_LIMIT


@pytest.mark.parametrize("kw", [
    dict(padding=2**31 - 1), dict(padding=2**31), dict(padding=2**63),
    dict(padding=(0, 2**32 + 1)), dict(stride=(1, 2**64)),
    dict(dilation=2**31 - 1), dict(padding=SIZE_LIMIT + 1), dict(stride=SIZE_LIMIT + 1),
    dict(groups=2**31), dict(padding=SIZE_LIMIT // 2),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_overflowing_sizes_raise_cleanly(kw):
    x = data((1, 2, 5, 5), np.float32, 0)
    w = data((2, 2 if "groups" not in kw else 1, 3, 3), np.float32, 1)
    with pytest.raises((ValueError, MemoryError)):
        cconv.conv2d(x, w, **kw)


@pytest.mark.parametrize("kw", [
    dict(padding=2**31), dict(stride=2**31), dict(dilation=2**60), dict(kernel_size=2**60),
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_module_overflowing_sizes_raise_cleanly(kw):
    if max(kw.values()) <= SIZE_LIMIT:
        pytest.skip(f"{kw} is a valid size on this {BITS}-bit platform")
    args = dict(kernel_size=3)
    args.update(kw)
    with pytest.raises((ValueError, MemoryError)):
        layer = cconv.Conv2d(2, 2, **args)
        layer(data((1, 2, 5, 5), np.float32, 0))


def test_huge_output_raises_memory_error():
    # The output alone would need more bytes than the address space: checked before allocating.
    x = np.zeros((1, 1, 4, 4), np.float32)
    w = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(MemoryError):
        cconv.conv2d(x, w, padding=2**25)     # (2**26 + 4)**2 outputs
    big_w = np.broadcast_to(np.float32(0), (2**16, 1, 1, 1))
    with pytest.raises((ValueError, MemoryError)):
        cconv.conv2d(np.zeros((1, 1, 2**9, 2**9), np.float32), big_w)   # 2**34 outputs


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("groups", [1, 2], ids=["dense", "depthwise"])
@pytest.mark.parametrize("big", [2**20, SIZE_LIMIT // 4], ids=["2^20", "limit/4"])
def test_large_but_valid_geometry(isa, dtype, groups, big):
    """Stride, dilation and padding far beyond the image: a valid, tiny convolution whose
    index arithmetic runs near the limit. It must be computed exactly, or refused with a
    MemoryError (a workspace that grows with the geometry), never overflow: on armv7 the
    band buffer's size once wrapped and the kernel wrote past it."""
    x = data((1, 2, 3, 4), dtype, 7)
    w = data((2, 2 // groups, 2, 2), dtype, 8)
    b = data((2,), dtype, 9)
    kw = dict(stride=big, dilation=big, padding=big, groups=groups)
    try:
        with _isa.forced(isa):
            y = cconv.conv2d(x, w, b, **kw)
    except MemoryError as exc:
        pytest.xfail(f"refused cleanly: {str(exc)[:100]}")
    assert_close(y, x, w, b, stride=(big, big), dilation=(big, big), padding=(big,) * 4,
                 groups=groups)


def test_dilation_multiple_of_stride_reads_one_phase():
    """Stride = dilation = 2**14 on an image tall enough for both taps: every tap reads the
    same stride phase, so the band holds one sub-image, not 2**14 (which would be 280 MB,
    more than Py_ssize_t indexes on 32-bit). Planned only: the input would be 134 MB."""
    d = 2**14
    plan = _planner.plan_for_conv2d((1, 2, d + 1, 1024), (2, 2, 2, 1), stride=(d, 1),
                                    dilation=(d, 1))
    assert plan.workspace_bytes <= plan.threads * (1 << 20)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
def test_depthwise_tall_stride_wide_rows(isa, dtype):
    """Output rows 2**20 input rows apart, 1000 columns wide: a band of all five output rows
    would span 4 * 2**20 input rows x 1000 columns, more than 2**31 elements."""
    shape, w_shape = (1, 2, 3, 1000), (2, 1, 3, 3)
    kw = dict(stride=(2**20, 1), padding=(2**21, 1), groups=2)
    assert _planner.plan_for_conv2d(shape, w_shape, **kw).algorithm == "depthwise"
    check(isa, dtype, shape, w_shape, **kw)


@pytest.mark.parametrize("algorithm", ["igemm", "igemm_cl"])
def test_workspace_sizes_saturate_not_wrap(algorithm):
    """Stride 2**21 with dilation 2**20 + 1 and 34 taps on rows 2**26 wide: the taps read 34
    distinct stride phases, each a sub-image of 17 such rows, a band buffer of about 2**35
    elements, too large for 32-bit. The kernels' size arithmetic saturates at
    PY_SSIZE_T_MAX, so the size reads as huge, never as a small wrapped number, and the
    planner refuses it with MemoryError (on 64-bit it may fit the address space)."""
    s, d, k = 2**21, 2**20 + 1, 34
    x_shape, w_shape = (1, 1, (k - 1) * d + 1, 2**26), (1, 1, k, 1)
    params = _params.conv2d_geometry("conv2d", x_shape, w_shape, (s, 1), 0, (d, 1), 1)
    problems = _igemm.Problems(_lowering.gemm(params))
    mode = _planner.MODES[_planner.Algorithm(algorithm)]
    for isa in ISAS:
        ws, ws_raw, _, _, _ = problems.sizes(mode, isa_id(isa), 4, 256, 1, 1)
        assert ws >= 2**20 and ws_raw >= ws
    if BITS == 32:
        with pytest.raises(MemoryError):
            _planner.plan_for_conv2d(x_shape, w_shape, stride=(s, 1), dilation=(d, 1),
                                     algorithm=algorithm)


@pytest.mark.parametrize("stride", [2**31 - 1, 2**31, 2**40])
def test_stride_beyond_31_bits(stride):
    """A stride past the image: valid on 64-bit (one output pixel), too large on 32-bit."""
    x = data((1, 2, 5, 5), np.float32, 0)
    w = data((2, 2, 3, 3), np.float32, 1)
    if stride > SIZE_LIMIT:
        with pytest.raises(ValueError):
            cconv.conv2d(x, w, stride=stride)
    else:
        assert_close(cconv.conv2d(x, w, stride=stride), x, w, None, stride=(stride, stride))


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_large_padding_small_output(dtype):
    # Padding that puts the whole image far inside a wide window: H_out stays small.
    x = data((1, 2, 3, 3), dtype, 1)
    w = data((3, 2, 2, 2), dtype, 2)
    # 2**8: the band buffer holds stride x stride phases (2**12 made it 5 GB on x86-64).
    p = 2**8
    kw = dict(stride=p, padding=p, dilation=p)
    assert_close(cconv.conv2d(x, w, **kw), x, w, None, stride=(p, p), padding=(p,) * 4,
                 dilation=(p, p))


# ---- conv_transpose2d ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
def test_conv_transpose2d_adjoint(isa, dtype):
    """<conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for a strided, padded, dilated case."""
    x = data((1, 4, 9, 8), dtype, 1)
    w = data((6, 2, 3, 2), dtype, 2)
    kw = dict(stride=(2, 3), padding=(1, 0), dilation=(1, 2), groups=2)
    with _isa.forced(isa):
        y = cconv.conv2d(x, w, **kw)
        r = data(y.shape, dtype, 3)
        # output_padding restores the rows / columns the strided conv2d dropped.
        base = cconv.conv_transpose2d(r, w, **kw).shape
        op = (x.shape[2] - base[2], x.shape[3] - base[3])
        xt = cconv.conv_transpose2d(r, w, output_padding=op, **kw)
    assert xt.shape == x.shape
    lhs = np.vdot(y.astype(np.float64), r.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), xt.astype(np.float64))
    assert abs(lhs - rhs) <= 1e3 * np.finfo(dtype).eps * (np.abs(y).sum() + 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("isa", ISAS)
def test_kernel_sized_stride_adjoint(isa, dtype):
    """The same identity for U-Net's 2x2/s2 (one GEMM copied depth to space), in both
    orientations: the adjoint of conv2d, and the same bits either way."""
    x = data((1, 5, 8, 10), dtype, 1)
    w = data((6, 5, 2, 2), dtype, 2)
    with _isa.forced(isa):
        y = cconv.conv2d(x, w, stride=2)
        r = data(y.shape, dtype, 3)
        xt = cconv.conv_transpose2d(r, w, stride=2, algorithm="igemm")
        xc = cconv.conv_transpose2d(r, w, stride=2, algorithm="igemm_cl")
    assert xt.shape == x.shape
    np.testing.assert_array_equal(xt, xc)
    lhs = np.vdot(y.astype(np.float64), r.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), xt.astype(np.float64))
    assert abs(lhs - rhs) <= 1e3 * np.finfo(dtype).eps * (np.abs(y).sum() + 1)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_winograd(isa, dtype):
    """Winograd F(4x4, 3x3): partial tiles, asymmetric 'same'-style padding, groups; its
    error is checked with the direct method's per-element bound times 16 (the transforms)."""
    x = data((2, 6, 11, 13), dtype, 5)
    w = data((8, 3, 3, 3), dtype, 6)
    b = data((8,), dtype, 7)
    with _isa.forced(isa):
        y = cconv.conv2d(x, w, b, padding=(1, 2), groups=2, algorithm="winograd")
        direct = cconv.conv2d(x, w, b, padding=(1, 2), groups=2, algorithm="igemm")
    tol = 16 * 2 * 28 * np.finfo(dtype).eps * np.abs(direct).max()
    assert np.abs(y.astype(np.float64) - direct).max() <= tol

"""Winograd F(4x4, 3x3) (algorithm='winograd'): its error bound against the float64
reference, its geometry (partial tiles, padding, groups, batches), thread counts, the module
path, the fused epilogue, the planner's default rule, and the switch that turns it off."""
import os

import numpy as np
import pytest
from conftest import random_arrays, run_python

import cconv
from cconv import _engine, _params, _planner
from cconv.testing import conv2d_ref

# max |y - ref| <= BOUND * max |ref| (the relative error bound Winograd must keep).
BOUND = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-13}


def rel_error(y, x, w, b, **kwargs):
    ref = conv2d_ref(x.astype(np.float64), w.astype(np.float64),
                     None if b is None else b.astype(np.float64), **kwargs)
    return np.abs(y.astype(np.float64) - ref).max() / np.abs(ref).max()


def data(seed, x_shape, w_shape, bias, dtype):
    """Standard-normal input, weights scaled as a trained layer's (He-like: unit output)."""
    x, w, b = random_arrays(seed, x_shape, w_shape, bias, np.float64)
    w = w / np.sqrt(w_shape[1] * 9)
    return x.astype(dtype), w.astype(dtype), None if b is None else b.astype(dtype)


# (x shape, w shape, kwargs): benchmark-like layers, odd sizes and partial tiles, every
# kind of padding, groups, batches.
CASES = {
    "resnet-64@56": ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1)),
    "resnet-128@28": ((1, 128, 28, 28), (128, 128, 3, 3), dict(padding=1)),
    "odd-13x11": ((1, 3, 13, 11), (5, 3, 3, 3), dict(padding=1)),
    "partial-tiles-pad0": ((2, 16, 17, 19), (24, 16, 3, 3), dict(padding=0)),
    "pad2": ((1, 8, 9, 10), (7, 8, 3, 3), dict(padding=2)),
    "same": ((1, 6, 7, 10), (6, 6, 3, 3), dict(padding="same")),
    "asymmetric-pad": ((1, 5, 12, 9), (4, 5, 3, 3), dict(padding=(0, 2))),
    "groups": ((2, 12, 10, 11), (18, 4, 3, 3), dict(padding=1, groups=3)),
    "one-pixel": ((1, 4, 1, 1), (3, 4, 3, 3), dict(padding=1)),
    "batch3": ((3, 20, 8, 8), (40, 20, 3, 3), dict(padding=1)),
}
# Long reductions at a small size (the GEMMs' blocked sums keep their rounding small).
LONG = {
    "C128@12": ((1, 128, 12, 12), (32, 128, 3, 3)),
    "C512@7": ((1, 512, 7, 7), (32, 512, 3, 3)),
    "C2048@6": ((1, 2048, 6, 6), (16, 2048, 3, 3)),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("case", CASES)
def test_error_bound(case, bias, dtype):
    x_shape, w_shape, kw = CASES[case]
    x, w, b = data(1, x_shape, w_shape, bias, dtype)
    y = cconv.conv2d(x, w, b, **kw, algorithm="winograd")
    assert y.dtype == dtype
    assert rel_error(y, x, w, b, **kw) <= BOUND[np.dtype(dtype)]


@pytest.mark.parametrize("case", LONG)
def test_error_bound_long_reductions(case, dtype):
    x_shape, w_shape = LONG[case]
    x, w, b = data(2, x_shape, w_shape, True, dtype)
    y = cconv.conv2d(x, w, b, padding=1, algorithm="winograd")
    assert rel_error(y, x, w, b, padding=1) <= BOUND[np.dtype(dtype)]


def test_torch_parity(torch, dtype):
    x, w, b = data(3, (2, 32, 15, 14), (24, 32, 3, 3), True, dtype)
    y = cconv.conv2d(x, w, b, padding=1, algorithm="winograd")
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                          torch.from_numpy(b), padding=1).numpy()
    assert np.abs(y - expected).max() <= 2 * BOUND[np.dtype(dtype)] * np.abs(expected).max()


@pytest.mark.parametrize("x_shape", [(2, 40, 23, 29), (1, 40, 14, 15)],
                         ids=["transformed-first", "transformed-in-items"])
def test_bitwise_identical_for_any_thread_count(x_shape, dtype):
    x, w, b = data(4, x_shape, (70, 40, 3, 3), True, dtype)
    results = []
    for n in (1, 2, 3):
        cconv.set_num_threads(n)
        results.append(cconv.conv2d(x, w, b, padding=1, algorithm="winograd"))
    for y in results[1:]:
        np.testing.assert_array_equal(y, results[0])
    np.testing.assert_array_equal(transformed_once(x, w, b), results[0])


def transformed_once(x, w, b, **kwargs):
    """The module's path: the weights transformed once (prepare_weight), then the run."""
    params = _params.conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, 1)
    plan = _planner.plan(params, x.dtype, "winograd")
    bound = _engine.bind(plan, params)
    packed = _engine.prepare_weight(bound, w)
    out = np.empty(params.output_shape, x.dtype)
    _engine.execute(bound, x, packed, b, out)
    return out


def test_weights_transformed_once_equal_functional(dtype):
    """A module's path (weights transformed once by prepare_weight) equals a functional call
    (raw weights, transformed first in the call), bitwise."""
    x, w, b = data(5, (1, 16, 18, 18), (20, 16, 3, 3), True, dtype)
    with_switch = cconv.conv2d(x, w, b, padding=1, algorithm="winograd")
    np.testing.assert_array_equal(transformed_once(x, w, b), with_switch)


def test_functional_calls_reuse_the_transform_buffer_safely():
    """A functional call keeps its transform buffer for the next (_winograd.KEEP_BYTES):
    calls of other sizes and weights in between, a dirty kept buffer, a smaller and a bigger
    layer all give the module path's bits."""
    results = []
    for seed, (x_shape, w_shape) in enumerate([((1, 32, 24, 24), (48, 32, 3, 3)),
                                               ((1, 64, 26, 26), (64, 64, 3, 3)),
                                               ((1, 16, 25, 25), (16, 16, 3, 3)),
                                               ((1, 64, 14, 14), (64, 64, 3, 3)),
                                               ((1, 32, 24, 24), (48, 32, 3, 3))]):
        x, w, b = data(40 + seed % 4, x_shape, w_shape, True, np.float32)
        y = cconv.conv2d(x, w, b, padding=1, algorithm="winograd")
        np.testing.assert_array_equal(y, transformed_once(x, w, b))
        results.append(y)
    np.testing.assert_array_equal(results[4], results[0])


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(stride=2), "stride 1"),
    (dict(dilation=2), "dilation 1"),
])
def test_forced_on_other_geometries_is_refused(kwargs, match):
    x, w, _ = data(6, (1, 4, 9, 9), (4, 4, 3, 3), False, np.float32)
    with pytest.raises(ValueError, match="algorithm='winograd'.*" + match):
        cconv.conv2d(x, w, **kwargs, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm='winograd'"):
        cconv.conv2d(x, w[:, :, :2], algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm='winograd'"):
        cconv.conv_transpose2d(x, w, algorithm="winograd")


def test_switch_python_call():
    params = _params.conv2d_geometry("conv2d", (1, 8, 8, 8), (8, 8, 3, 3), 1, 1, 1, 1)
    x, w, _ = data(7, (1, 8, 8, 8), (8, 8, 3, 3), False, np.float32)
    assert cconv.get_winograd() is True
    assert _planner.plan(params, np.float32, "winograd").algorithm == "winograd"
    cconv.conv2d(x, w, padding=1, algorithm="winograd")        # cached as allowed
    try:
        cconv.set_winograd(False)
        assert cconv.get_winograd() is False
        with pytest.raises(ValueError, match="turned off"):
            _planner.plan(params, np.float32, "winograd")
        with pytest.raises(ValueError, match="turned off"):
            cconv.conv2d(x, w, padding=1, algorithm="winograd")   # no cached plan leaks
        assert _planner.plan(params, np.float32).algorithm != "winograd"
    finally:
        cconv.set_winograd(True)
    with pytest.raises(TypeError):
        cconv.set_winograd("no")


def test_switch_environment_variable():
    code = ("import numpy as np, cconv\n"
            "print(cconv.get_winograd())\n"
            "try:\n"
            "    cconv.conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((2, 2, 3, 3), "
            "np.float32), algorithm='winograd')\n"
            "except ValueError as e:\n"
            "    print('refused', e)\n")
    env = dict(os.environ, CCONV_WINOGRAD="0")
    proc = run_python(["-c", code], env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "False" and "refused" in proc.stdout
    env["CCONV_WINOGRAD"] = "1"
    proc = run_python(["-c", code], env=env)
    assert proc.stdout.strip() == "True", proc.stdout + proc.stderr


@pytest.mark.parametrize("act", ["relu", "silu"])
def test_epilogue_equals_unfused_steps(act, dtype):
    """Bias, scale/shift, residual and the activation, fused into the output transform:
    equal to the unfused steps on the plain result, to the bit; partial tiles, groups."""
    x, w, b = data(6, (2, 12, 13, 10), (15, 4, 3, 3), True, dtype)
    rng = np.random.default_rng(7)
    scale = rng.standard_normal(15).astype(dtype)
    shift = rng.standard_normal(15).astype(dtype)
    kw = dict(padding=1, groups=3, algorithm="winograd")
    plain = cconv.conv2d(x, w, b, **kw)
    residual = rng.standard_normal(plain.shape).astype(dtype)
    ep = cconv.Epilogue(scale=scale, shift=shift, activation=act)
    got = cconv.conv2d(x, w, b, **kw, epilogue=ep, residual=residual)
    y = plain * scale[:, None, None] + shift[:, None, None] + residual
    want = np.maximum(y, 0) if act == "relu" else cconv.nn.functional.silu(y)
    np.testing.assert_array_equal(got, want)
    cconv.set_num_threads(2)
    np.testing.assert_array_equal(cconv.conv2d(x, w, b, **kw, epilogue=ep, residual=residual),
                                  got)


@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs", "chosen"), [
    ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), True),
    ((1, 256, 24, 24), (128, 256, 3, 3), dict(padding=1), True),
    ((4, 128, 12, 12), (128, 128, 3, 3), dict(padding=1), True),      # pixels over the batch
    ((1, 128, 64, 64), (256, 64, 3, 3), dict(padding=1, groups=2), True),
    ((1, 256, 14, 14), (256, 256, 3, 3), dict(padding=1), True),      # wide enough
    ((1, 512, 14, 14), (256, 512, 3, 3), dict(padding=1), True),
    ((1, 128, 14, 14), (128, 128, 3, 3), dict(padding=1), False),     # too few pixels
    ((1, 256, 14, 14), (128, 256, 3, 3), dict(padding=1), False),
    ((1, 256, 13, 13), (256, 256, 3, 3), dict(padding=1), False),
    ((8, 512, 7, 7), (512, 512, 3, 3), dict(padding=1), False),       # per image
    ((1, 32, 56, 56), (64, 32, 3, 3), dict(padding=1), False),        # too few channels
    ((1, 64, 56, 56), (32, 64, 3, 3), dict(padding=1), False),
    ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=1, stride=2), False),
    ((1, 64, 56, 56), (64, 64, 3, 3), dict(padding=2, dilation=2), False),
    ((1, 64, 56, 56), (64, 64, 5, 5), dict(padding=2), False),
])
def test_default_rule(x_shape, w_shape, kwargs, chosen):
    """Rule 3a: Winograd by default on 3x3 stride-1 layers with 64+ channels in and out per
    group and 24x24+ output pixels over the batch, float32 and float64 alike; never when
    off."""
    for dtype in (np.float32, np.float64):
        plan = _planner.plan_for_conv2d(x_shape, w_shape, **kwargs, dtype=dtype)
        assert (plan.algorithm.value == "winograd") == chosen
    cconv.set_winograd(False)
    try:
        assert _planner.plan_for_conv2d(x_shape, w_shape, **kwargs).algorithm.value != "winograd"
    finally:
        cconv.set_winograd(True)

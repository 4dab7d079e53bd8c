"""Every bad input raises the right exception, with a message that names the argument or
value; huge sizes fail cleanly (never crash, never allocate absurdly)."""
import functools
import math
import sys

import numpy as np
import pytest
from conftest import (
    SIZE_LIMIT,
    applicable_algorithms,
    check_conv2d,
    huge_expectation,
    random_arrays,
)

import cconv

F32, F64 = np.float32, np.float64
X = np.zeros((2, 4, 8, 8), F32)
W = np.zeros((6, 2, 3, 3), F32)
B = np.zeros(6, F32)


def conv2d_call(**overrides):
    """conv2d of X (2, 4, 8, 8) with W (6, 2, 3, 3), B and groups=2, with some arguments
    replaced."""
    args = dict(input=X, weight=W, bias=B, groups=2)
    args.update(overrides)
    return cconv.conv2d(**args)


# name: (overridden arguments, exception, regex the message must match)
CONV2D_ERRORS = {
    "input-2d": (dict(input=np.zeros((8, 8), F32)), ValueError, r"input.*\[8, 8\]"),
    "input-5d": (dict(input=np.zeros((1, 2, 4, 8, 8), F32)), ValueError,
                 r"input.*\[1, 2, 4, 8, 8\]"),
    "input-0d": (dict(input=np.float32(1)), ValueError, r"input.*\[\]"),
    "weight-3d": (dict(weight=np.zeros((6, 2, 3), F32)), ValueError, r"weight.*\[6, 2, 3\]"),
    "weight-5d": (dict(weight=np.zeros((6, 2, 3, 3, 1), F32)), ValueError,
                  r"weight.*\[6, 2, 3, 3, 1\]"),
    "weight-empty-kernel": (dict(weight=np.zeros((6, 2, 0, 3), F32)), ValueError,
                            r"kernel.*0"),
    "channel-mismatch": (dict(input=np.zeros((2, 5, 8, 8), F32)), ValueError,
                         r"weight of size \[6, 2, 3, 3\].*4 channels.*got 5 channels"),
    "channel-mismatch-dense": (dict(groups=1), ValueError, r"\[6, 2, 3, 3\].*2 channels.*4"),
    "groups-not-dividing-out-channels": (dict(groups=4), ValueError, r"groups=4"),
    "groups-not-dividing-in-channels": (dict(groups=3), ValueError,
                                        r"groups=3.*6 channels.*4 channels"),
    "groups-0": (dict(groups=0), ValueError, r"groups.*0"),
    "groups-negative": (dict(groups=-2), ValueError, r"groups.*-2"),
    "groups-bool": (dict(groups=True), TypeError, r"groups.*True"),
    "groups-float": (dict(groups=2.0), TypeError, r"groups.*2\.0"),
    "groups-none": (dict(groups=None), TypeError, r"groups.*None"),
    "stride-0": (dict(stride=0), ValueError, r"stride.*0"),
    "stride-negative": (dict(stride=-1), ValueError, r"stride.*-1"),
    "stride-pair-with-0": (dict(stride=(1, 0)), ValueError, r"stride.*\(1, 0\)"),
    "stride-3-tuple": (dict(stride=(1, 1, 1)), ValueError, r"stride.*\[1, 1, 1\]"),
    "stride-empty": (dict(stride=()), ValueError, r"stride"),
    "stride-float": (dict(stride=1.5), TypeError, r"stride.*1\.5"),
    "stride-float-in-pair": (dict(stride=(1, 2.0)), TypeError, r"stride.*2\.0"),
    "stride-string": (dict(stride="1"), TypeError, r"stride.*'1'"),
    "dilation-0": (dict(dilation=0), ValueError, r"dilation.*0"),
    "dilation-negative-in-pair": (dict(dilation=(2, -1)), ValueError, r"dilation.*-1"),
    "padding-negative": (dict(padding=-1), ValueError, r"padding.*-1"),
    "padding-negative-in-pair": (dict(padding=(1, -2)), ValueError, r"padding.*-2"),
    "padding-3-tuple": (dict(padding=(1, 1, 1)), ValueError, r"padding.*\[1, 1, 1\]"),
    "padding-float": (dict(padding=0.5), TypeError, r"padding.*0\.5"),
    "padding-bad-string": (dict(padding="full"), ValueError, r"'full'"),
    "padding-upper-case": (dict(padding="SAME"), ValueError, r"'SAME'"),
    "padding-same-stride-2": (dict(padding="same", stride=2), ValueError,
                              r"padding='same'.*stride"),
    "padding-same-stride-(1,2)": (dict(padding="same", stride=(1, 2)), ValueError,
                                  r"padding='same'.*stride.*\(1, 2\)"),
    "kernel-larger-than-input": (dict(input=np.zeros((2, 4, 2, 8), F32)), ValueError,
                                 r"\(2 x 8\).*\(3 x 3\)"),
    "dilated-kernel-larger-than-padded-input": (dict(dilation=5, padding=1), ValueError,
                                                r"\(10 x 10\).*\(11 x 11\)"),
    "input-float64-weight-float32": (dict(input=X.astype(F64)), TypeError,
                                     r"input.*float64.*weight.*float32"),
    "weight-float64": (dict(weight=W.astype(F64)), TypeError, r"weight.*float64"),
    "bias-float64": (dict(bias=B.astype(F64)), TypeError, r"bias.*float64"),
    "bias-float32-others-float64": (dict(input=X.astype(F64), weight=W.astype(F64)),
                                    TypeError, r"bias.*float32"),
    "bias-wrong-length": (dict(bias=np.zeros(5, F32)), ValueError, r"bias.*6.*\[5\]"),
    "bias-2d": (dict(bias=np.zeros((6, 1), F32)), ValueError, r"bias.*\[6, 1\]"),
    "bias-0d": (dict(bias=np.float32(0)), ValueError, r"bias.*\[\]"),
    "input-none": (dict(input=None), TypeError, r"input.*None"),
    "weight-none": (dict(weight=None), TypeError, r"weight.*None"),
    "input-ragged-list": (dict(input=[[1.0, 2.0], [3.0]]), TypeError, r"input.*list"),
    "input-string": (dict(input="abc"), TypeError, r"input.*<U3"),
    "algorithm-unknown": (dict(algorithm="fft"), ValueError, r"algorithm='fft'"),
    "algorithm-wrong-case": (dict(algorithm="IGEMM"), ValueError, r"algorithm='IGEMM'"),
    "algorithm-empty": (dict(algorithm=""), ValueError, r"algorithm=''"),
    "algorithm-int": (dict(algorithm=1), ValueError, r"algorithm=1"),
    "depthwise-forced-on-grouped": (dict(algorithm="depthwise"), ValueError,
                                    r"depthwise.*4 input channels.*2 groups"),
    "depthwise-forced-on-dense": (dict(weight=np.zeros((6, 4, 3, 3), F32), groups=1,
                                       algorithm="depthwise"), ValueError, r"depthwise"),
}


@pytest.mark.parametrize("case", CONV2D_ERRORS)
def test_conv2d_rejects(case):
    overrides, exc, match = CONV2D_ERRORS[case]
    with pytest.raises(exc, match=match):
        conv2d_call(**overrides)


BAD_DTYPES = {"int64": np.int64, "int32": np.int32, "uint8": np.uint8, "bool": np.bool_,
              "complex64": np.complex64, "complex128": np.complex128, "float16": np.float16,
              "longdouble": np.longdouble, "object": object}


@pytest.mark.parametrize("argument", ["input", "weight", "bias"])
@pytest.mark.parametrize("name", BAD_DTYPES)
def test_conv2d_rejects_non_float_dtypes(argument, name):
    value = {"input": X, "weight": W, "bias": B}[argument].astype(BAD_DTYPES[name])
    if name == "longdouble" and np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match=rf"{argument}.*{np.dtype(BAD_DTYPES[name])}"):
        conv2d_call(**{argument: value})


def out_array(shape=(2, 6, 6, 6), dtype=F32, order="C"):
    return np.zeros(shape, dtype, order=order)


def readonly(arr):
    arr.flags.writeable = False
    return arr


OUT_ERRORS = {
    "wrong-shape": (out_array((2, 6, 6, 7)), r"out.*\(2, 6, 6, 7\).*\(2, 6, 6, 6\)"),
    "unbatched-shape-for-batched": (out_array((6, 6, 6)), r"out.*\(6, 6, 6\)"),
    "wrong-dtype": (out_array(dtype=F64), r"out.*float64.*float32"),
    "fortran-order": (out_array(order="F"), r"out.*contiguous"),
    "strided": (out_array((2, 6, 6, 12))[..., ::2], r"out.*contiguous"),
    "read-only": (readonly(out_array()), r"out.*read-only"),
    "list": (out_array().tolist(), r"out.*ndarray.*list"),
    "broadcast": (np.broadcast_to(np.zeros(6, F32), (2, 6, 6, 6)), r"out"),
}


@pytest.mark.parametrize("case", OUT_ERRORS)
def test_conv2d_rejects_bad_out(case):
    out, match = OUT_ERRORS[case]
    with pytest.raises(ValueError, match=match):
        conv2d_call(out=out)


@pytest.mark.parametrize("overlap", ["input-itself", "input-view", "weight", "bias"])
def test_conv2d_rejects_out_overlapping_an_input(overlap):
    """'same' padding and C_out == C_in make the output the input's shape."""
    buf = np.zeros(512 + 144 + 4, F32)
    x = buf[:512].reshape(2, 4, 8, 8)
    w = buf[512:656].reshape(4, 4, 3, 3)
    b = buf[656:]
    out = {"input-itself": x, "input-view": buf[:512].reshape(2, 4, 8, 8),
           "weight": buf[144:656].reshape(2, 4, 8, 8), "bias": buf[148:].reshape(2, 4, 8, 8)}
    with pytest.raises(ValueError, match="out overlaps"):
        cconv.conv2d(x, w, b, padding="same", out=out[overlap])


# Huge paddings and dilations: a clean ValueError or MemoryError, naming what is too large.
HUGE_ERRORS = {
    "padding-2**31": (dict(padding=2**31), MemoryError, r"4294967302"),
    "padding-(0,2**31)": (dict(padding=(0, 2**31)), MemoryError, r"4294967302"),
    "padding-2**62": (dict(padding=2**62), ValueError, r"padding=4611686018427387904"),
    "padding-2**63": (dict(padding=2**63), ValueError, r"padding=9223372036854775808"),
    "padding-2**64": (dict(padding=(1, 2**64)), ValueError, r"padding.*18446744073709551616"),
    "padding--2**63": (dict(padding=-(2**63)), ValueError, r"padding.*-9223372036854775808"),
    "dilation-2**31": (dict(dilation=2**31), ValueError, r"4294967297"),
    "dilation-2**62": (dict(dilation=2**62), ValueError, r"dilation=4611686018427387904"),
    "dilation-2**63": (dict(dilation=(1, 2**63)), ValueError, r"dilation.*9223372036854775808"),
    "stride-2**62": (dict(stride=2**62), ValueError, r"stride=4611686018427387904"),
    "stride-2**63": (dict(stride=2**63), ValueError, r"stride=9223372036854775808"),
    "groups-2**63": (dict(groups=2**63), ValueError, r"groups.*9223372036854775808"),
    "groups-2**31": (dict(groups=2**31), ValueError, r"groups=2147483648"),
}


def _ints(value):
    return [v for item in (value if isinstance(value, tuple) else (value,))
            for v in ([item] if isinstance(item, int) else [])]


@pytest.mark.parametrize("case", HUGE_ERRORS)
def test_conv2d_rejects_huge_sizes(case):
    overrides, exc, match = HUGE_ERRORS[case]
    values = [v for value in overrides.values() for v in _ints(value)]
    exc, match = huge_expectation(values, exc, match, "|".join(overrides))
    with pytest.raises(exc, match=match):
        conv2d_call(**overrides)


HUGE_VALID_WEIGHTS = {"dense": ((3, 2, 3, 3), 1), "depthwise": ((4, 1, 3, 3), 2)}
HUGE_VALID_CASES = [pytest.param(kind, a, id=f"{kind}-{a}")
                    for kind, (w_shape, groups) in HUGE_VALID_WEIGHTS.items()
                    for a in applicable_algorithms(2, groups)]


@pytest.mark.parametrize(("kind", "algorithm"), HUGE_VALID_CASES)
@pytest.mark.parametrize("axis", [2, 3], ids=["rows", "columns"])
@pytest.mark.parametrize("huge", [10**4, 2**31, 2**40])
def test_huge_stride_and_padding_give_the_right_answer(kind, algorithm, axis, huge, dtype):
    """A valid convolution with a tiny output, whatever its stride and padding (torch
    computes it). Along `axis`, outputs 0 and 2 read only padding (they are the bias) and
    output 1 reads the first 3 rows/columns unpadded."""
    w_shape, groups = HUGE_VALID_WEIGHTS[kind]
    x, w, b = random_arrays(1, (1, 2, 5, 6), w_shape, True, dtype)
    stride, padding = [1, 1], [0, 0]
    stride[axis - 2], padding[axis - 2] = huge, huge
    call = functools.partial(cconv.conv2d, x, w, b, stride=tuple(stride),
                             padding=tuple(padding), groups=groups, algorithm=algorithm)
    if huge > SIZE_LIMIT:  # a 32-bit platform: refused, naming the argument
        with pytest.raises(ValueError, match="too large"):
            call()
        return
    y = call()
    assert y.shape[axis] == 3
    edge = np.broadcast_to(b[:, None], np.take(y, 0, axis).shape)
    np.testing.assert_array_equal(np.take(y, 0, axis), edge)
    np.testing.assert_array_equal(np.take(y, 2, axis), edge)
    check_conv2d(np.take(y, [1], axis), np.take(x, [0, 1, 2], axis), w, b, groups=groups)


@pytest.mark.parametrize(("kind", "algorithm"), HUGE_VALID_CASES)
@pytest.mark.parametrize("huge", [10**3, 2**31])
def test_huge_dilation_and_padding_give_the_right_answer(kind, algorithm, huge, dtype):
    """With dilation == padding == huge, only the kernel's centre tap sees the image."""
    w_shape, groups = HUGE_VALID_WEIGHTS[kind]
    x, w, b = random_arrays(2, (1, 2, 5, 6), w_shape, True, dtype)
    call = functools.partial(cconv.conv2d, x, w, b, padding=huge, dilation=huge,
                             groups=groups, algorithm=algorithm)
    if huge > SIZE_LIMIT:  # a 32-bit platform: refused, naming the argument
        with pytest.raises(ValueError, match="too large"):
            call()
        return
    y = call()
    check_conv2d(y, x, w[:, :, 1:2, 1:2], b, groups=groups)


# ---- Conv2d ----------------------------------------------------------------------------------

# name: (constructor args, kwargs, exception, regex)
MODULE_ERRORS = {
    "in-channels-not-divisible": ((3, 4, 3), dict(groups=2), ValueError,
                                  r"in_channels.*groups.*in_channels=3, groups=2"),
    "out-channels-not-divisible": ((4, 3, 3), dict(groups=2), ValueError,
                                   r"out_channels.*groups.*out_channels=3, groups=2"),
    "in-channels-0": ((0, 4, 3), {}, ValueError, r"in_channels.*0"),
    "out-channels-float": ((2, 4.0, 3), {}, TypeError, r"out_channels.*4\.0"),
    "groups-0": ((2, 4, 3), dict(groups=0), ValueError, r"groups.*0"),
    "kernel-size-0": ((2, 4, 0), {}, ValueError, r"kernel_size.*0"),
    "kernel-size-3-tuple": ((2, 4, (3, 3, 3)), {}, ValueError, r"kernel_size"),
    "stride-0": ((2, 4, 3), dict(stride=0), ValueError, r"stride.*0"),
    "padding-negative": ((2, 4, 3), dict(padding=-1), ValueError, r"padding.*-1"),
    "dilation-0": ((2, 4, 3), dict(dilation=0), ValueError, r"dilation.*0"),
    "bad-padding-mode": ((2, 4, 3), dict(padding_mode="mirror"), ValueError,
                         r"padding_mode.*'mirror'"),
    "bad-padding-string": ((2, 4, 3), dict(padding="full"), ValueError, r"'full'"),
    "same-with-stride": ((2, 4, 3), dict(padding="same", stride=2), ValueError,
                         r"padding='same'.*stride"),
    "dtype-float16": ((2, 4, 3), dict(dtype=np.float16), TypeError, r"dtype.*float16"),
    "dtype-int": ((2, 4, 3), dict(dtype=np.int32), TypeError, r"dtype.*int32"),
}


@pytest.mark.parametrize("case", MODULE_ERRORS)
def test_conv2d_module_rejects(case):
    args, kwargs, exc, match = MODULE_ERRORS[case]
    with pytest.raises(exc, match=match):
        cconv.Conv2d(*args, **kwargs)


def small_module(**kwargs):
    return cconv.Conv2d(4, 6, (3, 2), groups=2, rng=0, **kwargs)


@pytest.mark.parametrize(("name", "value", "match"), [
    ("weight", np.zeros((6, 2, 2, 3)), r"weight.*\(6, 2, 3, 2\).*\(6, 2, 2, 3\)"),
    ("weight", np.zeros((6, 4, 3, 2)), r"weight.*\(6, 4, 3, 2\)"),
    ("bias", np.zeros(5), r"bias.*\(6,\).*\(5,\)"),
])
def test_conv2d_module_rejects_wrong_shaped_assignment(name, value, match):
    conv = small_module()
    before = conv.state_dict()
    with pytest.raises(ValueError, match=match):
        setattr(conv, name, value)
    np.testing.assert_array_equal(conv.state_dict()[name], before[name])


def test_conv2d_module_rejects_non_float_assignment():
    with pytest.raises(TypeError, match=r"weight.*int64"):
        small_module().weight = np.zeros((6, 2, 3, 2), np.int64)


@pytest.mark.parametrize(("state", "match"), [
    ({"weight": np.zeros((6, 2, 2, 3)), "bias": np.zeros(6)}, r"weight.*\(6, 2, 2, 3\)"),
    ({"weight": np.zeros((6, 2, 3, 2)), "bias": np.zeros(3)}, r"bias.*\(3,\)"),
    ({"weight": np.zeros((6, 2, 3, 2))}, r'Missing key\(s\) in state_dict: "bias"'),
    ({"bias": np.zeros(6)}, r'Missing key\(s\) in state_dict: "weight"'),
    ({"weight": np.zeros((6, 2, 3, 2)), "bias": np.zeros(6), "extra": np.zeros(1)},
     r'Unexpected key\(s\) in state_dict: "extra"'),
])
def test_load_state_dict_rejects(state, match):
    conv = small_module()
    before = conv.state_dict()
    with pytest.raises(ValueError, match=match):
        conv.load_state_dict(state)
    for key, value in conv.state_dict().items():   # nothing half-loaded
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_not_strict_reports_keys():
    conv = small_module()
    w = np.ones((6, 2, 3, 2))
    missing, unexpected = conv.load_state_dict({"weight": w, "extra": 1.0}, strict=False)
    assert (list(missing), list(unexpected)) == (["bias"], ["extra"])
    np.testing.assert_array_equal(conv.weight, w)


@pytest.mark.parametrize(("mode", "padding", "size", "match"), [
    ("reflect", 4, 4, r"reflect.*\(4, 4\)"),
    ("reflect", 5, 4, r"reflect.*\(5, 5\)"),
    ("reflect", (0, 6), 6, r"reflect.*\(6, 6\)"),
    ("circular", 5, 4, r"circular.*\(5, 5\)"),
    ("circular", (0, 7), 6, r"circular.*\(7, 7\)"),
])
def test_padding_mode_limits(mode, padding, size, match):
    conv = cconv.Conv2d(1, 1, 1, padding=padding, padding_mode=mode)
    with pytest.raises(ValueError, match=match):
        conv(np.zeros((1, 1, size, size), F32))


@pytest.mark.parametrize(("x", "exc", "match"), [
    (np.zeros((1, 4, 8, 8), np.int64), TypeError, r"input.*int64"),
    (np.zeros((1, 4, 8, 8), bool), TypeError, r"input.*bool"),
    (np.zeros((1, 4, 8, 8), np.complex64), TypeError, r"input.*complex64"),
    (np.zeros((8, 8), F32), ValueError, r"input.*\[8, 8\]"),
    (np.zeros((1, 3, 8, 8), F32), ValueError, r"4 channels.*got 3 channels"),
    (np.zeros((1, 4, 2, 8), F32), ValueError, r"Kernel size"),
])
def test_conv2d_module_rejects_bad_input(x, exc, match):
    with pytest.raises(exc, match=match):
        small_module()(x)


# ---- inputs with no pixels ------------------------------------------------------------------

# PyTorch computes an input whose height or width is 0 only when its batch or its channels are
# empty too; otherwise "Only zero batch or zero channel inputs are supported" (torch 2.13, both
# operations), unless the kernel check comes first (conv2d without padding).
# name: (operation, input shape, weight shape, kwargs, output shape or regex of the ValueError)
EMPTY_IMAGE = r"only zero batch or zero channel inputs are supported.*input of size "
ZERO_SIZE_CASES = {
    "conv2d-height-0": ("conv2d", (1, 2, 0, 5), (3, 2, 1, 1), dict(padding=1),
                        EMPTY_IMAGE + r"\[1, 2, 0, 5\].*height and width"),
    "conv2d-width-0": ("conv2d", (2, 2, 5, 0), (3, 2, 3, 3), dict(padding=2),
                       EMPTY_IMAGE + r"\[2, 2, 5, 0\]"),
    "conv2d-both-0": ("conv2d", (1, 2, 0, 0), (4, 1, 1, 1), dict(padding=1, groups=2),
                      EMPTY_IMAGE + r"\[1, 2, 0, 0\]"),
    "conv2d-unbatched-height-0": ("conv2d", (2, 0, 5), (3, 2, 1, 1), dict(padding=(1, 0)),
                                  EMPTY_IMAGE + r"\[1, 2, 0, 5\]"),
    "conv2d-height-0-unpadded": ("conv2d", (1, 2, 0, 5), (3, 2, 1, 1), {},
                                 r"\(0 x 5\).*Kernel size"),
    "conv2d-batch-0-height-0": ("conv2d", (0, 2, 0, 5), (3, 2, 1, 1), dict(padding=1),
                                (0, 3, 2, 7)),
    "conv2d-batch-0": ("conv2d", (0, 2, 4, 5), (3, 2, 3, 3), {}, (0, 3, 2, 3)),
    "conv_transpose2d-height-0": ("conv_transpose2d", (1, 2, 0, 5), (2, 3, 3, 3), {},
                                  EMPTY_IMAGE + r"\[1, 2, 0, 5\]"),
    "conv_transpose2d-width-0": ("conv_transpose2d", (3, 2, 4, 0), (2, 3, 1, 1), {},
                                 EMPTY_IMAGE + r"\[3, 2, 4, 0\]"),
    "conv_transpose2d-unbatched-height-0": ("conv_transpose2d", (2, 0, 5), (2, 3, 2, 2),
                                            dict(stride=2), EMPTY_IMAGE + r"\[1, 2, 0, 5\]"),
    "conv_transpose2d-batch-0-height-0": ("conv_transpose2d", (0, 2, 0, 5), (2, 3, 3, 3), {},
                                          (0, 3, 2, 7)),
    "conv_transpose2d-batch-0-empty-output": ("conv_transpose2d", (0, 2, 0, 5), (2, 3, 1, 1),
                                              {}, (0, 3, 0, 5)),
    "conv_transpose2d-batch-0-negative-output": ("conv_transpose2d", (0, 2, 0, 5),
                                                 (2, 3, 1, 1), dict(padding=1),
                                                 r"\(-2 x 3\).*too small"),
    "conv_transpose2d-batch-0": ("conv_transpose2d", (0, 2, 4, 5), (2, 3, 3, 3), {},
                                 (0, 3, 6, 7)),
}


def zero_size_call(case, module=False):
    """The case's call (functional, or through the equivalent module), and its expectation."""
    op, x_shape, w_shape, kwargs, expected = ZERO_SIZE_CASES[case]
    x = np.ones(x_shape, F32)
    if not module:
        return functools.partial(getattr(cconv, op), x, np.ones(w_shape, F32), **kwargs), expected
    g = kwargs.get("groups", 1)
    channels = (w_shape[0], w_shape[1] * g) if op == "conv_transpose2d" else (
        w_shape[1] * g, w_shape[0])
    cls = cconv.ConvTranspose2d if op == "conv_transpose2d" else cconv.Conv2d
    return functools.partial(cls(*channels, w_shape[2:], **kwargs, rng=0), x), expected


@pytest.mark.parametrize("module", [False, True], ids=["functional", "module"])
@pytest.mark.parametrize("case", ZERO_SIZE_CASES)
def test_inputs_with_no_pixels(case, module):
    call, expected = zero_size_call(case, module)
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            call()
    else:
        y = call()
        assert y.shape == expected and y.dtype == F32


@pytest.mark.parametrize("module", [False, True], ids=["functional", "module"])
@pytest.mark.parametrize("case", ZERO_SIZE_CASES)
def test_inputs_with_no_pixels_as_torch(case, module, torch):
    """torch refuses (RuntimeError) exactly what cconv refuses, and gives the same shapes."""
    op, x_shape, w_shape, kwargs, expected = ZERO_SIZE_CASES[case]
    x = torch.ones(x_shape)
    if module:
        g = kwargs.get("groups", 1)
        if op == "conv_transpose2d":
            t = torch.nn.ConvTranspose2d(w_shape[0], w_shape[1] * g, w_shape[2:], **kwargs)
        else:
            t = torch.nn.Conv2d(w_shape[1] * g, w_shape[0], w_shape[2:], **kwargs)
        call = functools.partial(t, x)
    else:
        call = functools.partial(getattr(torch.nn.functional, op), x, torch.ones(w_shape),
                                 **kwargs)
    if isinstance(expected, str):
        with pytest.raises(RuntimeError):
            call()
    else:
        with torch.no_grad():
            assert tuple(call().shape) == expected


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("x_shape", [(1, 2, 0, 5), (2, 2, 5, 0), (2, 0, 5)], ids=str)
def test_padding_modes_refuse_inputs_with_no_pixels(mode, x_shape):
    """Before any padding: replicate would otherwise pad an empty axis (numpy refuses), and
    torch refuses in every mode."""
    m = cconv.Conv2d(2, 3, 1, padding=1, padding_mode=mode, rng=0)
    with pytest.raises(ValueError, match=EMPTY_IMAGE):
        m(np.ones(x_shape, F32))


@pytest.mark.parametrize(("op", "x_shape", "w_shape", "kwargs", "y_shape"), [
    ("conv2d", (2, 0, 4, 5), (3, 0, 1, 1), {}, (2, 3, 4, 5)),
    ("conv2d", (1, 0, 0, 5), (3, 0, 1, 3), dict(padding=1), (1, 3, 2, 5)),
    ("conv2d", (0, 2, 3), (4, 0, 2, 2), dict(groups=2), (4, 1, 2)),
    ("conv_transpose2d", (1, 0, 3, 4), (0, 3, 2, 2), dict(stride=2), (1, 3, 6, 8)),
], ids=["conv2d", "conv2d-height-0", "conv2d-unbatched-groups", "conv_transpose2d"])
def test_no_input_channels_give_the_bias(op, x_shape, w_shape, kwargs, y_shape):
    """An empty sum: every output is the bias, C_out channels of it. (torch 2.13 gives a
    conv2d of C_out = 0 channels here, and refuses the conv_transpose2d's weight.)"""
    x = np.ones(x_shape, F32)
    b = np.arange(1, y_shape[-3] + 1, dtype=F32)
    y = getattr(cconv, op)(x, np.ones(w_shape, F32), b, **kwargs)
    assert y.shape == y_shape
    np.testing.assert_array_equal(y, np.broadcast_to(b[:, None, None], y.shape))
    assert not getattr(cconv, op)(x, np.ones(w_shape, F32), **kwargs).any()


# ---- threads ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "exc", "match"), [
    (0, ValueError, r"n must be >= 1, got 0"),
    (-1, ValueError, r"got -1"),
    (1.5, TypeError, r"float 1\.5"),
    (True, TypeError, r"True"),
    ("2", TypeError, r"'2'"),
    (2.0, TypeError, r"2\.0"),
    (np.float64(2.0), TypeError, r"2\.0"),
    ([2], TypeError, r"\[2\]"),
    (-2**63, ValueError, r"-9223372036854775808"),
])
def test_set_num_threads_rejects(n, exc, match):
    cconv.set_num_threads(3)
    with pytest.raises(exc, match=match):
        cconv.set_num_threads(n)
    assert cconv.get_num_threads() == 3          # unchanged by the failed call


def test_set_num_threads_accepts_numpy_ints():
    cconv.set_num_threads(np.int64(3))
    assert cconv.get_num_threads() == 3 and type(cconv.get_num_threads()) is int


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", ",2", "-0", "2 3", "0x2", "1e3"])
def test_invalid_omp_num_threads(value, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    cconv.set_num_threads(None)
    with pytest.raises(ValueError, match=rf"OMP_NUM_THREADS={value!r}"):
        cconv.get_num_threads()
    with pytest.raises(ValueError, match=r"OMP_NUM_THREADS"):
        conv2d_call()
    cconv.set_num_threads(2)                     # an explicit count overrides the variable
    assert cconv.get_num_threads() == 2
    assert conv2d_call().shape == (2, 6, 6, 6)
    cconv.set_num_threads(None)                  # back to the (invalid) default
    with pytest.raises(ValueError, match=r"OMP_NUM_THREADS"):
        cconv.get_num_threads()


@pytest.mark.parametrize(("value", "expected"), [("3", 3), (" 5 ", 5), ("2,1", 2), ("1", 1)])
def test_valid_omp_num_threads(value, expected, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert cconv.get_num_threads() == expected


@pytest.mark.parametrize("shape", [(2**40, 1, 1, 1), (1, 1, 2**29, 2**29)], ids=str)
def test_conv2d_huge_broadcast_input_fails_cleanly(shape):
    """A zero-stride view can claim an enormous shape: the output cannot exist."""
    if math.prod(shape) > sys.maxsize:
        pytest.skip("numpy cannot make this view on a 32-bit platform")
    x = np.broadcast_to(np.zeros((1, 1, 1, 1), F32), shape)
    with pytest.raises(MemoryError, match=r"shape \(" + str(shape[0])):
        cconv.conv2d(x, np.ones((1, 1, 1, 1), F32))


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
def test_remembered_geometry_still_checks_every_call(transposed):
    """Repeated calls reuse the checked geometry of plain arguments, but an argument equal to
    a remembered one that is not a plain int (True == 1) or a bad one is still refused."""
    op = cconv.conv_transpose2d if transposed else cconv.conv2d
    x = np.ones((1, 2, 5, 5), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    for _ in range(2):
        op(x, w, stride=1, padding=(1, 1), dilation=1)
        with pytest.raises(TypeError, match="stride"):
            op(x, w, stride=True, padding=(1, 1), dilation=1)
        with pytest.raises(TypeError, match="padding"):
            op(x, w, stride=1, padding=(1, True), dilation=1)
        with pytest.raises(ValueError, match="dilation"):
            op(x, w, stride=1, padding=(1, 1), dilation=0)

"""Fuzzing the whole argument space of conv2d, conv_transpose2d, Conv2d and ConvTranspose2d.

Every call must either return the float64 reference's result (within conftest's tolerance
table), or raise ValueError, TypeError or MemoryError with a non-empty message; when exactly
one argument of an otherwise valid call was made bad, the message names that argument. It
must never crash, hang, or corrupt memory (run this file under tools/sanitize.sh for that).

Each example draws a valid-looking call of random geometry (batch, channels, groups, kernel;
sizes 0, 1, small and large-but-cheap; stride, padding, dilation small or near 2**31, 2**32,
2**40 and the size limit; both dtypes; bias or not; any memory layout: Fortran order,
negative strides, zero strides, read-only, byte-swapped, strided, nested lists), then often
replaces one argument by a bad value: a wrong type (None, str, bytes, float, bool, complex,
nested or ragged lists, sets, dicts, objects, arrays), a wrong dtype or shape, a wrong
length, or an integer near 2**62, 2**63, 2**64, beyond, or negative. What the call must do
is decided here from PyTorch's rules (`*_outcome` below), independently of cconv's code.

Calls whose output or input copy would be large but possible (between OUT_MAX elements and
IMPOSSIBLE bytes) are skipped: they are correct calls, just too slow to fuzz.

Profiles (examples per test; 5 fuzz tests):
    pytest -q tests/test_fuzz.py                               CI: 150 each, fixed seed (~15 s)
    CCONV_FUZZ_EXAMPLES=20000 pytest -q tests/test_fuzz.py     long: random seeds (~11 min)
    CCONV_FUZZ_EXAMPLES=2000 tools/sanitize.sh asan -- tests/test_fuzz.py   under ASan+UBSan
"""
import operator
import os
import subprocess
import textwrap
import tracemalloc
import types

import numpy as np
import pytest
from conftest import ASAN, DTYPES, assert_within, error_bound, run_python
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st

import cconv
from cconv import _isa, _lowering, _params, _planner
from cconv.testing import (
    conv2d_abs,
    conv2d_ref,
    conv_transpose2d_abs,
    conv_transpose2d_ref,
    pad_input,
    unfold,
)

# The algorithms for any geometry: winograd (3x3, stride 1, dilation 1 only) has
# tests/test_winograd.py.
GENERIC = tuple(a for a in _planner.ALGORITHMS if a != "winograd")

EXAMPLES = int(os.environ.get("CCONV_FUZZ_EXAMPLES", "0") or 0)
FUZZ = settings(max_examples=EXAMPLES or 150, deadline=None, derandomize=not EXAMPLES,
                suppress_health_check=list(HealthCheck), print_blob=True,
                **({} if EXAMPLES else {"database": None}))

SIZE_LIMIT = _params.SIZE_LIMIT
OUT_MAX = 1 << 14           # output elements of a call that is run and checked
COPY_MAX = 1 << 16          # elements of an input made contiguous
ROWS_MAX = 1 << 14          # output rows or columns (the reference loops over them)
TAPS_MAX = 1024             # kernel taps (the reference loops over them)
IMPOSSIBLE = 1 << 50        # bytes no machine has: such a call must fail, and quickly

# Sizes are valid up to SIZE_LIMIT (sys.maxsize // 16: 2**59 on 64-bit platforms, 2**27 on
# 32-bit ones, where 2**31 and up are too large: cconv's one rule beyond torch's).
_NEAR_INT_LIMITS = (2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**40)
HUGE_VALID = [v for v in _NEAR_INT_LIMITS if v < SIZE_LIMIT] + [SIZE_LIMIT]
TOO_LARGE = [SIZE_LIMIT + 1] + [v for v in _NEAR_INT_LIMITS if v > SIZE_LIMIT + 1] + [
    2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64, 2**100]
NEGATIVE = [-1, -2, -2**31, -2**32, -2**62, -2**63, -2**64]
BAD_TYPES = [None, "1", "", "same ", 1.0, 1.5, float("nan"), float("inf"), True, False, 1j,
             b"1", object(), {}, {1: 2}, {1, 2}, np.float64(2.0), np.float32(1.0),
             np.array([1, 2]), np.array(1.0), [1.0], [1, None], [[1]], (1, "1"), slice(1),
             type, Ellipsis]
BAD_LENGTHS = [[], (), [1, 1, 1], (1, 1, 1, 1)]
INTP = np.iinfo(np.intp)


def _as_intp(v):
    """np.intp(v) where it holds v (32 bits on armv7), else np.int64(v)."""
    return np.intp(v) if INTP.min <= v <= INTP.max else np.int64(v)


INT_FORMS = [int, np.int64, _as_intp, lambda v: np.array(v), lambda v: [v], lambda v: (v,)]
EXCEPTIONS = (ValueError, TypeError, MemoryError)


class Bad:
    """Marks a value that is wrong on its own: the call must fail with `exc`, naming arg."""

    def __init__(self, value, exc):
        self.value, self.exc = value, exc

    def __repr__(self):
        return f"Bad({self.value!r}, {self.exc.__name__})"


# ---- strategies -----------------------------------------------------------------------------

def small_or_huge(small):
    """Mostly small values, one in eight near 2**31, 2**32, 2**40 or the size limit."""
    return st.integers(0, 7).flatmap(lambda i: st.sampled_from(HUGE_VALID) if i == 0 else small)


@st.composite
def int_form(draw, values):
    """A type-valid spelling of an int: int, numpy ints, 0-d array."""
    v = draw(values)
    form = draw(st.sampled_from(INT_FORMS[:4]))
    return form(v)


@st.composite
def size_arg(draw, minimum, small, pairs=True):
    """A valid stride/padding/dilation-like argument: an int or a pair (any spelling)."""
    values = small_or_huge(small)
    if not pairs or draw(st.booleans()):
        v = draw(values)
        return draw(st.sampled_from(INT_FORMS if pairs else INT_FORMS[:4]))(v)
    a, b = draw(values), draw(values)
    return draw(st.sampled_from([(a, b), [a, b], (np.int64(a), b)]))


@st.composite
def bad_size_arg(draw, minimum, pairs=True, str_exc=TypeError):
    """A size argument that is wrong on its own, with the exception it must raise."""
    kind = draw(st.sampled_from(["value", "type", "length", "element"]))
    if kind == "value":
        v = draw(st.sampled_from(TOO_LARGE + [n for n in [0] + NEGATIVE if n < minimum]))
        return Bad(v, ValueError)
    if kind == "type" or not pairs:
        v = draw(st.sampled_from(BAD_TYPES + (BAD_LENGTHS if not pairs else [])))
        exc = str_exc if isinstance(v, str) else TypeError
        if pairs and isinstance(v, (list, tuple)) and len(v) not in (1, 2):
            exc = ValueError
        return Bad(v, exc)
    if kind == "length":
        return Bad(draw(st.sampled_from(BAD_LENGTHS)), ValueError)
    bad = draw(st.sampled_from(TOO_LARGE + BAD_TYPES[:12]))
    exc = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    return Bad((minimum, bad) if draw(st.booleans()) else [bad, minimum], exc)


def bad_array_values(ndim_ok):
    """(value, exception) pairs that are wrong as an input/weight/bias array."""
    return st.sampled_from([
        (None, TypeError), ("abc", TypeError), (b"abc", TypeError), (True, TypeError),
        (object(), TypeError), ({}, TypeError), ([[1.0, 2.0], [3.0]], TypeError),
        (np.zeros(ndim_ok, np.int32), TypeError), (np.zeros(ndim_ok, np.int64), TypeError),
        (np.zeros(ndim_ok, np.uint8), TypeError), (np.zeros(ndim_ok, bool), TypeError),
        (np.zeros(ndim_ok, np.complex64), TypeError), (np.zeros(ndim_ok, np.float16), TypeError),
        (np.zeros(ndim_ok, object), TypeError), (np.zeros(ndim_ok, "U2"), TypeError),
        (np.zeros(ndim_ok, "datetime64[s]"), TypeError),
        (np.zeros(ndim_ok, [("a", np.float32)]), TypeError),
    ] + ([(np.zeros(ndim_ok, np.longdouble), TypeError)]
         if np.dtype(np.longdouble).itemsize > 8 else []))


LAYOUTS = ("C", "C", "F", "flip", "every_other", "readonly", "swapped", "broadcast", "list",
           "misaligned")


def misaligned(arr):
    """A C-contiguous copy of arr whose data starts one byte past an aligned address (as
    np.frombuffer gives for data read from a file or a network packet)."""
    raw = np.zeros(arr.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=arr.dtype, count=arr.size, offset=1).reshape(arr.shape)
    raw[1:] = np.ascontiguousarray(arr).view(np.uint8).ravel()
    return out


def apply_layout(arr, layout):
    """arr in another memory layout (the values are the same, but for 'broadcast', which
    repeats the first entry along axis 0; 'list' gives nested lists, float64 for numpy)."""
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "flip":
        return np.flip(np.flip(arr).copy())
    if layout == "every_other":
        big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
        big[..., 1::2] = arr
        return big[..., 1::2]
    if layout == "readonly":
        arr = arr.copy()
        arr.flags.writeable = False
        return arr
    if layout == "swapped":
        return arr.astype(arr.dtype.newbyteorder("S"))
    if layout == "broadcast" and arr.ndim and arr.shape[0]:
        return np.broadcast_to(arr[:1], arr.shape)
    if layout == "list" and arr.dtype == np.float64 and arr.size:
        return arr.tolist()
    if layout == "misaligned":
        return misaligned(arr)
    return arr


def random_array(rng, shape, dtype, specials=False):
    a = rng.standard_normal(shape).astype(dtype)
    if specials and a.size and rng.random() < 0.3:
        a.flat[rng.integers(a.size)] = rng.choice([np.nan, np.inf, -np.inf])
    return a


# ---- the rules: what a call must do ------------------------------------------------------------

class Outcome:
    """OK: must return the reference's result; FAIL: must raise (any message); HUGE: must
    raise MemoryError or ValueError; SKIP: a valid but too costly call (or a known bug)."""
    OK, FAIL, HUGE, SKIP = "ok", "fail", "huge", "skip"


def pair_of(value):
    if isinstance(value, (list, tuple)):
        return (operator.index(value[0]), operator.index(value[-1]))
    return (operator.index(value), operator.index(value))


def as_array(value):
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def copy_elems(arr, dtype):
    """Elements copied to make arr C-contiguous in dtype (0 when it already is)."""
    a = as_array(arr)
    ok = a.flags.c_contiguous and a.dtype == dtype and a.dtype.isnative
    return 0 if ok else a.size


def size_class(out_elems, copies, itemsize, rows):
    """HUGE, SKIP or OK by the sizes a call allocates (and the reference loops over)."""
    if max(out_elems, copies) * itemsize >= IMPOSSIBLE:
        return Outcome.HUGE
    if out_elems > OUT_MAX or copies > COPY_MAX or max(rows) > ROWS_MAX:
        return Outcome.SKIP
    return Outcome.OK


def conv2d_geometry(x_shape, w_shape, b_shape, stride, padding, dilation, groups):
    """(outcome, pads, output shape) of conv2d for type-valid arguments, PyTorch's rules."""
    if len(x_shape) not in (3, 4) or len(w_shape) != 4:
        return Outcome.FAIL, None, None
    N, C, H, W = x_shape if len(x_shape) == 4 else (1, *x_shape)
    M, Cg, KH, KW = w_shape
    if KH < 1 or KW < 1 or (b_shape is not None and tuple(b_shape) != (M,)):
        return Outcome.FAIL, None, None
    if isinstance(padding, str):
        if padding == "valid":
            pads = (0, 0, 0, 0)
        elif padding == "same" and stride == (1, 1):
            th, tw = dilation[0] * (KH - 1), dilation[1] * (KW - 1)
            pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        else:
            return Outcome.FAIL, None, None
    else:
        ph, pw = pair_of(padding)
        pads = (ph, ph, pw, pw)
    if M < 1 or M % groups or C != Cg * groups:
        return Outcome.FAIL, None, None
    Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
    eh, ew = dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1
    if Hp < eh or Wp < ew or max(Hp, Wp, eh, ew) > SIZE_LIMIT:
        return Outcome.FAIL, None, None
    if N and C and not (H and W):   # no pixels: only an empty batch or no channels may
        return Outcome.FAIL, None, None
    shape = (N, M, (Hp - eh) // stride[0] + 1, (Wp - ew) // stride[1] + 1)
    return Outcome.OK, pads, shape


def conv_transpose2d_geometry(x_shape, w_shape, b_shape, stride, padding, output_padding,
                              dilation, groups):
    """(outcome, output shape) of conv_transpose2d for type-valid arguments."""
    if len(x_shape) not in (3, 4) or len(w_shape) != 4:
        return Outcome.FAIL, None
    N, C, H, W = x_shape if len(x_shape) == 4 else (1, *x_shape)
    Cw, Mg, KH, KW = w_shape
    if KH < 1 or KW < 1 or Cw % groups or C != Cw or Mg < 1:
        return Outcome.FAIL, None
    if b_shape is not None and tuple(b_shape) != (Mg * groups,):
        return Outcome.FAIL, None
    sizes = []
    for n, s, p, op, d, k in zip((H, W), stride, padding, output_padding, dilation, (KH, KW)):
        if op >= s and op >= d:
            return Outcome.FAIL, None
        if max(n * s, d * k, 2 * p) > SIZE_LIMIT:
            return Outcome.FAIL, None
        sizes.append((n - 1) * s - 2 * p + d * (k - 1) + op + 1)
    if N and C and not (H and W):   # no pixels: only an empty batch or no channels may
        return Outcome.FAIL, None
    if min(sizes) < (1 if N else 0):    # an empty batch may have an empty output
        return Outcome.FAIL, None
    return Outcome.OK, (N, Mg * groups, *sizes)


# ---- huge geometries as small dense ones, for cconv.testing's reference -----------------------
# cconv.testing pads explicitly, which a padding near 2**31 (or a stride or dilation as far)
# makes impossible. So the taps that reach the image are gathered first (index bookkeeping in
# Python ints, which cannot overflow), into a problem of the output's size whose kernel-sized
# stride reads them as they are; the float64 sums are cconv.testing's.

def _lands(count, kernel, stride, pad, dilation, size):
    """conv_transpose2d along one axis: the input positions whose taps land on the output (0 <=
    place < size), and for each landing (position, tap k) its place p*kernel + k among those
    positions' tap blocks and where it lands."""
    used, block, place = [], [], []
    for i in range(count):
        hits = [(k, i * stride - pad + k * dilation) for k in range(kernel)]
        hits = [(k, o) for k, o in hits if 0 <= o < size]
        for k, o in hits:
            block.append(len(used) * kernel + k)
            place.append(o)
        if hits:
            used.append(i)
    return (np.array(used, np.intp), np.array(block, np.intp), np.array(place, np.intp))


@np.errstate(invalid="ignore")
def reference_conv2d(x, w, b, stride, pads, dilation, groups, out_shape):
    """(conv2d in float64, |x| conv |w| + |b|) for any geometry: every output pixel's
    receptive field side by side (zeros where a tap reads padding), convolved by
    cconv.testing.conv2d_ref with stride = the kernel."""
    if 0 in out_shape:
        return np.zeros(out_shape), np.zeros(out_shape)
    KH, KW = w.shape[2:]
    unfolded = unfold(x, (KH, KW), tuple(stride), tuple(pads), tuple(dilation))
    kw = dict(stride=(KH, KW), groups=groups)
    return conv2d_ref(unfolded, w, b, **kw), conv2d_abs(unfolded, w, b, **kw)


@np.errstate(invalid="ignore")
def reference_conv_transpose2d(x, w, b, stride, padding, dilation, groups, out_shape):
    """(conv_transpose2d in float64, its magnitudes) for any geometry: the input positions
    that reach the output scatter their kernel-sized blocks side by side
    (cconv.testing.conv_transpose2d_ref with stride = the kernel: no overlap), and each block
    row and column is added where it lands."""
    if 0 in out_shape:
        return np.zeros(out_shape), np.zeros(out_shape)
    x = np.asarray(x, np.float64)
    KH, KW = w.shape[2:]
    (ru, rb, rp), (cu, cb, cp) = (
        _lands(x.shape[2], KH, stride[0], padding[0], dilation[0], out_shape[2]),
        _lands(x.shape[3], KW, stride[1], padding[1], dilation[1], out_shape[3]))
    results = []
    for ref in (conv_transpose2d_ref, conv_transpose2d_abs):
        out = np.zeros(out_shape)
        if ru.size and cu.size:
            blocks = ref(x[:, :, ru[:, None], cu[None, :]], w, None, stride=(KH, KW),
                         groups=groups)
            np.add.at(out, (slice(None), slice(None), rp[:, None], cp[None, :]),
                      blocks[:, :, rb[:, None], cb[None, :]])
        results.append(out)
    if b is not None:
        b = np.asarray(b, np.float64)[None, :, None, None]
        results = [results[0] + b, results[1] + np.abs(b)]
    return tuple(results)


@np.errstate(invalid="ignore")
def check_result(y, ref_scale, K, dtype, algorithm, unbatched, what):
    ref, scale = ref_scale
    if unbatched:
        ref, scale = ref[0], scale[0]
    assert isinstance(y, np.ndarray) and y.dtype == dtype, (what, type(y), getattr(y, "dtype", 0))
    assert_within(y, ref, error_bound(scale, K, dtype, algorithm), what)


def check_failure(exc_info, outcome, bad_name=None, bad=None):
    """The raised exception is one of ours, has a message, and names the bad argument."""
    exc = exc_info
    message = str(exc)
    assert isinstance(exc, EXCEPTIONS), f"{type(exc).__name__}: {message}"
    assert message.strip(), f"{type(exc).__name__} without a message"
    if outcome == Outcome.HUGE:
        assert isinstance(exc, (MemoryError, ValueError)), f"{type(exc).__name__}: {message}"
    if bad_name is not None:
        names = [bad_name, bad_name.replace("_", " ")]
        assert any(n in message for n in names), (
            f"{type(exc).__name__} does not name {bad_name}: {message}")
        if bad is not None:
            assert isinstance(exc, bad.exc), (
                f"{bad_name}={bad.value!r}: {type(exc).__name__}, expected "
                f"{bad.exc.__name__}: {message}")


def run_case(call, outcome, expect_result, bad_name=None, bad=None):
    """Call; check the result (outcome OK) or the failure (anything else)."""
    event(f"{outcome}" + (f", bad {bad_name}" if bad_name else ""))
    try:
        y = call()
    except Exception as exc:  # judged below: only our three exception types may escape
        note(f"raised {type(exc).__name__}: {exc}")
        assert outcome != Outcome.OK or bad_name is not None, (
            f"a valid call failed: {type(exc).__name__}: {exc}")
        check_failure(exc, outcome, bad_name, bad)
        return
    assert outcome == Outcome.OK and bad_name is None, (
        f"expected a failure ({outcome}, bad {bad_name}={bad!r}), got a result of shape "
        f"{getattr(y, 'shape', None)}")
    expect_result(y)


# ---- functional API --------------------------------------------------------------------------

@st.composite
def geometry(draw, transposed=False):
    """Channels, groups, kernel, batch and image size of a cheap call."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    Cg = draw(st.integers(0 if not transposed else 1, 3))
    Mg = draw(st.integers(1, 3))
    if not transposed and draw(st.integers(0, 3)) == 0:   # depthwise (one channel per group)
        Cg, groups = 1, draw(st.integers(1, 5))
    kernel = draw(st.one_of(st.tuples(st.integers(1, 4), st.integers(1, 4)),
                            st.tuples(st.integers(1, 40), st.just(1)),
                            st.tuples(st.just(1), st.integers(1, 40))))
    N = draw(st.sampled_from([0, 1, 1, 2, 3]))
    # Mostly at least the kernel (and 0 and 1 too), sometimes large-but-cheap.
    hw = [draw(st.one_of(st.integers(0, 3), st.integers(k, k + 6), st.integers(k, k + 6)))
          for k in kernel]
    big = draw(st.integers(0, 5))
    if big < 2 and N * Cg * groups * 300 * max(hw[1 - big], 1) <= COPY_MAX:
        hw[big] = draw(st.integers(50, 300))
    return groups, Cg, Mg, kernel, N, hw


@st.composite
def conv_call(draw, transposed):
    """A call of conv2d or conv_transpose2d (kwargs), possibly with one bad argument.
    Returns (kwargs, bad argument name or None, Bad or None, rng seed)."""
    fn = "conv_transpose2d" if transposed else "conv2d"
    groups, Cg, Mg, kernel, N, (H, W) = draw(geometry(transposed))
    dtype = draw(st.sampled_from(DTYPES))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    C_in = Cg * groups
    w_shape = (C_in, Mg, *kernel) if transposed else (Mg * groups, Cg, *kernel)
    x = random_array(rng, (N, C_in, H, W), dtype, specials=True)
    w = random_array(rng, w_shape, dtype)
    b = random_array(rng, (Mg * groups,), dtype) if draw(st.booleans()) else None
    unbatched = N == 1 and draw(st.booleans())
    if unbatched:
        x = x[0]
    kw = dict(input=apply_layout(x, draw(st.sampled_from(LAYOUTS))),
              weight=apply_layout(w, draw(st.sampled_from(LAYOUTS))),
              bias=None if b is None else apply_layout(b, draw(st.sampled_from(LAYOUTS))),
              stride=draw(size_arg(1, st.integers(1, 3))),
              dilation=draw(size_arg(1, st.integers(1, 3))),
              groups=draw(int_form(st.just(groups))))
    pad = st.integers(0, 3)
    if transposed:
        kw["padding"] = draw(size_arg(0, pad))
        kw["output_padding"] = draw(st.one_of(st.just(0), st.just(0),
                                              size_arg(0, st.integers(0, 2))))
    else:
        kw["padding"] = draw(st.one_of(size_arg(0, pad), size_arg(0, pad),
                                       st.sampled_from(["same", "valid"])))
    if draw(st.integers(0, 4)) == 0:
        kw["algorithm"] = draw(st.sampled_from(GENERIC))
    if draw(st.integers(0, 4)) == 0:
        kw["out"] = "valid"   # filled in once the output shape is known
    if draw(st.integers(0, 8)) == 0:
        cconv.set_num_threads(draw(st.integers(1, 3)))
    isa = draw(st.sampled_from(_isa.SUPPORTED))

    bad_name, bad = None, None
    if draw(st.integers(0, 9)) < 4:
        names = ["input", "weight", "bias", "stride", "padding", "dilation", "groups",
                 "algorithm", "out", "input-huge"] + (["output_padding"] if transposed else [])
        bad_name = draw(st.sampled_from(names))
        if bad_name in ("stride", "dilation", "padding", "output_padding"):
            minimum = 1 if bad_name in ("stride", "dilation") else 0
            str_exc = ValueError if bad_name == "padding" and not transposed else TypeError
            bad = draw(bad_size_arg(minimum, str_exc=str_exc))
        elif bad_name == "groups":
            bad = draw(st.one_of(
                st.sampled_from([Bad(v, ValueError) for v in [0] + NEGATIVE + TOO_LARGE]),
                st.sampled_from([Bad(v, TypeError) for v in BAD_TYPES + BAD_LENGTHS + [[2]]])))
        elif bad_name in ("input", "weight", "bias"):
            if bad_name == "bias" and draw(st.booleans()):
                v = draw(st.sampled_from([np.zeros(Mg * groups + 1, dtype),
                                          np.zeros((Mg * groups, 1), dtype), dtype.type(0)]))
                bad = Bad(v, ValueError)
            elif bad_name != "bias" and draw(st.booleans()):
                wrong = draw(st.sampled_from([(5,), (2, 3), (1, 2, 3, 4, 5), ()]))
                bad = Bad(np.zeros(wrong, dtype), ValueError)
            elif draw(st.booleans()):
                other = DTYPES[1] if dtype == DTYPES[0] else DTYPES[0]
                bad = Bad(np.zeros(w_shape if bad_name == "weight" else (3, 3, 3), other),
                          TypeError)
            else:
                v, exc = draw(bad_array_values((2, 2, 2, 2)))
                bad = Bad("abc" if v is None and bad_name == "bias" else v, exc)  # no bias: ok
        elif bad_name == "algorithm":
            bad = Bad(draw(st.sampled_from(["winograd", "IGEMM", "", 1, ["igemm"], b"igemm"])),
                      ValueError)
        elif bad_name == "out":
            bad = Bad(draw(st.sampled_from(["shape", "dtype", "F", "readonly", "list"])),
                      ValueError)
        else:   # input-huge: a valid, zero-stride input of enormous extent
            dims = list(np.shape(as_array(kw["input"]))) or [0]
            axis = draw(st.integers(0, len(dims) - 1))
            # (numpy's own limit: no dimension nor byte count beyond intp, 2**31 on 32-bit,
            # even for a zero-stride view)
            dims[axis] = draw(st.sampled_from([d for d in (2**20, 2**31, 2**32 + 1, 2**40)
                                               if d < INTP.max]))
            nbytes = np.prod([float(d) for d in dims]) * dtype.itemsize
            if nbytes < min(2.0**62, INTP.max) and 0 not in dims:
                kw["input"] = np.broadcast_to(dtype.type(0.5), dims)
            bad_name = None
        if bad is not None:
            kw[bad_name] = bad
    return fn, kw, bad_name, bad, isa, dtype, unbatched


def functional_outcome(fn, kw, dtype):
    """(outcome, output shape, reference) of a call whose arguments are all type-valid."""
    x, w, b = as_array(kw["input"]), as_array(kw["weight"]), kw["bias"]
    b = None if b is None else as_array(b)
    for a in (x, w) + ((b,) if b is not None else ()):
        if a.dtype.kind != "f" or a.dtype.newbyteorder("=") != dtype:
            return Outcome.FAIL, None, None
    stride, dilation = pair_of(kw["stride"]), pair_of(kw["dilation"])
    groups = operator.index(kw["groups"])
    if fn == "conv2d":
        outcome, pads, shape = conv2d_geometry(x.shape, w.shape, None if b is None else b.shape,
                                               stride, kw["padding"], dilation, groups)
    else:
        padding, output_padding = pair_of(kw["padding"]), pair_of(kw["output_padding"])
        outcome, shape = conv_transpose2d_geometry(x.shape, w.shape,
                                                   None if b is None else b.shape, stride,
                                                   padding, output_padding, dilation, groups)
    if outcome != Outcome.OK:
        return outcome, None, None
    algorithm = kw.get("algorithm")
    if algorithm in ("depthwise", "depthwise_cl") and (fn != "conv2d" or w.shape[1] != 1):
        return Outcome.FAIL, None, None
    out_elems = int(np.prod([float(s) for s in shape])) if all(shape) else 0
    copies = copy_elems(x, dtype) + copy_elems(w, dtype)
    outcome = size_class(out_elems if all(shape) else 0, copies, dtype.itemsize, shape[2:])
    if outcome == Outcome.OK:
        kernel = w.shape[2:]
        if kernel[0] * kernel[1] > TAPS_MAX:
            return Outcome.SKIP, None, None
    if outcome != Outcome.OK:
        return outcome, None, None
    x4 = x if x.ndim == 4 else x[None]
    if fn == "conv2d":
        ref = reference_conv2d(x4, w, b, stride, pads, dilation, groups, shape)
        K = w.shape[1] * w.shape[2] * w.shape[3]
    else:
        ref = reference_conv_transpose2d(x4, w, b, stride, pair_of(kw["padding"]), dilation,
                                      groups, shape)
        K = w.shape[0] // groups * w.shape[2] * w.shape[3]
    return Outcome.OK, shape, (ref, K)


def bad_out(kind, shape, dtype):
    if kind == "shape":
        return np.zeros(tuple(shape[:-1]) + (shape[-1] + 1,), dtype)
    if kind == "dtype":
        return np.zeros(shape, DTYPES[1] if dtype == DTYPES[0] else DTYPES[0])
    if kind == "F":
        return np.zeros(tuple(shape[:-1]) + (shape[-1], 2), dtype)[..., 0]
    if kind == "readonly":
        out = np.zeros(shape, dtype)
        out.flags.writeable = False
        return out
    return np.zeros(shape, dtype).tolist()


# A valid stand-in for each argument that can be made bad (to ask what the rest of the call
# would do); input and weight have none: their own checks come first.
HARMLESS = {"bias": None, "stride": 1, "dilation": 1, "groups": 1, "padding": 0,
            "output_padding": 0, "algorithm": None, "out": None}


def fuzz_functional(case):
    fn, kw, bad_name, bad, isa, dtype, unbatched = case
    out_kind = kw.pop("out", None)
    base = dict(kw)
    if bad is not None and bad_name in HARMLESS:
        base[bad_name] = HARMLESS[bad_name]
    if bad is not None and bad_name in ("input", "weight"):
        base_outcome, shape, ref = Outcome.OK, None, None
    else:
        base_outcome, shape, ref = functional_outcome(fn, base, dtype)
    assume(base_outcome != Outcome.SKIP)
    outcome = base_outcome
    if out_kind is not None and shape is not None:
        full = shape[1:] if unbatched else shape
        if isinstance(out_kind, Bad):
            out = bad_out(out_kind.value, full, dtype)
            if (isinstance(out, np.ndarray) and out.shape == tuple(full) and out.dtype == dtype
                    and out.flags.c_contiguous and out.flags.writeable):
                kw["out"] = out     # an empty 'strided' array is contiguous after all
                bad_name = bad = None
            else:
                kw["out"] = Bad(out, ValueError)
        else:
            kw["out"] = np.full(full, np.nan, dtype)
    elif isinstance(out_kind, Bad):
        bad_name = bad = None    # no output shape to get wrong: the call fails anyway
    if bad is not None:
        outcome = Outcome.FAIL
        # Checked before anything else can fail: the arrays' types and dtypes, every size
        # argument, and (conv2d) the bias's shape. out= and algorithm= come after the
        # geometry and the size check; conv_transpose2d checks the bias after the geometry.
        shape_of_bias = bad_name == "bias" and bad.exc is ValueError and fn != "conv2d"
        if (bad_name in ("algorithm", "out") or shape_of_bias) and base_outcome != Outcome.OK:
            bad_name = bad = None
    args = {k: (v.value if isinstance(v, Bad) else v) for k, v in kw.items()}
    note(f"{fn}: bad {bad_name}={bad!r}; outcome {outcome}, output {shape}")

    def expect(y):
        check_result(y, ref[0], ref[1], dtype, args.get("algorithm"), unbatched, fn)
        if isinstance(args.get("out"), np.ndarray):
            assert y is args["out"], "out= given: the result must be that array"

    with _isa.forced(isa):
        run_case(lambda: getattr(cconv, fn)(**args), outcome, expect, bad_name, bad)


@FUZZ
@given(case=conv_call(transposed=False))
def test_fuzz_conv2d(case):
    fuzz_functional(case)


@FUZZ
@given(case=conv_call(transposed=True))
def test_fuzz_conv_transpose2d(case):
    fuzz_functional(case)


# ---- modules ---------------------------------------------------------------------------------

MODULE_BAD_SIZES = {"in_channels": 1, "out_channels": 1, "groups": 1, "kernel_size": 1,
                    "stride": 1, "padding": 0, "dilation": 1, "output_padding": 0}
# Valid stand-ins (channels: the groups, which divide nothing wrongly).
MODULE_HARMLESS = {"groups": 1, "kernel_size": 1, "stride": 1, "padding": 0, "dilation": 1,
                   "output_padding": 0, "padding_mode": "zeros", "dtype": np.float32}


@st.composite
def module_call(draw, transposed):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C, M = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    kernel = draw(st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 5))))
    args = dict(in_channels=C, out_channels=M, kernel_size=kernel,
                stride=draw(size_arg(1, st.integers(1, 3))),
                dilation=draw(size_arg(1, st.integers(1, 3))),
                groups=groups, bias=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64, "float32", "f8"])),
                rng=draw(st.integers(0, 2**32 - 1)))
    pad = size_arg(0, st.integers(0, 3))
    if transposed:
        args["padding"] = draw(pad)
        args["output_padding"] = draw(size_arg(0, st.integers(0, 2)))
    else:
        args["padding"] = draw(st.one_of(pad, pad, st.sampled_from(["same", "valid"])))
        args["padding_mode"] = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate",
                                                     "circular"]))
    bad_name = bad = None
    if draw(st.integers(0, 9)) < 4:
        names = list(MODULE_BAD_SIZES) + ["padding_mode", "dtype"]
        if not transposed:
            names.remove("output_padding")
        bad_name = draw(st.sampled_from(names))
        if bad_name in ("in_channels", "out_channels", "groups"):
            bad = draw(st.one_of(
                st.sampled_from([Bad(v, ValueError) for v in [0] + NEGATIVE + TOO_LARGE]),
                st.sampled_from([Bad(v, TypeError) for v in BAD_TYPES + [[2]]])))
        elif bad_name == "padding_mode":
            bad = Bad(draw(st.sampled_from(["mirror", "ZEROS", "", None, 0, "same"])),
                      ValueError)
        elif bad_name == "dtype":
            bad = Bad(draw(st.sampled_from([np.int32, np.float16, np.complex64, "int64",
                                            bool])), TypeError)
        else:
            str_exc = TypeError if transposed or bad_name != "padding" else ValueError
            bad = draw(bad_size_arg(MODULE_BAD_SIZES[bad_name], str_exc=str_exc))
        args[bad_name] = bad
    N = draw(st.sampled_from([0, 1, 2]))
    H, W = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    seed = draw(st.integers(0, 2**32 - 1))
    in_dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    layout = draw(st.sampled_from(LAYOUTS))
    unbatched = N == 1 and draw(st.booleans())
    output_size = None
    if transposed:
        output_size = draw(st.sampled_from([None] * 6 + ["valid", "valid-shape", "below",
                                            "above", "length", "huge"]))
    elif draw(st.integers(0, 5)) == 0:
        output_size = "bad-input"
    isa = draw(st.sampled_from(_isa.SUPPORTED))
    return args, bad_name, bad, (N, H, W, seed, in_dtype, layout, unbatched), output_size, isa


def module_outcome(transposed, args):
    """Outcome of the constructor (all arguments type-valid), and its weight shape."""
    C, M, g = args["in_channels"], args["out_channels"], args["groups"]
    if C % g or M % g:
        return Outcome.FAIL, None
    k = pair_of(args["kernel_size"])
    padding = args["padding"]
    if isinstance(padding, str):
        if transposed:
            return Outcome.FAIL, None
        if padding == "same" and pair_of(args["stride"]) != (1, 1):
            return Outcome.FAIL, None
    if not transposed and args.get("padding_mode", "zeros") not in cconv.modules.PADDING_MODES:
        return Outcome.FAIL, None
    shape = (C, M // g, *k) if transposed else (M, C // g, *k)
    elems = float(np.prod([float(s) for s in shape]))
    if elems * 8 >= IMPOSSIBLE:
        return Outcome.HUGE, None
    if elems > COPY_MAX:
        return Outcome.SKIP, None
    return Outcome.OK, shape


def fuzz_module(transposed, case):
    args, bad_name, bad, (N, H, W, seed, in_dtype, layout, unbatched), output_size, isa = case
    cls = cconv.ConvTranspose2d if transposed else cconv.Conv2d
    plain = {k: v for k, v in args.items() if not isinstance(v, Bad)}
    if bad is None:
        outcome, _ = module_outcome(transposed, plain)
    else:
        # What the constructor does with the bad argument replaced by a valid one: the
        # size arguments and padding_mode are checked first, dtype last.
        fixed = dict(plain, **{bad_name: MODULE_HARMLESS.get(bad_name, plain.get("groups"))})
        base_outcome, _ = module_outcome(transposed, fixed)
        assume(base_outcome != Outcome.SKIP)
        outcome = Outcome.FAIL
        if bad_name == "dtype" and base_outcome == Outcome.FAIL:
            bad_name = bad = None
    assume(outcome != Outcome.SKIP)
    call_args = {k: (v.value if isinstance(v, Bad) else v) for k, v in args.items()}
    note(f"{cls.__name__}({call_args}): outcome {outcome}")
    if outcome != Outcome.OK:
        run_case(lambda: cls(**call_args), outcome, None, bad_name, bad)
        return
    module = cls(**call_args)
    mdt = module.dtype
    rng = np.random.default_rng(seed)
    x = random_array(rng, (N, module.in_channels, H, W), in_dtype, specials=True)
    if unbatched:
        x = x[0]
    x_arg = apply_layout(x, layout)
    x64 = np.asarray(x_arg).astype(mdt).astype(np.float64)   # the module casts first
    stride, dilation = module.stride, module.dilation
    w, b = module.weight, module.bias
    if output_size == "bad-input":
        x_arg = rng.choice(np.array([None, "abc", np.zeros((2, 3), np.float32),
                                     np.zeros(x.shape, np.int32), np.zeros(x.shape, complex),
                                     [[1.0], [1.0, 2.0]]], dtype=object))
        run_case(lambda: module(x_arg), Outcome.FAIL, None, "input")
        return
    if transposed:
        fwd = {}
        op = module.output_padding
        if output_size is not None:
            lo = [(n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                  zip((H, W), stride, module.padding, dilation, module.kernel_size)]
            size = [lo[i] + int(rng.integers(0, stride[i])) if stride[i] < 2**16 else lo[i]
                    for i in range(2)]
            fwd["output_size"] = {
                "valid": size, "valid-shape": list(x.shape[:-2]) + size,
                "below": [lo[0] - 1, size[1]], "above": [size[0], lo[1] + stride[1]],
                "length": size + [1, 1, 1], "huge": [2**63, 2**64]}[output_size]
            if not output_size.startswith("valid"):
                run_case(lambda: module(x_arg, **fwd), Outcome.FAIL, None, "output_size")
                return
            op = (size[0] - lo[0], size[1] - lo[1])
        outcome, shape = conv_transpose2d_geometry(x64.shape, w.shape, None, stride,
                                                   module.padding, op, dilation, module.groups)
    else:
        fwd = {}
        outcome, pads, shape = conv2d_geometry(x64.shape, w.shape, None, stride,
                                               module.padding, dilation, module.groups)
        mode = module.padding_mode
        if outcome == Outcome.OK and mode != "zeros":
            Hs, Ws = x64.shape[-2:]
            limit = {"reflect": lambda p, n: p < n, "circular": lambda p, n: p <= n,
                     "replicate": lambda p, n: True}[mode]
            # An empty batch pads to an empty array, whatever the padding (as torch: a
            # result of the output's shape).
            padded = [float(n) for n in x64.shape[:-2]] + [
                float(Hs + pads[0] + pads[1]), float(Ws + pads[2] + pads[3])]
            if not (all(limit(p, Hs) for p in pads[:2]) and all(limit(p, Ws) for p in pads[2:])):
                outcome = Outcome.FAIL
            elif np.prod(padded) * mdt.itemsize >= IMPOSSIBLE:
                outcome = Outcome.HUGE      # numpy cannot make the padded input
            elif np.prod(padded) > COPY_MAX:
                outcome = Outcome.SKIP
            elif min(x64.shape) > 0:
                x64 = pad_input(x64, pads, mode)
                pads = (0, 0, 0, 0)
            # (else an empty batch: not padded, its padding left to the convolution)
    if outcome == Outcome.OK:
        elems = int(np.prod([float(n) for n in shape])) if all(shape) else 0
        outcome = size_class(elems, x64.size, mdt.itemsize, shape[2:])
    assume(outcome != Outcome.SKIP)
    ref = None
    if outcome == Outcome.OK:
        x4 = x64 if x64.ndim == 4 else x64[None]
        if transposed:
            ref = reference_conv_transpose2d(x4, w, b, stride, module.padding, dilation,
                                          module.groups, shape)
            K = w.shape[0] // module.groups * w.shape[2] * w.shape[3]
        else:
            ref = reference_conv2d(x4, w, b, stride, pads, dilation, module.groups, shape)
            K = w.shape[1] * w.shape[2] * w.shape[3]
    with _isa.forced(isa):
        run_case(lambda: module(x_arg, **fwd), outcome,
                 lambda y: check_result(y, ref, K, mdt, None, unbatched, cls.__name__))


@FUZZ
@given(case=module_call(transposed=False))
def test_fuzz_conv2d_module(case):
    fuzz_module(False, case)


@FUZZ
@given(case=module_call(transposed=True))
def test_fuzz_conv_transpose2d_module(case):
    fuzz_module(True, case)


# ---- weights of a module: assignment and load_state_dict -------------------------------------

@FUZZ
@given(transposed=st.booleans(), how=st.sampled_from(["weight", "bias", "load", "load-loose"]),
       value=st.one_of(
           st.sampled_from(["right", "right-list", "right-f16", "right-other-float",
                            "right-swapped", "right-F", "right-broadcast", "torch"]),
           st.sampled_from(["wrong-shape", "scalar", "none", "str", "int", "complex",
                            "ragged", "object", "transposed-shape", "empty"])),
       seed=st.integers(0, 2**32 - 1))
def test_fuzz_module_weights(transposed, how, value, seed):
    """A new weight/bias is taken whole (cast to the module's dtype) or refused with an error
    naming it, leaving the module as it was; calls then use exactly the current weights."""
    cls = cconv.ConvTranspose2d if transposed else cconv.Conv2d
    module = cls(4, 6, (3, 2), groups=2, rng=seed)
    name = "bias" if how == "bias" else "weight"
    shape = {"weight": module.weight.shape, "bias": module.bias.shape}[name]
    rng = np.random.default_rng(seed)
    right = rng.standard_normal(shape)
    valid = value.startswith("right") and value != "right-f16" or value == "torch"
    if value == "torch":
        torch = pytest.importorskip("torch")
        new = torch.from_numpy(right).requires_grad_(True)
        valid = how.startswith("load")   # only load_state_dict reads tensors
    else:
        new = {"right": right, "right-list": right.tolist(),
               "right-f16": right.astype(np.float16),
               "right-other-float": right.astype(np.float32),
               "right-swapped": right.astype(">f8"), "right-F": np.asfortranarray(right),
               "right-broadcast": np.broadcast_to(right[:1], right.shape),
               "wrong-shape": np.zeros(shape + (1,)), "scalar": 1.0, "none": None, "str": "w",
               "int": np.zeros(shape, np.int64), "complex": np.zeros(shape, complex),
               "ragged": [[1.0], [1.0, 2.0]], "object": object(),
               "transposed-shape": np.zeros(shape[::-1] if len(shape) > 1 else shape[0] + 1),
               "empty": np.zeros(0)}[value]
    if value == "none" and name == "bias" and how == "bias":
        valid = True            # bias=None removes the bias
    before = module.state_dict()
    x = rng.standard_normal((2, 4, 6, 5)).astype(module.dtype)
    try:
        if how == "weight":
            module.weight = new
        elif how == "bias":
            module.bias = new
        else:
            state = {"weight": new, "bias": before["bias"]}
            if how == "load-loose":
                state["extra"] = 1
            module.load_state_dict(state, strict=how == "load")
    except Exception as exc:  # judged below
        note(f"raised {type(exc).__name__}: {exc}")
        assert not valid, f"valid {name} refused: {type(exc).__name__}: {exc}"
        check_failure(exc, Outcome.FAIL, "state_dict" if how == "load" and
                      isinstance(exc, ValueError) and "keys" in str(exc) else name)
        after = module.state_dict()
        assert after.keys() == before.keys()
        for key in before:
            np.testing.assert_array_equal(after[key], before[key])
        return
    assert valid, f"{name}={value} was accepted"
    current = module.weight if name == "weight" else module.bias
    if new is None:
        assert current is None
    else:
        assert current.dtype == module.dtype and not current.flags.writeable
        np.testing.assert_array_equal(current, np.asarray(
            new.detach().numpy() if hasattr(new, "detach") else new, np.float64
        ).astype(module.dtype))
    y = module(x)
    fn = cconv.conv_transpose2d if transposed else cconv.conv2d
    expected = fn(x, module.weight, module.bias, groups=2)
    assert np.array_equal(y, expected), "the module does not use its current weights"


@pytest.mark.parametrize("algorithm", ["winograd", 7, "depthwise"])
@pytest.mark.parametrize("N", [0, 1])
def test_algorithm_is_checked_for_empty_outputs_too(algorithm, N):
    """A bad algorithm= is refused whatever the batch size (an empty output once skipped
    the check, found by the long fuzz profile)."""
    with pytest.raises(ValueError, match="algorithm="):
        cconv.conv2d(np.ones((N, 2, 3, 3), F32), np.ones((1, 2, 1, 1), F32),
                     algorithm=algorithm)


# ---- module arguments outside the fuzzed ones: errors of ours, naming the argument ----------

_T = np.ones((1, 2, 4, 4), np.float32)
MODULE_ARGUMENT_ERRORS = {
    "load_state_dict-None": (lambda: cconv.Conv2d(1, 1, 1).load_state_dict(None),
                             "state_dict", ()),
    "load_state_dict-list": (lambda: cconv.Conv2d(1, 1, 1).load_state_dict([]),
                             "state_dict", ()),
    "output_size-int": (lambda: cconv.ConvTranspose2d(2, 2, 3, stride=2)(_T, output_size=5),
                        "output_size", ()),
    "output_size-letters": (
        lambda: cconv.ConvTranspose2d(2, 2, 3, stride=2)(_T, output_size=["a", "b"]),
        "output_size", ()),
    "output_size-string": (
        lambda: cconv.ConvTranspose2d(2, 2, 3, stride=2)(_T, output_size="99"),
        "output_size", ()),
    "output_size-floats": (
        lambda: cconv.ConvTranspose2d(2, 2, 3, stride=2)(_T, output_size=[9.7, 9.2]),
        "output_size", ()),
    "dtype-unknown": (lambda: cconv.Conv2d(1, 1, 1, dtype="abc"), "dtype", ()),
    "bias-array": (lambda: cconv.Conv2d(1, 1, 1, bias=np.array([1, 2])), "bias", ()),
    "kernel_size-2**31": (lambda: cconv.Conv2d(1, 1, 2**31), "kernel_size", ()),
    "rng-str": (lambda: cconv.Conv2d(1, 1, 1, rng="x"), "rng", ()),
    "rng-negative": (lambda: cconv.Conv2d(1, 1, 1, rng=-1), "rng", ()),
}


@pytest.mark.parametrize("case", [pytest.param(k, marks=v[2]) for k, v in
                                  MODULE_ARGUMENT_ERRORS.items()])
def test_module_argument_errors_name_the_argument(case):
    call, name, _ = MODULE_ARGUMENT_ERRORS[case]
    with pytest.raises(Exception) as info:
        call()
    check_failure(info.value, Outcome.FAIL, name)


# ---- the gathering above, checked on geometries cconv.testing computes directly ---------------

@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("seed", range(8))
def test_gathered_geometry_matches_the_reference(transposed, seed):
    """reference_conv2d / reference_conv_transpose2d (values and magnitudes) equal
    cconv.testing's direct call on small geometries, asymmetric padding and padding past the
    kernel included."""
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 3))
    stride = tuple(int(s) for s in rng.integers(1, 4, 2))
    dilation = tuple(int(s) for s in rng.integers(1, 3, 2))
    kernel = tuple(int(s) for s in rng.integers(1, 4, 2))
    x = rng.standard_normal((2, 2 * groups, 7, 8))
    b = rng.standard_normal(3 * groups)
    if transposed:
        padding = tuple(int(s) for s in rng.integers(0, 3, 2))
        w = rng.standard_normal((2 * groups, 3, *kernel))
        args = (stride, padding, (stride[0] - 1, 0), groups, dilation)
        ref, mag = conv_transpose2d_ref(x, w, b, *args), conv_transpose2d_abs(x, w, b, *args)
        got = reference_conv_transpose2d(x, w, b, stride, padding, dilation, groups, ref.shape)
    else:
        pads = tuple(int(s) for s in rng.integers(0, 9, 4))
        w = rng.standard_normal((3 * groups, 2, *kernel))
        args = (stride, pads, dilation, groups)
        ref, mag = conv2d_ref(x, w, b, *args), conv2d_abs(x, w, b, *args)
        got = reference_conv2d(x, w, b, stride, pads, dilation, groups, ref.shape)
    np.testing.assert_allclose(got[0], ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[1], mag, rtol=1e-12, atol=1e-12)


# ---- misaligned data ----------------------------------------------------------------------------

MISALIGNED_CASES = {
    "conv2d": (cconv.conv2d, (2, 6, 9, 11), (4, 3, 3, 3), dict(padding=1, groups=2)),
    "1x1": (cconv.conv2d, (2, 8, 5, 7), (6, 8, 1, 1), {}),
    "depthwise": (cconv.conv2d, (2, 4, 9, 11), (8, 1, 3, 3), dict(groups=4, stride=2)),
    "transposed": (cconv.conv_transpose2d, (2, 6, 5, 7), (6, 4, 3, 3), dict(stride=2)),
}


@pytest.mark.parametrize("case", MISALIGNED_CASES)
@pytest.mark.parametrize("what", ["arrays", "out", "module"])
def test_misaligned_arrays(case, what, dtype, isa):
    """Arrays whose data is not aligned to their item size (np.frombuffer at an odd offset)
    give bitwise the aligned result: read, written (out=) and loaded into a module."""
    fn, x_shape, w_shape, kwargs = MISALIGNED_CASES[case]
    rng = np.random.default_rng(7)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    expected = fn(x, w, **kwargs)
    if what == "arrays":
        got = fn(misaligned(x), misaligned(w), **kwargs)
    elif what == "out":
        out = misaligned(np.zeros_like(expected))
        got = fn(x, w, **kwargs, out=out)
        assert got is out
    else:
        transposed = fn is cconv.conv_transpose2d
        cls = cconv.ConvTranspose2d if transposed else cconv.Conv2d
        g = kwargs.get("groups", 1)
        in_out = (w_shape[0], w_shape[1] * g) if transposed else (w_shape[1] * g, w_shape[0])
        module = cls(*in_out, w_shape[2:], bias=False, dtype=dtype, **kwargs)
        module.weight = misaligned(w)
        got = module(misaligned(x))
    assert np.array_equal(got, expected)


# ---- sizes that cannot exist fail before touching memory -------------------------------------

def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


F32 = np.float32
ONE = np.ones((1, 1, 1, 1), F32)
IMPOSSIBLE_CALLS = {
    # (1,1,1,1) input, 1x1 kernel: an output of (2p+1)**2 elements.
    "padding-2**40": lambda: cconv.conv2d(ONE, ONE, padding=2**40),
    "padding-2**20": lambda: cconv.conv2d(ONE, ONE, padding=2**20),          # 16 TiB
    "padding-2**24-rows": lambda: cconv.conv2d(ONE, ONE, padding=(2**24, 2**24)),
    "padding-limit": lambda: cconv.conv2d(ONE, ONE, padding=SIZE_LIMIT // 2 - 1),
    "stride-transposed": lambda: cconv.conv_transpose2d(np.ones((1, 1, 2, 2), F32), ONE,
                                                        stride=2**40),
    "dilation-transposed": lambda: cconv.conv_transpose2d(ONE, np.ones((1, 1, 2, 2), F32),
                                                          dilation=2**40),
    "batch-broadcast": lambda: cconv.conv2d(np.broadcast_to(F32(1), (2**40, 1, 1, 1)), ONE),
    "image-broadcast": lambda: cconv.conv2d(np.broadcast_to(F32(1), (1, 1, 2**31, 2**31)),
                                            ONE),
    "module": lambda: cconv.Conv2d(1, 1, 1, padding=(1, 2**40))(ONE),   # (rows: KB3)
    "module-transposed": lambda: cconv.ConvTranspose2d(1, 1, 1, stride=2**30)(
        np.ones((1, 1, 2, 3), F32)),
    "module-weights": lambda: cconv.Conv2d(2**30, 2**30, 1),
    "module-kernel": lambda: cconv.Conv2d(1, 1, 2**31),
}


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.parametrize("case", IMPOSSIBLE_CALLS)
def test_impossible_sizes_fail_before_touching_memory(case):
    """Calls whose output (or weights, or input copy) could never fit any machine raise
    MemoryError or ValueError with a message, without first touching memory."""
    before = _rss()
    with pytest.raises((MemoryError, ValueError)) as info:
        IMPOSSIBLE_CALLS[case]()
    assert str(info.value).strip()
    if not ASAN:   # (its shadow memory and quarantine)
        assert _rss() - before < 64 << 20, "memory was touched before failing"


# ---- bugs found by fuzzing (xfail while open: strict, so a fix shows up as XPASS) -------------

def _run_python(code, timeout=60, kill_after=None):
    """The finished process of `python -c code` (None if it ran past kill_after seconds)."""
    try:
        return run_python(["-c", textwrap.dedent(code)], timeout=kill_after or timeout)
    except subprocess.TimeoutExpired:
        if kill_after is None:
            raise
        return None


# Geometries with a 3x3 output from a 2x2 image, stride s = 2**e, both taps reaching it: their
# offsets differ by a multiple of the stride (dilation 2s: one phase), by one more (2s + 1:
# phases 0 and 1) or by one less (padding and dilation 2s - 1: phases 0 and s - 1).
PHASES = {"dilation-multiple": 0, "near-phase": 1, "far-phase": -1}


def _phase_geometry(e, kind):
    s, shift = 2**e, PHASES[kind]
    return dict(stride=s, padding=2 * s + min(shift, 0), dilation=2 * s + shift)


@pytest.mark.parametrize("kind", PHASES)
@pytest.mark.parametrize("algorithm", GENERIC)
def test_huge_stride_and_dilation_do_not_crash(algorithm, kind):
    """stride 2**31 with dilation and padding near 2**32: the band buffer was sized for
    min(stride, span) phases per axis, whose product overflowed Py_ssize_t (a tiny workspace,
    then writes far past it: segfault; fixed by gcd phases and saturating sizes). In a child
    process: the right result or a clean MemoryError, never a crash."""
    groups = 2 if algorithm.startswith("depthwise") else 1
    proc = _run_python(f"""
        import numpy as np, cconv
        x = np.ones((1, 2, 2, 2), np.float32)
        w = np.ones((2 if {groups} == 2 else 1, 2 // {groups}, 2, 2), np.float32)
        try:
            y = cconv.conv2d(x, w, **{_phase_geometry(31, kind)}, groups={groups},
                             algorithm={algorithm!r})
            print(y.shape, y[0, 0].ravel().tolist())
        except MemoryError as exc:
            print("MemoryError", exc)
    """)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr[-500:]}"
    assert "(1, " in proc.stdout or "MemoryError conv2d" in proc.stdout or \
        "the workspace of this geometry exceeds" in proc.stdout, proc.stdout


@pytest.mark.parametrize("kind", PHASES)
@pytest.mark.parametrize("algorithm", ["igemm", "igemm_cl", "depthwise", "depthwise_cl"])
def test_large_stride_and_dilation_tiny_output(algorithm, kind, dtype):
    """The same geometries at 2**20: a valid 3x3 output needs no memory. The band held every
    stride phase within the taps' span (2**40 sub-images: MemoryError, 384 TiB, for
    near-phase and far-phase; report KB1); it holds the two phases they read."""
    groups = 2 if algorithm.startswith("depthwise") else 1
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 2, 2)).astype(dtype)
    w = rng.standard_normal((2 if groups == 2 else 1, 2 // groups, 2, 2)).astype(dtype)
    g = _phase_geometry(20, kind)
    y = cconv.conv2d(x, w, **g, groups=groups, algorithm=algorithm)
    pads = (g["padding"],) * 4
    ref = reference_conv2d(x, w, None, (g["stride"],) * 2, pads, (g["dilation"],) * 2, groups,
                        y.shape)
    check_result(y, ref, 2 // groups * 4, dtype, algorithm, False, "conv2d")


@pytest.mark.parametrize("algorithm", GENERIC)
def test_many_stride_phases_far_apart(algorithm, dtype):
    """34 taps reading 34 distinct stride phases spread over half the stride (stride 4096,
    dilation 2049: phases 0, 2, ..., 32 and 2049, 2051, ..., 2081). A band listed at most 32
    phases per axis; with more it held every phase up to the largest read, 2082 sub-images
    (1.1-8.5 MB of workspace here; gigabytes at stride 2**20, so the fuzz tests skipped the
    region). It lists them all: a band has at most as many phases as taps on each axis."""
    s, d, k = 4096, 2049, 34
    groups = 2 if algorithm.startswith("depthwise") else 1
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, (k - 1) * d + 1, 3)).astype(dtype)
    w = rng.standard_normal((2, 2 // groups, k, 1)).astype(dtype)
    kw = dict(stride=(s, 1), dilation=(d, 1), groups=groups)
    plan = _planner.plan_for_conv2d(x.shape, w.shape, **kw, dtype=dtype, algorithm=algorithm)
    assert plan.workspace_bytes < 256 * 1024, plan.workspace_bytes
    y = cconv.conv2d(x, w, **kw, algorithm=algorithm)
    ref = reference_conv2d(x, w, None, (s, 1), (0, 0, 0, 0), (d, 1), groups, y.shape)
    check_result(y, ref, 2 // groups * k, dtype, algorithm, False, "conv2d")


def test_transposed_planning_does_not_grow_with_stride():
    """conv_transpose2d of one pixel with stride 512: one output, but the planner built all
    512*512 phase pairs (stride 2**16: 2**32 of them, hours, then out of memory). Fixed:
    phases from the taps."""
    params = _params.conv_transpose2d_geometry("conv_transpose2d", (1, 2, 1, 1), (2, 1, 1, 1),
                                               512, 0, 0, 1, 1)
    _lowering.gemm.cache_clear()
    tracemalloc.start()
    try:
        _lowering.gemm(params)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"planning one output pixel took {peak / 2**20:.0f} MiB"


def test_planning_memory_is_linear_and_small_in_the_taps():
    """A 256x256 kernel (65536 taps, 2 channels): the kernel needs a few offsets per reduction
    step (8 bytes each). The table of k * width held a row for every width up to max(MR, NR)
    (~290 bytes per tap: a 16384x16384 kernel, 1 GiB of weights, needed ~90 GB, the OOM
    killer rather than MemoryError; report KB4). Fixed: rows only for the widths used (~50)."""
    params = _params.conv2d_geometry("conv2d", (1, 2, 256, 256), (1, 2, 256, 256), 1, 0, 1, 1)
    _lowering.gemm.cache_clear()
    _planner._plan.cache_clear()
    tracemalloc.start()
    try:
        _planner.plan(params, np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 65536 + (1 << 20), f"planning took {peak / 65536:.0f} bytes per tap"


def test_planning_effort_does_not_grow_with_the_output_rows(monkeypatch):
    """An output of 2**17 + 1 rows (padding 2**16 on a 1x1 image): the planner tried every
    band height, ~2*sqrt(rows) workspace probes (2**29 rows: hours). Fixed: log-many."""
    calls = []
    real = _planner._igemm

    class Counting:
        def __init__(self, lowering):
            self.problems = real.Problems(lowering)

        def sizes(self, *args):
            calls.append(1)
            return self.problems.sizes(*args)

    names = {k: getattr(real, k) for k in dir(real) if not k.startswith("__")}
    monkeypatch.setattr(_planner, "_igemm", types.SimpleNamespace(
        **dict(names, Problems=Counting)))
    _planner._plan.cache_clear()
    x = np.ones((1, 2, 1, 1), np.float32)
    y = cconv.conv2d(x, np.ones((1, 2, 1, 1), np.float32), padding=(2**16, 0),
                     algorithm="igemm")
    assert y.shape == (1, 1, 2**17 + 1, 1) and y.sum() == 2
    assert 0 < len(calls) < 100, f"{len(calls)} workspace probes to plan {y.shape[2]} rows"


def test_module_with_impossible_output_fails_quickly():
    """Conv2d(2, 1, 1, padding=(2**40, 0)) on one pixel: an output of 2**41 rows (8 TiB)
    that conv2d refuses at once (numpy cannot allocate it); the module planned first, over
    every band height of those rows (days). Fixed: modules allocate before planning."""
    proc = _run_python("""
        import numpy as np, cconv
        try:
            cconv.Conv2d(2, 1, 1, padding=(2**40, 0))(np.ones((1, 2, 1, 1), np.float32))
        except MemoryError as exc:
            print("MemoryError", exc)
    """, timeout=None, kill_after=5)
    assert proc is not None, "no answer within 5 s"
    assert "MemoryError" in proc.stdout, proc.stdout + proc.stderr[-300:]


@pytest.mark.parametrize("how", ["set_num_threads", "OMP_NUM_THREADS"])
def test_absurd_thread_count_does_not_crash(how):
    """set_num_threads(10**6) (or OMP_NUM_THREADS=1000000) is accepted; a call with 100000
    work items asked libgomp for 100000 threads: it overflowed the stack (segfault) or
    failed to create them (exit). Fixed: threads per call capped."""
    set_threads = "cconv.set_num_threads(10**6)" if how == "set_num_threads" else ""
    proc = _run_python(f"""
        import os
        os.environ["OMP_NUM_THREADS"] = "1000000"
        import numpy as np, cconv
        {set_threads}
        x = np.ones((100000, 1, 4, 4), np.float32)
        y = cconv.conv2d(x, np.ones((1, 1, 3, 3), np.float32))
        print(float(y.sum()))
    """)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr[-300:]}"
    assert str(float(100000 * 4 * 9)) in proc.stdout

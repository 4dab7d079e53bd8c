"""Layout agnosticism: any strides, order, byte order, read-only or memory-mapped arrays and
lists give the same result as the C-contiguous call; out= is filled and returned; every
algorithm and every ISA variant agree."""
import itertools

import numpy as np
import pytest
from conftest import (
    applicable_algorithms,
    assert_within,
    conv2d_reduction,
    error_bound,
    operation,
    random_arrays,
    reference_bound,
)

import cconv
from cconv import _isa
from cconv.testing import conv2d_abs


def readonly(arr, tmp_path):
    arr = arr.copy()
    arr.flags.writeable = False
    return arr


def fortran(arr, tmp_path):
    return np.asfortranarray(arr)


def negative_strides(arr, tmp_path):
    return np.flip(np.flip(arr).copy())


def every_other(arr, tmp_path):
    big = np.zeros(arr.shape[:-1] + (2 * arr.shape[-1],), arr.dtype)
    big[..., 1::2] = arr
    return big[..., 1::2]


def broadcast(arr, tmp_path):
    """A zero-stride view: the first entry along axis 0 repeated (values change: the
    comparison is with the same values made contiguous)."""
    return np.broadcast_to(arr[:1], arr.shape)


def swapped_bytes(arr, tmp_path):
    return arr.astype(arr.dtype.newbyteorder("S"))


def big_endian(arr, tmp_path):
    return arr.astype(arr.dtype.newbyteorder(">"))


_files = itertools.count()


def memmap(arr, tmp_path):
    path = tmp_path / f"array-{next(_files)}.bin"
    arr.tofile(path)
    return np.memmap(path, dtype=arr.dtype, mode="r", shape=arr.shape)


LAYOUTS = {f.__name__: f for f in (readonly, fortran, negative_strides, every_other,
                                   broadcast, swapped_bytes, big_endian, memmap)}

# (operation, x shape, w shape, kwargs): a dense 3x3, a 1x1 (whose input the kernel reads in
# place), a depthwise layer with a channel multiplier, and a strided transposed convolution.
GEOMETRIES = {
    "dense": ("conv2d", (2, 5, 9, 11), (7, 5, 3, 3), dict(padding=1)),
    "1x1": ("conv2d", (2, 8, 5, 7), (6, 8, 1, 1), {}),
    "depthwise": ("conv2d", (2, 4, 9, 11), (8, 1, 3, 2), dict(stride=(1, 2), groups=4)),
    "transposed": ("conv_transpose2d", (2, 6, 5, 7), (6, 4, 3, 3),
                   dict(stride=2, padding=1, output_padding=1, groups=2)),
}
GEOMETRY_ALGORITHMS = [
    pytest.param(g, a, id=f"{g}-{a}")
    for g, (op, x, w, kw) in GEOMETRIES.items()
    for a in applicable_algorithms(x[1], kw.get("groups", 1), op == "conv_transpose2d")]


def geometry_arrays(geometry, dtype):
    """({input, weight, bias}, kwargs, the cconv function) of a geometry."""
    op, x_shape, w_shape, kwargs = GEOMETRIES[geometry]
    channels = w_shape[1] * kwargs.get("groups", 1) if op == "conv_transpose2d" else None
    x, w, b = random_arrays(len(geometry), x_shape, w_shape, True, dtype, channels)
    return {"input": x, "weight": w, "bias": b}, kwargs, operation(op)


@pytest.mark.parametrize(("geometry", "algorithm"), GEOMETRY_ALGORITHMS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("argument", ["input", "weight", "bias", "all"])
def test_any_layout_gives_the_contiguous_result(geometry, algorithm, layout, argument, dtype,
                                                tmp_path):
    arrays, kwargs, conv = geometry_arrays(geometry, dtype)
    names = list(arrays) if argument == "all" else [argument]
    given = dict(arrays)
    for name in names:
        given[name] = LAYOUTS[layout](arrays[name], tmp_path)
    plain = {k: np.ascontiguousarray(v, dtype=dtype) for k, v in given.items()}
    expected = conv(**plain, **kwargs, algorithm=algorithm)
    y = conv(**given, **kwargs, algorithm=algorithm)
    assert y.dtype == dtype and y.dtype.isnative and y.flags.c_contiguous
    np.testing.assert_array_equal(y, expected)
    for name in names:              # the inputs are untouched
        np.testing.assert_array_equal(np.asarray(given[name], dtype), plain[name])


@pytest.mark.parametrize("argument", ["input", "weight", "bias", "all"])
def test_nested_lists(argument):
    """Lists of Python floats are float64 arrays."""
    arrays, kwargs, _ = geometry_arrays("dense", np.float64)
    expected = cconv.conv2d(**arrays, **kwargs)
    names = list(arrays) if argument == "all" else [argument]
    given = {k: v.tolist() if k in names else v for k, v in arrays.items()}
    np.testing.assert_array_equal(cconv.conv2d(**given, **kwargs), expected)


@pytest.mark.parametrize("layout", ["readonly", "fortran", "negative_strides", "memmap"])
def test_any_layout_in_the_module(layout, dtype, tmp_path):
    conv = cconv.Conv2d(5, 7, 3, padding=1, dtype=dtype, rng=0)
    arrays, _, _ = geometry_arrays("dense", dtype)
    x = arrays["input"]
    expected = conv(x)
    np.testing.assert_array_equal(conv(LAYOUTS[layout](x, tmp_path)), expected)
    conv.load_state_dict({k: LAYOUTS[layout](v, tmp_path) for k, v in conv.state_dict().items()})
    np.testing.assert_array_equal(conv(x), expected)


def test_torch_tensors_are_read(torch):
    arrays, kwargs, _ = geometry_arrays("dense", np.float32)
    expected = cconv.conv2d(**arrays, **kwargs)
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    np.testing.assert_array_equal(cconv.conv2d(**tensors, **kwargs), expected)


@pytest.mark.parametrize(("geometry", "algorithm"), GEOMETRY_ALGORITHMS)
@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
def test_out_is_filled_and_returned(geometry, algorithm, unbatched, dtype, isa):
    arrays, kwargs, conv = geometry_arrays(geometry, dtype)
    if unbatched:
        arrays["input"] = arrays["input"][1]
    expected = conv(**arrays, **kwargs, algorithm=algorithm)
    out = np.full(expected.shape, np.nan, dtype)      # every element must be written
    y = conv(**arrays, **kwargs, out=out, algorithm=algorithm)
    assert y is out
    np.testing.assert_array_equal(out, expected)


def test_out_with_empty_batch(dtype):
    x = np.zeros((0, 3, 6, 6), dtype)
    w = np.ones((4, 3, 3, 3), dtype)
    out = np.empty((0, 4, 4, 4), dtype)
    assert cconv.conv2d(x, w, out=out) is out


def test_every_algorithm_agrees(dtype):
    """On layers every algorithm applies to (one input channel per group)."""
    cases = [((2, 6, 19, 23), (12, 1, 3, 3), dict(padding=1, groups=6)),
             ((1, 1, 28, 28), (8, 1, 5, 5), {}),
             ((3, 9, 17, 40), (9, 1, 7, 2), dict(stride=(2, 3), dilation=(1, 2), groups=9))]
    for x_shape, w_shape, kwargs in cases:
        x, w, b = random_arrays(7, x_shape, w_shape, True, dtype)
        algorithms = applicable_algorithms(x_shape[1], kwargs.get("groups", 1))
        assert len(algorithms) >= 2
        results = {a: cconv.conv2d(x, w, b, **kwargs, algorithm=a) for a in algorithms}
        scale = conv2d_abs(x, w, b, **kwargs)
        for a, c in itertools.combinations(algorithms, 2):
            bound = (error_bound(scale, conv2d_reduction(w_shape), dtype, a)
                     + error_bound(scale, conv2d_reduction(w_shape), dtype, c))
            assert_within(results[a], results[c].astype(np.float64), bound, f"{a} vs {c}")


@pytest.mark.parametrize(("geometry", "algorithm"), GEOMETRY_ALGORITHMS)
def test_every_isa_agrees(geometry, algorithm, dtype):
    arrays, kwargs, conv = geometry_arrays(geometry, dtype)
    results = {}
    for name in _isa.SUPPORTED:
        with _isa.forced(name):
            results[name] = conv(**arrays, **kwargs, algorithm=algorithm)
    bound = 2 * reference_bound(GEOMETRIES[geometry][0], *arrays.values(), dtype=dtype,
                                algorithm=algorithm, **kwargs)
    base = _isa.SUPPORTED[0]
    for name in _isa.SUPPORTED[1:]:
        assert_within(results[name], results[base].astype(np.float64), bound,
                      f"{name} vs {base}")


def test_out_may_be_a_writeable_memmap(tmp_path, dtype):
    arrays, kwargs, conv = geometry_arrays("dense", dtype)
    expected = conv(**arrays, **kwargs)
    out = np.memmap(tmp_path / "out.bin", dtype=dtype, mode="w+", shape=expected.shape)
    assert conv(**arrays, **kwargs, out=out) is out
    out.flush()
    np.testing.assert_array_equal(np.fromfile(tmp_path / "out.bin", dtype).reshape(out.shape),
                                  expected)

"""Properties of the engine itself: its two GEMM orientations round alike, the module and the
functional call agree bitwise, and the planner keeps every layer's workspace bounded."""
import numpy as np
import pytest
from conftest import check_conv2d, check_conv_transpose2d, random_arrays

import cconv
from cconv import _engine, _isa, _params, _planner
from cconv.bench import layers as _layers

GEOMETRIES = [
    # (N, C_in, H, W, C_out, kernel, conv kwargs)
    (1, 20, 9, 11, 70, (3, 3), dict(padding=1)),
    (2, 33, 7, 7, 40, (1, 1), {}),
    (1, 16, 15, 13, 24, (3, 2), dict(stride=2, padding=(1, 0), dilation=(1, 2))),
    (1, 300, 5, 6, 33, (3, 3), dict(padding=1)),          # several K blocks
    (3, 8, 12, 12, 12, (3, 3), dict(padding=1, groups=4)),
    # Taps reading stride phases 0 and 3 of 4 (rows), 0 and 2 of 3 (columns): the band
    # lists those, two sub-images per axis, not every phase up to the largest.
    (1, 6, 23, 19, 10, (2, 2), dict(stride=(4, 3), dilation=(3, 2), padding=(1, 2))),
]


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_orientations_round_alike(geometry, dtype, isa):
    """Pixels or channels along the lanes: the same products summed in the same order from
    the bias, so bitwise the same result."""
    N, C_in, H, W, C_out, kernel, kw = geometry
    g = kw.get("groups", 1)
    x, w, b = random_arrays(3, (N, C_in, H, W), (C_out, C_in // g, *kernel), True, dtype)
    with _isa.forced(isa):
        pixels = cconv.conv2d(x, w, b, algorithm="igemm", **kw)
        channels = cconv.conv2d(x, w, b, algorithm="igemm_cl", **kw)
    np.testing.assert_array_equal(pixels, channels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_both_orientations_round_alike_transposed(dtype, isa):
    x, w, b = random_arrays(4, (2, 24, 7, 6), (24, 18, 4, 3), True, dtype, channels=18)
    kw = dict(stride=(2, 3), padding=1, output_padding=(1, 0))
    with _isa.forced(isa):
        pixels = cconv.conv_transpose2d(x, w, b, algorithm="igemm", **kw)
        channels = cconv.conv_transpose2d(x, w, b, algorithm="igemm_cl", **kw)
    np.testing.assert_array_equal(pixels, channels)


KERNEL_SIZED_STRIDES = [
    # (N, C_in, H, W, C_out, kernel = stride, groups)
    (1, 8, 9, 7, 6, (2, 2), 1),
    (2, 6, 5, 6, 10, (3, 2), 2),       # 3 x 2 rows per output channel, two groups
    (1, 5, 4, 9, 7, (2, 3), 1),        # fx 3: no pairs to interleave
    (1, 12, 6, 40, 3, (1, 2), 1),      # rows only along x
    (3, 4, 3, 3, 40, (4, 4), 1),       # 640 GEMM rows: pairs split by channel blocks
]


@pytest.mark.parametrize("geometry", KERNEL_SIZED_STRIDES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_sized_strides_run_as_one_gemm(geometry, dtype, threads, isa):
    """A transposed convolution whose kernel is its stride (U-Net's 2x2/s2) runs in pixel
    mode as one 1x1 GEMM of kh*kw rows per output channel, copied depth to space: the
    reference's result, and the bits of its stride phases in channel mode, of the module,
    and of one thread."""
    N, C_in, H, W, C_out, k, g = geometry
    x, w, b = random_arrays(9, (N, C_in, H, W), (C_in, C_out // g, *k), True, dtype,
                            channels=C_out)
    kw = dict(stride=k, groups=g)
    plan = _planner.plan_for_conv_transpose2d(x.shape, w.shape, dtype=dtype,
                                              algorithm="igemm", **kw)
    assert plan.d2s == k
    assert not _planner.plan_for_conv_transpose2d(x.shape, w.shape, dtype=dtype,
                                                  algorithm="igemm_cl", **kw).d2s
    with _isa.forced(isa):
        cconv.set_num_threads(1)
        one = cconv.conv_transpose2d(x, w, b, algorithm="igemm", **kw)
        cconv.set_num_threads(threads)
        y = cconv.conv_transpose2d(x, w, b, algorithm="igemm", **kw)
        phases = cconv.conv_transpose2d(x, w, b, algorithm="igemm_cl", **kw)
        module = cconv.ConvTranspose2d(C_in, C_out, k, stride=k, groups=g, dtype=dtype)
        module.load_state_dict({"weight": w, "bias": b})
        from_module = module(x)
    check_conv_transpose2d(y, x, w, b, **kw)
    np.testing.assert_array_equal(y, one)
    np.testing.assert_array_equal(y, phases)
    np.testing.assert_array_equal(from_module, y)     # whichever plan the module took


def test_unet_upsampling_is_planned_as_one_gemm():
    plan = _planner.plan_for_conv_transpose2d((1, 64, 56, 56), (64, 32, 2, 2), stride=2)
    assert plan.algorithm == "igemm" and plan.d2s == (2, 2)
    # With padding the kernel's taps overlap other phases' outputs: phases, as before.
    assert not _planner.plan_for_conv_transpose2d((1, 64, 56, 56), (64, 32, 2, 2), stride=2,
                                                  padding=1).d2s


DEPTHWISE_GEOMETRIES = [
    # (N, C_in, H, W, multiplier, kernel, conv kwargs)
    (1, 40, 14, 14, 1, (3, 3), dict(padding=1)),            # two blocks of lanes and a part
    (2, 17, 9, 30, 2, (3, 5), dict(padding=(1, 2), stride=(1, 2))),
    (1, 33, 28, 28, 1, (3, 3), dict(padding=1, stride=2)),  # stride phases in both axes
    (1, 20, 11, 13, 3, (2, 3), dict(dilation=(3, 2), padding=(0, 4))),
    (1, 16, 32, 32, 1, (5, 5), dict(padding=2)),            # channel planes 4 KiB apart
    (3, 5, 7, 6, 1, (7, 7), dict(padding=3, stride=3)),
    (1, 24, 40, 8, 1, (1, 1), dict(stride=(3, 1))),         # rows no tap reads
    (1, 20, 15, 17, 1, (3, 3), dict(stride=2, dilation=2, padding=2)),  # one phase of two
    (1, 16, 6, 9, 1, (1, 1), dict(stride=(1, 2))),          # the same, rows flattened
    (1, 16, 23, 19, 1, (2, 2), dict(stride=(4, 3), dilation=(3, 2), padding=(1, 2))),  # listed
]


@pytest.mark.parametrize("geometry", DEPTHWISE_GEOMETRIES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_depthwise_orientations_round_alike(geometry, dtype, threads, isa):
    """Depthwise with the columns or the channels along the lanes: each output sums the
    same products in the same order from the bias, so bitwise the same result (and both
    match the reference)."""
    N, C_in, H, W, m, kernel, kw = geometry
    x, w, b = random_arrays(6, (N, C_in, H, W), (C_in * m, 1, *kernel), True, dtype)
    cconv.set_num_threads(threads)
    with _isa.forced(isa):
        rows = cconv.conv2d(x, w, b, groups=C_in, algorithm="depthwise", **kw)
        channels = cconv.conv2d(x, w, b, groups=C_in, algorithm="depthwise_cl", **kw)
    check_conv2d(channels, x, w, b, groups=C_in, **kw)
    np.testing.assert_array_equal(rows, channels)


def test_depthwise_orientation_follows_the_width():
    """The planner's rule: channels along the lanes for narrow images with a vector of
    channels or more, columns along the lanes for wide ones or few channels."""
    def algorithm(x_shape, groups):
        return _planner.plan_for_conv2d(x_shape, (x_shape[1], 1, 3, 3), padding=1,
                                        groups=groups).algorithm
    assert algorithm((1, 384, 14, 14), 384) == "depthwise_cl"
    assert algorithm((1, 960, 7, 7), 960) == "depthwise_cl"
    assert algorithm((1, 32, 112, 112), 32) == "depthwise"
    assert algorithm((1, 2, 14, 14), 2) == "depthwise"


@pytest.mark.parametrize("layer", [layer for layer in _layers.LAYERS
                                   if layer.flops < 300e6], ids=lambda layer: layer.name)
def test_module_equals_functional_bitwise(layer):
    """A module (packed weights) and a functional call (raw weights, maybe another
    orientation) give the same bits on the benchmark layers."""
    x, w, b = random_arrays(5, layer.input_shape, layer.weight_shape, True, np.float32,
                            channels=layer.C_out)
    args, kwargs = layer.module_args()
    if layer.transposed:
        module, functional = cconv.ConvTranspose2d(*args, **kwargs), cconv.conv_transpose2d
    else:
        module, functional = cconv.Conv2d(*args, **kwargs), cconv.conv2d
    module.load_state_dict({"weight": w, "bias": b})
    np.testing.assert_array_equal(module(x), functional(x, w, b, **layer.conv_kwargs()))


def test_repeated_functional_calls_run_the_plan_of_their_own_setting(monkeypatch):
    """A functional call remembers its geometry and plan per dtype, algorithm, variant and
    thread count: repeating the shapes under another setting runs that setting's plan, and an
    algorithm that does not fit is refused however often the shapes were planned."""
    ran = []
    execute = _engine.execute
    monkeypatch.setattr(_engine, "execute", lambda bound, *args, **kwargs: (
        ran.append(bound.plan), execute(bound, *args, **kwargs))[1])
    x, w, b = random_arrays(6, (1, 16, 24, 24), (16, 16, 3, 3), True, np.float64)
    for _ in range(2):
        for threads in (1, 2):
            cconv.set_num_threads(threads)
            for isa in _isa.SUPPORTED:
                for algorithm in (None, "igemm", "igemm_cl"):
                    for dtype in (np.float32, np.float64):
                        with _isa.forced(isa):
                            y = cconv.conv2d(x.astype(dtype), w.astype(dtype),
                                             b.astype(dtype), padding=1, algorithm=algorithm)
                        plan = ran.pop()
                        assert (plan.isa, plan.dtype, plan.threads) == (
                            _isa.NAMES.index(isa), np.dtype(dtype), threads)
                        assert algorithm in (None, plan.algorithm)
                        check_conv2d(y, x, w, b, dtype=dtype, padding=1)
            with pytest.raises(ValueError, match="algorithm='depthwise'"):
                cconv.conv2d(x, w, b, padding=1, algorithm="depthwise")


@pytest.mark.parametrize("transposed", [False, True], ids=["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("algorithm", ["igemm", "igemm_cl"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_packs_first_from_the_threshold(transposed, algorithm, dtype, isa):
    """A functional call packs its weights first (the module's path) when each is used
    PACK_FIRST_USES times or more, or (a transposed convolution) several stride phases share
    them; else it reads them raw. Both sides of the threshold match the reference, and a
    module bitwise."""
    side = int(np.sqrt(_planner.PACK_FIRST_USES))          # 32: 1024 pixels
    c = 6
    cases = [(side - 1, 1, False), (side, 1, True)] + ([(side - 1, 2, True)] if transposed
                                                         else [])
    for size, stride, first in cases:
        w_shape = (c, c, 3, 3)
        x, w, b = random_arrays(7, (1, c, size, size), w_shape, True, dtype, channels=c)
        kw = (dict(stride=stride, padding=1, output_padding=stride - 1) if transposed
              else dict(padding=1))
        op = cconv.conv_transpose2d if transposed else cconv.conv2d
        params = (_params.conv_transpose2d_geometry("t", x.shape, w.shape, stride, 1,
                                                    stride - 1, 1, 1)
                  if transposed else
                  _params.conv2d_geometry("t", x.shape, w.shape, 1, 1, 1, 1))
        assert _planner.pack_first(params) == first
        with _isa.forced(isa):
            y = op(x, w, b, algorithm=algorithm, **kw)
            (check_conv_transpose2d if transposed else check_conv2d)(y, x, w, b, **kw)
            # The module's path: the same plan, with the weights packed beforehand.
            plan = _planner.plan(params, dtype, algorithm)
            packed = _engine.prepare_weight(_engine.bind(plan, params), w)
            expected = np.empty(params.output_shape, dtype)
            _engine.execute(_engine.bind(plan, params), x, packed, b, expected)
            np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("kw", [dict(stride=1, padding=4), dict(stride=2, padding=3),
                                dict(stride=3, padding=1, dilation=2)])
@pytest.mark.parametrize("algorithm", ["igemm", "igemm_cl"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_wide_kernels_pack_alike_raw_and_first(kw, algorithm, dtype, isa):
    """A transposed convolution's weights are packed a channel's taps at a time (every stride
    phase from one read), in tiles of at most 64 taps: a 9x9 kernel needs two. Raw (each
    item packs its panels), packed first and a module's packed weights give the reference,
    bitwise alike; 40 output channels leave a part panel."""
    x, w, b = random_arrays(8, (1, 12, 6, 5), (12, 40, 9, 9), True, dtype, channels=40)
    params = _params.conv_transpose2d_geometry("t", x.shape, w.shape, kw["stride"],
                                               kw["padding"], 0, 1, kw.get("dilation", 1))
    with _isa.forced(isa):
        raw = cconv.conv_transpose2d(x, w, b, algorithm=algorithm, **kw)
        check_conv_transpose2d(raw, x, w, b, **kw)
        plan = _planner.plan(params, dtype, algorithm)
        first = np.empty(params.output_shape, dtype)
        bound = _engine.bind(plan, params)
        _engine.execute(bound, x, w, b, first, packed=False, pack_first=True)
        module = np.empty(params.output_shape, dtype)
        _engine.execute(bound, x, _engine.prepare_weight(bound, w), b, module)
    np.testing.assert_array_equal(raw, module)
    np.testing.assert_array_equal(first, module)


def _plans(layer, threads):
    cconv.set_num_threads(threads)
    fn = "conv_transpose2d" if layer.transposed else "conv2d"
    kw = layer.conv_kwargs()
    if layer.transposed:
        params = _params.conv_transpose2d_geometry(
            fn, layer.input_shape, layer.weight_shape, kw["stride"], kw["padding"],
            kw["output_padding"], kw["groups"], kw["dilation"])
    else:
        params = _params.conv2d_geometry(fn, layer.input_shape, layer.weight_shape,
                                         kw["stride"], kw["padding"], kw["dilation"],
                                         kw["groups"])
    return [_planner.plan(params, np.float32, prepacked=prepacked)
            for prepacked in (True, False)]


@pytest.mark.parametrize("threads", [1, 2, 4])
@pytest.mark.parametrize("layer", [layer for layer in _layers.LAYERS if layer.C_in >= 16],
                         ids=lambda layer: layer.name)
def test_workspace_is_bounded(layer, threads):
    """Extra memory per call, beyond input, output and packed weights: at most 1 MiB a
    thread on every benchmark layer with 16 input channels or more, module or functional."""
    for plan in _plans(layer, threads):
        assert plan.workspace_bytes <= plan.threads * (1 << 20), plan
        assert plan.threads <= threads


def test_workspace_does_not_grow_with_the_image():
    """The band buffer holds a few rows: a much larger image needs no more workspace per
    thread."""
    small = _planner.plan_for_conv2d((1, 64, 64, 64), (64, 64, 3, 3), padding=1)
    large = _planner.plan_for_conv2d((1, 64, 1024, 1024), (64, 64, 3, 3), padding=1)
    assert large.workspace_bytes / large.threads <= 2 * small.workspace_bytes / small.threads
    assert large.workspace_bytes / large.threads <= 1 << 20


@pytest.mark.parametrize("threads", [1, 2])
def test_subnormals_are_flushed_inside_the_kernels_only(threads, isa):
    """Inside a call subnormals count as zero (no slow microcode path); the caller's
    floating-point mode is restored afterwards."""
    cconv.set_num_threads(threads)
    tiny = np.float32(1e-39)                      # subnormal in float32
    x = np.full((1, 4, 40, 40), tiny, np.float32)
    w = np.ones((8, 4, 3, 3), np.float32)
    with _isa.forced(isa):
        y = cconv.conv2d(x, w, padding=1)
    assert not y.any()
    assert np.float32(tiny) * np.float32(1.0) == tiny   # this thread's mode is back


@pytest.mark.parametrize("size", [2, 4, 5, 16], ids=lambda s: f"{s}x{s}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_inputs_at_any_alignment(size, dtype, threads, isa):
    """A 1x1 layer reads its input in place, with tiles shifted to the input's alignment
    (bands shorter than two tiles are not shifted): every starting address gives the
    same bits, equal to the reference."""
    cconv.set_num_threads(threads)
    x, w, b = random_arrays(6, (1, 24, size, size), (40, 24, 1, 1), True, dtype)
    with _isa.forced(isa):
        expected = cconv.conv2d(x, w, b, algorithm="igemm")
        check_conv2d(expected, x, w, b)
        for offset in range(16):
            raw = np.empty(x.size + 16, dtype)
            shifted = raw[offset:offset + x.size].reshape(x.shape)
            shifted[...] = x
            np.testing.assert_array_equal(cconv.conv2d(shifted, w, b, algorithm="igemm"),
                                          expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_empty_starts_on_a_cache_line(dtype):
    """Packed weights start on a 64-byte line, whatever address numpy's allocation got."""
    for n in (1, 7, 100, 4096, 100_000):
        arrays = [_engine.aligned_empty(n, dtype) for _ in range(8)]
        for a in arrays:
            assert a.shape == (n,) and a.dtype == dtype
            assert a.ctypes.data % 64 == 0


@pytest.mark.parametrize("algorithm", _planner.ALGORITHMS)
def test_kernels_refuse_arrays_they_were_not_prepared_for(algorithm):
    """The kernels take their arrays' buffers directly: an array of another shape, dtype or
    layout, or a read-only output, is an error before any element is touched."""
    depthwise = algorithm.startswith("depthwise")
    groups = 4 if depthwise else 1
    x, w, b = random_arrays(7, (1, 4, 6, 6), (4, 4 // groups, 3, 3), True, np.float32)
    params = _params.conv2d_geometry("conv2d", x.shape, w.shape, 1, 1, 1, groups)
    bound = _engine.bind(_planner.plan(params, np.float32, algorithm), params)
    packed = _engine.prepare_weight(bound, w)
    out = np.zeros(params.output_shape, np.float32)
    _engine.execute(bound, x, packed, b, out)
    check_conv2d(out, x, w, b, padding=1, groups=groups)
    bad = {
        "x": [x[:, :3], x.astype(np.float64), np.asfortranarray(x), x.astype(np.int32)],
        "bias": [b[:3], b.astype(np.float64)],
        "out": [out[:, :3], out.astype(np.float64), np.asfortranarray(out), out.copy()],
    }
    bad["out"][-1].flags.writeable = False
    for name, values in bad.items():
        for value in values:
            args = dict(x=x, bias=b, out=out.copy())
            args[name] = value
            with pytest.raises((TypeError, ValueError, BufferError)):
                _engine.execute(bound, args["x"], packed, args["bias"], args["out"])
    with pytest.raises((TypeError, ValueError)):
        _engine.execute(bound, x, packed[:-1], b, out)
    if not depthwise:
        with pytest.raises(ValueError, match="pack_first"):
            bound.kernel.run(x, packed, True, b, out, 1, True)

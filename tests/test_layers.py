"""cconv.nn's numpy layers against torch.nn: BatchNorm2d, Linear, Upsample, PixelShuffle,
ChannelShuffle and their functional forms (batch_norm, linear, interpolate, pixel_shuffle,
channel_shuffle) give torch's outputs on float32 and float64, batch 0, 1 and several (and
unbatched where torch allows), load torch's state_dict strictly, print torch's repr and refuse
what torch refuses in its words. The parts without torch run without it."""
import re

import numpy as np
import pytest

import cconv
from cconv import nn
from cconv.nn import functional as F  # noqa: N812 (torch's spelling)

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
# Elementwise results: a few ulps of the dtype (torch may contract into an FMA where numpy
# rounds twice).
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def rand(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def close(ours, theirs, dtype, atol=None):
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    assert ours.dtype == np.dtype(dtype)
    tol = dict(TOL[dtype])
    if atol is not None:
        tol["atol"] = atol
    np.testing.assert_allclose(ours, theirs, **tol)


# bilinear on float32: the source coordinate is rounded once, as torch's FMA-compiled kernel
# does; on a CPU whose torch kernel rounds twice, the weights move by an ulp of the coordinate
# (an output error of about that times the neighbours' difference).
BILINEAR_ATOL = {np.float32: 5e-5, np.float64: 1e-12}


def torch_error(call):
    """The message torch raises for `call`."""
    with pytest.raises(Exception) as info:
        call()
    return str(info.value)


def same_error(ours, theirs, kind=(ValueError, TypeError, NotImplementedError)):
    """cconv raises `kind` with torch's message (torch's first line, the whole of ours)."""
    expected = torch_error(theirs).split("\n")[0]
    with pytest.raises(kind, match=re.escape(expected)):
        ours()


# ---- BatchNorm2d ----------------------------------------------------------------------------


def torch_bn(dtype, affine=True, track=True, seed=1, **kw):
    m = torch.nn.BatchNorm2d(5, affine=affine, track_running_stats=track, dtype=TORCH_DTYPE[dtype],
                             **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if affine:
            m.weight.copy_(torch.rand(5, generator=g) + 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(5, generator=g))
        if track:
            m.running_mean.copy_(torch.randn(5, generator=g))
            m.running_var.copy_(torch.rand(5, generator=g) + 0.1)
            m.num_batches_tracked.fill_(7)
    return m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
@pytest.mark.parametrize("batch", [0, 1, 3])
def test_batchnorm2d_eval_matches_torch(dtype, affine, track, batch):
    theirs = torch_bn(dtype, affine, track).eval()
    ours = nn.BatchNorm2d(5, affine=affine, track_running_stats=track, dtype=dtype).eval()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours.load_state_dict(theirs.state_dict(), strict=True)) == \
        "<All keys matched successfully>"
    assert repr(ours) == repr(theirs)
    x = rand((batch, 5, 4, 6), dtype)
    close(ours(x), theirs(torch.from_numpy(x)), dtype)
    if track:
        assert ours.num_batches_tracked.dtype == np.int64
        assert int(ours.num_batches_tracked) == 7


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm2d_training_matches_torch(dtype, momentum):
    """As torch in training mode: the batch's statistics, and the running ones updated."""
    theirs = torch_bn(dtype, momentum=momentum)
    ours = nn.BatchNorm2d(5, momentum=momentum, dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    assert ours.training
    for seed in range(2):
        x = rand((3, 5, 4, 6), dtype, seed)
        close(ours(x), theirs(torch.from_numpy(x)), dtype)
    for name, arr in ours.state_dict().items():
        np.testing.assert_allclose(arr, theirs.state_dict()[name].numpy(), **TOL[dtype])
    assert int(ours.num_batches_tracked) == 9


def test_batchnorm2d_bias_false_and_parameters():
    theirs = torch.nn.BatchNorm2d(4, bias=False)
    ours = nn.BatchNorm2d(4, bias=False)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == ["weight"]
    assert [n for n, _ in ours.named_buffers()] == ["running_mean", "running_var",
                                                    "num_batches_tracked"]
    ours.load_state_dict(theirs.state_dict())
    x = rand((2, 4, 3, 3), np.float32)
    close(ours.eval()(x), theirs.eval()(torch.from_numpy(x)), np.float32)
    for kw in [dict(eps=1e-3, momentum=0.3), dict(affine=False, track_running_stats=False)]:
        assert repr(nn.BatchNorm2d(7, **kw)) == repr(torch.nn.BatchNorm2d(7, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (2, 5, 7), (2, 5, 3, 4)])
@pytest.mark.parametrize("training", [False, True])
def test_batch_norm_functional(dtype, shape, training):
    g = np.random.default_rng(3)
    mean, var = g.standard_normal(5).astype(dtype), (g.random(5) + 0.1).astype(dtype)
    weight, bias = (g.random(5) + 0.5).astype(dtype), g.standard_normal(5).astype(dtype)
    x = rand(shape, dtype)
    t_mean, t_var = torch.from_numpy(mean.copy()), torch.from_numpy(var.copy())
    expected = TF.batch_norm(torch.from_numpy(x), t_mean, t_var, torch.from_numpy(weight),
                             torch.from_numpy(bias), training, 0.2, 1e-3)
    close(F.batch_norm(x, mean, var, weight, bias, training, 0.2, 1e-3), expected, dtype)
    # Updated in place in training mode, as torch's tensors are.
    np.testing.assert_allclose(mean, t_mean.numpy(), **TOL[dtype])
    np.testing.assert_allclose(var, t_var.numpy(), **TOL[dtype])
    close(F.batch_norm(x, mean, var), TF.batch_norm(torch.from_numpy(x), t_mean, t_var), dtype)


def test_batchnorm2d_errors():
    bn, tbn = nn.BatchNorm2d(3).eval(), torch.nn.BatchNorm2d(3).eval()
    same_error(lambda: bn(np.zeros((2, 4, 5, 5), np.float32)),
               lambda: tbn(torch.zeros(2, 4, 5, 5)))
    same_error(lambda: bn(np.zeros((4, 3), np.float32)), lambda: tbn(torch.zeros(4, 3)))
    # torch prints the shape as a torch.Size, cconv as a tuple.
    assert torch_error(lambda: torch.nn.BatchNorm2d(3)(torch.zeros(1, 3, 1, 1))).startswith(
        "Expected more than 1 value per channel when training, got input size")
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when "
                       r"training, got input size \(1, 3, 1, 1\)"):
        nn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1), np.float32))
    same_error(lambda: F.batch_norm(np.zeros((2, 3, 4, 4)), None, None),
               lambda: TF.batch_norm(torch.zeros(2, 3, 4, 4), None, None))
    with pytest.raises(TypeError, match="floating-point array, got dtype int64"):
        bn(np.zeros((1, 3, 2, 2), np.int64))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.BatchNorm2d(3, dtype=np.float16)
    with pytest.raises(TypeError, match="input has dtype float64 but weight has dtype float32"):
        F.batch_norm(np.zeros((2, 3)), np.zeros(3), np.ones(3), np.ones(3, np.float32))
    with pytest.raises(ValueError, match="running_mean must be writeable"):
        F.batch_norm(np.zeros((2, 3), np.float32), bn.running_mean, bn.running_var,
                     training=True)
    with pytest.raises(ValueError, match="num_features must be a non-negative int"):
        nn.BatchNorm2d(2.5)


def test_batchnorm2d_casts_input_to_its_dtype():
    bn = nn.BatchNorm2d(3, dtype=np.float64).eval()
    assert bn(np.ones((1, 3, 2, 2), np.float32)).dtype == np.float64


# ---- Linear ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7,), (0, 7), (1, 7), (3, 7), (2, 3, 7)])
def test_linear_matches_torch(dtype, bias, shape):
    theirs = torch.nn.Linear(7, 4, bias=bias, dtype=TORCH_DTYPE[dtype])
    ours = nn.Linear(7, 4, bias=bias, dtype=dtype, rng=0)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = rand(shape, dtype)
    close(ours(x), theirs(torch.from_numpy(x)), dtype)
    w, b = theirs.weight.detach().numpy(), None if not bias else theirs.bias.detach().numpy()
    close(F.linear(x, w, b), TF.linear(torch.from_numpy(x), theirs.weight, theirs.bias), dtype)


def test_linear_runs_on_cconvs_threads_and_follows_new_weights():
    """Linear is cconv's 1x1 GEMM: bitwise the same for any thread count, equal to the
    functional form, and a replaced weight or bias takes effect at the next call."""
    m = nn.Linear(96, 300, rng=2)
    x = rand((8, 96), np.float32)
    outs = []
    for threads in (1, 2, 3):
        cconv.set_num_threads(threads)
        outs.append(m(x))
    cconv.set_num_threads(None)
    assert all(np.array_equal(outs[0], o) for o in outs)
    assert np.array_equal(F.linear(x, m.weight, m.bias), outs[0])
    np.testing.assert_allclose(outs[0], x @ m.weight.T + m.bias, rtol=1e-5, atol=1e-5)
    m.weight = np.zeros((300, 96), np.float32)
    assert np.array_equal(m(x), np.broadcast_to(m.bias, (8, 300)))
    m.bias = None
    assert not m(x).any()


def test_linear_init_is_torchs_bound():
    m = nn.Linear(16, 300, rng=1)
    for arr in (m.weight, m.bias):
        assert np.abs(arr).max() <= 0.25 and np.abs(arr).max() > 0.2
    assert np.array_equal(nn.Linear(16, 3, rng=5).weight, nn.Linear(16, 3, rng=5).weight)
    assert nn.Linear(0, 3).weight.shape == (3, 0)


def test_linear_errors():
    m, tm = nn.Linear(3, 4), torch.nn.Linear(3, 4)
    same_error(lambda: m(np.zeros((2, 5), np.float32)), lambda: tm(torch.zeros(2, 5)))
    same_error(lambda: m(np.zeros(5, np.float32)), lambda: tm(torch.zeros(5)))
    with pytest.raises(TypeError, match="input has dtype float64 but weight has dtype float32"):
        F.linear(np.zeros((2, 3)), m.weight)
    with pytest.raises(TypeError, match="floating-point array, got dtype int64"):
        m(np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        nn.Linear(3, 4, dtype=np.int32)
    with pytest.raises(ValueError, match="in_features must be a non-negative int"):
        nn.Linear(-1, 4)
    with pytest.raises(ValueError, match=r"expected bias of shape \(4,\)"):
        F.linear(np.zeros((2, 3), np.float32), m.weight, np.zeros(3, np.float32))


# ---- interpolate / Upsample -----------------------------------------------------------------

SIZES = [dict(scale_factor=2), dict(scale_factor=3), dict(scale_factor=1.5),
         dict(scale_factor=0.7), dict(scale_factor=(2.3, 0.5)), dict(scale_factor=1.0),
         dict(scale_factor=1.999), dict(size=(9, 4)), dict(size=7), dict(size=(5, 11)),
         dict(size=(1, 1)), dict(scale_factor=2.5, recompute_scale_factor=True),
         dict(scale_factor=1 / 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bilinear-corners"])
@pytest.mark.parametrize("kw", SIZES, ids=[str(k) for k in SIZES])
@pytest.mark.parametrize("batch", [0, 1, 3])
def test_interpolate_matches_torch(dtype, mode, kw, batch):
    extra = {}
    if mode == "bilinear-corners":
        mode, extra = "bilinear", dict(align_corners=True)
    x = rand((batch, 2, 5, 7), dtype)
    expected = TF.interpolate(torch.from_numpy(x), mode=mode, **kw, **extra)
    got = F.interpolate(x, mode=mode, **kw, **extra)
    atol = BILINEAR_ATOL[dtype] if mode == "bilinear" else None
    close(got, expected, dtype, atol)
    if mode == "nearest":     # a gather: exactly torch's elements
        assert np.array_equal(got, expected.numpy())
    if "recompute_scale_factor" not in kw:
        layer = nn.Upsample(mode=mode, **kw, **extra)
        tlayer = torch.nn.Upsample(mode=mode, **kw, **extra)
        assert repr(layer) == repr(tlayer)
        close(layer(x), tlayer(torch.from_numpy(x)), dtype, atol)


@pytest.mark.parametrize("size", [3, 4, 6, 10, 17, 31, 100])
@pytest.mark.parametrize("scale", [0.3, 1.1, 1.25, 1.7, 2.2, 3.3, 4.01])
def test_interpolate_non_integer_scales_index_as_torch(size, scale):
    """The source index uses 1 / scale_factor in float32 (nearest) or the input's dtype
    (bilinear), not size ratios: off-by-one pixels show where they differ."""
    if int(size * scale) == 0:
        pytest.skip("no output pixel: refused (tested in test_interpolate_errors)")
    x = rand((1, 1, size, size + 1), np.float32)
    for mode in ("nearest", "bilinear"):
        expected = TF.interpolate(torch.from_numpy(x), scale_factor=scale, mode=mode)
        got = F.interpolate(x, scale_factor=scale, mode=mode)
        close(got, expected, np.float32, BILINEAR_ATOL[np.float32])
        if mode == "nearest":
            assert np.array_equal(got, expected.numpy())


def test_upsample_reprs():
    for kw in [dict(scale_factor=2), dict(size=(3, 4), mode="bilinear"), dict(size=5),
               dict(scale_factor=(2.0, 3.0)), dict(scale_factor=0),
               dict(scale_factor=1.5, mode="bilinear", align_corners=True)]:
        assert repr(nn.Upsample(**kw)) == repr(torch.nn.Upsample(**kw))


def test_interpolate_errors():
    x, tx = np.zeros((1, 1, 4, 4), np.float32), torch.zeros(1, 1, 4, 4)
    cases = [dict(), dict(size=3, scale_factor=2), dict(size=(3, 4, 5)),
             dict(scale_factor=(1, 2, 3)), dict(scale_factor=2, align_corners=True),
             dict(size=3, recompute_scale_factor=True), dict(size=0), dict(scale_factor=0.1),
             dict(scale_factor=2, mode="bicubx"),
             dict(scale_factor=2, mode="nearest", antialias=True)]
    for kw in cases:
        same_error(lambda kw=kw: F.interpolate(x, **kw), lambda kw=kw: TF.interpolate(tx, **kw))
    same_error(lambda: F.interpolate(np.zeros((4, 4)), scale_factor=2),
               lambda: TF.interpolate(torch.zeros(4, 4), scale_factor=2))
    same_error(lambda: F.interpolate(np.zeros((1, 1, 4)), size=3, mode="bilinear"),
               lambda: TF.interpolate(torch.zeros(1, 1, 4), size=3, mode="bilinear"))
    for kw in [dict(mode="bicubic"), dict(mode="area"), dict(mode="bilinear", antialias=True)]:
        with pytest.raises(NotImplementedError, match="cconv implements|cconv does not"):
            F.interpolate(x, scale_factor=2, **kw)
    with pytest.raises(NotImplementedError, match="4-D input"):
        F.interpolate(np.zeros((1, 1, 4)), scale_factor=2)
    with pytest.raises(TypeError, match="dtype float32 or float64, got int64"):
        F.interpolate(np.zeros((1, 1, 2, 2), np.int64), scale_factor=2)
    with pytest.raises(NotImplementedError, match="cconv implements"):
        nn.Upsample(scale_factor=2, mode="bicubic")(x)


# ---- PixelShuffle / ChannelShuffle ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 18, 3, 4), (1, 18, 3, 4), (3, 18, 3, 4), (18, 3, 4),
                                   (2, 2, 9, 2, 5)])
@pytest.mark.parametrize("r", [1, 3])
def test_pixel_shuffle_matches_torch(dtype, shape, r):
    x = rand(shape, dtype)
    expected = TF.pixel_shuffle(torch.from_numpy(x), r).numpy()
    assert np.array_equal(F.pixel_shuffle(x, r), expected)
    layer, tlayer = nn.PixelShuffle(r), torch.nn.PixelShuffle(r)
    assert repr(layer) == repr(tlayer)
    assert np.array_equal(layer(x), tlayer(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 6, 3, 4), (1, 6, 3, 4), (3, 6, 3, 4), (2, 6, 5)])
@pytest.mark.parametrize("groups", [1, 2, 3, 6])
def test_channel_shuffle_matches_torch(dtype, shape, groups):
    x = rand(shape, dtype)
    expected = TF.channel_shuffle(torch.from_numpy(x), groups).numpy()
    assert np.array_equal(F.channel_shuffle(x, groups), expected)
    layer, tlayer = nn.ChannelShuffle(groups), torch.nn.ChannelShuffle(groups)
    assert repr(layer) == repr(tlayer)
    assert np.array_equal(layer(x), tlayer(torch.from_numpy(x)).numpy())


def test_shuffle_errors():
    for ours, theirs in [
            (lambda: F.pixel_shuffle(np.zeros((1, 3, 4, 4)), 2),
             lambda: TF.pixel_shuffle(torch.zeros(1, 3, 4, 4), 2)),
            (lambda: F.pixel_shuffle(np.zeros((3, 4)), 2),
             lambda: TF.pixel_shuffle(torch.zeros(3, 4), 2)),
            (lambda: F.pixel_shuffle(np.zeros((1, 4, 2, 2)), 0),
             lambda: TF.pixel_shuffle(torch.zeros(1, 4, 2, 2), 0)),
            (lambda: F.channel_shuffle(np.zeros((1, 3, 4, 4)), 2),
             lambda: TF.channel_shuffle(torch.zeros(1, 3, 4, 4), 2)),
            (lambda: F.channel_shuffle(np.zeros(3), 2),
             lambda: TF.channel_shuffle(torch.zeros(3), 2)),
            (lambda: F.channel_shuffle(np.zeros((1, 4, 2, 2)), 0),
             lambda: TF.channel_shuffle(torch.zeros(1, 4, 2, 2), 0))]:
        same_error(ours, theirs)
    with pytest.raises(TypeError, match="dtype float32 or float64, got int64"):
        F.channel_shuffle(np.zeros((1, 4, 2, 2), np.int64), 2)


def test_layers_in_a_model_load_torchs_state_dict():
    def model(lib, **kw):
        return lib.Sequential(lib.Conv2d(3, 8, 3, padding=1, **kw), lib.BatchNorm2d(8),
                              lib.ChannelShuffle(2), lib.Upsample(scale_factor=2),
                              lib.PixelShuffle(2), lib.Flatten(), lib.Linear(2 * 16 * 16, 5))

    theirs, ours = model(torch.nn).eval(), model(nn).eval()
    torch_bn_state = torch_bn(np.float32).state_dict()
    theirs[1].load_state_dict({k: v.repeat(2)[:8] if v.ndim else v
                               for k, v in torch_bn_state.items()})
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert repr(ours) == repr(theirs)
    x = rand((2, 3, 4, 4), np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


# ---- layouts and bad arguments --------------------------------------------------------------


def layouts(x):
    """x as a Fortran-ordered, a read-only, a negatively strided and a byte-swapped array."""
    readonly = x.copy()
    readonly.flags.writeable = False
    flipped = x[..., ::-1].copy()[..., ::-1]
    return [np.asfortranarray(x), readonly, flipped, x.astype(x.dtype.newbyteorder())]


@pytest.mark.parametrize("dtype", DTYPES)
def test_any_layout_gives_the_same_result(dtype):
    x = rand((2, 4, 5, 6), dtype)
    g = np.random.default_rng(2)
    mean, var = g.standard_normal(4).astype(dtype), (g.random(4) + 0.5).astype(dtype)
    calls = [lambda a: F.batch_norm(a, mean, var), lambda a: nn.BatchNorm2d(4, dtype=dtype)(a),
             lambda a: nn.Linear(6, 3, dtype=dtype, rng=0)(a),
             lambda a: F.interpolate(a, scale_factor=1.5),
             lambda a: F.interpolate(a, size=(7, 3), mode="bilinear"),
             lambda a: F.pixel_shuffle(a, 2), lambda a: F.channel_shuffle(a, 2)]
    for call in calls:
        expected = call(x)
        for a in layouts(x):
            got = call(a)
            assert got.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got, expected)


def test_bad_argument_types_are_named():
    x = np.zeros((1, 4, 2, 2), np.float32)
    with pytest.raises(TypeError, match="upscale_factor must be an int, got float 1.5"):
        F.pixel_shuffle(x, 1.5)
    with pytest.raises(TypeError, match="groups must be an int, got str"):
        F.channel_shuffle(x, "2")
    with pytest.raises(TypeError, match="size must be an int, got float 2.5"):
        F.interpolate(x, size=2.5)
    with pytest.raises(TypeError, match="scale_factor must be a number"):
        F.interpolate(x, scale_factor="2")
    with pytest.raises(TypeError, match="must be an array"):
        F.linear(None, np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="scale_factor must be finite, got inf"):
        F.interpolate(x, scale_factor=float("inf"))
    with pytest.raises(MemoryError, match="more than this platform can address"):
        F.interpolate(x, size=(2**40, 2**40))

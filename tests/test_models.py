"""cconv.models against torch: each network, written again in plain torch.nn with
torchvision's module names (cconv.bench.torch_models; torchvision itself is not a
dependency), carries random weights
and random batch-norm statistics; cconv's model loads its state_dict strictly and gives
torch's outputs (float32 within rounding, float64 to ~1e-10), has its keys in its order, its
repr and its load errors. A torch.save file runs in a Python where torch cannot be imported,
and a pickled model computes the same bits. The torch parts skip without torch."""
import functools
import importlib
import pickle

import numpy as np
import pytest
from conftest import run_python
from test_nn import numpy_shapes

from cconv import models, nn


def torch_models():
    """The torch references (cconv.bench.torch_models), imported on first use so that the
    torch-free tests run without torch."""
    return importlib.import_module("cconv.bench.torch_models")


# (builder, its arguments, input shape (C, H, W)): small inputs keep the suite quick.
CASES = {
    "resnet18": ({"num_classes": 10}, (3, 64, 64)),
    "resnet50": ({"num_classes": 10}, (3, 64, 64)),
    "mobilenet_v2": ({"num_classes": 10}, (3, 64, 64)),
    "mobilenet_v2_w0.5": ({"num_classes": 10, "width_mult": 0.5}, (3, 48, 48)),
    "unet": ({"in_channels": 3, "out_channels": 2, "base": 8, "depth": 4}, (3, 64, 64)),
    "unet_odd": ({"in_channels": 1, "out_channels": 1, "base": 4, "depth": 3}, (1, 37, 45)),
}


# The largest float32 error relative to the output's scale. Rounding errors grow with the
# depth: in ResNet-50, torch's own float32 result is 4.5e-5 from its float64 one.
TOLERANCE = {"resnet50": 4e-4}


def builder(case):
    return case.split("_w")[0].removesuffix("_odd")


@functools.cache
def reference(torch, case, double=False):
    """(torch model, its state_dict as numpy arrays) of a CASES entry, randomised."""
    kwargs, shape = CASES[case]
    torch.manual_seed(0)
    model = getattr(torch_models(), builder(case))(**kwargs)
    if double:
        model = model.double()
    calibration = torch.randn((4, *shape), dtype=torch.float64 if double else torch.float32)
    torch_models().randomised(model, 1, calibration)
    return model, {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.fixture(autouse=True, scope="module")
def _free_references():
    """The references (ResNet-50's weights twice, torch's and numpy's) go with this module."""
    yield
    reference.cache_clear()


def cconv_model(case, state, dtype=np.float32):
    kwargs, _ = CASES[case]
    model = getattr(models, builder(case))(**kwargs, dtype=dtype)
    model.load_state_dict(state, strict=True)
    return model


def images(shape, batch, dtype=np.float32, seed=2):
    return np.random.default_rng(seed).standard_normal((batch, *shape)).astype(dtype)


def relative_error(y, ref):
    """max |y - ref| over max |ref|: the error relative to the output's scale."""
    return float(np.abs(y.astype(np.float64) - ref).max() / np.abs(ref).max())


# ---- outputs ------------------------------------------------------------------------------


def assert_fused(fused):
    """Every BatchNorm2d of a cconv.models network was folded into a convolution, and every
    activation layer is fused or stands only where a residual sum comes before it."""
    kinds = [type(m).__name__ for m in fused.modules()]
    assert "BatchNorm2d" not in kinds
    assert "ReLU6" not in kinds
    assert any(getattr(m, "epilogue", None) is not None and m.epilogue.activation
               for m in fused.modules())


@pytest.mark.parametrize("fused", [False, True], ids=["as-loaded", "fused"])
@pytest.mark.parametrize("case", list(CASES))
def test_outputs_match_torch(torch, case, fused):
    ref, state = reference(torch, case)
    model = cconv_model(case, state)
    shape = CASES[case][1]
    if fused:
        model = nn.fuse(model, images(shape, 1, seed=5))
        assert_fused(model)
    for batch in (1, 4):
        x = images(shape, batch)
        with torch.no_grad():
            want = ref(torch.from_numpy(x)).double().numpy()
        got = model(x)
        assert got.dtype == np.float32 and got.shape == want.shape
        # The test means something only if the output depends on the image.
        if batch > 1:
            assert np.abs(want[0] - want[1]).max() > 0.05 * np.abs(want).max()
        error = relative_error(got, want)
        assert error < TOLERANCE.get(case, 1e-4), (case, batch, error)


@pytest.mark.parametrize("fused", [False, True], ids=["as-loaded", "fused"])
@pytest.mark.parametrize("case", ["resnet18", "unet"])
def test_float64_matches_torch_tightly(torch, case, fused):
    # (Not mobilenet_v2: torch's float64 depthwise convolution takes seconds.)
    ref, state = reference(torch, case, double=True)
    model = cconv_model(case, state, np.float64)
    if fused:
        # No example: fuse makes its own 224 x 224 one.
        model = nn.fuse(model)
        assert_fused(model)
    x = images(CASES[case][1], 2, np.float64)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy()
    got = model(x)
    assert got.dtype == np.float64
    assert relative_error(got, want) < 1e-10


def test_a_224_image_through_mobilenet_v2(torch):
    """The size the network was made for, once (the others are small to keep tests quick)."""
    ref, state = reference(torch, "mobilenet_v2")
    x = images((3, 224, 224), 1)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).double().numpy()
    assert relative_error(cconv_model("mobilenet_v2", state)(x), want) < 1e-4


# ---- keys, repr, loading ------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_keys_shapes_and_repr_are_the_references(torch, case):
    kwargs, _ = CASES[case]
    torch.manual_seed(0)
    ref = getattr(torch_models(), builder(case))(**kwargs)
    model = getattr(models, builder(case))(**kwargs)
    want = ref.state_dict()
    got = model.state_dict()
    assert list(got) == list(want)
    for key, value in want.items():
        assert got[key].shape == tuple(value.shape), key
        assert got[key].dtype == value.numpy().dtype, key
    # Class names too, where torch's reference has cconv's: the printout is torchvision's.
    assert repr(model) == repr(ref)


def test_torchvision_keys_by_name():
    """A few keys spelt out, as torchvision's checkpoints have them."""
    r18, r50 = models.resnet18().state_dict(), models.resnet50().state_dict()
    assert list(r18)[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                             "bn1.running_var", "bn1.num_batches_tracked"]
    assert "layer2.0.downsample.0.weight" in r18 and "layer1.0.downsample.0.weight" not in r18
    assert "layer1.0.downsample.1.running_var" in r50 and "layer4.2.conv3.weight" in r50
    assert r18["fc.weight"].shape == (1000, 512) and r50["fc.weight"].shape == (1000, 2048)
    assert (len(r18), len(r50)) == (122, 320)
    mb = models.mobilenet_v2().state_dict()
    for key in ("features.0.0.weight", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                "features.2.conv.3.running_mean", "features.18.0.weight", "classifier.1.weight"):
        assert key in mb, key
    assert mb["features.18.0.weight"].shape == (1280, 320, 1, 1) and len(mb) == 314
    un = models.unet().state_dict()
    for key in ("inc.double_conv.0.weight", "down4.maxpool_conv.1.double_conv.4.running_var",
                "up1.up.weight", "up4.conv.double_conv.3.weight", "outc.conv.bias"):
        assert key in un, key
    assert un["up1.up.weight"].shape == (512, 256, 2, 2)


def test_load_errors_are_torchs(torch):
    """Missing, unexpected and misshapen keys: torch's message, word for word (cconv raises
    ValueError where torch raises RuntimeError), and nothing loaded."""
    ref = torch_models().resnet18(num_classes=10)
    model = models.resnet18(num_classes=10)
    state = ref.state_dict()
    del state["layer3.1.bn2.running_var"]
    state["layer3.1.bn2.extra"] = torch.zeros(3)
    state["fc.bias"] = torch.zeros(11)
    with pytest.raises(RuntimeError) as want:
        ref.load_state_dict(state)
    before = model.state_dict()
    with pytest.raises(ValueError) as got:
        model.load_state_dict({k: v.numpy() for k, v in state.items()})
    assert str(got.value) == numpy_shapes(str(want.value))
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_torch_checkpoint_runs_where_torch_cannot_be_imported(torch, tmp_path):
    """torch.save(ref.state_dict()) read by cconv.load in a Python where `import torch`
    fails; its outputs equal this process's cconv outputs bit for bit, and torch's within
    rounding."""
    ref, state = reference(torch, "resnet18")
    torch.save(ref.state_dict(), tmp_path / "resnet18.pt")
    x = images(CASES["resnet18"][1], 2)
    np.save(tmp_path / "x.npy", x)
    child = """if True:
        import sys
        sys.modules["torch"] = None                 # `import torch` fails from here on
        import numpy as np
        import cconv
        model = cconv.models.resnet18(num_classes=10)
        print(model.load_state_dict(cconv.load(sys.argv[1])))
        np.save(sys.argv[3], model(np.load(sys.argv[2])))
        assert "torch" not in [m.split(".")[0] for m in sys.modules if sys.modules[m]]
    """
    r = run_python(["-c", child, str(tmp_path / "resnet18.pt"), str(tmp_path / "x.npy"),
                    str(tmp_path / "y.npy")], timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "<All keys matched successfully>"
    got = np.load(tmp_path / "y.npy")
    assert np.array_equal(got, cconv_model("resnet18", state)(x))
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).double().numpy()
    assert relative_error(got, want) < 1e-4


# ---- without torch ------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["resnet18", "mobilenet_v2", "unet_odd"])
def test_pickled_models_compute_the_same_bits(case):
    model = getattr(models, builder(case))(**CASES[case][0], rng=3)
    x = images(CASES[case][1], 2)
    want = model(x)                       # packed weights and plans exist: not pickled
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy(x), want)
    assert copy.training is False and repr(copy) == repr(model)
    state = copy.state_dict()
    assert all(np.array_equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(a.flags.writeable for a in copy.parameters())
    assert not any(a.flags.writeable for a in copy.buffers())


def test_builders_are_deterministic_and_in_eval_mode():
    a, b, c = models.unet(base=4, depth=2), models.unet(base=4, depth=2), \
        models.unet(base=4, depth=2, rng=1)
    assert all(not m.training for m in a.modules())
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not np.array_equal(sa["inc.double_conv.0.weight"], sc["inc.double_conv.0.weight"])
    d = models.resnet18(num_classes=3, dtype=np.float64)
    assert {v.dtype for k, v in d.state_dict().items() if "num_batches" not in k} == \
        {np.dtype(np.float64)}
    assert d(images((3, 32, 32), 1, np.float64)).dtype == np.float64
    assert d(np.zeros((0, 3, 32, 32))).shape == (0, 3)      # an empty batch, as torch


def test_wrong_inputs_get_the_layers_errors():
    model = models.resnet18(num_classes=3)
    with pytest.raises(ValueError, match=r"expected input\[1, 4, 32, 32\] to have 3 channels"):
        model(np.zeros((1, 4, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        model(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match="base must be a positive int"):
        models.unet(base=0)


def test_import_cconv_does_not_load_the_models():
    code = """if True:
        import sys
        import cconv
        assert "cconv.models" not in sys.modules and "models" in dir(cconv)
        assert cconv.models.resnet18 is not None and "cconv.models.unet" in sys.modules
        from cconv.models import unet
        assert "models" in cconv.__all__ and unet is cconv.models.unet
    """
    r = run_python(["-c", code], timeout=60)
    assert r.returncode == 0, r.stderr

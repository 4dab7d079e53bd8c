"""cconv.nn.fuse: BatchNorm and activations folded into the convolution before them compute
the same function as the unfused model, in Sequential chains and in torchvision-style
forwards (a shared activation layer included), and nothing else is fused."""
import concurrent.futures
import pickle

import numpy as np
import pytest

import cconv
from cconv import nn

RNG = np.random.default_rng(7)


def bn(c, dtype=np.float32):
    """A BatchNorm2d in eval mode with random statistics and affine parameters, so that
    folding it is really tested."""
    b = nn.BatchNorm2d(c, dtype=dtype)
    b.load_state_dict({
        "weight": RNG.uniform(0.5, 1.5, c).astype(dtype),
        "bias": RNG.standard_normal(c).astype(dtype),
        "running_mean": RNG.standard_normal(c).astype(dtype) * 0.5,
        "running_var": RNG.uniform(0.5, 2.0, c).astype(dtype),
        "num_batches_tracked": np.array(3, np.int64)})
    return b.eval()


def image(*shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def assert_close(got, want):
    scale = np.max(np.abs(want))
    tol = 2e-5 if want.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


class Block(nn.Module):
    """torchvision's BasicBlock: one ReLU layer used after bn1 and after the residual add."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False, rng=1)
        self.bn1 = bn(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False, rng=2)
        self.bn2 = bn(c)

    def forward(self, x):
        identity = x
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out += identity
        return self.relu(out)


def test_sequential_chain_is_fused():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=0), bn(8), nn.ReLU6(),
                          nn.Conv2d(8, 4, 1, rng=1), bn(4), nn.SiLU(),
                          nn.ConvTranspose2d(4, 6, 2, stride=2, rng=2), bn(6),
                          nn.LeakyReLU(0.2)).eval()
    x = image(2, 3, 9, 11)
    want = model(x)
    fused = nn.fuse(model)
    assert_close(fused(x), want)
    kinds = [type(m).__name__ for m in fused]
    assert kinds == ["Conv2d", "Identity", "Identity"] * 2 + ["ConvTranspose2d", "Identity",
                                                             "Identity"]
    assert [fused[i].epilogue.activation for i in (0, 3, 6)] == ["relu6", "silu", "leaky_relu"]
    # The model passed stays as it was.
    assert [type(m).__name__ for m in model][:3] == ["Conv2d", "BatchNorm2d", "ReLU6"]
    assert model[0].epilogue is None


def test_activation_without_batchnorm_and_batchnorm_without_activation():
    model = nn.Sequential(nn.Conv2d(3, 5, 3, rng=0), nn.Sigmoid(), nn.Conv2d(5, 5, 1, rng=1),
                          bn(5), nn.MaxPool2d(2)).eval()
    x = image(1, 3, 12, 12)
    fused = nn.fuse(model)
    assert_close(fused(x), model(x))
    assert fused[0].epilogue.activation == "sigmoid" and fused[0].epilogue.scale is None
    assert fused[2].epilogue.activation is None and fused[2].epilogue.scale is not None
    assert type(fused[4]).__name__ == "MaxPool2d"


def test_shared_relu_in_a_custom_forward():
    model = Block(6).eval()
    x = image(2, 6, 10, 10)
    want = model(x.copy())
    fused = nn.fuse(model, x)
    assert_close(fused(x.copy()), want)
    # conv1 takes bn1 and the relu; conv2 only bn2: the add sits between it and the relu.
    assert fused.conv1.epilogue.activation == "relu"
    assert fused.conv2.epilogue.activation is None
    assert fused.conv2.epilogue.scale is not None
    assert type(fused.bn1).__name__ == type(fused.bn2).__name__ == "Identity"
    # The relu still runs after the residual add (a model ending in it has no negatives).
    assert np.min(fused(x.copy())) >= 0


class DeclaredBlock(Block):
    """Block declaring its residual sum, as cconv.models' ResNet blocks do."""

    _residual_sum = ("conv2", "bn2", "relu")
    residual_fused = False

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        if self.residual_fused:
            return self.conv2(out, residual=x)
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


def test_declared_residual_sum_joins_the_epilogue():
    model = DeclaredBlock(6).eval()
    x = image(2, 6, 10, 10)
    want = model(x.copy())
    fused = nn.fuse(model, x)
    assert fused.residual_fused and not model.residual_fused
    assert fused.conv2.epilogue.activation == "relu"
    assert fused.conv2.epilogue.scale is not None
    # The same operations in the same order as cconv's unfused steps: the same bits.
    np.testing.assert_array_equal(fused(x.copy()), want)


@pytest.mark.parametrize("change", ["no batch norm", "act not fusable"])
def test_declared_residual_sum_left_alone_when_it_cannot_fuse(change):
    model = DeclaredBlock(6).eval()
    if change == "no batch norm":
        model.bn2 = nn.Dropout()
    else:
        model.relu = nn.Softmax(dim=1)
    x = image(2, 6, 10, 10)
    want = model(x.copy())
    fused = nn.fuse(model, x)
    assert not fused.residual_fused
    assert_close(fused(x.copy()), want)


def test_without_example_input_the_model_is_run_on_a_generated_one():
    model = nn.Sequential(Block(3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(3, 2)).eval()
    fused = nn.fuse(model)
    assert fused[0].conv1.epilogue.activation == "relu"
    x = image(1, 3, 16, 16)
    assert_close(fused(x.copy()), model(x.copy()))


class SharedSiLU(nn.Module):
    """A non-idempotent activation layer used twice: applying it again would be wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, rng=3)
        self.bn = bn(4)
        self.act = nn.SiLU()

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        return self.act(y + x)


def test_shared_non_idempotent_activation():
    model = SharedSiLU().eval()
    x = image(2, 4, 7, 7)
    fused = nn.fuse(model, x)
    assert fused.conv.epilogue.activation == "silu"
    assert_close(fused(x), model(x))
    # The same fused model called from two threads at once.
    xs = [image(1, 4, 9, 9) for _ in range(8)]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        got = list(pool.map(fused, xs))
    for g, xi in zip(got, xs):
        assert_close(g, model(xi))


class Aliased(nn.Module):
    """The convolution's raw output is used twice: BatchNorm must not be folded into it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, rng=4)
        self.bn = bn(3)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class Scaled(nn.Module):
    """The convolution's output is scaled in place before its BatchNorm: not a chain."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1, rng=5)
        self.bn = bn(3)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.conv(x)
        y *= 2
        return self.relu(self.bn(y))


def test_what_is_not_a_chain_is_left_alone():
    # The in-place scaling is seen by the trace.
    model = Scaled().eval()
    x = image(1, 3, 5, 5)
    fused = nn.fuse(model, x)
    assert fused.conv.epilogue is None
    assert type(fused.bn).__name__ == "BatchNorm2d"
    assert_close(fused(x), model(x))


def test_a_fusion_that_changes_the_result_is_dropped():
    # The second use of the raw output is numpy's, invisible to the trace: the check of the
    # fused model's result on the example catches it.
    model = Aliased().eval()
    x = image(1, 3, 5, 5)
    with pytest.warns(UserWarning, match="changed the model's result"):
        fused = nn.fuse(model, x)
    assert fused.conv.epilogue is None
    assert type(fused.bn).__name__ == "BatchNorm2d"
    assert_close(fused(x), model(x))


class FixedSize(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 2, 3, rng=6), bn(2), nn.ReLU())
        self.fc = nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.features(x).reshape(x.shape[0], -1))


def test_a_model_that_rejects_the_generated_input_keeps_its_sequential_fusion():
    model = FixedSize().eval()
    with pytest.warns(UserWarning, match="example_input"):
        fused = nn.fuse(model)
    assert fused.features[0].epilogue.activation == "relu"
    x = image(2, 1, 8, 8)
    assert_close(fused(x), model(x))
    # Given an input it accepts, the same model fuses without a warning.
    assert nn.fuse(model, x).features[0].epilogue is not None


def test_training_mode_model_is_fused_in_eval_mode():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, rng=7), bn(3).train())
    fused = nn.fuse(model)
    assert not fused.training and model.training
    x = image(1, 2, 6, 6)
    assert_close(fused(x), model.eval()(x))


def test_float64_and_fuse_twice():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, dtype=np.float64, rng=8),
                          bn(4, np.float64), nn.GELU()).eval()
    x = image(1, 3, 8, 8, dtype=np.float64)
    fused = nn.fuse(nn.fuse(model))
    assert fused[0].epilogue.activation == "gelu"
    assert_close(fused(x), model(x))


def test_fused_model_pickles():
    model = Block(4).eval()
    x = image(1, 4, 8, 8)
    fused = nn.fuse(model, x)
    again = pickle.loads(pickle.dumps(fused))
    np.testing.assert_array_equal(again(x.copy()), fused(x.copy()))


def test_errors():
    with pytest.raises(TypeError, match="model must be a cconv.nn.Module"):
        nn.fuse(lambda x: x)
    assert cconv.nn.fuse is nn.fuse

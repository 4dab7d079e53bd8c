"""cconv.nn against torch.nn: the same models built from both (Sequential, ModuleList,
ModuleDict, a custom Module; Conv2d, ConvTranspose2d, Identity, Flatten, Dropout) have the
same state_dict keys, names, repr and outputs; torch's state_dict loads with torch's missing /
unexpected / size-mismatch semantics and messages; the containers index, slice and change as
torch's. The parts without torch run without it."""
import re
from collections import OrderedDict

import numpy as np
import pytest
from conftest import run_python

import cconv
from cconv import nn

# ---- the models, built by the same code from torch.nn or cconv.nn -------------------------


def sequential(lib):
    return lib.Sequential(
        lib.Conv2d(3, 8, 3, padding=1), lib.Identity(),
        lib.Conv2d(8, 8, 3, stride=2, groups=2, bias=False),
        lib.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1), lib.Dropout(0.2),
        lib.Flatten())


def ordered(lib):
    return lib.Sequential(OrderedDict(
        conv=lib.Conv2d(3, 5, (3, 1), padding=(1, 0), dilation=2),
        drop=lib.Dropout(),
        inner=lib.Sequential(lib.Conv2d(5, 5, 1), lib.Identity()),
        up=lib.ConvTranspose2d(5, 2, 2, stride=2, bias=False)))


def custom(lib):
    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.stem = lib.Conv2d(3, 6, 3, padding=1)
            self.blocks = lib.ModuleList([
                lib.Conv2d(6, 6, 3, padding=1, padding_mode="reflect"), lib.Identity(),
                lib.Conv2d(6, 6, 1, groups=3)])
            self.heads = lib.ModuleDict({"up": lib.ConvTranspose2d(6, 2, 2, stride=2),
                                         "same": lib.Conv2d(6, 2, 3, padding="same")})
            self.tail = lib.Sequential(lib.Dropout(0.1), lib.Flatten(2))

        def forward(self, x):
            x = self.stem(x)
            for block in self.blocks:
                x = block(x)
            return self.tail(self.heads["up"](x)), self.tail(self.heads["same"](x))

    return Net()


def shared(lib):
    conv = lib.Conv2d(3, 3, 3, padding=1)
    return lib.Sequential(conv, lib.Identity(), conv)


MODELS = {"sequential": sequential, "ordered": ordered, "custom": custom, "shared": shared}


@pytest.fixture(params=MODELS)
def twins(request, torch):
    """(torch model, cconv model with the torch model's state_dict loaded), both eval."""
    torch.manual_seed(0)
    tm = MODELS[request.param](torch.nn).eval()
    cm = MODELS[request.param](nn).eval()
    assert cm.load_state_dict(tm.state_dict()) == ([], [])
    return tm, cm


def outputs(y):
    return y if isinstance(y, tuple) else (y,)


def numpy_shapes(message):
    """torch's message with each torch.Size([2, 3]) written as numpy writes a shape."""
    return re.sub(r"torch\.Size\(\[([\d, ]*)\]\)", lambda m: str(
        tuple(int(v) for v in m.group(1).split(",") if v.strip())), message)


def raised(call):
    """(exception type, message) of a call that must fail."""
    with pytest.raises(Exception) as info:  # judged by the caller
        call()
    return type(info.value), str(info.value)


def same_error(torch_call, cconv_call, torch_type=None):
    """cconv's error is torch's: the same words (shapes written as numpy's) and type, or
    ValueError where torch raises `torch_type` (RuntimeError: cconv's errors are ValueErrors)."""
    (t_type, t_msg), (c_type, c_msg) = raised(torch_call), raised(cconv_call)
    assert c_type is (ValueError if t_type is torch_type else t_type), (t_type, c_type, c_msg)
    assert c_msg == numpy_shapes(t_msg).replace("torch.nn.Module", "cconv.nn.Module")
    return c_msg


# ---- state_dict, names, repr, outputs ------------------------------------------------------

def test_state_dict_keys_and_shapes_are_torchs(twins):
    tm, cm = twins
    t_state, c_state = tm.state_dict(), cm.state_dict()
    assert list(c_state) == list(t_state)
    for key, value in c_state.items():
        assert value.shape == tuple(t_state[key].shape) and value.dtype == np.float32, key
        np.testing.assert_array_equal(value, t_state[key].numpy())


def test_outputs_are_torchs(twins, torch):
    tm, cm = twins
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 11)).astype(np.float32)
    with torch.no_grad():
        expected = outputs(tm(torch.from_numpy(x)))
    got = outputs(cm(x))
    assert len(got) == len(expected)
    for y, t in zip(got, expected):
        assert y.shape == tuple(t.shape) and y.dtype == np.float32
        np.testing.assert_allclose(y, t.numpy(), rtol=1e-4, atol=1e-5)


def test_cconv_state_dict_loads_into_torch(twins, torch):
    tm, cm = twins
    torch_state = {k: torch.from_numpy(v) for k, v in cm.state_dict().items()}
    assert tm.load_state_dict(torch_state) == ([], [])


def test_names_are_torchs(twins):
    tm, cm = twins
    for method in ("named_modules", "named_children", "named_parameters", "named_buffers"):
        t_items, c_items = list(getattr(tm, method)()), list(getattr(cm, method)())
        assert [n for n, _ in c_items] == [n for n, _ in t_items], method
    assert ([type(m).__name__ for m in cm.modules()]
            == [type(m).__name__ for m in tm.modules()])
    assert len(list(cm.parameters())) == len(list(tm.parameters()))
    assert len(list(cm.children())) == len(list(tm.children()))
    for recurse in (True, False):
        assert ([n for n, _ in cm.named_parameters(prefix="m", recurse=recurse)]
                == [n for n, _ in tm.named_parameters(prefix="m", recurse=recurse)])


def test_repr_is_torchs(twins):
    tm, cm = twins
    assert repr(cm) == repr(tm)


def test_shared_module_appears_once(torch):
    tm, cm = shared(torch.nn), shared(nn)
    assert cm[0] is cm[2]
    assert len(list(cm.modules())) == len(list(tm.modules())) == 3      # itself, conv, Identity
    assert [n for n, _ in cm.named_modules(remove_duplicate=False)] == \
        [n for n, _ in tm.named_modules(remove_duplicate=False)]
    assert [n for n, _ in cm.named_parameters()] == ["0.weight", "0.bias"]
    assert [n for n, _ in cm.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in tm.named_parameters(remove_duplicate=False)]
    # The state_dict has it under each name, as torch's.
    assert list(cm.state_dict()) == list(tm.state_dict())


# ---- load_state_dict: missing, unexpected, size mismatch --------------------------------

def _drop(*keys):
    return lambda state, ones: [state.pop(k) for k in keys]


def _add(**items):
    """Add keys ('__' for '.') of the given sizes."""
    return lambda state, ones: state.update({k.replace("__", "."): ones(v)
                                             for k, v in items.items()})


def _reshape(key, shape):
    return lambda state, ones: state.__setitem__(key, ones(shape))


def _all(*changes):
    return lambda state, ones: [change(state, ones) for change in changes]


# Ways to break the state_dict of sequential(): (state, torch.ones) -> None.
BROKEN = {
    "missing": _drop("0.bias"),
    "missing-several": _drop("3.weight", "0.weight"),
    "unexpected": _add(extra=1),
    "unexpected-in-children": _add(**{"0__extra": 1, "1__weight": 2, "5__weight": 1,
                                      "3__bias__x": 1}),
    "unexpected-extra-state": _add(_extra_state=1, **{"0___extra_state": 2}),
    "unexpected-module-names": _add(**{"2": 1, "1": 1}),
    "bias-of-bias-free": _add(**{"2__bias": 8}),
    "size-mismatch": _reshape("0.weight", (8, 3, 1, 3)),
    "size-mismatches": _all(_reshape("3.bias", (5,)), _reshape("2.weight", (8,))),
    "all-at-once": _all(_drop("3.bias"), _add(**{"9__w": 1}), _reshape("0.bias", (1, 8))),
}


@pytest.mark.parametrize("case", BROKEN)
def test_load_errors_are_torchs(case, torch):
    torch.manual_seed(0)
    tm, cm = sequential(torch.nn), sequential(nn)
    state = tm.state_dict()
    BROKEN[case](state, torch.ones)
    before = cm.state_dict()
    message = same_error(lambda: tm.load_state_dict(state), lambda: cm.load_state_dict(state),
                         RuntimeError)
    assert message.startswith("Error(s) in loading state_dict for Sequential:\n\t")
    for key, value in cm.state_dict().items():  # a failed load changes nothing
        np.testing.assert_array_equal(value, before[key])
    # Not strict: torch's (missing, unexpected), or the size mismatch still an error.
    torch.manual_seed(0)
    tm = sequential(torch.nn)
    try:
        t_result = tm.load_state_dict(state, strict=False)
    except RuntimeError:
        same_error(lambda: tm.load_state_dict(state, strict=False),
                   lambda: cm.load_state_dict(state, strict=False), RuntimeError)
        return
    c_result = cm.load_state_dict(state, strict=False)
    assert c_result == t_result
    assert repr(c_result) == repr(t_result).removeprefix("_")   # cconv's class is public
    for key, value in cm.state_dict().items():  # what was there is loaded, the rest kept
        np.testing.assert_array_equal(value, state[key].numpy() if key in state
                                      else before[key])


def test_load_accepts_tensors_that_require_grad(torch):
    torch.manual_seed(0)
    tm, cm = ordered(torch.nn), ordered(nn)
    assert cm.load_state_dict(dict(tm.named_parameters())) == ([], [])
    for key, value in tm.state_dict().items():
        np.testing.assert_array_equal(cm.state_dict()[key], value.numpy())


def test_load_state_dict_rejects_a_non_mapping(torch):
    same_error(lambda: sequential(torch.nn).load_state_dict([("0.weight", 1)]),
               lambda: sequential(nn).load_state_dict([("0.weight", 1)]))


def test_loaded_values_are_cast_and_checked():
    model = nn.Sequential(nn.Conv2d(2, 3, 1, dtype=np.float64), nn.Conv2d(3, 1, 1))
    state = {k: v.astype(np.float32 if v.dtype == np.float64 else np.float64)
             for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert model[0].weight.dtype == np.float64 and model[1].weight.dtype == np.float32
    state["1.bias"] = np.zeros(1, np.int64)
    with pytest.raises(TypeError, match=r"1\.bias must have dtype float32 or float64"):
        model.load_state_dict(state)
    state["1.bias"] = "zero"
    with pytest.raises(TypeError, match=r"1\.bias"):
        model.load_state_dict(state)


def test_incompatible_keys_print_as_torchs(torch):
    assert repr(nn.Identity().load_state_dict({})) == "<All keys matched successfully>"
    t_result = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 1)).load_state_dict({}, strict=False)
    c_result = nn.Sequential(nn.Conv2d(1, 1, 1)).load_state_dict({}, strict=False)
    assert str(c_result) == str(t_result).removeprefix("_")
    assert c_result.missing_keys == ["0.weight", "0.bias"]


# ---- parameters and buffers of a custom module ---------------------------------------------

def with_arrays(lib, array):
    """A module with its own parameter and buffers, registered among its children."""
    class Scaled(lib.Module):
        def __init__(self):
            super().__init__()
            self.conv = lib.Conv2d(2, 2, 1)
            self.register_parameter("scale", array(np.full(2, 0.5, np.float32), True))
            self.register_buffer("mean", array(np.arange(2.0, dtype=np.float32), False))
            self.register_buffer("steps", array(np.array(3), False))
            self.register_buffer("cache", array(np.zeros(1, np.float32), False),
                                 persistent=False)
            self.register_parameter("unused", None)
            self.post = lib.Identity()

        def forward(self, x):
            return self.post(self.conv(x))

    return lib.Sequential(Scaled(), lib.Flatten())


def torch_array(torch):
    return lambda a, param: (torch.nn.Parameter(torch.from_numpy(a)) if param
                             else torch.from_numpy(a))


def test_parameters_and_buffers_as_torchs(torch):
    torch.manual_seed(0)
    tm = with_arrays(torch.nn, torch_array(torch))
    cm = with_arrays(nn, lambda a, param: a)
    assert list(cm.state_dict()) == list(tm.state_dict()) == [
        "0.scale", "0.mean", "0.steps", "0.conv.weight", "0.conv.bias"]
    for method in ("named_parameters", "named_buffers"):
        assert ([n for n, _ in getattr(cm, method)()]
                == [n for n, _ in getattr(tm, method)()]), method
    assert len(list(cm.buffers())) == 3 and len(list(cm.parameters())) == 3
    assert repr(cm) == repr(tm)
    state = tm.state_dict()
    state["0.scale"] = torch.full((2,), 2.0)
    cm.load_state_dict(state)
    assert cm[0].scale.tolist() == [2.0, 2.0] and cm[0].scale.dtype == np.float32
    assert cm[0].steps.dtype == np.int64 and cm[0].steps == 3


def test_registered_arrays_are_read_only_copies_replaced_by_assignment():
    model = with_arrays(nn, lambda a, param: a)[0]
    given = np.ones(2, np.float32)
    model.scale = given
    given[0] = 5                                      # the module took a copy
    assert model.scale.tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="read-only"):
        model.scale[0] = 2
    state = model.state_dict()
    state["scale"][0] = 7                             # copies, writable
    assert model.scale[0] == 1
    model.mean = [4, 5]
    assert model.state_dict()["mean"].tolist() == [4, 5]
    with pytest.raises(TypeError, match="cannot assign 'str' object to parameter 'scale'"):
        model.scale = "big"
    with pytest.raises(TypeError, match="cannot assign 'numpy.ndarray' object to parameter"):
        model.scale = np.ones(2, np.int32)
    with pytest.raises(TypeError, match="to buffer 'mean'"):
        model.mean = np.array(["a"])
    model.scale = None
    assert "scale" not in model.state_dict() and model.scale is None
    model.note = np.ones(3)                           # a plain attribute, as torch's
    assert "note" not in model.state_dict()
    del model.mean
    assert "mean" not in model.state_dict() and not hasattr(model, "mean")


def test_attribute_assignment_as_torchs(torch):
    def change(lib):
        model = lib.Sequential(OrderedDict(a=lib.Conv2d(1, 2, 1), b=lib.Identity(),
                                           c=lib.Conv2d(2, 2, 1)))
        model.a = lib.Flatten()                       # replaced in place: keeps its position
        model.b = None                                # kept as None
        del model.c
        model.d = lib.Dropout()                       # a new child, last
        return model

    tm, cm = change(torch.nn), change(nn)
    assert repr(cm) == repr(tm)
    assert [n for n, _ in cm.named_children()] == [n for n, _ in tm.named_children()]
    assert cm.b is None and list(cm.state_dict()) == []
    same_error(lambda: setattr(tm, "a", 3), lambda: setattr(cm, "a", 3))
    same_error(lambda: setattr(tm, "d", np.ones(1)), lambda: setattr(cm, "d", np.ones(1)))


@pytest.mark.parametrize("call", [
    lambda m, a: m.register_parameter("a.b", None),
    lambda m, a: m.register_parameter("", None),
    lambda m, a: m.register_parameter(3, None),
    lambda m, a: m.register_parameter("training", None),
    lambda m, a: m.register_buffer("a.b", None),
    lambda m, a: m.register_buffer("", None),
    lambda m, a: m.register_buffer(("x",), None),
    lambda m, a: m.register_buffer("eval", None),
    lambda m, a: m.add_module("a.b", None),
    lambda m, a: m.add_module("", None),
    lambda m, a: m.add_module(1, None),
    lambda m, a: m.add_module("x", 3),
    lambda m, a: m.add_module("train", None),
    lambda m, a: m.train("yes"),
    lambda m, a: m(1),
    lambda m, a: m.no_such_thing,
])
def test_misuse_errors_are_torchs(call, torch):
    same_error(lambda: call(torch.nn.Module(), torch.ones(1)),
               lambda: call(nn.Module(), np.ones(1)))


def test_assignments_before_init_are_refused(torch):
    for lib in (torch.nn, nn):
        class Early(lib.Module):
            def __init__(self, lib=lib):
                self.conv = lib.Identity()

        with pytest.raises(AttributeError,
                           match=r"cannot assign module before Module.__init__\(\) call"):
            Early()


# ---- train / eval ---------------------------------------------------------------------------

def test_train_and_eval_set_the_flag_everywhere_as_torch(torch):
    tm, cm = custom(torch.nn), custom(nn)
    assert [m.training for m in cm.modules()] == [m.training for m in tm.modules()]
    assert cm.eval() is cm and not any(m.training for m in cm.modules())
    assert cm.blocks.train() is cm.blocks
    tm.eval()
    tm.blocks.train()
    assert [m.training for m in cm.modules()] == [m.training for m in tm.modules()]
    assert cm.train(True) is cm and all(m.training for m in cm.modules())


def test_training_mode_computes_the_same():
    """Inference only: train() is a flag; Dropout stays the identity."""
    model = sequential(nn)
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(model.train()(x), model.eval()(x))


# ---- containers -----------------------------------------------------------------------------

def describe(value):
    """What two libraries' results must agree on (modules by repr)."""
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, OrderedDict):                  # a state_dict
        return list(value)
    if hasattr(value, "named_children"):
        return type(value).__name__, repr(value), [n for n, _ in value.named_children()]
    return value


def layers(lib):
    return [lib.Conv2d(2, 3, 1), lib.Identity(), lib.Flatten(), lib.Dropout(0.3)]


SEQUENTIAL_OPS = {
    "len": lambda lib, s: len(s),
    "index": lambda lib, s: [s[0], s[2], s[-1], s[-4]],
    "slice": lambda lib, s: [s[1:3], s[::-2], s[5:], s[-2:]],
    "slice-of-slice-keeps-names": lambda lib, s: s[1:][1:].state_dict(),
    "iter": lambda lib, s: list(s),
    "append": lambda lib, s: [s.append(lib.Identity()) is s, s],
    "insert": lambda lib, s: [s.insert(1, lib.Identity()) is s, s.insert(-1, lib.Flatten()),
                              s.insert(6, lib.Dropout())],
    "extend": lambda lib, s: [s.extend([lib.Identity(), lib.Flatten()]) is s, s],
    "setitem": lambda lib, s: [s.__setitem__(-1, lib.Identity()), s],
    "delitem": lambda lib, s: [s.__delitem__(1), s, s.state_dict()],
    "delslice": lambda lib, s: [s.__delitem__(slice(0, 2)), s, s.state_dict()],
    "ordered": lambda lib, s: [lib.Sequential(OrderedDict(x=s[0], y=s[1]))[-1:]],
    "empty": lambda lib, s: [lib.Sequential(), len(lib.Sequential())],
}


@pytest.mark.parametrize("op", SEQUENTIAL_OPS)
def test_sequential_as_torchs(op, torch):
    t = SEQUENTIAL_OPS[op](torch.nn, torch.nn.Sequential(*layers(torch.nn)))
    c = SEQUENTIAL_OPS[op](nn, nn.Sequential(*layers(nn)))
    if isinstance(t, OrderedDict):
        assert list(c) == list(t)
    else:
        assert describe(c) == describe(t)


@pytest.mark.parametrize("call", [
    lambda s: s[4], lambda s: s[-5], lambda s: s["0"], lambda s: s.__setitem__(9, s[0]),
    lambda s: s.__delitem__(4),
])
def test_sequential_index_errors_are_torchs(call, torch):
    same_error(lambda: call(torch.nn.Sequential(*layers(torch.nn))),
               lambda: call(nn.Sequential(*layers(nn))))


def test_sequential_chains_forward():
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    conv = nn.Conv2d(2, 3, 1, rng=0)
    np.testing.assert_array_equal(nn.Sequential(conv, nn.Flatten(), nn.Dropout())(x),
                                  conv(x).reshape(1, -1))
    assert nn.Sequential()(x) is x


MODULELIST_OPS = {
    "len": lambda lib, m: len(m),
    "index": lambda lib, m: [m[0], m[-1], m[3]],
    "slice": lambda lib, m: [m[1:3], m[::-1], m[9:]],
    "iter": lambda lib, m: list(m),
    "append": lambda lib, m: [m.append(lib.Identity()) is m, m],
    "extend": lambda lib, m: [m.extend((lib.Flatten(),)) is m, m],
    "iadd": lambda lib, m: [m.__iadd__([lib.Flatten(), lib.Identity()]), m],
    "insert": lambda lib, m: [m.insert(1, lib.Identity()), m.insert(5, lib.Dropout()), m,
                              m.state_dict()],
    "setitem": lambda lib, m: [m.__setitem__(-2, lib.Identity()), m],
    "delitem": lambda lib, m: [m.__delitem__(0), m, m.state_dict()],
    "delslice": lambda lib, m: [m.__delitem__(slice(1, 3)), m],
    "repeated-repr": lambda lib, m: lib.ModuleList(
        [lib.Identity(), lib.Conv2d(1, 1, 1), lib.Conv2d(1, 1, 1), lib.Conv2d(1, 1, 1),
         lib.Flatten(), lib.Flatten(), lib.Sequential(lib.Identity())]),
    "empty": lambda lib, m: [lib.ModuleList(), lib.ModuleList([])],
}


@pytest.mark.parametrize("op", MODULELIST_OPS)
def test_modulelist_as_torchs(op, torch):
    t = MODULELIST_OPS[op](torch.nn, torch.nn.ModuleList(layers(torch.nn)))
    c = MODULELIST_OPS[op](nn, nn.ModuleList(layers(nn)))
    if isinstance(t, OrderedDict):
        assert list(c) == list(t)
    else:
        assert describe(c) == describe(t)


@pytest.mark.parametrize("call", [
    lambda m: m[4], lambda m: m[-5], lambda m: m.extend(3), lambda m: m(1),
])
def test_modulelist_errors_are_torchs(call, torch):
    same_error(lambda: call(torch.nn.ModuleList(layers(torch.nn))),
               lambda: call(nn.ModuleList(layers(nn))))


def named(lib):
    return OrderedDict(zip("dcba", layers(lib)))


MODULEDICT_OPS = {
    "len": lambda lib, d: len(d),
    "keys": lambda lib, d: [list(d.keys()), list(d), "c" in d, "z" in d],
    "values": lambda lib, d: list(d.values()),
    "items": lambda lib, d: [list(kv) for kv in d.items()],
    "getitem": lambda lib, d: d["b"],
    "setitem": lambda lib, d: [d.__setitem__("c", lib.Identity()),
                               d.__setitem__("e", lib.Flatten()), d],
    "update-mapping": lambda lib, d: [d.update({"x": lib.Identity(), "a": lib.Flatten()}), d],
    "update-pairs": lambda lib, d: [d.update([("y", lib.Identity()), ["d", lib.Dropout()]]),
                                    d],
    "update-moduledict": lambda lib, d: [d.update(lib.ModuleDict({"z": lib.Identity()})), d],
    "pop": lambda lib, d: [d.pop("c"), d, d.state_dict()],
    "delitem": lambda lib, d: [d.__delitem__("d"), d, d.state_dict()],
    "clear": lambda lib, d: [d.clear(), d, len(d)],
    "from-pairs": lambda lib, d: lib.ModuleDict([("q", lib.Identity()), ("p", lib.Flatten())]),
}


@pytest.mark.parametrize("op", MODULEDICT_OPS)
def test_moduledict_as_torchs(op, torch):
    t = MODULEDICT_OPS[op](torch.nn, torch.nn.ModuleDict(named(torch.nn)))
    c = MODULEDICT_OPS[op](nn, nn.ModuleDict(named(nn)))
    if isinstance(t, OrderedDict):
        assert list(c) == list(t)
    else:
        assert describe(c) == describe(t)


@pytest.mark.parametrize("call", [
    lambda d: d["z"], lambda d: d.__delitem__("z"), lambda d: d.update(3),
    lambda d: d.update([("a", None, 1)]), lambda d: d.update([3]),
    lambda d: d.__setitem__("keys", None), lambda d: d(1),
])
def test_moduledict_errors_are_torchs(call, torch):
    same_error(lambda: call(torch.nn.ModuleDict(named(torch.nn))),
               lambda: call(nn.ModuleDict(named(nn))))


# ---- Identity, Flatten, Dropout -------------------------------------------------------------

@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4, 5), (0, 3, 4)])
@pytest.mark.parametrize("dims", [(1, -1), (0, -1), (0, 0), (-2, -1), (1, 2), (2, 1), (3, -1),
                                  (-5, -1)])
def test_flatten_as_torchs(shape, dims, torch):
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    t_flatten, c_flatten = torch.nn.Flatten(*dims), nn.Flatten(*dims)
    assert repr(c_flatten) == repr(t_flatten)
    try:
        expected = t_flatten(torch.from_numpy(x))
    except (IndexError, RuntimeError):
        same_error(lambda: t_flatten(torch.from_numpy(x)), lambda: c_flatten(x), RuntimeError)
        return
    y = c_flatten(x)
    assert y.shape == tuple(expected.shape)
    np.testing.assert_array_equal(y, expected.numpy())
    assert np.shares_memory(y, x) or x.size == 0       # a view, as torch's


def test_identity_and_dropout_return_their_input(torch):
    x = np.ones((2, 3), np.float32)
    for module in (nn.Identity(), nn.Identity(3, k=4), nn.Dropout(), nn.Dropout(1.0, True),
                   nn.Dropout(0.5).train()):
        assert module(x) is x
    for args in [(), (0.0,), (1, True)]:
        assert repr(nn.Dropout(*args)) == repr(torch.nn.Dropout(*args))
    assert repr(nn.Identity(5)) == repr(torch.nn.Identity(5))
    for p in (-0.1, 1.5):
        same_error(lambda p=p: torch.nn.Dropout(p), lambda p=p: nn.Dropout(p))


# ---- Conv2d and ConvTranspose2d as modules --------------------------------------------------

def test_conv_layers_are_the_top_level_classes():
    assert nn.Conv2d is cconv.Conv2d and nn.ConvTranspose2d is cconv.ConvTranspose2d
    assert issubclass(cconv.Conv2d, nn.Module) and issubclass(cconv.ConvTranspose2d, nn.Module)
    assert "nn" in cconv.__all__


def test_conv_layers_keep_their_direct_call():
    """A conv call goes straight to forward; and no Module defines __getattr__, which would
    keep CPython from specialising the attribute reads of every call."""
    for cls in (cconv.Conv2d, cconv.ConvTranspose2d):
        assert cls.__call__ is cls.forward
    for cls in (nn.Module, nn.Sequential, nn.ModuleList, nn.ModuleDict, nn.Identity,
                nn.Flatten, nn.Dropout, nn.Conv2d, nn.ConvTranspose2d):
        assert not any("__getattr__" in vars(k) for k in cls.__mro__), cls


def test_conv_weights_load_through_the_parent_and_take_effect():
    model = nn.Sequential(OrderedDict(conv=nn.Conv2d(2, 3, 1, rng=0),
                                      up=nn.ConvTranspose2d(3, 2, 2, stride=2, rng=0)))
    x = np.ones((1, 2, 3, 3), np.float32)
    before = model(x)
    state = {k: v * 2 for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    for key, value in state.items():
        module, name = key.split(".")
        current = getattr(model._modules[module], name)
        np.testing.assert_array_equal(current, value)
        assert not current.flags.writeable
    assert not np.array_equal(model(x), before)
    assert [n for n, _ in model.named_parameters()] == list(state)
    assert model.conv.weight is next(iter(model.parameters()))


def test_import_cconv_loads_the_computing_layers_on_first_use():
    """`import cconv` loads the convolutions and cconv.nn's Module, not the layers that
    compute, their functional forms or the checkpoint reader (zipfile, json, pickle): they
    load when first used, by attribute or by `from cconv.nn import ...`."""
    code = """if True:
        import sys
        import cconv
        lazy = ["cconv.nn.activation", "cconv.nn.pooling", "cconv.nn.normalization",
                "cconv.nn.linear", "cconv.nn.resample", "cconv.nn.functional",
                "cconv._checkpoint", "cconv.models"]
        assert not [m for m in lazy if m in sys.modules], sorted(sys.modules)
        from cconv.nn import MaxPool2d, ReLU
        assert ReLU.__module__ == "cconv.nn.activation" and "cconv.nn.pooling" in sys.modules
        assert cconv.nn.functional.relu is not None and cconv.nn.BatchNorm2d is not None
        assert "cconv._checkpoint" not in sys.modules
        try:
            cconv.nn.NoSuchLayer
        except AttributeError as exc:
            assert "NoSuchLayer" in str(exc)
        else:
            raise AssertionError("no AttributeError")
    """
    proc = run_python(["-c", code], timeout=60)
    assert proc.returncode == 0, proc.stderr

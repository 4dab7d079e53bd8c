"""fuse(): a model's BatchNorm and activations folded into the convolutions before them.

What it fuses: a Conv2d or ConvTranspose2d (without an epilogue yet), then optionally a
BatchNorm2d with running statistics, then optionally one activation layer (ReLU, ReLU6,
LeakyReLU, Sigmoid, Tanh, SiLU, Hardswish, Hardsigmoid, GELU), where each consumes exactly
the previous one's output. The BatchNorm becomes the convolution's per-channel scale and
shift, the activation its epilogue's activation: one pass over the output instead of three.

How it finds them:
- in a Sequential, from the order of its children (conv, bn, act adjacent);
- anywhere else (a forward calling self.conv1, self.bn1, self.relu, as torchvision's models
  do), by running the model once on an example input and recording each layer call's input
  and output arrays. A chain is fused when the BatchNorm was called with the very array the
  convolution returned, still unchanged (no in-place add between them), the activation
  likewise with the BatchNorm's (or the convolution's) output, and the convolution and
  BatchNorm each ran exactly once. The example is then run through the fused model as well,
  and the fusion found this way is dropped (with a warning) if the results differ.

An activation layer called at several places (torchvision's shared `self.relu`) stays in
place for its other calls: at the fused call it returns its input, which the convolution
already activated, and it recognises that call by the array's identity.

Residual sums written in numpy (`out += identity`) are not fused: fuse cannot see them. A
module can declare one instead: a class attribute `_residual_sum = (conv, bn, act)` names
the attributes of a forward computing act(bn(conv(x)) + identity), and the forward calls
`conv(x, residual=identity)` alone once fuse sets the module's `residual_fused` (after bn is
folded into conv and act is a fusable activation: the sum and act join conv's epilogue).
cconv.models' ResNet blocks do so.
"""
import copy
import hashlib
import threading
import warnings
import weakref

import numpy as np

from .. import _epilogue
from ..modules import Conv2d, ConvTranspose2d
from .containers import Sequential
from .module import Module
from .views import Identity

__all__ = ["fuse"]

_TRACE_SIZE = 224


def _activation_kind(module):
    """The epilogue activation arguments for an activation layer, or None."""
    from . import activation as act
    simple = {act.ReLU: "relu", act.ReLU6: "relu6", act.Sigmoid: "sigmoid", act.Tanh: "tanh",
              act.SiLU: "silu", act.Hardswish: "hardswish", act.Hardsigmoid: "hardsigmoid"}
    kind = type(module)
    if kind in simple:
        return {"activation": simple[kind]}
    if kind is act.LeakyReLU:
        return {"activation": "leaky_relu", "negative_slope": module.negative_slope}
    if kind is act.GELU:
        return {"activation": "gelu" if module.approximate == "none" else "gelu_tanh"}
    return None


def _is_conv(module):
    return (isinstance(module, (Conv2d, ConvTranspose2d))
            and getattr(module, "epilogue", None) is None)


def _foldable(conv, bn):
    """Whether bn (inference statistics) can become conv's scale and shift."""
    from .normalization import BatchNorm2d
    return (type(bn) is BatchNorm2d and bn.running_mean is not None
            and bn.running_var is not None and bn.num_features == conv.out_channels
            and bn.dtype == conv.dtype)


def _scale_shift(bn):
    """bn's inference transform as y * scale + shift, computed as batch_norm computes it."""
    dtype = bn.dtype
    invstd = 1 / np.sqrt(bn.running_var + dtype.type(bn.eps))
    scale = invstd if bn.weight is None else invstd * bn.weight
    shift = -bn.running_mean * scale if bn.bias is None else bn.bias - bn.running_mean * scale
    return scale.astype(dtype, copy=False), shift.astype(dtype, copy=False)


class _Chain:
    """conv, then bn and act (either may be None), with where bn and act are held."""

    def __init__(self, conv, bn=None, act=None):
        self.conv, self.bn, self.act = conv, bn, act
        self.shared_act = False

    def epilogue(self):
        scale = shift = None
        if self.bn is not None:
            scale, shift = _scale_shift(self.bn)
        kwargs = {} if self.act is None else _activation_kind(self.act)
        return _epilogue.Epilogue(scale=scale, shift=shift, **kwargs)


def _sequential_chains(model):
    """Chains read from the order of each Sequential's children."""
    chains = []
    for seq in model.modules():
        if not isinstance(seq, Sequential):
            continue
        children = list(seq._modules.values())
        i = 0
        while i < len(children):
            conv = children[i]
            i += 1
            if not _is_conv(conv):
                continue
            chain = _Chain(conv)
            if i < len(children) and _foldable(conv, children[i]):
                chain.bn = children[i]
                i += 1
            if i < len(children) and _activation_kind(children[i]) is not None:
                chain.act = children[i]
                i += 1
            if chain.bn is not None or chain.act is not None:
                chains.append(chain)
    return chains


def _digest(arr):
    return hashlib.blake2b(np.ascontiguousarray(arr).view(np.uint8), digest_size=16).digest()


class _Call:
    __slots__ = ("module", "input", "output", "input_digest", "output_digest")


class _Recorder(Module):
    """Stands in for a layer while the example runs: records the call, then makes it."""

    def __init__(self, inner, calls):
        super().__init__()
        object.__setattr__(self, "inner", inner)
        object.__setattr__(self, "calls", calls)

    def forward(self, *args, **kwargs):
        # The input's digest before the call: an in-place layer changes it.
        before = _digest(args[0]) if args and isinstance(args[0], np.ndarray) else None
        out = self.inner(*args, **kwargs)
        if before is not None and isinstance(out, np.ndarray):
            call = _Call()
            call.module, call.input, call.output = self.inner, args[0], out
            call.input_digest, call.output_digest = before, _digest(out)
            self.calls.append(call)
        return out


def _sites(model):
    """{id(module): [(parent, name)]}: every place a module is held."""
    sites = {}
    for parent in model.modules():
        for name, child in parent._modules.items():
            if child is not None:
                sites.setdefault(id(child), []).append((parent, name))
    return sites


def _traced(model, example, layer):
    """Run model on example with every layer (layer(module) true) recorded: (the calls, the
    model's output)."""
    calls = []
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and layer(child):
                setattr(parent, name, _Recorder(child, calls))
                swapped.append((parent, name, child))
    try:
        out = model(example)
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)
    return calls, out


def _traced_chains(model, example, taken):
    """(Chains found by running the example (modules in `taken` already fused), the model's
    output on it)."""
    def layer(m):
        return (_is_conv(m) or _activation_kind(m) is not None
                or type(m).__name__ == "BatchNorm2d")
    calls, out = _traced(model, example, layer)
    count = {}
    for call in calls:
        count[id(call.module)] = count.get(id(call.module), 0) + 1

    def consumer(producer, start):
        """The call after `start` reading producer's output, unchanged since it was made."""
        for call in calls[start:]:
            if call.input is producer.output:
                return call if call.input_digest == producer.output_digest else None
        return None

    chains = []
    for i, call in enumerate(calls):
        conv = call.module
        if not _is_conv(conv) or id(conv) in taken or count[id(conv)] != 1:
            continue
        chain = _Chain(conv)
        nxt = consumer(call, i + 1)
        readers = sum(c.input is call.output for c in calls)
        if (nxt is not None and _foldable(conv, nxt.module) and count[id(nxt.module)] == 1
                and id(nxt.module) not in taken and readers == 1):
            chain.bn = nxt.module
            nxt = consumer(nxt, calls.index(nxt) + 1)
        if nxt is not None and _activation_kind(nxt.module) is not None:
            chain.act = nxt.module
            chain.shared_act = count[id(nxt.module)] > 1
        if chain.bn is not None or chain.act is not None:
            chains.append(chain)
    return chains, out


_RETURNED = threading.local()


class _Marked:
    """A convolution whose fused activation a shared activation layer must not repeat: it
    notes (per thread) the array it returned last."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        _RETURNED.__dict__[id(self)] = weakref.ref(out)
        return out

    __call__ = forward

    def returned(self, array):
        ref = _RETURNED.__dict__.get(id(self))
        return ref is not None and ref() is array

    def _get_name(self):
        return type(self).__mro__[2].__name__


class _MarkedConv2d(_Marked, Conv2d):
    pass


class _MarkedConvTranspose2d(_Marked, ConvTranspose2d):
    pass


class _AfterFused(Module):
    """A shared activation layer: the identity on the array a fused convolution returned
    (already activated), the activation on anything else."""

    def __init__(self, act, convs):
        super().__init__()
        self.act = act
        object.__setattr__(self, "convs", convs)

    def forward(self, input):
        for conv in self.convs:
            if conv.returned(input):
                return input
        return self.act(input)


def _apply(model, chains):
    """Fuse chains into model, in place."""
    sites = _sites(model)
    shared = {}
    for chain in chains:
        conv = chain.conv
        conv.epilogue = chain.epilogue()
        for module in (chain.bn, chain.act):
            if module is None or (module is chain.act and chain.shared_act):
                continue
            for parent, name in sites.get(id(module), []):
                setattr(parent, name, Identity())
        if chain.shared_act:
            conv.__class__ = (_MarkedConvTranspose2d if isinstance(conv, ConvTranspose2d)
                              else _MarkedConv2d)
            shared.setdefault(id(chain.act), (chain.act, []))[1].append(conv)
    for act, convs in shared.values():
        for parent, name in sites.get(id(act), []):
            setattr(parent, name, _AfterFused(act, convs))


def _fuse_residual_sums(model):
    """Fuse each declared residual sum (the module docstring) whose batch norm was folded."""
    for module in model.modules():
        names = getattr(type(module), "_residual_sum", None)
        if names is None or module.residual_fused:
            continue
        conv, bn, act = (getattr(module, name) for name in names)
        if isinstance(act, _AfterFused):
            act = act.act
        kind = _activation_kind(act)
        ep = getattr(conv, "epilogue", None)
        if (isinstance(bn, Identity) and isinstance(conv, (Conv2d, ConvTranspose2d))
                and ep is not None and ep.activation is None and kind is not None):
            conv.epilogue = _epilogue.Epilogue(scale=ep.scale, shift=ep.shift, **kind)
            module.residual_fused = True


def _example(model):
    """A (1, C, 224, 224) input for the first convolution's channels and dtype, or None."""
    for module in model.modules():
        if isinstance(module, (Conv2d, ConvTranspose2d)):
            rng = np.random.default_rng(0)
            shape = (1, module.in_channels, _TRACE_SIZE, _TRACE_SIZE)
            return rng.standard_normal(shape).astype(module.dtype)
    return None


def _needs_trace(model):
    """Whether some module holding others has its own forward (not a container's)."""
    from .containers import ModuleDict, ModuleList
    return any(m._modules and not isinstance(m, (Sequential, ModuleList, ModuleDict))
               for m in model.modules())


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(a), initial=0)), 1e-30)
    tol = 1e-4 if a.dtype == np.float32 else 1e-10
    return bool(np.all(np.abs(a - b) <= tol * scale))


def fuse(model, example_input=None):
    """A copy of model, in eval mode, computing the same function with each BatchNorm2d
    folded into the convolution before it and the activation after them fused into that
    convolution's epilogue (see this module's docstring for exactly what is fused and how it
    is found). The model passed is not changed.

    example_input: an array the model accepts, run once to find the chains inside custom
    forward methods. If None and the model has such methods, fuse runs a (1, C, 224, 224)
    array of the first convolution's channels; if the model cannot take that, only the
    Sequential chains are fused, with a warning saying to pass example_input.

    The fused model's state_dict is not the original's (BatchNorm layers become Identity):
    load weights before fusing.
    """
    if not isinstance(model, Module):
        raise TypeError(f"fuse: model must be a cconv.nn.Module, got {type(model).__name__}")
    fused, chains = _sequential_fused(model)
    if not _needs_trace(fused):
        return fused
    example = example_input if example_input is not None else _example(fused)
    if example is None:
        return fused
    try:
        traced, expected = _traced_chains(fused, example, {id(c.conv) for c in chains})
    except Exception as exc:  # noqa: BLE001 - any failure means the example does not fit
        if example_input is not None:
            raise
        warnings.warn(f"fuse: the model did not run on a {example.shape} example input "
                      f"({type(exc).__name__}: {exc}); fused only Sequential chains, pass "
                      f"example_input= to fuse the rest", stacklevel=2)
        return fused
    if not traced:
        return fused
    _apply(fused, traced)
    _fuse_residual_sums(fused)
    if _close(fused(example), expected):
        return fused
    warnings.warn("fuse: the chains found by running the example changed the model's "
                  "result; fused only Sequential chains", stacklevel=2)
    return _sequential_fused(model)[0]


def _sequential_fused(model):
    """(A copy of model in eval mode with its Sequential chains fused, those chains)."""
    fused = copy.deepcopy(model).eval()
    chains = _sequential_chains(fused)
    _apply(fused, chains)
    return fused, chains

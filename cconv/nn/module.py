"""Module, as torch.nn.Module for inference: children, parameters and buffers registered by
name, torch's state_dict keys and load_state_dict, the train/eval flag, and torch's repr.

The model of parameters and buffers (numpy has no Parameter type):
- `register_parameter(name, array)` and `register_buffer(name, array, persistent=True)`
  register an array under a name; assigning an array to a registered name replaces it;
  assigning an array to any other name makes a plain attribute, as torch does for a tensor.
  A parameter is float32 or float64; a buffer any numeric or boolean array.
- The arrays a module holds are read-only copies: change one by assignment or
  load_state_dict, never in place. So a layer may keep what it derives from an array (Conv2d's
  packed weights) for as long as it holds that array.
- state_dict() returns copies (torch's tensors share the module's memory; writing into those
  copies changes nothing).
- Assigning a Module registers a child, in order.

Registered arrays and children are also plain instance attributes, so reading one is an
ordinary attribute read: there is no __getattr__, which would keep CPython from specialising
any attribute read of any layer, on the hot path too; nor is `self.__dict__` touched, which
would do the same to a lesser degree. `_parameters`, `_buffers` and `_modules` keep the names
in registration order; only Module's methods and the containers write them.

Inference only: `training` is the flag train() and eval() set, for code that reads it; the one
cconv layer that computes differently in training mode is BatchNorm2d, which then normalises
with the batch's statistics as torch's does (Dropout is always the identity).
"""
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import _params

__all__ = ["Module", "IncompatibleKeys"]

# The key torch keeps a module's get_extra_state() under; no cconv module has extra state.
_EXTRA_STATE = "_extra_state"


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What load_state_dict returns, as torch's _IncompatibleKeys (and printed as it is)."""
    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def to_numpy(value):
    """A torch tensor (which may require grad) or any array-like, as a numpy array (a tensor
    through detach().cpu().numpy(); anything else as numpy reads it)."""
    detach = getattr(value, "detach", None)
    if callable(detach) and hasattr(value, "numpy"):
        return detach().cpu().numpy()
    return value


def _typename(value):
    cls = type(value)
    return cls.__qualname__ if cls.__module__ == "builtins" else \
        f"{cls.__module__}.{cls.__qualname__}"


def _readonly_copy(arr, dtype=None):
    if dtype is None:
        dtype = arr.dtype.newbyteorder("=")
    arr = np.array(arr, dtype=dtype, order="C", copy=True)
    arr.flags.writeable = False
    return arr


def _numeric(fn, name, value):
    """`value` as an ndarray of a numeric or boolean dtype (a buffer's)."""
    try:
        arr = np.asarray(to_numpy(value))
    except Exception as exc:  # any array-like that numpy cannot read
        raise TypeError(f"{fn}(): {name} must be a numeric array, got {_typename(value)} "
                        f"({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{fn}(): {name} must be a numeric array, got dtype {arr.dtype}")
    return arr


def _state_value(fn, key, value, current):
    """A state_dict value for the array `current`, as an array of its kind: float32/float64
    for a floating array (a parameter), else numeric. Not yet cast: the shape is checked
    first."""
    if current.dtype.kind == "f":
        return _params.as_float_array(fn, key, to_numpy(value))
    return _numeric(fn, key, value)


def _addindent(text, spaces):
    """torch's indentation of a child's repr: every line but the first, blank ones left."""
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first] + [" " * spaces + line if line.strip() else "" for line in rest])


class Module:
    """Base class of cconv's layers and models, as torch.nn.Module for inference.

    Subclasses call super().__init__() first, assign children and register arrays as with
    torch, and define forward(); calling a module calls forward.
    """

    def __init__(self):
        # Set directly: __setattr__ reads them.
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", OrderedDict())
        set_(self, "_buffers", OrderedDict())
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_modules", OrderedDict())

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function')

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- pickling (copy.deepcopy, multiprocessing, Dask workers) ---------------------------
    def __setstate__(self, state):
        """Restore a pickled or deep-copied module. numpy gives back writeable arrays, so the
        registered ones are made read-only again: a layer may keep what it derived from
        them only while nobody can write into them."""
        self.__dict__.update(state)
        for registry in (self._parameters, self._buffers):
            for arr in registry.values():
                if arr is not None:
                    arr.flags.writeable = False

    # ---- registration ---------------------------------------------------------------------
    def _forget_array(self, name):
        """Unregister `name` as a parameter or buffer (its attribute stays)."""
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def _check_name(self, what, name, registry):
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string. Got {_typename(name)}")
        if "." in name:
            raise KeyError(f'{what} name can\'t contain "."' +
                           (f", got: {name}" if what == "module" else ""))
        if name == "":
            raise KeyError(f'{what} name can\'t be empty string ""')
        if hasattr(self, name) and name not in registry:
            raise KeyError(f"attribute '{name}' already exists")

    def add_module(self, name, module):
        """Register `module` (or None) as the child `name`, as torch.nn.Module.add_module."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
        if not hasattr(self, "_modules"):
            raise AttributeError("cannot assign module before Module.__init__() call")
        self._check_name("module", name, self._modules)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    def register_parameter(self, name, param):
        """Register `param` (an array of float32 or float64, copied and made read-only, or
        None) as the parameter `name`."""
        if not hasattr(self, "_parameters"):
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        self._check_name("parameter", name, self._parameters)
        arr = None if param is None else self._parameter_array(name, param)
        self._parameters[name] = arr
        object.__setattr__(self, name, arr)

    def register_buffer(self, name, tensor, persistent=True):
        """Register `tensor` (a numeric array, copied and made read-only, or None) as the
        buffer `name`; a persistent buffer is part of the state_dict."""
        if not hasattr(self, "_buffers"):
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        self._check_name("buffer", name, self._buffers)
        arr = None if tensor is None else self._buffer_array(name, tensor)
        self._buffers[name] = arr
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)
        object.__setattr__(self, name, arr)

    def _parameter_array(self, name, value):
        fn = f"{type(self).__name__}.{name}"
        try:
            arr = _params.as_float_array(fn, name, to_numpy(value))
        except TypeError:
            raise TypeError(f"cannot assign '{_typename(value)}' object to parameter '{name}' "
                            f"(an array of float32 or float64, or None, required)") from None
        return _readonly_copy(arr)

    def _buffer_array(self, name, value):
        try:
            arr = _numeric(type(self).__name__, name, value)
        except TypeError:
            raise TypeError(f"cannot assign '{_typename(value)}' object to buffer '{name}' "
                            f"(a numeric array or None required)") from None
        return _readonly_copy(arr)

    def __setattr__(self, name, value):
        modules = getattr(self, "_modules", None)
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget_array(name)
            modules[name] = value               # in place if it was a child: same position
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign '{_typename(value)}' as child module "
                                f"'{name}' (cconv.nn.Module or None expected)")
            modules[name] = None
        elif name in getattr(self, "_parameters", ()):
            value = None if value is None else self._parameter_array(name, value)
            self._parameters[name] = value
        elif name in getattr(self, "_buffers", ()):
            value = None if value is None else self._buffer_array(name, value)
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._forget_array(name)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ---- the arrays of one module, which a layer keeping them elsewhere overrides ---------
    def _own_parameters(self):
        """[(name, array or None)] of this module's parameters, in registration order."""
        return list(self._parameters.items())

    def _own_buffers(self):
        """[(name, array or None)] of this module's buffers, in registration order."""
        return list(self._buffers.items())

    def _own_state(self):
        """{name: array} this module puts in a state_dict: its parameters, then its
        persistent buffers, none that is None."""
        skip = self._non_persistent_buffers_set
        state = {name: arr for name, arr in self._own_parameters() if arr is not None}
        state.update((name, arr) for name, arr in self._own_buffers()
                     if arr is not None and name not in skip)
        return state

    def _set_own_state(self, arrays):
        """Take loaded arrays {name: read-only array of the current dtype and shape}."""
        for name, arr in arrays.items():
            registry = self._parameters if name in self._parameters else self._buffers
            registry[name] = arr
            object.__setattr__(self, name, arr)

    # ---- traversal, in torch's order and with its prefixes ---------------------------------
    def named_children(self):
        memo = set()
        for name, module in self._modules.items():
            if module is not None and module not in memo:
                memo.add(module)
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """(name, module) of this module and all below it, depth first; each module once
        unless remove_duplicate is False."""
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, prefix + ("." if prefix else "") + name,
                                                remove_duplicate)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def _named_members(self, own, prefix, recurse, remove_duplicate):
        memo = set()
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else [(prefix, self)])
        for module_prefix, module in modules:
            for name, arr in own(module):
                # Arrays are not hashable: their identity is.
                if arr is None or id(arr) in memo:
                    continue
                if remove_duplicate:
                    memo.add(id(arr))
                yield module_prefix + ("." if module_prefix else "") + name, arr

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """(name, array) of the parameters, as torch names them; the arrays themselves,
        read-only."""
        yield from self._named_members(lambda m: m._own_parameters(), prefix, recurse,
                                       remove_duplicate)

    def parameters(self, recurse=True):
        for _, arr in self.named_parameters(recurse=recurse):
            yield arr

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        yield from self._named_members(lambda m: m._own_buffers(), prefix, recurse,
                                       remove_duplicate)

    def buffers(self, recurse=True):
        for _, arr in self.named_buffers(recurse=recurse):
            yield arr

    # ---- state_dict -----------------------------------------------------------------------
    def state_dict(self):
        """OrderedDict of torch's keys ('0.weight', 'conv.bias') to copies of the arrays:
        each module's parameters, then its persistent buffers, then its children's."""
        state = OrderedDict()

        def save(module, prefix):
            for name, arr in module._own_state().items():
                state[prefix + name] = arr.copy()
            for name, child in module._modules.items():
                if child is not None:
                    save(child, prefix + name + ".")

        save(self, "")
        return state

    def load_state_dict(self, state_dict, strict=True):
        """Load every parameter and persistent buffer from a mapping of torch's keys to
        numpy arrays, torch tensors (a torch model's state_dict() as it is) or anything numpy
        reads, cast to the current dtype. As torch: with strict, missing and unexpected keys
        are errors; a shape mismatch always is. All is checked before anything is loaded: a
        failed load changes nothing. Returns (missing_keys, unexpected_keys)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        fn = f"{type(self).__name__}.load_state_dict"
        missing, unexpected, errors, loads = [], [], [], []

        def load(module, keys, prefix):
            local = module._own_state()
            arrays = {}
            for name, current in local.items():
                key = prefix + name
                if key not in state_dict:
                    missing.append(key)
                    continue
                value = _state_value(fn, key, state_dict[key], current)
                if value.shape != current.shape:
                    errors.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{value.shape} from checkpoint, the shape in current model "
                                  f"is {current.shape}.")
                    continue
                arrays[name] = _readonly_copy(value, current.dtype)
            loads.append((module, arrays))
            extra = prefix + _EXTRA_STATE
            if extra in keys:
                unexpected.append(extra)
            for key in keys:
                # A dotted name must be a child's; the child judges the rest.
                head, dot, _ = key[len(prefix):].partition(".")
                if key != extra and (head not in module._modules if dot else head not in local):
                    unexpected.append(key)
            for name, child in module._modules.items():
                if child is not None:
                    child_prefix = prefix + name + "."
                    load(child, [k for k in keys if k.startswith(child_prefix)], child_prefix)

        load(self, [k for k in state_dict if isinstance(k, str)], "")
        if strict and unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: {}. ".format(
                ", ".join(f'"{k}"' for k in unexpected)))
        if strict and missing:
            errors.insert(0, "Missing key(s) in state_dict: {}. ".format(
                ", ".join(f'"{k}"' for k in missing)))
        if errors:
            raise ValueError("Error(s) in loading state_dict for {}:\n\t{}".format(
                type(self).__name__, "\n\t".join(errors)))
        for module, arrays in loads:
            if arrays:
                module._set_own_state(arrays)
        return IncompatibleKeys(missing, unexpected)

    # ---- mode -----------------------------------------------------------------------------
    def train(self, mode=True):
        """Set `training` on this module and all below it; returns self. A flag that only
        BatchNorm2d reads (batch statistics in training mode, as torch)."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """train(False); returns self."""
        return self.train(False)

    # ---- repr -----------------------------------------------------------------------------
    def extra_repr(self):
        """The layer's own settings, printed inside its parentheses; '' by default."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_addindent(repr(module), 2)}"
                       for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        text = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                text += extra_lines[0]
            else:
                text += "\n  " + "\n  ".join(lines) + "\n"
        return text + ")"

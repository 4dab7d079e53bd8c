"""Sequential, ModuleList and ModuleDict, as torch.nn's: modules held in order under the names
torch gives them ('0', '1', ... or the keys), so their state_dict keys are torch's.
"""
import operator
from collections import OrderedDict
from collections.abc import Iterable, Mapping

from .module import Module, _addindent, _typename

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


def _renumber(container, modules):
    """Hold `modules` as the children '0', '1', ..., as torch keeps a list after an insertion
    or a deletion. Checked first: a bad module leaves the container as it was."""
    for module in modules:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{_typename(module)} is not a Module subclass")
    for name in list(container._modules):
        delattr(container, name)
    for i, module in enumerate(modules):
        container.add_module(str(i), module)


def _index(container, idx):
    """The position of `idx` (an int, negative from the end) among the children."""
    size = len(container)
    idx = operator.index(idx)
    if not -size <= idx < size:
        raise IndexError(f"index {idx} is out of range")
    return idx % size


def _insert_position(container, index):
    n = len(container)
    index = operator.index(index)
    if not -n <= index <= n:
        raise IndexError(f"Index out of range: {index}")
    return index + n if index < 0 else index


class Sequential(Module):
    """Modules called in order, each on the previous one's output (torch.nn.Sequential).

    Sequential(*modules), named '0', '1', ...; or Sequential(OrderedDict(name=module, ...)).
    A slice is a Sequential of the same modules under the same names.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, module in args[0].items():
                self.add_module(key, module)
        else:
            for idx, module in enumerate(args):
                self.add_module(str(idx), module)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(self, idx)]

    def __setitem__(self, idx, module):
        setattr(self, list(self._modules)[_index(self, idx)], module)

    def __delitem__(self, idx):
        names = list(self._modules)
        for name in (names[idx] if isinstance(idx, slice) else [names[_index(self, idx)]]):
            delattr(self, name)
        _renumber(self, list(self._modules.values()))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def insert(self, index, module):
        if not isinstance(module, Module):
            raise TypeError(f"module should be of type: {Module}")
        modules = list(self._modules.values())
        modules.insert(_insert_position(self, index), module)
        _renumber(self, modules)
        return self

    def extend(self, sequential):
        for module in sequential:
            self.append(module)
        return self

    def forward(self, input):
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(Module):
    """Modules held in a list (torch.nn.ModuleList), named '0', '1', ...; no forward."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_index(self, idx))]

    def __setitem__(self, idx, module):
        setattr(self, str(_index(self, idx)), module)

    def __delitem__(self, idx):
        modules = list(self._modules.values())
        del modules[idx if isinstance(idx, slice) else _index(self, idx)]
        _renumber(self, modules)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __iadd__(self, modules):
        return self.extend(modules)

    def insert(self, index, module):
        """Insert `module` before position `index` (negative from the end, as list.insert;
        past the end appends)."""
        modules = list(self._modules.values())
        modules.insert(operator.index(index), module)
        _renumber(self, modules)

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        if not isinstance(modules, Iterable):
            raise TypeError("ModuleList.extend should be called with an iterable, but got "
                            + type(modules).__name__)
        offset = len(self)
        for i, module in enumerate(modules):
            self.add_module(str(offset + i), module)
        return self

    def __repr__(self):
        """torch's: runs of equal modules printed once, as '(2-4): 3 x Conv2d(...)'."""
        reprs = [repr(module) for module in self]
        if not reprs:
            return self._get_name() + "()"
        runs = []                                   # [first, last, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = [_addindent(f"({first}): {text}" if first == last else
                            f"({first}-{last}): {last - first + 1} x {text}", 2)
                 for first, last, text in runs]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """Modules held by name (torch.nn.ModuleDict), in insertion order; no forward."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key):
        return self._modules[key]

    def __setitem__(self, key, module):
        self.add_module(key, module)

    def __delitem__(self, key):
        self._modules[key]              # a KeyError for a key it has not
        delattr(self, key)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key):
        return key in self._modules

    def clear(self):
        for key in list(self._modules):
            delattr(self, key)

    def pop(self, key):
        module = self[key]
        del self[key]
        return module

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def update(self, modules):
        """Add or replace modules from a mapping, or from an iterable of (key, module)."""
        if not isinstance(modules, Iterable):
            raise TypeError("ModuleDict.update should be called with an iterable of "
                            "key/value pairs, but got " + type(modules).__name__)
        if isinstance(modules, (Mapping, ModuleDict)):
            for key, module in modules.items():
                self[key] = module
            return
        for j, pair in enumerate(modules):
            if not isinstance(pair, Iterable):
                raise TypeError(f"ModuleDict update sequence element #{j} should be "
                                f"Iterable; is{type(pair).__name__}")
            pair = list(pair)
            if len(pair) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} has length "
                                 f"{len(pair)}; 2 is required")
            self[pair[0]] = pair[1]

"""The .pyi stubs (shipped with py.typed) match the code: every public name of each stubbed
module is in its stub and the other way round, and each function's or method's parameters
(names, kinds, defaults) are those inspect.signature finds at run time. The stubs are read
with ast, so no type checker is needed."""
import ast
import importlib
import inspect
from pathlib import Path

import pytest

import cconv
from cconv import _planner

PACKAGE = Path(cconv.__file__).parent
# "modules", "nn/__init__", ...: every stub of the package, subpackages' too.
STUBS = sorted(p.relative_to(PACKAGE).with_suffix("").as_posix() for p in PACKAGE.rglob("*.pyi"))
ANY_DEFAULT = object()      # the stub's `= ...`: some default, not spelt out


def module_of(stub):
    name = ".".join(["cconv", *stub.split("/")])
    return importlib.import_module(name.removesuffix(".__init__"))


def parse(stub):
    return ast.parse((PACKAGE / f"{stub}.pyi").read_text(), f"{stub}.pyi")


def stub_parameters(node):
    """[(name, kind, default)] of a stub's def, as inspect.Parameter describes them."""
    a, P = node.args, inspect.Parameter
    positional = [(p, P.POSITIONAL_ONLY) for p in a.posonlyargs] + [
        (p, P.POSITIONAL_OR_KEYWORD) for p in a.args]
    defaults = [P.empty] * (len(positional) - len(a.defaults)) + list(a.defaults)
    params = [(p.arg, kind, d) for (p, kind), d in zip(positional, defaults)]
    if a.vararg:
        params.append((a.vararg.arg, P.VAR_POSITIONAL, P.empty))
    params += [(p.arg, P.KEYWORD_ONLY, P.empty if d is None else d)
               for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    if a.kwarg:
        params.append((a.kwarg.arg, P.VAR_KEYWORD, P.empty))
    return [(name, kind, default if default is P.empty else
             ANY_DEFAULT if isinstance(default, ast.Constant) and default.value is ...
             else ast.literal_eval(default)) for name, kind, default in params]


def runtime_parameters(obj):
    return [(p.name, p.kind, p.default) for p in inspect.signature(obj).parameters.values()]


def assert_same_parameters(node, obj, where):
    stub, runtime = stub_parameters(node), runtime_parameters(obj)
    assert [s[:2] for s in stub] == [r[:2] for r in runtime], (where, stub, runtime)
    for (name, _, s), (_, _, r) in zip(stub, runtime):
        if s is ANY_DEFAULT:
            assert r is not inspect.Parameter.empty, f"{where}: {name} has no default"
        else:
            assert type(s) is type(r) and s == r, f"{where}: {name}={s!r} in the stub, {r!r}"


def definitions(body):
    """{name: node} of a stub body's defs, classes and annotated names (a property's setter
    is its getter's)."""
    found = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found.setdefault(node.name, node)
        elif isinstance(node, ast.AnnAssign):
            found[node.target.id] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                found[target.id] = node
    return found


def stub_exports(stub):
    """The names a stub gives its module: definitions and `from .x import y as y`."""
    tree = parse(stub)
    names = {n for n in definitions(tree.body) if not n.startswith("_") or n == "__version__"}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level >= 1:
            names |= {a.asname for a in node.names if a.asname == a.name}
    return names


def test_every_public_module_has_a_stub():
    assert {"__init__", "functional", "modules", "testing", "nn/__init__", "nn/module",
            "nn/containers", "nn/views", "nn/normalization", "nn/linear",
            "nn/resample", "models/__init__", "models/resnet", "models/mobilenetv2",
            "models/unet"} <= set(STUBS)
    assert (PACKAGE / "py.typed").is_file()


@pytest.mark.parametrize("stub", STUBS)
def test_stub_names_are_the_public_names(stub):
    module = module_of(stub)
    assert set(stub_exports(stub)) >= set(module.__all__), stub
    stub_all = next(ast.literal_eval(n.value) for n in parse(stub).body
                    if isinstance(n, ast.Assign) and n.targets[0].id == "__all__")
    assert stub_all == module.__all__
    for name in stub_exports(stub):
        assert hasattr(module, name), f"{stub}.pyi has {name}, cconv has not"


def stubbed_callables():
    """(id, stub def, the runtime object) of every function and method a stub declares."""
    cases = []
    for stub in STUBS:
        module = module_of(stub)
        for name, node in definitions(parse(stub).body).items():
            if isinstance(node, ast.FunctionDef):
                cases.append((f"{stub}.{name}", node, getattr(module, name)))
            elif isinstance(node, ast.ClassDef) and hasattr(module, name):
                cls = getattr(module, name)
                for attr, member in definitions(node.body).items():
                    if isinstance(member, ast.FunctionDef):
                        cases.append((f"{stub}.{name}.{attr}", member, getattr(cls, attr)))
    return cases


CALLABLES = stubbed_callables()


@pytest.mark.parametrize(("node", "obj"), [c[1:] for c in CALLABLES],
                         ids=[c[0] for c in CALLABLES])
def test_stub_signature_is_the_runtime_signature(node, obj):
    decorators = {ast.unparse(d) for d in node.decorator_list}
    if "property" in decorators:
        assert isinstance(obj, property), f"{node.name} is not a property at run time"
        assert_same_parameters(node, obj.fget, node.name)
    else:
        assert_same_parameters(node, obj, node.name)


@pytest.mark.parametrize("cls", [cconv.Conv2d, cconv.ConvTranspose2d])
def test_module_attributes_of_the_stub_exist(cls):
    node = definitions(parse("modules").body)["_ConvNd"]
    module = cls(2, 2, 3, rng=0)
    for name, member in definitions(node.body).items():
        assert hasattr(module, name), name
        if isinstance(member, ast.FunctionDef) and "property" in {
                ast.unparse(d) for d in member.decorator_list}:
            assert isinstance(getattr(cls, name), property), name


def test_algorithm_literal_is_the_planners_list():
    tree = parse("functional")
    node = next(n for n in tree.body if isinstance(n, ast.Assign)
                and n.targets[0].id == "_Algorithm")
    values = tuple(ast.literal_eval(e) for e in node.value.slice.elts)
    assert values == _planner.ALGORITHMS


@pytest.mark.parametrize("stub", STUBS)
def test_public_class_members_are_in_the_stub(stub):
    """A method or property a class gains at run time needs its stub too (an inherited one
    is found in its base class's stub, whichever stub that is)."""
    module = module_of(stub)
    own = [n for n in parse(stub).body if isinstance(n, ast.ClassDef)]
    classes = {n.name: n for other in STUBS for n in parse(other).body
               if isinstance(n, ast.ClassDef)}
    classes.update((n.name, n) for n in own)

    def members(node):
        names = set(definitions(node.body))
        for base in node.bases:
            if isinstance(base, ast.Name) and base.id in classes:
                names |= members(classes[base.id])
        return names

    for node in own:
        name = node.name
        if name.startswith("_") or not inspect.isclass(getattr(module, name, None)):
            continue
        cls = getattr(module, name)
        public = {n for n in dir(cls) if not n.startswith("_")
                  and (callable(getattr(cls, n)) or isinstance(getattr(cls, n), property))}
        if issubclass(cls, tuple):
            public -= set(dir(tuple))
        assert public <= members(node), (name, public - members(node))

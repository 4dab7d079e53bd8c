"""Importing cconv without its compiled core (a source checkout not built) says so in plain
words, and how to build it; a kernel that is there but cannot load keeps its own error."""
import importlib.machinery
import shutil
from pathlib import Path

import pytest
from conftest import CCONV_HOME, run_python

PACKAGE = Path(CCONV_HOME) / "cconv"
KERNELS = sorted(p.stem for p in (PACKAGE / "_kernels").glob("*.pyx"))


def unbuilt_copy(tmp_path):
    """The package under test copied into tmp_path without its compiled modules."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    shutil.copytree(PACKAGE, tmp_path / "cconv", ignore=lambda d, names: [
        n for n in names if n.endswith(suffixes) or n == "__pycache__"])
    return tmp_path / "cconv"


def test_import_without_the_compiled_core_says_how_to_build_it(tmp_path):
    if not KERNELS:
        pytest.skip("this cconv has no kernel sources (.pyx) to tell what is missing")
    copy = unbuilt_copy(tmp_path)
    r = run_python(["-c", "import cconv"], cwd=tmp_path)
    assert r.returncode == 1
    last = r.stderr[r.stderr.index("ImportError: "):]
    assert last.startswith("ImportError: cconv's compiled core is not built: no "
                           f"{', '.join(KERNELS)} for this Python"), r.stderr
    for words in ("pip install .", "python setup.py build_ext --inplace",
                  "importing this unbuilt source checkout", "run Python from another directory",
                  str(copy / "_kernels"), "cannot import name"):
        assert words in last, (words, r.stderr)


def test_a_kernel_that_cannot_load_keeps_its_own_error(tmp_path):
    """Every kernel there, but not a shared object: the loader's error, not 'not built'."""
    copy = unbuilt_copy(tmp_path)
    for name in KERNELS:
        (copy / "_kernels" / (name + importlib.machinery.EXTENSION_SUFFIXES[0])).write_bytes(
            b"not a shared object")
    r = run_python(["-c", "import cconv"], cwd=tmp_path)
    assert r.returncode == 1 and "ImportError" in r.stderr, r.stderr
    assert "not built" not in r.stderr, r.stderr

"""cconv: PyTorch-exact 2-D convolutions on the CPU, with numpy and nothing else.

    conv2d, conv_transpose2d      as torch.nn.functional
    Epilogue                      scale, shift, residual and activation fused into the output
    Conv2d, ConvTranspose2d       as torch.nn (numpy weights; load a torch state_dict)
    nn                            torch.nn's inference subset: Module, containers, layers
    models                        ResNet-18/50, MobileNetV2 (torchvision's keys), a U-Net;
                                  loaded on first use
    set_num_threads, get_num_threads, show_config
    set_winograd, get_winograd    allow or forbid the Winograd algorithm (CCONV_WINOGRAD=0)
    load                          a torch.save state_dict, .npz or .safetensors file as numpy
                                  arrays, without torch
"""
__version__ = "0.1.0"


def _not_built(error):
    """The ImportError to raise when `error` comes from compiled kernels that are not there
    (a source checkout not built, or built for another Python), else None: a kernel that is
    there but fails to load (say, a shared library missing) keeps its own message."""
    import importlib.machinery
    import os
    import sys

    kernels = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_kernels")
    try:
        files = os.listdir(kernels)
    except OSError:
        return None
    names = sorted(f[:-4] for f in files if f.endswith(".pyx"))
    built = {f[:-len(s)] for f in files for s in importlib.machinery.EXTENSION_SUFFIXES
             if f.endswith(s)}
    missing = [name for name in names if name not in built]
    if not missing:
        return None
    version = ".".join(map(str, sys.version_info[:2]))
    return ImportError(
        f"cconv's compiled core is not built: no {', '.join(missing)} for this Python "
        f"({version}) in {kernels}.\n"
        f"Build it from cconv's source directory:\n"
        f"    pip install .                          install it (the kernels are compiled)\n"
        f"    python setup.py build_ext --inplace    or compile them in place, to run from "
        f"the checkout\n"
        f"If cconv is installed, Python is importing this unbuilt source checkout instead (it "
        f"is in the current directory or on PYTHONPATH): run Python from another directory.\n"
        f"({type(error).__name__}: {error})")


try:
    # nn before modules: cconv.modules subclasses nn.Module, and nn re-exports its classes.
    from . import nn
    from ._config import show_config
    from ._epilogue import Epilogue
    from ._planner import get_winograd, set_winograd
    from ._threads import get_num_threads, set_num_threads
    from .functional import conv2d, conv_transpose2d
    from .modules import Conv2d, ConvTranspose2d
except ImportError as _error:
    _exc = _not_built(_error)
    if _exc is None:
        raise
    raise _exc from None

__all__ = ["conv2d", "conv_transpose2d", "Conv2d", "ConvTranspose2d", "Epilogue", "nn",
           "models", "set_num_threads", "get_num_threads", "set_winograd",
           "get_winograd", "show_config", "load",
           "__version__"]


def __getattr__(name):
    # cconv.models loads on first use (PEP 562): `import cconv` stays light.
    if name == "models":
        import importlib
        return importlib.import_module(".models", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


def load(path):
    """The tensors of a torch.save state_dict, .npz or .safetensors file: an OrderedDict
    name -> numpy array (C-contiguous, native byte order, owning its memory), read without
    torch and without running any code from the file (cconv._checkpoint)."""
    # zipfile, json and the unpickler load on first use, not with `import cconv`.
    from ._checkpoint import load as read
    return read(path)

del _not_built

"""Build cconv's compiled core: the Cython drivers in cconv/_kernels and their C micro-kernels.

Environment switches (all optional):
  CCONV_DEBUG=1        Cython bounds/wraparound/initialisation checks on, -O1 -g
  CCONV_SANITIZE=...   e.g. "address,undefined": build with those sanitizers (tools/sanitize.sh)
  CCONV_NATIVE=1       add -march=native (a build for this machine only)

One default build runs on every CPU of its architecture: the wider instruction sets are
compiled through `target` attributes in the micro-kernel headers and chosen at import.
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["_runtime", "_igemm", "_depthwise", "_elementwise", "_softmax", "_pool",
           "_winograd"]


def _flag(name):
    return os.environ.get(name, "").strip() not in ("", "0")


def _flags():
    # -fno-tree-loop-distribute-patterns: GCC turns the short zero-fill and copy loops
    # around the kernels (a band row's padding, a few elements) into memset/memcpy calls
    # that cost more than the loops on small layers (docs/decisions.md; clang ignores the
    # flag with a warning).
    compile_args = ["-std=c11", "-ffp-contract=fast", "-Wno-unused-function",
                    "-Wno-unreachable-code", "-fno-tree-loop-distribute-patterns"]
    link_args = []
    if os.name == "posix":
        # The thread pool (threadpool.h): cconv's threads are its own, no OpenMP runtime.
        compile_args.append("-pthread")
        link_args.append("-pthread")
    if _flag("CCONV_DEBUG"):
        compile_args += ["-O1", "-g"]
    else:
        # -g0: Python's CFLAGS carry -g; debug info would triple the installed size.
        compile_args += ["-O3", "-g0"]
    if _flag("CCONV_NATIVE"):
        compile_args += ["-march=native"]
    sanitize = os.environ.get("CCONV_SANITIZE", "").strip()
    if sanitize:
        compile_args += [f"-fsanitize={sanitize}", "-fno-omit-frame-pointer", "-g",
                         "-fno-sanitize-recover=all"]
        link_args += [f"-fsanitize={sanitize}"]
    return compile_args, link_args


def _extensions():
    compile_args, link_args = _flags()
    # Recorded for cconv.show_config(): the flags this build was made with.
    build_flags = " ".join(compile_args).replace('"', "")
    return [
        Extension(
            f"cconv._kernels.{name}",
            [f"cconv/_kernels/{name}.pyx"],
            include_dirs=["cconv/_kernels"],
            # The C headers: an edit to one rebuilds the extensions that may include it.
            depends=sorted(glob.glob("cconv/_kernels/*.h")),
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            define_macros=[("CC_BUILD_FLAGS", f'"{build_flags}"')],
        )
        for name in KERNELS
    ]


def _directives():
    checks = _flag("CCONV_DEBUG")
    return {
        "language_level": 3,
        "boundscheck": checks,
        "wraparound": checks,
        "initializedcheck": checks,
        "cdivision": True,
        "embedsignature": True,
    }


setup(
    ext_modules=cythonize(_extensions(), compiler_directives=_directives(),
                          include_path=["cconv/_kernels"]),
)

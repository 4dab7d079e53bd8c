"""Build cconv's compiled core: the Cython drivers in cconv/_kernels and their C micro-kernels.

Environment switches (all optional):
  CCONV_DEBUG=1        Cython bounds/wraparound/initialisation checks on, -O1 -g
  CCONV_SANITIZE=...   e.g. "address,undefined": build with those sanitizers (tools/sanitize.sh)
  CCONV_NATIVE=1       add -march=native (a build for this machine only)
  CCONV_NO_OPENMP=1    build without OpenMP even if the compiler has it

One default build runs on every CPU of its architecture: the wider instruction sets are
compiled through `target` attributes in the micro-kernel headers and chosen at import.
"""
import os
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = ["_runtime", "_igemm", "_depthwise", "_elementwise", "_softmax", "_pool"]


def _flag(name):
    return os.environ.get(name, "").strip() not in ("", "0")


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return cc.split()


def _has_openmp():
    """Whether the compiler builds and runs an OpenMP program (probed, not assumed)."""
    if _flag("CCONV_NO_OPENMP"):
        return False
    src = textwrap.dedent("""
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel num_threads(2) reduction(+:n)
            n += 1;
            return n == 2 ? 0 : 1;
        }
    """)
    with tempfile.TemporaryDirectory() as tmp:
        c_file = os.path.join(tmp, "probe.c")
        exe = os.path.join(tmp, "probe")
        with open(c_file, "w") as f:
            f.write(src)
        try:
            subprocess.run(_compiler() + ["-fopenmp", c_file, "-o", exe], check=True,
                           capture_output=True, timeout=120)
            subprocess.run([exe], check=True, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
    return True


def _flags():
    # -fno-tree-loop-distribute-patterns: GCC turns the short zero-fill and copy loops
    # around the kernels (a band row's padding, a few elements) into memset/memcpy calls
    # that cost more than the loops on small layers (docs/decisions.md; clang ignores the
    # flag with a warning).
    compile_args = ["-std=c11", "-ffp-contract=fast", "-Wno-unused-function",
                    "-Wno-unreachable-code", "-fno-tree-loop-distribute-patterns"]
    link_args = []
    if os.name == "posix":
        # The thread pool (threadpool.h).
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
    openmp = _has_openmp()
    if openmp:
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    else:
        bar = "!" * 78
        print(f"\n{bar}\ncconv: the C compiler has no working OpenMP; building a SERIAL "
              f"cconv.\nIt will use one thread. Install libgomp (gcc) or libomp (clang) "
              f"and rebuild for threads.\n{bar}\n", file=sys.stderr)
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

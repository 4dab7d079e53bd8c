"""show_config(): what this build of cconv is and what it will use."""
import platform
import sys

import numpy as np

from . import _isa, _planner, _threads
from ._kernels import _runtime


def config():
    """The facts show_config() prints, as a dict."""
    try:
        threads = _threads.get_num_threads()
    except ValueError as exc:  # a bad OMP_NUM_THREADS: report it rather than fail
        threads = f"invalid ({exc})"
    from . import __version__
    return {
        "version": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "machine": platform.machine(),
        "thread_pool": _runtime.thread_pool,
        "winograd": _planner.get_winograd(),
        "threads": threads,
        "isa": _isa.current_name(),
        "isa_supported": list(_isa.SUPPORTED),
        "isa_compiled": list(_isa.NAMES),
        "compiler": _runtime.compiler,
        "flags": _runtime.build_flags,
    }


def show_config(file=None):
    """Print version, whether the thread pool is built in, threads, compiler and flags, and
    the instruction set in use (with those the CPU supports and those compiled in)."""
    c = config()
    lines = [
        f"cconv {c['version']} (Python {c['python']}, numpy {c['numpy']}, {c['machine']})",
        f"  thread pool:    {'on' if c['thread_pool'] else 'OFF (no pthreads: one thread)'}",
        f"  threads:        {c['threads']}",
        f"  winograd:       {'on' if c['winograd'] else 'off (CCONV_WINOGRAD=0 or set_winograd)'}",
        f"  isa in use:     {c['isa']}   (supported: {', '.join(c['isa_supported'])}; "
        f"compiled: {', '.join(c['isa_compiled'])})",
        f"  compiler:       {c['compiler']}",
        f"  flags:          {c['flags']}",
    ]
    print("\n".join(lines), file=file or sys.stdout)

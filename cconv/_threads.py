"""The one source of truth for how many threads a cconv call uses.

The count is `set_num_threads(n)` if called, else `OMP_NUM_THREADS`, else the CPUs this process
may run on. A call then uses `threads_for(work_items, flops)` of them: one for small problems
(a parallel region costs more than it saves), never more than there are work items.

The threads themselves are cconv's own pool's (cconv/_kernels/threadpool.h), not an OpenMP
runtime's: a call returns once its work items are done, never waiting for a worker that the
scheduler has not run (decisions: Thread pool).

Fork safety: a forked child has none of its parent's threads, and a lock another thread held
at the fork stays held in it, so every forked child is held to one thread
(os.register_at_fork), whatever it asks for. Processes started with 'spawn' or 'forkserver'
are not affected.
"""
import operator
import os

# Below this many floating-point operations a call runs on one thread: starting and joining
# a team, and the second core's cold caches, cost more than it saves (decisions:
# MIN_FLOPS_PARALLEL).
MIN_FLOPS_PARALLEL = 2_000_000
# The most threads one call starts: oversubscribing the CPUs gains nothing, and each pool
# thread needs a stack.
MAX_THREADS = max(256, 4 * (os.cpu_count() or 1))

_requested = None           # set_num_threads(n), or None for the environment's default
_default = None             # the environment's default, read once
_forked = False             # we are a forked child: one thread


def _cpus_available():
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):
        return max(os.cpu_count() or 1, 1)


def _from_environment():
    """OMP_NUM_THREADS (its first entry, as OpenMP reads it), else the available CPUs."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if not raw:
        return _cpus_available()
    first = raw.split(",")[0].strip()
    try:
        n = int(first)
    except ValueError:
        raise ValueError(f"OMP_NUM_THREADS={raw!r} is not a positive integer; unset it or "
                         f"call cconv.set_num_threads(n)") from None
    if n < 1:
        raise ValueError(f"OMP_NUM_THREADS={raw!r} must be at least 1; unset it or call "
                         f"cconv.set_num_threads(n)")
    return n


def get_num_threads():
    """The number of threads cconv may use per call (before small problems use fewer).
    OMP_NUM_THREADS is read at the first call (as OpenMP reads it at start-up)."""
    global _default
    if _forked:
        return 1
    requested = _requested
    if requested is not None:
        return requested
    if _default is None:
        _default = _from_environment()
    return _default


def set_num_threads(n):
    """Use at most n threads per call from now on (n >= 1); None restores the default."""
    global _requested, _default
    if n is None:
        _requested = _default = None
        return
    if isinstance(n, bool):
        raise TypeError(f"set_num_threads(): n must be an int >= 1, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads(): n must be an int >= 1, got "
                        f"{type(n).__name__} {n!r}") from None
    if n < 1:
        raise ValueError(f"set_num_threads(): n must be >= 1, got {n}")
    _requested = n


def threads_for(work_items, flops, available):
    """Threads for one call with `work_items` independent items and `flops` operations, when
    `available` (get_num_threads()) may be used: never more than MAX_THREADS (an absurd
    request such as set_num_threads(10**6) would only start threads that find no work)."""
    if flops < MIN_FLOPS_PARALLEL or work_items < 2:
        return 1
    return min(available, work_items, MAX_THREADS)


def _after_fork_in_child():
    global _forked
    _forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

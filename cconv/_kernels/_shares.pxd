# cython: language_level=3
"""How a call's work items are shared among its threads (inline, compiled into each driver).

Each thread first takes the items of its own share, the same ones on every call, so what it
computed last time (weights, input and output) is still in its core's cache; then it takes
what is left of the other threads' shares, so a thread that starts late (its core was idle
and is slow to wake) or is descheduled does not hold the call up. Each share has an atomic
counter of the items taken from it, on a cache line of its own: every item is taken exactly
once, and computed whole by the thread that takes it, so the result does not depend on which
thread that is.
"""
from ._sizes cimport split_start

cdef extern from *:
    """
    static inline Py_ssize_t cc_fetch_add(Py_ssize_t *p, Py_ssize_t v)
    {
        return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
    }
    """
    Py_ssize_t cc_fetch_add(Py_ssize_t *p, Py_ssize_t v) noexcept nogil


cdef enum:
    SHARE_PAD = 16               # counters 128 bytes apart (a line and its prefetched pair)


cdef struct Shares:
    Py_ssize_t total             # items 0 .. total - 1
    int nthreads
    bint dealt                   # share t: items t, t + nthreads, ...; else a contiguous range
    Py_ssize_t *taken            # per share, SHARE_PAD apart: how many were taken


cdef inline void shares_init(Shares *s, Py_ssize_t total, int nthreads, bint dealt,
                             Py_ssize_t *counters) noexcept nogil:
    """Shares of `total` items for nthreads threads. Assumes: counters holds
    nthreads * SHARE_PAD entries."""
    cdef int t
    s.total, s.nthreads, s.dealt, s.taken = total, nthreads, dealt, counters
    for t in range(nthreads):
        counters[t * SHARE_PAD] = 0


cdef inline Py_ssize_t share_size(const Shares *s, int t) noexcept nogil:
    if s.dealt:
        return (s.total - t + s.nthreads - 1) // s.nthreads if t < s.total else 0
    return split_start(t + 1, s.total, s.nthreads) - split_start(t, s.total, s.nthreads)


cdef inline Py_ssize_t take(Shares *s, int tid) noexcept nogil:
    """The next item for thread tid: from its own share, else from another's; -1 when every
    item has been taken."""
    cdef int v, u
    cdef Py_ssize_t k
    for v in range(s.nthreads):
        u = tid + v
        if u >= s.nthreads:
            u -= s.nthreads
        k = cc_fetch_add(&s.taken[u * SHARE_PAD], 1)
        if k < share_size(s, u):
            return u + k * s.nthreads if s.dealt else split_start(u, s.total, s.nthreads) + k
    return -1

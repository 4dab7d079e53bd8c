# cython: language_level=3
"""The process's one thread pool (threadpool.h), which every driver's parallel pass runs
through."""

ctypedef void (*body_fn)(void *arg, int tid) noexcept nogil

cdef void pool_run(body_fn body, void *arg, int nthreads) noexcept nogil

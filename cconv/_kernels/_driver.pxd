# cython: language_level=3
"""The parallel driver every algorithm runs its work items through (inline, compiled into
each): one run of the thread pool (_runtime.pool_run, threadpool.h) per pass over a call's
items (a functional call that packs its weights first makes two), each thread with its own
slice of the workspace and subnormals flushed, items taken from the shares of _shares.pxd. The
pass ends when its items are done: a worker the scheduler has not run by then (another
process holds its core) is not waited for, as an OpenMP region's end would wait.

    item_fn(ctx, item, ws)       computes work item `item` whole into the output, with `ws`
                                 (per_thread bytes, on a cache line) as its scratch memory

Every item is computed by exactly one thread in a fixed order, so the result does not depend
on which thread took it: bitwise identical for any thread count.
"""
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._runtime cimport pool_run
from ._shares cimport SHARE_PAD, Shares, shares_init, take


cdef extern from "isa.h" nogil:
    unsigned long cc_flush_denormals()
    void cc_restore_fp_mode(unsigned long old)


ctypedef void (*item_fn)(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil


cdef inline char *line_up(void *p) noexcept nogil:
    """p rounded up to the next 64-byte cache line (a workspace has that much slack)."""
    return <char *> ((<size_t> p + 63) & ~(<size_t> 63))


cdef struct Pass:
    item_fn fn
    const void *ctx
    char *base                   # the workspace, on a cache line
    Py_ssize_t per_thread
    bint zero_ws
    bint flush                   # subnormals flushed (the convolutions), or IEEE as torch
    Shares shares


cdef inline void run_share(void *arg, int tid) noexcept nogil:
    """One thread's part of a pass: its workspace slice, then items until none is left."""
    cdef Pass *p = <Pass *> arg
    cdef char *wsp = p.base + tid * p.per_thread
    cdef unsigned long fp_mode = 0
    cdef Py_ssize_t item
    if p.flush:
        fp_mode = cc_flush_denormals()
    if p.zero_ws:
        memset(wsp, 0, p.per_thread)
    item = take(&p.shares, tid)
    while item >= 0:
        p.fn(p.ctx, item, wsp)
        item = take(&p.shares, tid)
    if p.flush:
        cc_restore_fp_mode(fp_mode)


cdef inline void run_items(item_fn fn, const void *ctx, Py_ssize_t total, void *ws,
                           Py_ssize_t per_thread, bint zero_ws, bint dealt, int nthreads,
                           Py_ssize_t *counters) noexcept nogil:
    """Items 0 .. total - 1 of the call on nthreads threads. ws: from _buffers.workspace(),
    nthreads * per_thread bytes and a line of slack; zero_ws: each thread zeroes its slice
    first. dealt: shares dealt round-robin, else contiguous (_shares.pxd).
    Assumes: counters holds nthreads * SHARE_PAD entries
    (nthreads > 1)."""
    cdef Py_ssize_t item
    cdef unsigned long fp_mode
    cdef char *base = line_up(ws)
    cdef Pass p
    if nthreads == 1:
        # No parallel region for one thread: it would cost more than a tiny layer.
        fp_mode = cc_flush_denormals()
        if zero_ws:
            memset(base, 0, per_thread)
        for item in range(total):
            fn(ctx, item, base)
        cc_restore_fp_mode(fp_mode)
        return
    p.fn, p.ctx, p.base, p.per_thread, p.zero_ws = fn, ctx, base, per_thread, zero_ws
    p.flush = True
    shares_init(&p.shares, total, nthreads, dealt, counters)
    pool_run(run_share, &p, nthreads)


cdef inline void run_plain(item_fn fn, const void *ctx, Py_ssize_t total,
                           int nthreads) noexcept nogil:
    """Items 0 .. total - 1 on nthreads threads, in contiguous shares, without workspace and
    with the caller's floating-point mode (subnormals kept, as torch's element-wise and
    pooling kernels keep them): the passes of the layers between convolutions."""
    cdef Pass p
    cdef Py_ssize_t item
    cdef Py_ssize_t *counters = NULL
    if nthreads > 1:
        counters = <Py_ssize_t *> malloc(nthreads * SHARE_PAD * sizeof(Py_ssize_t))
    if counters == NULL:
        # One thread, or no memory for the shares' counters: the caller computes them all.
        for item in range(total):
            fn(ctx, item, NULL)
        return
    p.fn, p.ctx, p.base, p.per_thread, p.zero_ws, p.flush = fn, ctx, NULL, 0, False, False
    shares_init(&p.shares, total, nthreads, False, counters)
    pool_run(run_share, &p, nthreads)
    free(counters)

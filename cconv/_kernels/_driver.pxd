# cython: language_level=3
"""The parallel driver every algorithm runs its work items through (inline, compiled into
each): one parallel region per pass over a call's items (a functional call that packs its
weights first makes two), each thread with its own slice of the workspace and subnormals
flushed, items taken from the shares of _shares.pxd.

    item_fn(ctx, item, ws)       computes work item `item` whole into the output, with `ws`
                                 (per_thread bytes, on a cache line) as its scratch memory

Every item is computed by exactly one thread in a fixed order, so the result does not depend
on which thread took it: bitwise identical for any thread count.
"""
from cython.parallel cimport parallel, threadid
from libc.string cimport memset

from ._shares cimport SHARE_PAD, Shares, shares_init, take


cdef extern from "isa.h" nogil:
    unsigned long cc_flush_denormals()
    void cc_restore_fp_mode(unsigned long old)


ctypedef void (*item_fn)(const void *ctx, Py_ssize_t item, char *ws) noexcept nogil


cdef inline char *line_up(void *p) noexcept nogil:
    """p rounded up to the next 64-byte cache line (a workspace has that much slack)."""
    return <char *> ((<size_t> p + 63) & ~(<size_t> 63))


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
    cdef char *wsp
    cdef Shares sh
    cdef int tid
    if nthreads == 1:
        # No parallel region for one thread: it would cost more than a tiny layer.
        fp_mode = cc_flush_denormals()
        if zero_ws:
            memset(base, 0, per_thread)
        for item in range(total):
            fn(ctx, item, base)
        cc_restore_fp_mode(fp_mode)
        return
    shares_init(&sh, total, nthreads, dealt, counters)
    with parallel(num_threads=nthreads):
        tid = threadid()
        wsp = base + tid * per_thread
        fp_mode = cc_flush_denormals()
        if zero_ws:
            memset(wsp, 0, per_thread)
        item = take(&sh, tid)
        while item >= 0:
            fn(ctx, item, wsp)
            item = take(&sh, tid)
        cc_restore_fp_mode(fp_mode)

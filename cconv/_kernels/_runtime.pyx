# cython: language_level=3
"""What this build can run: its instruction-set variants (isa.h), whether it has its thread
pool, and how it was compiled. Read once at import by cconv._isa and cconv.show_config().
Also home to the process's one thread pool (threadpool.h), compiled here only."""

cdef extern from "isa.h" nogil:
    int CC_NUM_ISAS
    int cc_isa_supported(int isa)
    const char *cc_isa_name(int isa)

cdef extern from "threadpool.h" nogil:
    void cc_pool_run(body_fn body, void *arg, int nthreads)
    int cc_pool_hold(int held)
    unsigned long cc_pool_left(int moved)


cdef void pool_run(body_fn body, void *arg, int nthreads) noexcept nogil:
    """body(arg, tid) on the caller (tid 0) and the pool's workers 1 .. nthreads - 1; returns
    when every body that started has returned (threadpool.h)."""
    cc_pool_run(body, arg, nthreads)


def pool_hold(bint held):
    """Tests: while held, the pool's workers start no call, as if the scheduler never ran
    them (another process holds their cores). Returns the previous setting."""
    return bool(cc_pool_hold(held))


def pool_left(bint moved=False):
    """Tests: how many calls a pool worker has left to its caller because it found itself on
    the caller's CPU and could not move (threadpool.h); with moved, how many times one
    moved to another CPU instead."""
    return cc_pool_left(moved)


cdef extern from *:
    """
    #ifdef _WIN32
    #define CC_THREAD_POOL 0
    #else
    #define CC_THREAD_POOL 1
    #endif
    #ifndef CC_BUILD_FLAGS
    #define CC_BUILD_FLAGS "unknown"
    #endif
    #if defined(__clang__)
    #define CC_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define CC_COMPILER "gcc " __VERSION__
    #else
    #define CC_COMPILER "unknown"
    #endif
    """
    int CC_THREAD_POOL
    const char *CC_COMPILER
    const char *CC_BUILD_FLAGS


def isa_names():
    """Names of the variants compiled into this build, lowest (the baseline) first."""
    return tuple(cc_isa_name(i).decode() for i in range(CC_NUM_ISAS))


def isa_supported():
    """For each compiled variant, whether this CPU runs it."""
    return tuple(bool(cc_isa_supported(i)) for i in range(CC_NUM_ISAS))


thread_pool = bool(CC_THREAD_POOL)
compiler = CC_COMPILER.decode()
build_flags = CC_BUILD_FLAGS.decode()


def line_offset(const unsigned char[::1] buf):
    """Bytes from the start of buf (non-empty) to the next 64-byte boundary: what
    numpy's .ctypes.data would tell, for less than it costs (a functional call aligns its
    packed weights with it)."""
    return (-<Py_ssize_t> &buf[0]) & 63

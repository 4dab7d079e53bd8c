# cython: language_level=3
"""Integer helpers of the kernels' size and index arithmetic (inline, compiled into each).

Sizes saturate at PY_SSIZE_T_MAX instead of wrapping, so a geometry too large for the
platform (32-bit: Py_ssize_t wraps at 2**31) comes out as too large, never as a small
wrapped number; divisions round as Python's do for either sign.
"""
from cython cimport floating

cdef extern from "Python.h":
    const Py_ssize_t PY_SSIZE_T_MAX


cdef inline Py_ssize_t mul_sat(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """a * b, or PY_SSIZE_T_MAX where that would overflow (a size no buffer can have).
    Assumes: a, b >= 0."""
    if b != 0 and a > PY_SSIZE_T_MAX // b:
        return PY_SSIZE_T_MAX
    return a * b


cdef inline Py_ssize_t add_sat(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """a + b, or PY_SSIZE_T_MAX where that would overflow. Assumes: a, b >= 0."""
    return PY_SSIZE_T_MAX if a > PY_SSIZE_T_MAX - b else a + b


cdef inline floating *line_aligned(floating *p) noexcept nogil:
    """p rounded up to the next 64-byte cache line (the workspace has that much slack)."""
    return <floating *> ((<size_t> p + 63) & ~(<size_t> 63))


cdef inline Py_ssize_t round_line(Py_ssize_t n, Py_ssize_t itemsize) noexcept nogil:
    """n elements rounded up to whole 64-byte cache lines (saturating, as mul_sat)."""
    cdef Py_ssize_t per_line = 64 // itemsize
    return add_sat(n, per_line - 1) // per_line * per_line


cdef inline Py_ssize_t gcd(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Greatest common divisor of a, b >= 0 (gcd(a, 0) == a)."""
    while b:
        a, b = b, a % b
    return a


cdef inline Py_ssize_t fdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Floor of a / b for any sign of a (the build uses C division, which truncates).
    Assumes: b > 0."""
    cdef Py_ssize_t q = a // b
    if q * b > a:
        q -= 1
    return q


cdef inline Py_ssize_t cdiv(Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Ceiling of a / b for any sign of a. Assumes: b > 0."""
    return -fdiv(-a, b)


cdef inline Py_ssize_t split_start(Py_ssize_t i, Py_ssize_t total,
                                   Py_ssize_t parts) noexcept nogil:
    """Start of part i when `total` items are split into `parts` parts whose sizes differ by
    at most one (the larger first). Written without i * total, which could overflow.
    Assumes: 0 <= i <= parts, parts > 0."""
    return i * (total // parts) + min(i, total % parts)

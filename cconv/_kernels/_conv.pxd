# cython: language_level=3
"""The geometry of one convolution as the kernels take it: a C copy of the checked
cconv._params.ConvParams, made once when a kernel is prepared (inline, compiled into each)."""


cdef struct Conv:
    Py_ssize_t N, C_in, H, W           # input
    Py_ssize_t C_out, H_out, W_out     # output
    Py_ssize_t groups, Cg, Mg          # groups; input and output channels per group
    Py_ssize_t KH, KW                  # weight taps


cdef inline Conv conv_of(object params) except *:
    """params (a ConvParams, checked by cconv._params) as a Conv."""
    cdef Conv c
    c.N, c.C_in, c.H, c.W = params.N, params.C_in, params.H, params.W
    c.C_out, c.H_out, c.W_out = params.C_out, params.H_out, params.W_out
    c.groups, c.KH, c.KW = params.groups, params.KH, params.KW
    c.Cg = c.C_in // c.groups
    c.Mg = c.C_out // c.groups
    return c

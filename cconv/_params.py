"""Argument checking and normalisation: every error of a bad argument to conv2d,
conv_transpose2d, Conv2d or ConvTranspose2d (a call, a constructor, a weight, a state_dict) is
raised here or, for the modules' own arguments, in _module_params.py. Elsewhere only:
algorithm= and a workspace too large to allocate (_planner.py), the thread count and
OMP_NUM_THREADS (_threads.py), CCONV_ISA (_isa.py).

PyTorch's semantics and, where it has them, its words. The result of checking a call is one
frozen `ConvParams`, which the planner and the kernels take as the whole truth about sizes.
Sizes are Python ints checked against the platform's Py_ssize_t before anything is
allocated, so the kernels' index arithmetic (including intermediate values such as
`oh*stride + kh*dilation`) cannot overflow, on 32-bit platforms too.
"""
import operator
import sys
from dataclasses import dataclass
from functools import cached_property

import numpy as np

# Every extent the kernels compute with (padded sizes, offsets, element counts, byte counts)
# stays below this, leaving headroom for the sums of a few of them.
SIZE_LIMIT = sys.maxsize // 16

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class ConvParams:
    """The complete, checked geometry of one convolution call.

    For conv2d, (H_out, W_out) follow from the input, kernel, stride, padding and dilation;
    for conv_transpose2d (transposed=True) the roles of input and output swap and
    output_padding adds to the bottom/right. `padding` is (top, bottom, left, right).
    """
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    KH: int
    KW: int
    stride: tuple
    padding: tuple
    dilation: tuple
    groups: int
    H_out: int
    W_out: int
    transposed: bool = False
    output_padding: tuple = (0, 0)

    @property
    def Cg(self):
        """Input channels per group."""
        return self.C_in // self.groups

    @property
    def Mg(self):
        """Output channels per group."""
        return self.C_out // self.groups

    # Computed once per instance (cached_property writes the instance's __dict__, which a
    # frozen dataclass allows): a call looks them up a few times, and repeated calls get the
    # same instance (from a module's plans, or functional's prepared calls).
    @cached_property
    def flops(self):
        """Floating-point operations (2 per multiply-add) over the whole batch."""
        if self.transposed:
            return 2 * self.N * self.C_in * self.H * self.W * self.Mg * self.KH * self.KW
        return 2 * self.N * self.C_out * self.H_out * self.W_out * self.Cg * self.KH * self.KW

    @cached_property
    def _hash(self):
        # The fields, listed: dataclasses.astuple deep-copies them, far slower (decisions:
        # ConvParams). Equal instances have equal fields, so equal hashes.
        return hash((self.N, self.C_in, self.H, self.W, self.C_out, self.KH, self.KW,
                     self.stride, self.padding, self.dilation, self.groups, self.H_out,
                     self.W_out, self.transposed, self.output_padding))

    def __hash__(self):
        return self._hash

    @property
    def input_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @cached_property
    def output_shape(self):
        return (self.N, self.C_out, self.H_out, self.W_out)


def int_pair(fn, name, value, minimum):
    """`value` as a pair of ints >= minimum: an int, or a sequence of one or two ints."""
    if type(value) is int and minimum <= value <= SIZE_LIMIT:  # the common case, fast
        return (value, value)
    if isinstance(value, (list, tuple)):
        items = list(value)
        if len(items) == 1:
            items = items * 2
        if len(items) != 2:
            raise ValueError(f"{fn}(): expected {name} to be a single integer value or a "
                             f"list of 2 values to match the convolution dimensions, but got "
                             f"{name}={list(value)}")
    else:
        items = [value, value]
    pair = []
    for v in items:
        if isinstance(v, bool) or not _is_int(v):
            raise TypeError(f"{fn}(): {name} must be an int or a pair of ints, got "
                            f"{value!r}")
        pair.append(operator.index(v))
    if min(pair) < minimum:
        what = {0: "negative {} is not supported", 1: "non-positive {} is not supported"}
        raise ValueError(f"{fn}(): " + what[minimum].format(name) + f", got {name}={value!r}")
    if max(pair) > SIZE_LIMIT:
        raise ValueError(f"{fn}(): {name}={value!r} is too large (at most {SIZE_LIMIT})")
    return tuple(pair)


def positive_int(fn, name, value):
    if isinstance(value, bool) or not _is_int(value):
        raise TypeError(f"{fn}(): {name} must be an int, got {type(value).__name__} "
                        f"{value!r}")
    value = operator.index(value)
    if value < 1:
        raise ValueError(f"{fn}(): non-positive {name} is not supported, got {name}={value}")
    if value > SIZE_LIMIT:
        raise ValueError(f"{fn}(): {name}={value} is too large (at most {SIZE_LIMIT})")
    return value


def _is_int(v):
    try:
        operator.index(v)
    except TypeError:
        return False
    return True


def conv_padding(fn, padding, kernel, dilation, stride):
    """(top, bottom, left, right) from an int, a pair, 'valid' or 'same'.

    'same' keeps the input size (stride 1 only); when the total padding
    dilation*(k-1) is odd, the extra row/column goes to the bottom/right, as in PyTorch.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{fn}(): padding='same' is not supported for strided "
                                 f"convolutions, got stride={stride}")
            th = dilation[0] * (kernel[0] - 1)
            tw = dilation[1] * (kernel[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"{fn}(): invalid padding string {padding!r}, expected 'valid', "
                         f"'same', an int or a pair of ints")
    ph, pw = int_pair(fn, "padding", padding, 0)
    return (ph, ph, pw, pw)


def as_float_array(fn, name, value):
    """`value` as an ndarray of float32 or float64, any layout (no copy when it is one)."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        if value is None:
            raise TypeError(f"{fn}(): {name} must be an array, got None")
        try:
            arr = np.asarray(value)
        except Exception as exc:  # any array-like that numpy cannot read
            raise TypeError(f"{fn}(): {name} must be an array of float32 or float64, got "
                            f"{type(value).__name__} ({exc})") from None
    if arr.dtype.kind != "f" or arr.dtype.itemsize not in (4, 8):
        raise TypeError(f"{fn}(): {name} must have dtype float32 or float64, got "
                        f"{arr.dtype} (cast with .astype(numpy.float32))")
    return arr


def contiguous(arr, dtype):
    """C-contiguous, aligned, native-byte-order copy of arr in dtype, or arr itself if it
    already is. (Misaligned data, e.g. np.frombuffer at an odd offset, is copied: the kernels
    load whole items, which C requires aligned.)"""
    if (arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.aligned
            and arr.dtype.isnative):
        return arr
    return np.array(arr, dtype=dtype, order="C", copy=True)


def check_same_dtype(fn, input, weight, bias):
    """The dtype of the call: input, weight and bias must agree (PyTorch refuses mixtures)."""
    dtype = input.dtype
    if (dtype in DTYPES and weight.dtype == dtype
            and (bias is None or bias.dtype == dtype)):  # the common case, fast
        return dtype
    dtype = dtype.newbyteorder("=")
    for name, arr in (("weight", weight), ("bias", bias)):
        if arr is not None and arr.dtype.newbyteorder("=") != dtype:
            raise TypeError(f"{fn}(): input has dtype {dtype} but {name} has dtype "
                            f"{arr.dtype.newbyteorder('=')}; they must be the same (cast one "
                            f"with .astype(...))")
    return np.dtype(dtype.name)


def batched(fn, input):
    """(input as 4-D, whether it was unbatched)."""
    if input.ndim == 4:
        return input, False
    if input.ndim == 3:
        return input[None], True
    raise ValueError(f"{fn}(): expected 3D (unbatched) or 4D (batched) input, but got "
                     f"input of size: {list(input.shape)}")


def check_weight(fn, weight, name="weight"):
    if weight.ndim != 4:
        raise ValueError(f"{fn}(): expected {name} to be 4-dimensional, but got {name} of "
                         f"size {list(weight.shape)}")
    if weight.shape[2] < 1 or weight.shape[3] < 1:
        raise ValueError(f"{fn}(): kernel size should be greater than zero, but got "
                         f"kernel_height: {weight.shape[2]} kernel_width: {weight.shape[3]}")


def check_bias(fn, bias, weight, channels):
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != channels):
        raise ValueError(f"{fn}(): given weight of size {list(weight.shape)}, expected bias "
                         f"to be 1-dimensional with {channels} elements, but got bias of size "
                         f"{list(bias.shape)} instead")


def check_nonempty(fn, x_shape):
    """An input (4-D shape) with no pixels is refused unless its batch or its channels are
    empty, as PyTorch refuses it (an empty batch gives an empty result; no channels give the
    bias)."""
    N, C, H, W = x_shape
    if N and C and not (H and W):
        raise ValueError(f"{fn}(): only zero batch or zero channel inputs are supported, but "
                         f"got input of size {list(x_shape)} (expected height and width of "
                         f"at least 1)")


def check_sizes(fn, *shapes, itemsize=8):
    """Every shape's element count must stay far from overflow (the kernels index elements
    with Py_ssize_t; on 32-bit that allows arrays of 2**27 elements: 512 MiB of float32)."""
    for shape in shapes:
        count = 1
        for s in shape:
            count *= s
        if count > SIZE_LIMIT:
            raise MemoryError(f"{fn}(): an array of shape {tuple(shape)} would need "
                              f"{count * itemsize} bytes, more than this platform can "
                              f"address")


def conv2d_params(fn, x_shape, w_shape, stride, padding, dilation, groups):
    """ConvParams of conv2d(input of x_shape (4-D), weight of w_shape), all checked.

    stride, dilation: pairs; padding: (top, bottom, left, right); groups: positive int.
    """
    N, C_in, H, W = x_shape
    C_out, Cg, KH, KW = w_shape
    if C_out % groups:
        raise ValueError(f"{fn}(): given groups={groups}, expected weight to be divisible by "
                         f"{groups} at dimension 0, but got weight of size {list(w_shape)} "
                         f"instead")
    if C_out < 1:
        raise ValueError(f"{fn}(): given groups={groups}, expected weight to be at least 1 at "
                         f"dimension 0, but got weight of size {list(w_shape)} instead")
    if C_in != Cg * groups:
        raise ValueError(f"{fn}(): given groups={groups}, weight of size {list(w_shape)}, "
                         f"expected input{list(x_shape)} to have {Cg * groups} channels, but "
                         f"got {C_in} channels instead")
    pt, pb, pl, pr = padding
    Hp, Wp = H + pt + pb, W + pl + pr
    eh, ew = dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1
    if Hp < eh or Wp < ew:
        raise ValueError(f"{fn}(): calculated padded input size per channel: ({Hp} x {Wp}). "
                         f"Kernel size: ({eh} x {ew}). Kernel size can't be greater than "
                         f"actual input size")
    check_nonempty(fn, x_shape)
    if max(Hp, Wp, eh, ew) > SIZE_LIMIT:
        raise ValueError(f"{fn}(): padded input ({Hp} x {Wp}) or dilated kernel ({eh} x {ew}) "
                         f"is too large (at most {SIZE_LIMIT})")
    H_out = (Hp - eh) // stride[0] + 1
    W_out = (Wp - ew) // stride[1] + 1
    params = ConvParams(N, C_in, H, W, C_out, KH, KW, tuple(stride), tuple(padding),
                        tuple(dilation), groups, H_out, W_out)
    check_sizes(fn, params.output_shape)
    return params


def conv_transpose2d_params(fn, x_shape, w_shape, stride, padding, output_padding, dilation,
                            groups):
    """ConvParams of conv_transpose2d(input of x_shape (4-D), weight of w_shape), all checked.

    weight is (C_in, C_out/groups, kH, kW); padding is the pair (ph, pw) removed from both
    sides of the full output; output_padding adds rows/columns at the bottom/right.
    """
    N, C_in, H, W = x_shape
    C_in_w, Mg, KH, KW = w_shape
    if C_in_w % groups:
        raise ValueError(f"{fn}(): given groups={groups}, expected weight to be divisible by "
                         f"{groups} at dimension 0, but got weight of size {list(w_shape)} "
                         f"instead")
    if C_in != C_in_w:
        raise ValueError(f"{fn}(): given transposed=1, weight of size {list(w_shape)}, "
                         f"expected input{list(x_shape)} to have {C_in_w} channels, but got "
                         f"{C_in} channels instead")
    if Mg < 1:
        raise ValueError(f"{fn}(): expected weight to be at least 1 at dimension 1, but got "
                         f"weight of size {list(w_shape)}")
    for i, axis in enumerate(("height", "width")):
        if output_padding[i] >= stride[i] and output_padding[i] >= dilation[i]:
            raise ValueError(f"{fn}(): output padding must be smaller than either stride or "
                             f"dilation, but got output_padding_{axis}: {output_padding[i]} "
                             f"stride_{axis}: {stride[i]} dilation_{axis}: {dilation[i]}")
    check_nonempty(fn, x_shape)
    ph, pw = padding
    sizes = []
    for size, s, p, d, k, op in ((H, stride[0], ph, dilation[0], KH, output_padding[0]),
                                 (W, stride[1], pw, dilation[1], KW, output_padding[1])):
        if max(size * s, d * k, 2 * p) > SIZE_LIMIT:
            raise ValueError(f"{fn}(): input size {size} x stride {s}, dilated kernel "
                             f"{d} x {k} or padding {p} is too large (at most {SIZE_LIMIT})")
        sizes.append((size - 1) * s - 2 * p + d * (k - 1) + op + 1)
    # An empty batch may have an empty output (PyTorch gives one), never a negative size.
    if min(sizes) < (1 if N else 0):
        raise ValueError(f"{fn}(): given input size per channel: ({H} x {W}). Calculated "
                         f"output size per channel: ({sizes[0]} x {sizes[1]}). Output size "
                         f"is too small")
    params = ConvParams(N, C_in, H, W, Mg * groups, KH, KW, tuple(stride),
                        (ph, ph, pw, pw), tuple(dilation), groups, sizes[0], sizes[1],
                        transposed=True, output_padding=tuple(output_padding))
    check_sizes(fn, params.output_shape)
    return params


def plain(values):
    """Whether every value is an int, a str or a tuple of ints: arguments that may key a cache
    (bools and numpy ints are excluded, so that True never hits the entry of 1)."""
    for value in values:
        t = type(value)
        if t is tuple:
            for v in value:     # no generator: this runs on every functional call
                if type(v) is not int:
                    return False
        elif t is not int and t is not str:
            return False
    return True


def conv2d_geometry(fn, x_shape, w_shape, stride, padding, dilation, groups):
    """ConvParams of conv2d from shapes and the user's stride/padding/dilation/groups."""
    groups = positive_int(fn, "groups", groups)
    stride = int_pair(fn, "stride", stride, 1)
    dilation = int_pair(fn, "dilation", dilation, 1)
    pads = conv_padding(fn, padding, tuple(w_shape[2:]), dilation, stride)
    return conv2d_params(fn, tuple(x_shape), tuple(w_shape), stride, pads, dilation, groups)


def conv_transpose2d_geometry(fn, x_shape, w_shape, stride, padding, output_padding, groups,
                              dilation):
    """ConvParams of conv_transpose2d from shapes and the user's arguments."""
    groups = positive_int(fn, "groups", groups)
    stride = int_pair(fn, "stride", stride, 1)
    dilation = int_pair(fn, "dilation", dilation, 1)
    padding = int_pair(fn, "padding", padding, 0)
    output_padding = int_pair(fn, "output_padding", output_padding, 0)
    return conv_transpose2d_params(fn, tuple(x_shape), tuple(w_shape), stride, padding,
                                   output_padding, dilation, groups)


def check_out(fn, out, shape, dtype, *inputs):
    """`out=` must be a writeable, C-contiguous ndarray of exactly the result's shape and
    dtype, not overlapping any input."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{fn}(): out must be a numpy.ndarray, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"{fn}(): out has shape {tuple(out.shape)}, expected {tuple(shape)}")
    if out.dtype != dtype:
        raise ValueError(f"{fn}(): out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{fn}(): out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{fn}(): out is read-only")
    for arr in inputs:
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"{fn}(): out overlaps an input array; pass a separate array")
    return out

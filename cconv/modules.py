"""Conv2d, as torch.nn.Conv2d: owns numpy weights, packs them once, loads a torch state_dict.

The weights live in one immutable snapshot (weight, bias, packed forms). Assigning `.weight`
or `.bias` or calling `load_state_dict` builds a new snapshot and swaps it in with a single
assignment; a call reads the snapshot once at its start. So new weights always take effect,
packed weights are never stale, and a call running while another thread loads new weights
computes entirely with the old or entirely with the new ones, never a mixture. The arrays
`.weight` and `.bias` are read-only: change them by assignment, not in place.

Both are cconv.nn.Module subclasses (state_dict, load_state_dict, repr, children of a model);
a call goes straight to forward, with no Module machinery in between.

`.epilogue` (a cconv.Epilogue, or None) is fused into every call's output, and forward's
`residual=` added before its activation (cconv._epilogue); it is pickled and shown in the
repr, not part of the state_dict (torch has no such parameters).
"""
import numpy as np

from . import _cache, _engine, _epilogue, _isa, _module_params, _params, _planner, _threads
from .nn.module import IncompatibleKeys as IncompatibleKeys  # load_state_dict's, once here
from .nn.module import Module

__all__ = ["Conv2d", "ConvTranspose2d"]

PADDING_MODES = _module_params.PADDING_MODES
_NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}

# Packed forms a module keeps of its weights, each as big as the weights: one per layout its
# calls needed (the algorithm and blocking the input size chose, the taps a tiny input
# reaches). A module called at many sizes repacks rather than growing without bound.
PACKED_LAYOUTS_MAX = 4
# Input sizes a module remembers the plan of.
PLANS_MAX = 64


class _Snapshot:
    """Weights and their packed forms, replaced whole, never modified (but `packed`, a cache
    filled on first use per layout, at most PACKED_LAYOUTS_MAX of them; concurrent fills
    compute the same value)."""
    __slots__ = ("weight", "bias", "packed")

    def __init__(self, weight, bias):
        self.weight = weight
        self.bias = bias
        self.packed = _cache.Cache(PACKED_LAYOUTS_MAX)


def _readonly(arr):
    arr.flags.writeable = False
    return arr


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: weights, state_dict, repr, padding modes."""

    _fn = "Conv2d"
    transposed = False
    _epilogue = None

    def _init_common(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                     groups, bias, padding_mode, dtype, output_padding=0):
        fn = type(self).__name__
        self.in_channels, self.out_channels, self.groups = _module_params.module_channels(
            fn, in_channels, out_channels, groups)
        self.kernel_size = _params.int_pair(fn, "kernel_size", kernel_size, 1)
        self.stride = _params.int_pair(fn, "stride", stride, 1)
        self.dilation = _params.int_pair(fn, "dilation", dilation, 1)
        self.output_padding = _params.int_pair(fn, "output_padding", output_padding, 0)
        self.padding_mode = _module_params.module_padding_mode(fn, padding_mode)
        if isinstance(padding, str):
            # Checks the string (and 'same' with strides) exactly as a call would.
            self._pads = _params.conv_padding(fn, padding, self.kernel_size, self.dilation,
                                              self.stride)
            self.padding = padding
        else:
            self.padding = _params.int_pair(fn, "padding", padding, 0)
            self._pads = (self.padding[0], self.padding[0], self.padding[1], self.padding[1])
        self.dtype = _module_params.module_dtype(fn, dtype)
        self._has_bias = _module_params.bias_flag(fn, bias)
        _module_params.check_weight_elements(fn, self._weight_shape(), self.kernel_size)
        self._plans = _cache.Cache(PLANS_MAX)

    @property
    def epilogue(self):
        """The cconv.Epilogue fused into each call's output, or None."""
        return self._epilogue

    @epilogue.setter
    def epilogue(self, value):
        self._epilogue = _epilogue.check_epilogue(type(self).__name__, value,
                                                  self.out_channels)

    # ---- pickling (copy.deepcopy, multiprocessing, Dask workers) ------------------------
    def __getstate__(self):
        """The module without its caches (compiled kernels, packed weights): a copy rebuilds
        them on its first call."""
        state = self.__dict__.copy()
        snap = state.pop("_snapshot")
        state["_plans"] = None
        state["_weights"] = (snap.weight, snap.bias)
        return state

    def __setstate__(self, state):
        weight, bias = state.pop("_weights")
        state["_plans"] = _cache.Cache(PLANS_MAX)
        state["_snapshot"] = _Snapshot(_readonly(weight),
                                       None if bias is None else _readonly(bias))
        super().__setstate__(state)

    # ---- weights --------------------------------------------------------------------------
    def _weight_shape(self):
        kh, kw = self.kernel_size
        if self.transposed:
            return (self.in_channels, self.out_channels // self.groups, kh, kw)
        return (self.out_channels, self.in_channels // self.groups, kh, kw)

    def _fan_in(self):
        shape = self._weight_shape()
        return shape[1] * shape[2] * shape[3]

    def reset_parameters(self, rng=None):
        """PyTorch's initialisation: weight and bias uniform in +-1/sqrt(fan_in), where
        fan_in = weight.shape[1] * kh * kw. rng: a seed or numpy Generator."""
        rng = _module_params.as_rng(type(self).__name__, rng)
        fan_in = self._fan_in()
        bound = 1.0 / np.sqrt(fan_in) if fan_in else 0.0
        weight = rng.uniform(-bound, bound, self._weight_shape()).astype(self.dtype)
        bias = None
        if self._has_bias:
            bias = rng.uniform(-bound, bound, (self.out_channels,)).astype(self.dtype)
        self._snapshot = _Snapshot(_readonly(weight), None if bias is None else _readonly(bias))

    def _checked(self, name, value, shape):
        return _readonly(_module_params.module_array(type(self).__name__, name, value, shape,
                                                     self.dtype))

    @property
    def weight(self):
        return self._snapshot.weight

    @weight.setter
    def weight(self, value):
        current = self._snapshot
        self._snapshot = _Snapshot(self._checked("weight", value, self._weight_shape()),
                                   current.bias)

    @property
    def bias(self):
        return self._snapshot.bias

    @bias.setter
    def bias(self, value):
        current = self._snapshot
        bias = None if value is None else self._checked("bias", value, (self.out_channels,))
        self._has_bias = bias is not None
        self._snapshot = _Snapshot(current.weight, bias)

    # Module's state_dict, load_state_dict and named_parameters see the snapshot's arrays
    # (bias None when there is none: not in the state_dict, as torch's bias=False).
    def _own_parameters(self):
        snap = self._snapshot
        return [("weight", snap.weight), ("bias", snap.bias), *self._parameters.items()]

    def _set_own_state(self, arrays):
        """Loaded arrays (checked, cast, read-only) become one new snapshot."""
        arrays = dict(arrays)
        current = self._snapshot
        self._snapshot = _Snapshot(arrays.pop("weight", current.weight),
                                   arrays.pop("bias", current.bias))
        super()._set_own_state(arrays)

    # ---- calls ----------------------------------------------------------------------------
    def _input(self, input):
        """(input as a 4-D C-contiguous array of the module's dtype, whether unbatched)."""
        if (type(input) is np.ndarray and input.dtype == self.dtype and input.ndim == 4
                and input.flags.c_contiguous and input.flags.aligned):
            return input, False
        fn = type(self).__name__
        x4, unbatched = _params.batched(fn, _module_params.floating_array(fn, "input", input))
        return _params.contiguous(x4, self.dtype), unbatched

    def _pad_input(self, x):
        """Explicit padding for padding_mode != 'zeros', with PyTorch's limits: (the padded
        input, the padding left to the convolution). An empty batch has an empty result
        whatever the mode: no copy (numpy cannot even describe one of 2**32 x 2**32 pixels),
        its padding left to the convolution, as zeros."""
        _module_params.check_padding_mode_limits(type(self).__name__, self.padding_mode,
                                                 self._pads, x.shape)
        pt, pb, pl, pr = self._pads
        if x.shape[0] == 0:
            return x, self._pads
        return np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)),
                      mode=_NUMPY_PAD_MODE[self.padding_mode]), (0, 0, 0, 0)

    def _run(self, x, unbatched, key, params_of, residual=None):
        """Convolve x (4-D, C-contiguous, module dtype). key identifies the call's geometry
        (with the variant, thread count and Winograd switch, it keys the cached params and
        bound plan); params_of() computes the ConvParams on a miss. residual: forward's."""
        cache_key = (key, _isa.current(), _threads.get_num_threads(),
                     _planner.get_winograd())
        call = self._plans.get(cache_key)
        if call is None:
            params = params_of()
            # Allocate before planning: an impossible output fails at once.
            out = np.empty(params.output_shape, dtype=self.dtype)
            bound = (_engine.bind(_planner.plan(params, self.dtype), params) if out.size
                     else None)
            call = self._plans.put(cache_key, (params, bound))
        else:
            out = np.empty(call[0].output_shape, dtype=self.dtype)
        bound = call[1]
        epilogue = self._epilogue
        if residual is not None:
            residual = _epilogue.check_residual(type(self).__name__, residual,
                                                out.shape[1:] if unbatched else out.shape,
                                                self.dtype)
        if bound is not None:
            snap = self._snapshot  # once: a concurrent load_state_dict swaps it whole
            packed = snap.packed.get(bound.weight_key)
            if packed is None:
                packed = snap.packed.put(bound.weight_key,
                                         _engine.prepare_weight(bound, snap.weight))
            _engine.execute(bound, x, packed, snap.bias, out, epilogue=epilogue,
                            residual=residual)
        return out[0] if unbatched else out

    # ---- repr -----------------------------------------------------------------------------
    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if not self._has_bias:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self._epilogue is not None:
            s += f", epilogue={self._epilogue!r}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution layer with PyTorch's semantics (torch.nn.Conv2d).

    Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
           groups=1, bias=True, padding_mode='zeros', dtype=numpy.float32, *, rng=None)

    rng: a seed or numpy Generator for the initial weights (PyTorch's init:
    uniform in +-1/sqrt(in_channels/groups * kh * kw)).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", dtype=np.float32, *,
                 rng=None):
        super().__init__()
        self._init_common(in_channels, out_channels, kernel_size, stride, padding, dilation,
                          groups, bias, padding_mode, dtype)
        self.reset_parameters(rng)

    def forward(self, input, residual=None):
        """Convolve input (N, C_in, H, W) or (C_in, H, W); the result has the module's
        dtype (a floating input of another dtype is cast to it). residual: an array of the
        output's shape and dtype added before the epilogue's activation."""
        x, unbatched = self._input(input)
        pads = self._pads
        if self.padding_mode != "zeros":
            x, pads = self._pad_input(x)
        return self._run(x, unbatched, x.shape, lambda: _params.conv2d_params(
            type(self).__name__, x.shape, self._weight_shape(), self.stride, pads,
            self.dilation, self.groups), residual)

    # Straight to forward, not through Module.__call__: no Python frame added to a call.
    __call__ = forward


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer with PyTorch's semantics (torch.nn.ConvTranspose2d).

    ConvTranspose2d(in_channels, out_channels, kernel_size, stride=1, padding=0,
                    output_padding=0, groups=1, bias=True, dilation=1, padding_mode='zeros',
                    dtype=numpy.float32, *, rng=None)

    The weight has shape (in_channels, out_channels/groups, kh, kw), initialised uniform in
    +-1/sqrt(out_channels/groups * kh * kw), as PyTorch does.
    """

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32, *, rng=None):
        super().__init__()
        _module_params.transposed_module_arguments(type(self).__name__, padding_mode, padding)
        self._init_common(in_channels, out_channels, kernel_size, stride, padding, dilation,
                          groups, bias, padding_mode, dtype, output_padding)
        self.reset_parameters(rng)

    def _output_padding(self, ndim, spatial, output_size):
        """output_padding, or the one that makes the output `output_size` (as torch)."""
        if output_size is None:
            return self.output_padding
        return _module_params.output_padding_for(type(self).__name__, output_size, ndim,
                                                 spatial, self.stride, self.padding,
                                                 self.dilation, self.kernel_size)

    def forward(self, input, output_size=None, residual=None):
        """Transposed convolution of input (N, C_in, H, W) or (C_in, H, W). output_size
        (2 numbers, or the whole output shape) picks output_padding as torch does.
        residual: as Conv2d.forward's."""
        x, unbatched = self._input(input)
        output_padding = self._output_padding(x.ndim - unbatched, x.shape[2:], output_size)
        return self._run(x, unbatched, (x.shape, output_padding),
                         lambda: _params.conv_transpose2d_params(
                             type(self).__name__, x.shape, self._weight_shape(), self.stride,
                             self.padding, output_padding, self.dilation, self.groups),
                         residual)

    __call__ = forward  # straight to forward, as Conv2d

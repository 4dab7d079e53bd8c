"""BatchNorm2d and batch_norm, as torch's: y = (x - mean) / sqrt(var + eps) * weight + bias
per channel (axis 1).

In numpy, not compiled: at inference a batch norm is one multiply-add per element,
y = x * alpha + beta with alpha = weight / sqrt(var + eps) and beta = bias - mean * alpha
(torch's CPU kernel computes these two per-channel terms too, in the input's dtype), and a
later `fuse` folds alpha and beta into the preceding convolution's weights, so the layer
does not run at all in a fused model.

Training mode computes as torch does: the batch's statistics normalise the input (a layer
with track_running_stats=False uses them in eval mode too), and the running statistics are
updated with torch's momentum rule (the unbiased variance; momentum=None: the cumulative
average). cconv computes no gradients.
"""
import numpy as np

from .. import _module_params, _params
from .module import Module

__all__ = ["BatchNorm2d", "batch_norm"]


def _channel_vector(fn, name, value, channels, dtype):
    """A per-channel parameter or statistic: `channels` values of the input's dtype."""
    arr = _params.as_float_array(fn, name, value)
    if arr.size != channels:
        raise ValueError(f"{name} should contain {channels} elements not {arr.size}")
    if arr.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{fn}(): input has dtype {dtype} but {name} has dtype "
                        f"{arr.dtype.newbyteorder('=')}; they must be the same (cast one with "
                        f".astype(...))")
    return arr.reshape(channels)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    """torch.nn.functional.batch_norm on a numpy array (N, C, ...) of float32 or float64.

    training=False normalises with running_mean and running_var. training=True normalises
    with the batch's statistics and, as torch does, updates running_mean and running_var in
    place when they are given (they must then be writeable arrays)."""
    fn = "batch_norm"
    x = _params.as_float_array(fn, "input", input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: expected input with at least 2 dims (N, C, ...), got "
                         f"shape {x.shape}")
    dtype = x.dtype.newbyteorder("=")
    channels = x.shape[1]
    vector = {}
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        vector[name] = None if value is None else _channel_vector(fn, name, value, channels,
                                                                  dtype)
    if training:
        count = x.size // channels if channels else 0
        if count == 1:
            raise ValueError(f"Expected more than 1 value per channel when training, got "
                             f"input size {x.shape}")
        if count == 0:
            # Nothing to normalise and no statistics to learn: torch leaves the running ones.
            return x.astype(dtype, copy=True)
        axes = (0, *range(2, x.ndim))
        # Accumulated in float64, as torch accumulates the statistics of a float32 batch; from
        # a C-ordered copy, so the summation order (and the bits) are those of any layout.
        c_order = np.ascontiguousarray(x, dtype=dtype)
        mean = c_order.mean(axis=axes, dtype=np.float64)
        var = c_order.var(axis=axes, dtype=np.float64)
        invstd = (1.0 / np.sqrt(var + eps)).astype(dtype)
        mean = mean.astype(dtype)
        for name, stat in (("running_mean", mean), ("running_var", var * count /
                                                    max(count - 1, 1))):
            arr = vector[name]
            if arr is None:
                continue
            if not arr.flags.writeable:
                raise ValueError(f"batch_norm: {name} must be writeable in training mode "
                                 f"(it is updated in place)")
            arr[...] = (1 - momentum) * arr + momentum * stat
    else:
        for name in ("running_mean", "running_var"):
            if vector[name] is None:
                raise ValueError(f"{name} must be defined in evaluation mode")
        mean = vector["running_mean"]
        invstd = 1 / np.sqrt(vector["running_var"] + dtype.type(eps))
    alpha = invstd if vector["weight"] is None else invstd * vector["weight"]
    beta = -mean * alpha if vector["bias"] is None else vector["bias"] - mean * alpha
    shape = (channels,) + (1,) * (x.ndim - 2)
    out = x * alpha.reshape(shape).astype(dtype, copy=False)
    out += beta.reshape(shape).astype(dtype, copy=False)
    return out


def _flag(fn, name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be True or False, got {type(value).__name__}")
    return bool(value)


class BatchNorm2d(Module):
    """torch.nn.BatchNorm2d on (N, C, H, W): parameters weight and bias (when affine; bias=False
    keeps only weight), buffers running_mean, running_var and num_batches_tracked (when
    track_running_stats), under torch's names, so torch's state_dict loads.

    BatchNorm2d(num_features, eps=1e-5, momentum=0.1, affine=True,
                track_running_stats=True, dtype=numpy.float32, *, bias=True)

    As torch: in training mode (a new module's mode; call eval() for inference) forward uses
    the batch's statistics and updates the running ones. A floating input of another dtype is
    cast to the module's.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32, *, bias=True):
        super().__init__()
        fn = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 0:
            raise ValueError(f"{fn}: num_features must be a non-negative int, got "
                             f"{num_features!r}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = _flag(fn, "affine", affine)
        self.track_running_stats = _flag(fn, "track_running_stats", track_running_stats)
        self.dtype = _module_params.module_dtype(fn, dtype)
        has_bias = _flag(fn, "bias", bias) and self.affine
        self._has_bias = has_bias
        c = self.num_features
        self.register_parameter("weight", np.ones(c, self.dtype) if self.affine else None)
        self.register_parameter("bias", np.zeros(c, self.dtype) if has_bias else None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(c, self.dtype))
            self.register_buffer("running_var", np.ones(c, self.dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def forward(self, input):
        fn = type(self).__name__
        x = _module_params.floating_array(fn, "input", input)
        if x.ndim != 4:
            raise ValueError(f"expected 4D input (got {x.ndim}D input)")
        x = x.astype(self.dtype, copy=False)
        use_batch = self.training or self.running_mean is None or self.running_var is None
        if not (self.training and self.track_running_stats):
            return batch_norm(x, None if use_batch else self.running_mean,
                              None if use_batch else self.running_var, self.weight,
                              self.bias, use_batch, 0.0, self.eps)
        factor = 0.0 if self.momentum is None else self.momentum
        count = self.num_batches_tracked
        if count is not None:
            count = count + 1
            if self.momentum is None:
                factor = 1.0 / float(count)
        mean, var = self.running_mean.copy(), self.running_var.copy()
        out = batch_norm(x, mean, var, self.weight, self.bias, True, factor, self.eps)
        self.running_mean, self.running_var = mean, var
        if count is not None:
            self.num_batches_tracked = count
        return out

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self._has_bias}, "
                f"track_running_stats={self.track_running_stats}")

"""The naive numpy contender (im2col + one matmul per group) and the matmul ceiling.

Neither is a reference: the bench checks every contender, this one included, against
cconv.testing. numpy's BLAS threads are set by harness.ThreadSettings (threadpoolctl).
"""
import numpy as np

from .base import Contender, UnavailableError, optional

# The ceiling: numpy's float32 matmul of two MATMUL_N x MATMUL_N matrices.
MATMUL_N = 2048
# Environment variables that make numpy's OpenBLAS slower; `cconv bench` re-runs itself
# without them (cli.reexec_without_slow_blas_env) unless --keep-env.
SLOW_BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d by im2col + matmul: pad, view the patches with as_strided,
    copy one group's patches to (N, C_in/g*kH*kW, H_out*W_out), one matmul per group."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    M, Cg, KH, KW = w.shape
    Ho = (H + 2 * ph - dh * (KH - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (KW - 1) - 1) // sw + 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    sN, sC, sH, sW = xp.strides
    patches = np.lib.stride_tricks.as_strided(
        xp, shape=(N, C, KH, KW, Ho, Wo),
        strides=(sN, sC, dh * sH, dw * sW, sh * sH, sw * sW), writeable=False)
    Mg = M // groups
    out = np.empty((N, M, Ho * Wo), dtype=np.result_type(x, w))
    for g in range(groups):
        cols = patches[:, g * Cg:(g + 1) * Cg].reshape(N, Cg * KH * KW, Ho * Wo)
        np.matmul(w[g * Mg:(g + 1) * Mg].reshape(Mg, Cg * KH * KW), cols,
                  out=out[:, g * Mg:(g + 1) * Mg])
    if b is not None:
        out += b[:, None]
    return out.reshape(N, M, Ho, Wo)


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """torch.nn.functional.conv_transpose2d by matmul + col2im: per group
    cols = w_g^T @ x_g, then each kernel tap adds its (H, W) plane to a strided slice of the
    uncropped output; the padding is cropped at the end."""
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    oh, ow = _pair(output_padding)
    dh, dw = _pair(dilation)
    N, C, H, W = x.shape
    _, Mg, KH, KW = w.shape
    Cg = C // groups
    M = Mg * groups
    Hf = (H - 1) * sh + dh * (KH - 1) + 1 + oh
    Wf = (W - 1) * sw + dw * (KW - 1) + 1 + ow
    full = np.zeros((N, M, Hf, Wf), dtype=np.result_type(x, w))
    xr = x.reshape(N, C, H * W)
    for g in range(groups):
        wg = w[g * Cg:(g + 1) * Cg].reshape(Cg, Mg * KH * KW)
        cols = np.matmul(wg.T, xr[:, g * Cg:(g + 1) * Cg]).reshape(N, Mg, KH, KW, H, W)
        for kh in range(KH):
            for kw in range(KW):
                full[:, g * Mg:(g + 1) * Mg,
                     kh * dh:kh * dh + (H - 1) * sh + 1:sh,
                     kw * dw:kw * dw + (W - 1) * sw + 1:sw] += cols[:, :, kh, kw]
    out = full[:, :, ph:Hf - ph, pw:Wf - pw]
    if b is not None:
        out = out + b[:, None, None]
    return np.ascontiguousarray(out)


def conv(layer, x, w, b):
    """The numpy contender's convolution for a layer (either direction)."""
    if layer.transposed:
        return conv_transpose2d(x, w, b, **layer.conv_kwargs())
    return conv2d(x, w, b, **layer.conv_kwargs())


def contender(layer, x, w, b):
    return Contender("numpy", lambda: conv(layer, x, w, b))


def matmul(name, serial=False):
    """numpy's float32 matmul of two MATMUL_N x MATMUL_N matrices, on the row's BLAS threads
    or (serial) on one, limited with threadpoolctl during the call only."""
    rng = np.random.default_rng(0)
    a, c = (rng.random((MATMUL_N, MATMUL_N), np.float32) for _ in range(2))
    if not serial:
        return Contender(name, lambda: np.matmul(a, c))
    tpc = optional("threadpoolctl")
    if tpc is None:
        raise UnavailableError("threadpoolctl is not installed")

    def serial_matmul():
        with tpc.threadpool_limits(limits=1, user_api="blas"):
            return np.matmul(a, c)
    return Contender(name, serial_matmul)

"""Slow, obviously-correct float64 convolutions with PyTorch's semantics: the one
oracle of cconv's tests, fuzz, ARM smoke run and benchmarks (numpy only; `import cconv`
never loads it).

conv2d_ref pads the input with explicit zeros, then, for each group and each kernel tap
(kh, kw), adds the product of the weight tap with the strided input window that tap sees:

    out[n, g*Mg + m, oh, ow] = b[g*Mg + m]
        + sum_{c, kh, kw} w[g*Mg + m, c, kh, kw] * xpad[n, g*Cg + c, oh*sh + kh*dh, ow*sw + kw*dw]

conv_transpose2d_ref is the scatter-add definition: every input pixel (ih, iw) adds
x * w[.., kh, kw] to output (ih*sh - ph + kh*dh, iw*sw - pw + kw*dw), where that lands inside
the output (output_padding extends the output at the bottom/right).

Everything is computed in float64, whatever the inputs' dtype; no cconv code is used. The
`*_abs` variants convolve |x| with |w| (plus |b|): the scale of the rounding error of any
floating-point evaluation of the same sums, used for error bounds.
"""
import numpy as np

__all__ = ["pair", "conv2d_padding", "conv2d_output_size", "pad_input", "conv2d_ref",
           "conv2d_module_ref", "conv_transpose2d_output_size", "conv_transpose2d_ref",
           "absolute", "conv2d_abs", "conv_transpose2d_abs", "unfold"]

# numpy's names for PyTorch's padding modes.
NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap"}


def pair(value):
    """An int or a one- or two-element sequence, as a pair of ints."""
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def conv2d_padding(padding, kernel, dilation=1):
    """(top, bottom, left, right) of conv2d's `padding` argument: an int, a pair, a 4-tuple
    (top, bottom, left, right), 'valid', or 'same' (the extra row/column of an odd total
    padding goes to the bottom/right, as in PyTorch)."""
    kh, kw = pair(kernel)
    dh, dw = pair(dilation)
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        return tuple(int(p) for p in padding)
    ph, pw = pair(padding)
    return (ph, ph, pw, pw)


def conv2d_output_size(size, kernel, stride, pad_before, pad_after, dilation):
    """One spatial output size of conv2d."""
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


def pad_input(x, pads, mode="zeros"):
    """x (..., H, W) padded by pads = (top, bottom, left, right) in one of PyTorch's modes."""
    pt, pb, pl, pr = pads
    width = [(0, 0)] * (x.ndim - 2) + [(pt, pb), (pl, pr)]
    return np.pad(x, width, mode=NUMPY_PAD_MODES[mode])


def _batched(x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return x[None], True
    assert x.ndim == 4, x.shape
    return x, False


def _window(stride, dilation, tap, count):
    """The input positions one kernel tap reads for `count` outputs: a slice of the padded
    input."""
    start = tap * dilation
    return slice(start, start + stride * (count - 1) + 1, stride)


def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d in float64 by explicit zero padding and a loop over groups and kernel taps.

    x (N, C_in, H, W) or (C_in, H, W); w (C_out, C_in/groups, kh, kw); padding as
    conv2d_padding() takes it."""
    x, unbatched = _batched(x)
    w = np.asarray(w, dtype=np.float64)
    N, C_in, H, W = x.shape
    C_out, Cg, KH, KW = w.shape
    assert C_in == Cg * groups and C_out % groups == 0, (x.shape, w.shape, groups)
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    pads = conv2d_padding(padding, (KH, KW), (dh, dw))
    xp = pad_input(x, pads)
    H_out = conv2d_output_size(H, KH, sh, pads[0], pads[1], dh)
    W_out = conv2d_output_size(W, KW, sw, pads[2], pads[3], dw)
    assert H_out >= 1 and W_out >= 1, "kernel larger than the padded input"
    Mg = C_out // groups
    out = np.zeros((N, C_out, H_out, W_out))
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Mg:(g + 1) * Mg]
        for kh in range(KH):
            for kw in range(KW):
                patch = xg[:, :, _window(sh, dh, kh, H_out), _window(sw, dw, kw, W_out)]
                out[:, g * Mg:(g + 1) * Mg] += np.einsum("nchw,mc->nmhw", patch,
                                                         wg[:, :, kh, kw])
    if b is not None:
        out += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out[0] if unbatched else out


def conv2d_module_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1,
                      padding_mode="zeros"):
    """torch.nn.Conv2d's forward: the input padded in padding_mode, then an unpadded conv2d."""
    x, unbatched = _batched(x)
    pads = conv2d_padding(padding, np.shape(w)[2:], dilation)
    y = conv2d_ref(pad_input(x, pads, padding_mode), w, b, stride, 0, dilation, groups)
    return y[0] if unbatched else y


def conv_transpose2d_output_size(size, kernel, stride, padding, output_padding, dilation):
    """One spatial output size of conv_transpose2d."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                         dilation=1):
    """conv_transpose2d in float64 by scatter-add (torch's argument order).

    x (N, C_in, H, W) or (C_in, H, W); w (C_in, C_out/groups, kh, kw). Each input pixel
    (ih, iw) adds x * w[:, :, kh, kw] at (ih*sh + kh*dh, iw*sw + kw*dw) of a full output,
    which is then cropped by the padding (output_padding keeps extra bottom/right rows)."""
    x, unbatched = _batched(x)
    w = np.asarray(w, dtype=np.float64)
    N, C_in, H, W = x.shape
    C_in_w, Mg, KH, KW = w.shape
    assert C_in == C_in_w and C_in % groups == 0, (x.shape, w.shape, groups)
    sh, sw = pair(stride)
    dh, dw = pair(dilation)
    ph, pw = pair(padding)
    oph, opw = pair(output_padding)
    H_out = conv_transpose2d_output_size(H, KH, sh, ph, oph, dh)
    W_out = conv_transpose2d_output_size(W, KW, sw, pw, opw, dw)
    assert H_out >= 1 and W_out >= 1, "output size is too small"
    Cg = C_in // groups
    # The full (uncropped) output: every scattered position, plus the output_padding rows.
    full = np.zeros((N, Mg * groups, (H - 1) * sh + dh * (KH - 1) + 1 + oph,
                     (W - 1) * sw + dw * (KW - 1) + 1 + opw))
    for g in range(groups):
        xg = x[:, g * Cg:(g + 1) * Cg]
        wg = w[g * Cg:(g + 1) * Cg]
        for kh in range(KH):
            for kw in range(KW):
                full[:, g * Mg:(g + 1) * Mg, _window(sh, dh, kh, H), _window(sw, dw, kw, W)] += \
                    np.einsum("nchw,cm->nmhw", xg, wg[:, :, kh, kw])
    out = full[:, :, ph:ph + H_out, pw:pw + W_out].copy()
    if b is not None:
        out += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out[0] if unbatched else out


def absolute(ref):
    """The convolution `ref` of magnitudes: (x, w, b, ...) -> ref(|x|, |w|, |b|, ...), the
    scale every rounding error of an evaluation of ref(x, w, b, ...) is proportional to."""
    def magnitudes(x, w, b=None, *args, **kwargs):
        return ref(np.abs(np.asarray(x, np.float64)), np.abs(np.asarray(w, np.float64)),
                   None if b is None else np.abs(np.asarray(b, np.float64)), *args, **kwargs)
    magnitudes.__name__ = f"{ref.__name__}_abs"
    return magnitudes


conv2d_abs = absolute(conv2d_ref)
conv_transpose2d_abs = absolute(conv_transpose2d_ref)


def _reads(count, kernel, stride, pad, dilation, size):
    """Along one axis: for each (output o, tap k) that reads the image (0 <= index < size), its
    place o*kernel + k in the unfolded input and the index it reads (Python ints: no
    overflow, whatever the stride, padding and dilation)."""
    place, index = [], []
    for o in range(count):
        for k in range(kernel):
            i = o * stride - pad + k * dilation
            if 0 <= i < size:
                place.append(o * kernel + k)
                index.append(i)
    return np.array(place, np.intp), np.array(index, np.intp)


def unfold(x, kernel, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1)):
    """x (N, C, H, W) as every output pixel's receptive field side by side, zeros where a tap
    reads padding: conv2d_ref(unfold(x, ...), w, b, stride=kernel) is the conv2d of x, and
    huge paddings, strides and dilations cost nothing (conv2d_ref pads explicitly).
    stride, dilation: pairs; padding: (top, bottom, left, right)."""
    x = np.asarray(x, np.float64)
    (sh, sw), (dh, dw), (pt, pb, pl, pr) = stride, dilation, padding
    KH, KW = kernel
    Ho = (x.shape[2] + pt + pb - dh * (KH - 1) - 1) // sh + 1
    Wo = (x.shape[3] + pl + pr - dw * (KW - 1) - 1) // sw + 1
    (rp, ri), (cp, ci) = (_reads(Ho, KH, sh, pt, dh, x.shape[2]),
                          _reads(Wo, KW, sw, pl, dw, x.shape[3]))
    out = np.zeros(x.shape[:2] + (Ho * KH, Wo * KW))
    out[:, :, rp[:, None], cp[None, :]] = x[:, :, ri[:, None], ci[None, :]]
    return out

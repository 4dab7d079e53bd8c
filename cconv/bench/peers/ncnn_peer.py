"""ncnn (the `ncnn` wheel) running a one-layer network written as a .param/.bin pair:

    groups == 1       Convolution / Deconvolution
    groups > 1        ConvolutionDepthWise / DeconvolutionDepthWise (any groups)

with opt.num_threads = n and ncnn's other defaults (winograd, sgemm, packing layout), but
fp16/bf16 storage and arithmetic off. ncnn runs one image (C, H, W) per extraction: a
batched layer runs as a loop of N extractions, one Extractor each, as ncnn's users do. The
input Mats hold the images once, outside the timing (the runtime's own format, as for TFLite);
the output Mats are converted to numpy only for the check.
"""
import os
import tempfile

import numpy as np

from .base import Contender, UnavailableError, optional

MAGIC = 7767517
# A weight blob opens with a 4-byte tag; zero means raw float32 (ncnn's ModelBin type 0).
RAW_FLOAT32_TAG = np.zeros(1, np.uint32)


def contender(layer, x, w, b, threads):
    ncnn = optional("ncnn")
    if ncnn is None:
        raise UnavailableError("ncnn is not installed")
    if x.dtype != np.float32:
        raise UnavailableError(f"ncnn runs float32 only, not {x.dtype}")
    net = make_net(ncnn, layer, w, b, threads)
    # clone(): a Mat made from an array views it; the copy owns its data.
    mats = [ncnn.Mat(np.ascontiguousarray(image)).clone() for image in x]

    def call():
        outs = []
        for mat in mats:
            ex = net.create_extractor()     # a fresh one: an Extractor caches its outputs
            ex.input("in", mat)
            ret, out = ex.extract("out")
            if ret != 0:
                raise RuntimeError(f"ncnn: extract returned {ret}")
            outs.append(out)
        return outs

    def output(outs):
        return np.stack([np.array(m) for m in outs]).reshape(layer.output_shape)
    return Contender("ncnn", call, output)


def make_files(layer, w, b):
    """(.param text, .bin bytes) of the network: Input 'in' (C, H, W) -> the layer -> 'out'."""
    _, C, H, W = layer.input_shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel, layer.stride, layer.padding
    g = layer.groups
    if layer.transposed:
        # torch (C_in, C_out/g, kH, kW) -> ncnn (g, C_out/g, C_in/g, kH, kW); no flip.
        weight = w.reshape(g, C // g, layer.C_out // g, kh, kw).transpose(0, 2, 1, 3, 4)
        kind = "DeconvolutionDepthWise" if g > 1 else "Deconvolution"
    else:
        weight = w                      # (C_out, C_in/g, kH, kW), as torch's
        kind = "ConvolutionDepthWise" if g > 1 else "Convolution"
    params = {0: layer.C_out, 1: kw, 11: kh, 2: layer.dilation[1], 12: layer.dilation[0],
              3: sw, 13: sh, 4: pw, 14: ph, 15: pw, 16: ph, 5: int(b is not None),
              6: weight.size}
    if g > 1:
        params[7] = g
    if layer.transposed:
        params[18], params[19] = layer.output_padding[1], layer.output_padding[0]
    param = (f"{MAGIC}\n2 2\n"
             f"Input in 0 1 in 0={W} 1={H} 2={C}\n"
             f"{kind} conv 1 1 in out {' '.join(f'{k}={v}' for k, v in params.items())}\n")
    blobs = [RAW_FLOAT32_TAG, np.ascontiguousarray(weight, np.float32)]
    if b is not None:
        blobs.append(np.ascontiguousarray(b, np.float32))     # the bias has no tag (type 1)
    return param, b"".join(a.tobytes() for a in blobs)


def make_net(ncnn, layer, w, b, threads):
    """An ncnn.Net of make_files(), loaded from a temporary directory, on `threads` threads."""
    net = ncnn.Net()
    net.opt.num_threads = threads
    net.opt.use_vulkan_compute = False
    # fp16/bf16 (on by default where the CPU has them) would trade precision for speed that
    # the other contenders, all float32, do not get.
    for flag in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic",
                 "use_bf16_storage", "use_bf16_packed"):
        if hasattr(net.opt, flag):
            setattr(net.opt, flag, False)
    param, weights = make_files(layer, w, b)
    with tempfile.TemporaryDirectory(prefix="cconv-ncnn-") as tmp:
        paths = os.path.join(tmp, "conv.param"), os.path.join(tmp, "conv.bin")
        with open(paths[0], "w") as f:
            f.write(param)
        with open(paths[1], "wb") as f:
            f.write(weights)
        if net.load_param(paths[0]) != 0 or net.load_model(paths[1]) != 0:
            raise RuntimeError(f"ncnn could not load the network of {layer.name}:\n{param}")
    return net

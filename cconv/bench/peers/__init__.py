"""The contenders: cconv (functional and module) and its optional peers, each a Contender
whose call() runs one convolution of a layer.

    cconv-functional   cconv.conv2d(x, w, b, ...) (raw weights: packed first or per panel)
    cconv-module       cconv.Conv2d(...)(x) (weights packed once)
    torch              torch.nn.functional.conv2d under torch.no_grad(), torch.set_num_threads
    onnxruntime        a one-node Conv / ConvTranspose model, intra_op_num_threads=n,
                       inter_op_num_threads=1, sequential execution, CPU provider
    numpy              a naive im2col (np.pad + as_strided, one matmul per group); its BLAS
                       threads limited with threadpoolctl when installed
    ncnn               a one-layer .param/.bin network (Convolution, ConvolutionDepthWise,
                       Deconvolution, DeconvolutionDepthWise), opt.num_threads=n, float32;
                       one image per extraction, so a batch runs as a loop
    tflite             a one-op TFLite model (CONV_2D, DEPTHWISE_CONV_2D, TRANSPOSE_CONV; a
                       PAD or SLICE op where the padding is neither SAME nor VALID) in
                       ai-edge-litert's Interpreter, XNNPACK delegate, num_threads=n; times
                       invoke() on NHWC input set beforehand; no grouped or dilated transposed

A peer that is not installed raises UnavailableError, and the bench notes it and goes on.
"""
from . import cconv_peer, ncnn_peer, numpy_peer, onnxruntime_peer, tflite_peer, torch_peer
from .base import Contender, UnavailableError, optional
from .numpy_peer import MATMUL_N, SLOW_BLAS_ENV

__all__ = ["CCONV", "PEERS", "CONTENDERS", "CEILING", "SERIAL", "CEILING_SERIAL", "MATMULS",
           "ONE_THREAD", "SHORT", "MATMUL_N", "SLOW_BLAS_ENV", "Contender", "UnavailableError",
           "optional", "available_peers", "make_contender", "MODULES"]

CCONV = ("cconv-functional", "cconv-module")
PEERS = ("torch", "onnxruntime", "numpy", "ncnn", "tflite")
CONTENDERS = CCONV + PEERS
# The ceiling, numpy's matmul (numpy_peer.MATMUL_N square, BLAS threads as the row's), timed
# in every row's rounds with the contenders when the numpy peer is on: the %mm column is
# cconv-module's speed as a share of the ceiling's.
CEILING = "matmul"
# cconv-module on one thread, timed in the same rounds as the others in every row with more
# threads (not in the quick run): the vs1T column, measured as the ratios are because two
# rows timed minutes apart drift with the machine.
SERIAL = "cconv-module@1"
# The ceiling on one BLAS thread, timed likewise in rows with more threads: the mm1T column,
# the speedup the machine gives a compute-bound BLAS from the same threads in the same
# rounds, the yardstick for vs1T.
CEILING_SERIAL = "matmul@1"
MATMULS = (CEILING, CEILING_SERIAL)         # not convolutions: not checked, not plotted
ONE_THREAD = (SERIAL, CEILING_SERIAL)       # only in rows with more threads
SHORT = {"cconv-functional": "f", "cconv-module": "m", "torch": "torch",
         "onnxruntime": "ort", "numpy": "numpy", "ncnn": "ncnn", "tflite": "tfl"}
# The module each peer needs, for available_peers().
MODULES = {"torch": "torch", "onnxruntime": "onnxruntime", "numpy": "numpy", "ncnn": "ncnn",
           "tflite": "ai_edge_litert.interpreter"}


def available_peers(peers=PEERS):
    """The peers among `peers` that are installed."""
    return [p for p in peers if optional(MODULES[p]) is not None]


def make_contender(name, layer, x, w, b, threads):
    """A Contender running `layer` on (x, w, b) with `threads` threads (the caller has set
    cconv's and torch's thread counts; see harness.ThreadSettings). Raises UnavailableError."""
    if name == "cconv-functional":
        return cconv_peer.functional(layer, x, w, b)
    if name == "cconv-module":
        return cconv_peer.module(layer, x, w, b)
    if name == "torch":
        return torch_peer.contender(layer, x, w, b)
    if name == "onnxruntime":
        return onnxruntime_peer.contender(layer, x, w, b, threads)
    if name == "numpy":
        return numpy_peer.contender(layer, x, w, b)
    if name == "ncnn":
        return ncnn_peer.contender(layer, x, w, b, threads)
    if name == "tflite":
        return tflite_peer.contender(layer, x, w, b, threads)
    if name == SERIAL:
        return cconv_peer.serial_module(name, layer, x, w, b, threads)
    if name in MATMULS:
        return numpy_peer.matmul(name, serial=name == CEILING_SERIAL)
    raise ValueError(f"unknown contender {name!r}; expected one of {CONTENDERS}")

"""cconv itself as a contender: the functional call, the module, the module on one thread."""
import cconv

from .base import Contender, UnavailableError


def functional(layer, x, w, b):
    """cconv.conv2d / conv_transpose2d on raw weights (packed first or per panel)."""
    kw = layer.conv_kwargs()
    fn = getattr(cconv, "conv_transpose2d" if layer.transposed else "conv2d", None)
    if fn is None:
        raise UnavailableError("cconv.conv_transpose2d is not available yet")
    return Contender("cconv-functional", lambda: fn(x, w, b, **kw))


def module(layer, x, w, b):
    """cconv.Conv2d / ConvTranspose2d holding (w, b), its weights packed once."""
    cls = getattr(cconv, "ConvTranspose2d" if layer.transposed else "Conv2d", None)
    if cls is None:
        raise UnavailableError("cconv.ConvTranspose2d is not available yet")
    args, mkw = layer.module_args()
    conv = cls(*args, **mkw, bias=b is not None, dtype=x.dtype)
    conv.weight = w
    conv.bias = b
    return Contender("cconv-module", lambda: conv(x))


def serial_module(name, layer, x, w, b, threads):
    """The module on one thread, timed in the same rounds as the row's `threads`: the
    speedup cconv gets from its threads, measured as the ratios are."""
    contender = module(layer, x, w, b)

    def serial():
        cconv.set_num_threads(1)
        try:
            return contender.call()
        finally:
            cconv.set_num_threads(threads)
    return Contender(name, serial)

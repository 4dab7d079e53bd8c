"""torch.nn.functional.conv2d / conv_transpose2d under torch.no_grad() (the caller sets
torch's thread count: harness.ThreadSettings)."""
from .base import Contender, UnavailableError, optional


def contender(layer, x, w, b):
    torch = optional("torch")
    if torch is None:
        raise UnavailableError("torch is not installed")
    F = torch.nn.functional
    fn = F.conv_transpose2d if layer.transposed else F.conv2d
    kw = layer.conv_kwargs()
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    bt = None if b is None else torch.from_numpy(b)
    # torch 2.13 runs some layers (ResNet-50's 7x7 stem) faster in a process that has run a
    # float64 convolution, so the peer runs the layer once in float64 to be timed at its best.
    with torch.no_grad():
        fn(xt.double(), wt.double(), None if bt is None else bt.double(), **kw)

    def call():
        with torch.no_grad():
            return fn(xt, wt, bt, **kw)
    return Contender("torch", call, lambda t: t.numpy())

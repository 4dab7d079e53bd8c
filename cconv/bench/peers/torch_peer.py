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

    def call():
        with torch.no_grad():
            return fn(xt, wt, bt, **kw)
    return Contender("torch", call, lambda t: t.numpy())

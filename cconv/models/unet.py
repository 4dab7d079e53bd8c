"""A classic U-Net (Ronneberger et al., 2015, with batch norms and zero padding): `depth`
poolings down, as many transposed convolutions up, each concatenated with the skip of its
size.

torchvision has no U-Net; the keys are those of the widely used milesial/Pytorch-UNet
(bilinear=False), whose checkpoints then load as they are (base=64, depth=4 there):

    inc.double_conv.{0, 3}                   3x3 conv, no bias  (1, 4: their batch norms)
    down{i}.maxpool_conv.1.double_conv.*     i = 1..depth: 2x2 max pool, then a double conv
    up{i}.up.{weight, bias}                  i = 1..depth: ConvTranspose2d 2x2/2, halving
    up{i}.conv.double_conv.*                 the double conv after the concatenation
    outc.conv.{weight, bias}                 1x1 conv to out_channels

Widths base * 2**k at depth k. Any input size works: an up-sampled map smaller than its skip
(an odd size was pooled) is zero-padded to it, evenly, the extra row and column last.
"""
import numpy as np

from .._module_params import as_rng
from ..modules import Conv2d, ConvTranspose2d
from ..nn.activation import ReLU
from ..nn.containers import Sequential
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import MaxPool2d

__all__ = ["UNet", "DoubleConv", "Down", "Up", "OutConv", "unet"]


class DoubleConv(Module):
    """(3x3 conv without bias, batch norm, ReLU) twice, as `double_conv`."""

    def __init__(self, in_channels, out_channels, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = as_rng(type(self).__name__, rng)
        self.double_conv = Sequential(
            Conv2d(in_channels, out_channels, 3, padding=1, bias=False, dtype=dtype, rng=rng),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU(inplace=True),
            Conv2d(out_channels, out_channels, 3, padding=1, bias=False, dtype=dtype,
                   rng=rng),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU(inplace=True))

    def forward(self, x):
        return self.double_conv(x)


class Down(Module):
    """Half the size (2x2 max pool), then a DoubleConv, as `maxpool_conv`."""

    def __init__(self, in_channels, out_channels, *, dtype=np.float32, rng=None):
        super().__init__()
        self.maxpool_conv = Sequential(MaxPool2d(2),
                                       DoubleConv(in_channels, out_channels, dtype=dtype,
                                                  rng=rng))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(Module):
    """Twice the size and half the channels (`up`, a 2x2/2 transposed convolution), the skip
    concatenated before it along the channels, then a DoubleConv (`conv`)."""

    def __init__(self, in_channels, out_channels, *, dtype=np.float32, rng=None):
        super().__init__()
        rng = as_rng(type(self).__name__, rng)
        self.up = ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2, dtype=dtype,
                                  rng=rng)
        self.conv = DoubleConv(in_channels, out_channels, dtype=dtype, rng=rng)

    def forward(self, x, skip):
        x = self.up(x)
        dh, dw = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        if dh or dw:
            x = np.pad(x, ((0, 0), (0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))
        # cconv.nn has no cat: numpy's, the skip first as torch.cat([skip, x], dim=1).
        return self.conv(np.concatenate((skip, x), axis=1))


class OutConv(Module):
    """The 1x1 convolution to the output channels, as `conv`."""

    def __init__(self, in_channels, out_channels, *, dtype=np.float32, rng=None):
        super().__init__()
        self.conv = Conv2d(in_channels, out_channels, 1, dtype=dtype, rng=rng)

    def forward(self, x):
        return self.conv(x)


class UNet(Module):
    """A U-Net for images (N, in_channels, H, W) -> (N, out_channels, H, W): logits, no
    final activation.

    UNet(in_channels=3, out_channels=1, base=32, depth=4, *, dtype=numpy.float32, rng=0)

    rng: a seed or numpy Generator for torch.nn's default initialisation of each layer, in
    construction order (batch norms start as the identity); load trained weights with
    load_state_dict.
    """

    def __init__(self, in_channels=3, out_channels=1, base=32, depth=4, *, dtype=np.float32,
                 rng=0):
        super().__init__()
        for name, value in (("base", base), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < 1:
                raise ValueError(f"UNet: {name} must be a positive int, got {value!r}")
        rng = as_rng(type(self).__name__, rng)
        self.depth = int(depth)
        widths = [base * 2**k for k in range(self.depth + 1)]
        self.inc = DoubleConv(in_channels, widths[0], dtype=dtype, rng=rng)
        for i in range(1, self.depth + 1):
            setattr(self, f"down{i}", Down(widths[i - 1], widths[i], dtype=dtype, rng=rng))
        for i in range(1, self.depth + 1):
            k = self.depth - i
            setattr(self, f"up{i}", Up(widths[k + 1], widths[k], dtype=dtype, rng=rng))
        self.outc = OutConv(widths[0], out_channels, dtype=dtype, rng=rng)

    def forward(self, x):
        skips = [self.inc(x)]
        for i in range(1, self.depth + 1):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        x = skips.pop()
        for i in range(1, self.depth + 1):
            x = getattr(self, f"up{i}")(x, skips.pop())
        return self.outc(x)


def unet(in_channels=3, out_channels=1, base=32, depth=4, *, dtype=np.float32, rng=0):
    """A U-Net (UNet: its keys are milesial/Pytorch-UNet's), in eval mode."""
    return UNet(in_channels, out_channels, base, depth, dtype=dtype, rng=rng).eval()

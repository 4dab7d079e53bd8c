"""MobileNetV2 as torchvision builds it, under torchvision's names, so a torchvision
checkpoint loads as it is:

    features.0            Conv2dNormActivation: 3x3/2 conv, bn, ReLU6   (keys features.0.0.*)
    features.1 .. 17      InvertedResidual: .conv = [1x1 expand (Conv2dNormActivation),]
                          3x3 depthwise (Conv2dNormActivation), 1x1 project conv, bn
    features.18           Conv2dNormActivation: 1x1 conv to 1280 (more when width_mult > 1)
    classifier            Sequential(Dropout(0.2), Linear)

A block adds its input to its output when it keeps both the size and the width.
"""
import math

import numpy as np

from .._module_params import as_rng
from ..modules import Conv2d
from ..nn.activation import ReLU6
from ..nn.containers import Sequential
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import adaptive_avg_pool2d
from ..nn.views import Dropout

__all__ = ["MobileNetV2", "InvertedResidual", "Conv2dNormActivation", "mobilenet_v2"]

# (expansion t, output channels c, blocks n, stride of the first s), the paper's Table 2.
_SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
            (6, 160, 3, 2), (6, 320, 1, 1))


def make_divisible(value, divisor=8):
    """`value` rounded to the nearest multiple of `divisor` (at least `divisor`), one step
    up when rounding lost more than 10%: how torchvision scales widths by width_mult."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class Conv2dNormActivation(Sequential):
    """A bias-free convolution that keeps the size at stride 1, its batch norm and ReLU6,
    as the children '0', '1', '2' (torchvision.ops.Conv2dNormActivation as MobileNetV2
    uses it)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, groups=1, *,
                 dtype=np.float32, rng=None):
        super().__init__(
            Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                   groups=groups, bias=False, dtype=dtype, rng=rng),
            BatchNorm2d(out_channels, dtype=dtype),
            ReLU6(inplace=True))
        self.out_channels = out_channels


class InvertedResidual(Module):
    """Expand by `expand_ratio` with a 1x1 convolution (none when it is 1), filter each
    channel with a 3x3 one (strided), project to `oup` channels with a 1x1 one and a batch
    norm, no activation; plus the input when stride is 1 and inp == oup."""

    def __init__(self, inp, oup, stride, expand_ratio, *, dtype=np.float32, rng=None):
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"InvertedResidual: stride should be 1 or 2, got {stride}")
        rng = as_rng(type(self).__name__, rng)
        self.stride = stride
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(Conv2dNormActivation(inp, hidden, 1, dtype=dtype, rng=rng))
        layers += [Conv2dNormActivation(hidden, hidden, 3, stride, groups=hidden, dtype=dtype,
                                        rng=rng),
                   Conv2d(hidden, oup, 1, bias=False, dtype=dtype, rng=rng),
                   BatchNorm2d(oup, dtype=dtype)]
        self.conv = Sequential(*layers)
        self.out_channels = oup
        self._is_cn = stride > 1

    def forward(self, x):
        out = self.conv(x)
        if self.use_res_connect:
            # The batch norm's result is a new array; x + out and out + x round alike.
            out += x
        return out


class MobileNetV2(Module):
    """torchvision's MobileNetV2 for images (N, 3, H, W).

    MobileNetV2(num_classes=1000, width_mult=1.0, dropout=0.2, *, dtype=numpy.float32, rng=0)

    width_mult scales every width (rounded to a multiple of 8). rng: a seed or numpy
    Generator for torch.nn's default initialisation of each layer, in construction order
    (batch norms start as the identity); load trained weights with load_state_dict.
    """

    def __init__(self, num_classes=1000, width_mult=1.0, dropout=0.2, *, dtype=np.float32,
                 rng=0):
        super().__init__()
        rng = as_rng(type(self).__name__, rng)
        channels = make_divisible(32 * width_mult)
        self.last_channel = make_divisible(1280 * max(1.0, width_mult))
        layers = [Conv2dNormActivation(3, channels, 3, 2, dtype=dtype, rng=rng)]
        for t, c, n, s in _SETTING:
            out = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(InvertedResidual(channels, out, s if i == 0 else 1, t,
                                               dtype=dtype, rng=rng))
                channels = out
        layers.append(Conv2dNormActivation(channels, self.last_channel, 1, dtype=dtype,
                                           rng=rng))
        self.features = Sequential(*layers)
        self.classifier = Sequential(Dropout(p=dropout),
                                     Linear(self.last_channel, num_classes, dtype=dtype,
                                            rng=rng))

    def forward(self, x):
        x = adaptive_avg_pool2d(self.features(x), (1, 1))
        # torch.flatten(x, 1), as in ResNet.
        return self.classifier(x.reshape(x.shape[0], math.prod(x.shape[1:])))


def mobilenet_v2(num_classes=1000, width_mult=1.0, *, dtype=np.float32, rng=0):
    """MobileNetV2 (torchvision.models.mobilenet_v2's architecture and state_dict keys), in
    eval mode."""
    return MobileNetV2(num_classes, width_mult, dtype=dtype, rng=rng).eval()

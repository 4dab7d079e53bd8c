"""ResNet-18 and ResNet-50 as torchvision builds them (v1.5: a Bottleneck strides in its 3x3
convolution), under torchvision's attribute names, so a torchvision checkpoint loads as it is:

    conv1 (7x7/2) - bn1 - relu - maxpool (3x3/2, pad 1) - layer1..layer4 - avgpool - fc
    layerN.i.{conv1, bn1, conv2, bn2[, conv3, bn3]}, layerN.0.downsample.{0 (1x1 conv), 1 (bn)}

A block calls its one `relu` twice, after the first convolutions and after the residual sum.
"""
import math

import numpy as np

from .._module_params import as_rng
from ..modules import Conv2d
from ..nn.activation import ReLU
from ..nn.containers import Sequential
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet50"]


def _conv(in_channels, out_channels, kernel_size, stride, rng, dtype):
    """A bias-free convolution that keeps the size at stride 1, as every ResNet one is."""
    return Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                  padding=kernel_size // 2, bias=False, dtype=dtype, rng=rng)


class _Block(Module):
    """A residual block ending in relu(bn(conv(x)) + identity), the layers named by
    `_residual_sum`. cconv.nn.fuse, once the batch norm is folded into the convolution, moves
    the sum and the relu into its epilogue too and sets `residual_fused`."""

    residual_fused = False

    def _sum(self, x, identity):
        conv_name, bn_name, relu_name = self._residual_sum
        conv = getattr(self, conv_name)
        if self.residual_fused:
            return conv(x, residual=identity)
        out = getattr(self, bn_name)(conv(x))
        # The batch norm's result is a new array: adding in place touches nothing else.
        out += identity
        return getattr(self, relu_name)(out)


class BasicBlock(_Block):
    """Two 3x3 convolutions and a residual sum (ResNet-18 and -34); the first strides."""

    expansion = 1
    _residual_sum = ("conv2", "bn2", "relu")

    def __init__(self, inplanes, planes, stride=1, downsample=None, *, dtype=np.float32,
                 rng=None):
        super().__init__()
        rng = as_rng(type(self).__name__, rng)
        self.conv1 = _conv(inplanes, planes, 3, stride, rng, dtype)
        self.bn1 = BatchNorm2d(planes, dtype=dtype)
        self.relu = ReLU(inplace=True)
        self.conv2 = _conv(planes, planes, 3, 1, rng, dtype)
        self.bn2 = BatchNorm2d(planes, dtype=dtype)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self._sum(out, identity)


class Bottleneck(_Block):
    """1x1 down to `planes`, 3x3 (strided), 1x1 up to 4 * planes, and a residual sum
    (ResNet-50 and deeper)."""

    expansion = 4
    _residual_sum = ("conv3", "bn3", "relu")

    def __init__(self, inplanes, planes, stride=1, downsample=None, *, dtype=np.float32,
                 rng=None):
        super().__init__()
        rng = as_rng(type(self).__name__, rng)
        self.conv1 = _conv(inplanes, planes, 1, 1, rng, dtype)
        self.bn1 = BatchNorm2d(planes, dtype=dtype)
        self.conv2 = _conv(planes, planes, 3, stride, rng, dtype)
        self.bn2 = BatchNorm2d(planes, dtype=dtype)
        self.conv3 = _conv(planes, planes * self.expansion, 1, 1, rng, dtype)
        self.bn3 = BatchNorm2d(planes * self.expansion, dtype=dtype)
        self.relu = ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self._sum(out, identity)


class ResNet(Module):
    """torchvision's ResNet for images (N, 3, H, W): `block` is BasicBlock or Bottleneck,
    `layers` the number of blocks in each of the four stages.

    ResNet(block, layers, num_classes=1000, *, dtype=numpy.float32, rng=0)

    rng: a seed or numpy Generator for torch.nn's default initialisation of each layer, in
    construction order (batch norms start as the identity); load trained weights with
    load_state_dict.
    """

    def __init__(self, block, layers, num_classes=1000, *, dtype=np.float32, rng=0):
        super().__init__()
        rng = as_rng(type(self).__name__, rng)
        self.inplanes = 64
        self.conv1 = _conv(3, 64, 7, 2, rng, dtype)
        self.bn1 = BatchNorm2d(64, dtype=dtype)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1, dtype, rng)
        self.layer2 = self._make_layer(block, 128, layers[1], 2, dtype, rng)
        self.layer3 = self._make_layer(block, 256, layers[2], 2, dtype, rng)
        self.layer4 = self._make_layer(block, 512, layers[3], 2, dtype, rng)
        self.avgpool = AdaptiveAvgPool2d((1, 1))
        self.fc = Linear(512 * block.expansion, num_classes, dtype=dtype, rng=rng)

    def _make_layer(self, block, planes, blocks, stride, dtype, rng):
        """A stage of `blocks` blocks; the first changes the stride or the width, so its
        shortcut is a strided 1x1 convolution and a batch norm."""
        width = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != width:
            downsample = Sequential(_conv(self.inplanes, width, 1, stride, rng, dtype),
                                    BatchNorm2d(width, dtype=dtype))
        stage = [block(self.inplanes, planes, stride, downsample, dtype=dtype, rng=rng)]
        self.inplanes = width
        stage += [block(width, planes, dtype=dtype, rng=rng) for _ in range(1, blocks)]
        return Sequential(*stage)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        # torch.flatten(x, 1): a view of the (N, C, 1, 1) result (-1 cannot size N = 0).
        return self.fc(x.reshape(x.shape[0], math.prod(x.shape[1:])))


def resnet18(num_classes=1000, *, dtype=np.float32, rng=0):
    """ResNet-18 (torchvision.models.resnet18's architecture and state_dict keys), in eval
    mode."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, dtype=dtype, rng=rng).eval()


def resnet50(num_classes=1000, *, dtype=np.float32, rng=0):
    """ResNet-50 (torchvision.models.resnet50's architecture and state_dict keys), in eval
    mode."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, dtype=dtype, rng=rng).eval()

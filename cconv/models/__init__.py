"""Networks built from cconv.nn whose state_dict keys are torchvision's (or, for the U-Net,
a widely used implementation's), so a trained checkpoint loads as it is:

    resnet18, resnet50            torchvision.models.resnet18 / resnet50    (resnet.py)
    mobilenet_v2                  torchvision.models.mobilenet_v2           (mobilenetv2.py)
    unet                          a classic U-Net, milesial/Pytorch-UNet's keys  (unet.py)

Each builder returns a model in eval mode, initialised from a seed (rng=0) as torch.nn
initialises its layers; dtype=numpy.float64 builds it in double precision:

    model = cconv.models.resnet18()
    model.load_state_dict(cconv.load("resnet18.pt"))
    logits = model(images)          # (N, 3, H, W) float32 -> (N, 1000)

`import cconv` does not load this package: the first `cconv.models` does.
"""
from .mobilenetv2 import Conv2dNormActivation, InvertedResidual, MobileNetV2, mobilenet_v2
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet50
from .unet import DoubleConv, Down, OutConv, UNet, Up, unet

__all__ = ["resnet18", "resnet50", "mobilenet_v2", "unet", "ResNet", "BasicBlock",
           "Bottleneck", "MobileNetV2", "InvertedResidual", "Conv2dNormActivation", "UNet",
           "DoubleConv", "Down", "Up", "OutConv"]

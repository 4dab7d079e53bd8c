from .mobilenetv2 import Conv2dNormActivation as Conv2dNormActivation
from .mobilenetv2 import InvertedResidual as InvertedResidual
from .mobilenetv2 import MobileNetV2 as MobileNetV2
from .mobilenetv2 import mobilenet_v2 as mobilenet_v2
from .resnet import BasicBlock as BasicBlock
from .resnet import Bottleneck as Bottleneck
from .resnet import ResNet as ResNet
from .resnet import resnet18 as resnet18
from .resnet import resnet50 as resnet50
from .unet import DoubleConv as DoubleConv
from .unet import Down as Down
from .unet import OutConv as OutConv
from .unet import UNet as UNet
from .unet import Up as Up
from .unet import unet as unet

__all__ = ["resnet18", "resnet50", "mobilenet_v2", "unet", "ResNet", "BasicBlock",
           "Bottleneck", "MobileNetV2", "InvertedResidual", "Conv2dNormActivation", "UNet",
           "DoubleConv", "Down", "Up", "OutConv"]

"""Named convolution layers of real networks: the shapes cconv is benchmarked and tuned on.

The single source of truth for `python -m cconv bench`, `benchmarks/` (which re-exports this
module as `benchmarks/shapes.py`) and the planner's thresholds. Geometries are those of the
reference implementations (torchvision's ResNet-50 v1.5 with the stride on the 3x3,
MobileNetV2, ResNeXt-50 32x4d; DeepLabV3 at output stride 8; DCGAN / U-Net decoders) at the
input sizes they are usually run at, batch 1 unless the name says otherwise.

    layer = by_name("resnet50.s1.3x3")
    layer.input_shape, layer.weight_shape, layer.output_shape, layer.flops
    conv2d(x, w, b, **layer.conv_kwargs())          # or conv_transpose2d when .transposed

`select("quick" | "all" | "name,substring,...")` picks layers for a run.
"""
from dataclasses import dataclass

__all__ = ["Layer", "LAYERS", "QUICK", "by_name", "select"]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


@dataclass(frozen=True)
class Layer:
    """One convolution of a real network. kernel/stride/padding/dilation/output_padding are
    (height, width) pairs; padding is symmetric, as in torch.nn.Conv2d. For a transposed
    layer, C_in, H, W are its input's and the weight is (C_in, C_out/groups, kH, kW)."""
    name: str
    network: str
    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kernel: tuple
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    transposed: bool = False
    output_padding: tuple = (0, 0)

    @property
    def H_out(self):
        return self._out(self.H, 0)

    @property
    def W_out(self):
        return self._out(self.W, 1)

    def _out(self, size, i):
        k, s, p, d = self.kernel[i], self.stride[i], self.padding[i], self.dilation[i]
        if self.transposed:
            return (size - 1) * s - 2 * p + d * (k - 1) + self.output_padding[i] + 1
        return (size + 2 * p - d * (k - 1) - 1) // s + 1

    @property
    def input_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def weight_shape(self):
        kh, kw = self.kernel
        if self.transposed:
            return (self.C_in, self.C_out // self.groups, kh, kw)
        return (self.C_out, self.C_in // self.groups, kh, kw)

    @property
    def output_shape(self):
        return (self.N, self.C_out, self.H_out, self.W_out)

    @property
    def flops(self):
        """Floating-point operations of one call (2 per multiply-add), as ConvParams counts."""
        kh, kw = self.kernel
        if self.transposed:
            return 2 * self.N * self.C_in * self.H * self.W * (self.C_out // self.groups) \
                * kh * kw
        return 2 * self.N * self.C_out * self.H_out * self.W_out * (self.C_in // self.groups) \
            * kh * kw

    @property
    def kind(self):
        """A word for the case the layer exercises (what the quick subset must cover)."""
        if self.transposed:
            return "transposed"
        if self.groups == self.C_in and self.groups > 1:
            return "depthwise"
        if self.groups > 1:
            return "grouped"
        if self.dilation != (1, 1):
            return "dilated"
        if self.kernel == (1, 1):
            return "1x1" + ("/s" if self.stride != (1, 1) else "")
        if self.stride != (1, 1):
            return "strided"
        return "dense"

    def conv_kwargs(self):
        """Keyword arguments of conv2d / conv_transpose2d (cconv's and torch's alike)."""
        kw = {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
              "groups": self.groups}
        if self.transposed:
            kw["output_padding"] = self.output_padding
        return kw

    def module_args(self):
        """(args, kwargs) of Conv2d / ConvTranspose2d for this layer (torch's and cconv's)."""
        args = (self.C_in, self.C_out, self.kernel)
        return args, dict(self.conv_kwargs())

    def describe(self):
        """e.g. '1x256x24x24 -> 128, 3x3 p1' (only the non-default arguments)."""
        kh, kw = self.kernel
        s = f"{self.N}x{self.C_in}x{self.H}x{self.W} -> {self.C_out}, {kh}x{kw}"
        for tag, value, default in (("s", self.stride, (1, 1)), ("p", self.padding, (0, 0)),
                                    ("d", self.dilation, (1, 1)),
                                    ("op", self.output_padding, (0, 0))):
            if value != default:
                s += f" {tag}{value[0]}" if value[0] == value[1] else f" {tag}{value}"
        if self.groups != 1:
            s += f" g{self.groups}"
        if self.transposed:
            s += " transposed"
        return s


def _layer(name, network, N, C_in, H, C_out, k, s=1, p=0, d=1, g=1, transposed=False, op=0,
           W=None):
    return Layer(name, network, N, C_in, H, H if W is None else W, C_out, _pair(k), _pair(s),
                 _pair(p), _pair(d), g, transposed, _pair(op))


LAYERS = (
    # The layer cconv was founded on: a 256-channel 24x24 feature map, 128 3x3 kernels.
    _layer("founding.3x3", "founding example", 1, 256, 24, 128, 3, p=1),
    # ResNet-50 (torchvision v1.5: the stride sits on the bottleneck's 3x3), 224x224 input.
    _layer("resnet50.stem", "ResNet-50", 1, 3, 224, 64, 7, s=2, p=3),
    _layer("resnet50.s1.1x1-64-64", "ResNet-50", 1, 64, 56, 64, 1),
    _layer("resnet50.s1.3x3", "ResNet-50", 1, 64, 56, 64, 3, p=1),
    _layer("resnet50.s1.1x1-64-256", "ResNet-50", 1, 64, 56, 256, 1),
    _layer("resnet50.s1.1x1-256-64", "ResNet-50", 1, 256, 56, 64, 1),
    _layer("resnet50.s2.3x3s2", "ResNet-50", 1, 128, 56, 128, 3, s=2, p=1),
    _layer("resnet50.s2.down1x1s2", "ResNet-50", 1, 256, 56, 512, 1, s=2),
    _layer("resnet50.s2.3x3", "ResNet-50", 1, 128, 28, 128, 3, p=1),
    _layer("resnet50.s2.1x1-512-128", "ResNet-50", 1, 512, 28, 128, 1),
    _layer("resnet50.s2.1x1-128-512", "ResNet-50", 1, 128, 28, 512, 1),
    _layer("resnet50.s3.3x3", "ResNet-50", 1, 256, 14, 256, 3, p=1),
    _layer("resnet50.s3.1x1-1024-256", "ResNet-50", 1, 1024, 14, 256, 1),
    _layer("resnet50.s3.1x1-256-1024", "ResNet-50", 1, 256, 14, 1024, 1),
    _layer("resnet50.s4.3x3", "ResNet-50", 1, 512, 7, 512, 3, p=1),
    _layer("resnet50.s4.1x1-2048-512", "ResNet-50", 1, 2048, 7, 512, 1),
    _layer("resnet50.s4.1x1-512-2048", "ResNet-50", 1, 512, 7, 2048, 1),
    # MobileNetV2, 224x224 input: the stem, depthwise 3x3 (stride 1 and 2), pointwise 1x1.
    _layer("mobilenetv2.stem", "MobileNetV2", 1, 3, 224, 32, 3, s=2, p=1),
    _layer("mobilenetv2.dw112", "MobileNetV2", 1, 32, 112, 32, 3, p=1, g=32),
    _layer("mobilenetv2.pw112-32-16", "MobileNetV2", 1, 32, 112, 16, 1),
    _layer("mobilenetv2.dw112s2", "MobileNetV2", 1, 96, 112, 96, 3, s=2, p=1, g=96),
    _layer("mobilenetv2.pw56-144-24", "MobileNetV2", 1, 144, 56, 24, 1),
    _layer("mobilenetv2.dw56s2", "MobileNetV2", 1, 144, 56, 144, 3, s=2, p=1, g=144),
    _layer("mobilenetv2.dw14", "MobileNetV2", 1, 384, 14, 384, 3, p=1, g=384),
    _layer("mobilenetv2.pw14-384-64", "MobileNetV2", 1, 384, 14, 64, 1),
    _layer("mobilenetv2.pw7-160-960", "MobileNetV2", 1, 160, 7, 960, 1),
    # ResNeXt-50 32x4d: the grouped 3x3 of stages 1 and 2 (4 and 8 channels per group).
    _layer("resnext50.s1.3x3g32", "ResNeXt-50 32x4d", 1, 128, 56, 128, 3, p=1, g=32),
    _layer("resnext50.s2.3x3g32", "ResNeXt-50 32x4d", 1, 256, 28, 256, 3, p=1, g=32),
    # DeepLabV3 (ResNet backbone, output stride 8, 257x257 input): layer3's dilated 3x3.
    _layer("deeplabv3.3x3d2", "DeepLabV3", 1, 256, 33, 256, 3, p=2, d=2),
    # Tiny embedded networks: an MNIST classifier's first layer, a 96x96 camera net's stem.
    _layer("mnist.conv1", "MNIST CNN", 1, 1, 28, 8, 3, p=1),
    _layer("tinycam96.stem", "96x96 RGB CNN", 1, 3, 96, 16, 3, s=2, p=1),
    # Batches: ResNet-50's stage-1 3x3 at batch 8, a CIFAR 3x3 at batch 32, MNIST at 32.
    _layer("resnet50.s1.3x3.b8", "ResNet-50", 8, 64, 56, 64, 3, p=1),
    _layer("cifar.3x3.b32", "CIFAR CNN", 32, 32, 32, 32, 3, p=1),
    _layer("mnist.conv2.b32", "MNIST CNN", 32, 8, 28, 16, 3, p=1),
    # Transposed (decoders): DCGAN-style 4x4/s2/p1, U-Net 2x2/s2, 3x3/s2 with output_padding.
    _layer("dcgan.convT4x4s2", "DCGAN generator", 1, 256, 14, 128, 4, s=2, p=1,
           transposed=True),
    _layer("unet.up2x2s2", "U-Net decoder", 1, 64, 56, 32, 2, s=2, transposed=True),
    _layer("decoder.convT3x3s2op1", "segmentation decoder", 1, 64, 32, 32, 3, s=2, p=1,
           transposed=True, op=1),
)

# One layer of each kind, small enough that `cconv bench --quick` takes under a minute.
QUICK = (
    "founding.3x3",           # dense 3x3
    "resnet50.s1.1x1-64-64",  # 1x1 read in place
    "resnet50.s2.3x3s2",      # strided
    "mobilenetv2.dw112",      # depthwise
    "resnext50.s2.3x3g32",    # grouped
    "deeplabv3.3x3d2",        # dilated
    "mnist.conv1",            # tiny, one input channel
    "cifar.3x3.b32",          # batch
    "dcgan.convT4x4s2",       # transposed
)

_BY_NAME = {layer.name: layer for layer in LAYERS}
if len(_BY_NAME) != len(LAYERS):
    raise RuntimeError("cconv.bench.layers: duplicate layer names")


def by_name(name):
    """The layer called exactly `name`."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no layer named {name!r}; layers are: "
                       f"{', '.join(_BY_NAME)}") from None


def select(spec="quick"):
    """Layers for a run, in LAYERS order: 'quick', 'all', or comma-separated names or
    substrings of names ('mnist' picks every MNIST layer; 'quick' may be one of them)."""
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    wanted = set()
    for item in spec:
        if item == "all":
            wanted.update(_BY_NAME)
        elif item == "quick":
            wanted.update(QUICK)
        elif item in _BY_NAME:
            wanted.add(item)
        else:
            hits = [name for name in _BY_NAME if item.lower() in name.lower()]
            if not hits:
                raise ValueError(f"layers: {item!r} matches no layer name; layers are: "
                                 f"{', '.join(_BY_NAME)}")
            wanted.update(hits)
    if not wanted:
        raise ValueError("layers: empty selection; give 'quick', 'all' or layer names")
    return [layer for layer in LAYERS if layer.name in wanted]

"""ResNets (He et al. 2016): torchvision's ImageNet definitions, with its key
names (conv1, bn1, layer1.0.conv1, layer1.0.downsample.0, fc), and the CIFAR
ResNets of section 4.2 with the parameter-free "option A" shortcut."""

from .. import nn
from ..nn.graph import Input, Model
from ._layers import ChannelMul, ShortcutA


def _conv_bn(x, p, i, c_in, c_out, k, stride=1):
    x = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False,
                  name=f"{p}conv{i}")(x)
    return nn.BatchNorm2d(c_out, name=f"{p}bn{i}")(x)


def _basic(x, p, c_in, planes, stride):
    y = nn.ReLU(name=f"{p}relu1")(_conv_bn(x, p, 1, c_in, planes, 3, stride))
    return _conv_bn(y, p, 2, planes, planes, 3), planes


def _bottleneck(x, p, c_in, planes, stride):
    # torchvision's "v1.5": the stride sits on the 3x3 conv, not the first 1x1.
    y = nn.ReLU(name=f"{p}relu1")(_conv_bn(x, p, 1, c_in, planes, 1))
    y = nn.ReLU(name=f"{p}relu2")(_conv_bn(y, p, 2, planes, planes, 3, stride))
    return _conv_bn(y, p, 3, planes, planes * 4, 1), planes * 4


def _residual(x, p, c_in, planes, stride, block, gate=None):
    y, c_out = block(x, p, c_in, planes, stride)
    if gate is not None:
        y = gate(y, p, c_out)
    short = x
    if stride != 1 or c_in != c_out:
        short = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False,
                          name=f"{p}downsample.0")(x)
        short = nn.BatchNorm2d(c_out, name=f"{p}downsample.1")(short)
    y = nn.Add(name=f"{p}add")([y, short])
    return nn.ReLU(name=f"{p}relu")(y), c_out


def _imagenet_resnet(name, block, depths, num_classes, input_size, gate=None):
    inp = Input((3, input_size, input_size))
    x = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False, name="conv1")(inp)
    x = nn.ReLU(name="relu")(nn.BatchNorm2d(64, name="bn1")(x))
    x = nn.MaxPool2d(3, stride=2, padding=1, name="maxpool")(x)
    c = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), depths), start=1):
        for b in range(n):
            stride = 2 if stage > 1 and b == 0 else 1
            x, c = _residual(x, f"layer{stage}.{b}.", c, planes, stride, block, gate)
    x = nn.AdaptiveAvgPool2d((1, 1), name="avgpool")(x)
    x = nn.Linear(c, num_classes, name="fc")(nn.Flatten(name="flatten")(x))
    return Model(inp, x, name=name)


def resnet18(num_classes=1000, input_size=224):
    """ResNet-18: basic blocks [2, 2, 2, 2]; 11,689,512 parameters."""
    return _imagenet_resnet("resnet18", _basic, (2, 2, 2, 2), num_classes, input_size)


def resnet34(num_classes=1000, input_size=224):
    """ResNet-34: basic blocks [3, 4, 6, 3]; 21,797,672 parameters."""
    return _imagenet_resnet("resnet34", _basic, (3, 4, 6, 3), num_classes, input_size)


def resnet50(num_classes=1000, input_size=224):
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]; 25,557,032 parameters."""
    return _imagenet_resnet("resnet50", _bottleneck, (3, 4, 6, 3), num_classes, input_size)


def resnet101(num_classes=1000, input_size=224):
    """ResNet-101: bottleneck blocks [3, 4, 23, 3]; 44,549,160 parameters."""
    return _imagenet_resnet("resnet101", _bottleneck, (3, 4, 23, 3), num_classes, input_size)


def resnet152(num_classes=1000, input_size=224):
    """ResNet-152: bottleneck blocks [3, 8, 36, 3]; 60,192,808 parameters."""
    return _imagenet_resnet("resnet152", _bottleneck, (3, 8, 36, 3), num_classes, input_size)


def _se_gate(y, p, c, reduction=16):
    # Squeeze (global average) and excite (bottleneck MLP as 1x1 convs on the
    # 1x1 map, timm's "se.fc1/fc2"), then rescale each channel by a sigmoid gate.
    s = nn.AdaptiveAvgPool2d((1, 1), name=f"{p}se.pool")(y)
    s = nn.ReLU(name=f"{p}se.relu")(nn.Conv2d(c, c // reduction, 1, name=f"{p}se.fc1")(s))
    s = nn.Sigmoid(name=f"{p}se.gate")(nn.Conv2d(c // reduction, c, 1, name=f"{p}se.fc2")(s))
    return ChannelMul(name=f"{p}se.scale")([y, s])


def se_resnet50(num_classes=1000, input_size=224):
    """SE-ResNet-50 (Hu et al. 2018): ResNet-50 with a squeeze-and-excitation
    gate (reduction 16) on each bottleneck's residual branch before the
    addition; 28,088,024 parameters (timm's ``seresnet50`` layout)."""
    return _imagenet_resnet("se_resnet50", _bottleneck, (3, 4, 6, 3), num_classes, input_size,
                            gate=_se_gate)


def _cifar_resnet(name, n, num_classes, input_size, shortcut):
    # Section 4.2: 6n+2 layers, widths 16/32/64 on 32x32/16x16/8x8 maps. The
    # default shortcut where the shape changes is "B", a 1x1 conv + BN
    # (torchvision-style downsample.0/1): resnet20 then has the 272,474
    # parameters the project's model list specifies. The paper's CIFAR
    # experiments used option "A" (stride-2 subsample + zero-padded channels,
    # parameter-free), 2,752 parameters fewer.
    if shortcut not in ("A", "B"):
        raise ValueError(f"{name}: shortcut must be 'A' or 'B', got {shortcut!r}")
    inp = Input((3, input_size, input_size))
    x = nn.ReLU(name="relu")(_conv_bn(inp, "", 1, 3, 16, 3))
    c = 16
    for stage, planes in enumerate((16, 32, 64), start=1):
        for b in range(n):
            p = f"layer{stage}.{b}."
            stride = 2 if stage > 1 and b == 0 else 1
            if shortcut == "B":
                x, _ = _residual(x, p, c, planes, stride, _basic)
            else:
                y, _ = _basic(x, p, c, planes, stride)
                short = x if (stride == 1 and c == planes) else ShortcutA(
                    c, planes, stride, name=f"{p}shortcut")(x)
                x = nn.ReLU(name=f"{p}relu")(nn.Add(name=f"{p}add")([y, short]))
            c = planes
    x = nn.AdaptiveAvgPool2d((1, 1), name="avgpool")(x)
    x = nn.Linear(c, num_classes, name="fc")(nn.Flatten(name="flatten")(x))
    return Model(inp, x, name=name)


def resnet20(num_classes=10, input_size=32, shortcut="B"):
    """CIFAR ResNet-20 (n=3): 269,722 parameters with option A shortcuts, 272,474 with B."""
    return _cifar_resnet("resnet20", 3, num_classes, input_size, shortcut)


def resnet32(num_classes=10, input_size=32, shortcut="B"):
    """CIFAR ResNet-32 (n=5): 464,154 parameters with option A shortcuts, 466,906 with B."""
    return _cifar_resnet("resnet32", 5, num_classes, input_size, shortcut)


def resnet44(num_classes=10, input_size=32, shortcut="B"):
    """CIFAR ResNet-44 (n=7): 658,586 parameters with option A shortcuts, 661,338 with B."""
    return _cifar_resnet("resnet44", 7, num_classes, input_size, shortcut)


def resnet56(num_classes=10, input_size=32, shortcut="B"):
    """CIFAR ResNet-56 (n=9): 853,018 parameters with option A shortcuts, 855,770 with B."""
    return _cifar_resnet("resnet56", 9, num_classes, input_size, shortcut)

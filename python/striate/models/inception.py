"""GoogLeNet / Inception v1 (Szegedy et al. 2015) with torchvision's key names
(conv1.conv.weight, inception3a.branch2.1.bn.running_mean, fc.weight, ...)."""

from .. import nn
from ..nn.graph import Input, Model

# Table 1 of the paper: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
}


def _basic_conv(x, name, c_in, c_out, k, stride=1, padding=0):
    # torchvision's BasicConv2d: conv without bias, batch norm (eps 1e-3), ReLU.
    x = nn.Conv2d(c_in, c_out, k, stride=stride, padding=padding, bias=False,
                  name=f"{name}.conv")(x)
    x = nn.BatchNorm2d(c_out, eps=1e-3, name=f"{name}.bn")(x)
    return nn.ReLU(name=f"{name}.relu")(x)


def _inception(x, name, c_in, widths, k5):
    c1, r3, c3, r5, c5, pp = widths
    b1 = _basic_conv(x, f"{name}.branch1", c_in, c1, 1)
    b2 = _basic_conv(x, f"{name}.branch2.0", c_in, r3, 1)
    b2 = _basic_conv(b2, f"{name}.branch2.1", r3, c3, 3, padding=1)
    b3 = _basic_conv(x, f"{name}.branch3.0", c_in, r5, 1)
    b3 = _basic_conv(b3, f"{name}.branch3.1", r5, c5, k5, padding=k5 // 2)
    b4 = nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True, name=f"{name}.branch4.0")(x)
    b4 = _basic_conv(b4, f"{name}.branch4.1", c_in, pp, 1)
    return nn.Concat(name=f"{name}.concat")([b1, b2, b3, b4]), c1 + c3 + c5 + pp


def googlenet(num_classes=1000, input_size=224, dropout=0.2, branch3_kernel=5):
    """Inception v1 without the auxiliary classifiers, with batch norm after each
    conv as torchvision. ``branch3_kernel=5`` is the paper's 5x5 branch
    (7,005,832 parameters); torchvision's definition uses 3x3 there
    (``branch3_kernel=3``: 6,624,904 parameters, loads its weights)."""
    if branch3_kernel not in (3, 5):
        raise ValueError(f"googlenet: branch3_kernel must be 3 or 5, got {branch3_kernel!r}")
    inp = Input((3, input_size, input_size))
    x = _basic_conv(inp, "conv1", 3, 64, 7, stride=2, padding=3)
    x = nn.MaxPool2d(3, stride=2, ceil_mode=True, name="maxpool1")(x)
    x = _basic_conv(x, "conv2", 64, 64, 1)
    x = _basic_conv(x, "conv3", 64, 192, 3, padding=1)
    x = nn.MaxPool2d(3, stride=2, ceil_mode=True, name="maxpool2")(x)
    c = 192
    for key, widths in INCEPTION.items():
        x, c = _inception(x, f"inception{key}", c, widths, branch3_kernel)
        if key == "3b":
            x = nn.MaxPool2d(3, stride=2, ceil_mode=True, name="maxpool3")(x)
        elif key == "4e":
            x = nn.MaxPool2d(2, stride=2, ceil_mode=True, name="maxpool4")(x)
    x = nn.AdaptiveAvgPool2d((1, 1), name="avgpool")(x)
    x = nn.Flatten(name="flatten")(x)
    x = nn.Dropout(dropout, name="dropout")(x)
    return Model(inp, nn.Linear(c, num_classes, name="fc")(x), name="googlenet")

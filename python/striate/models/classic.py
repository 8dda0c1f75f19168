"""AlexNet, ZFNet and VGG as functional models with torchvision's key names
("features.0.weight", "classifier.1.weight", ...) and one row per layer in
``summary()``, so the volumes of the lecture notes can be read off."""

from .. import nn
from ..nn.graph import Input, Model
from ._build import Namer, lrn


def _head(x, in_features, num_classes, dropout, vgg):
    # torchvision: AlexNet is Dropout-FC-ReLU-Dropout-FC-ReLU-FC (keys
    # classifier.1/4/6), VGG is FC-ReLU-Dropout-FC-ReLU-Dropout-FC (0/3/6).
    c = Namer("classifier")
    x = nn.Flatten(name="flatten")(x)
    for width in (4096, 4096):
        # One layer per statement: Namer numbers layers in creation order.
        if not vgg:
            x = c(nn.Dropout, dropout)(x)
        x = c(nn.Linear, in_features, width)(x)
        x = c(nn.ReLU)(x)
        if vgg:
            x = c(nn.Dropout, dropout)(x)
        in_features = width
    return c(nn.Linear, in_features, num_classes)(x)


def _alexnet_like(name, convs, num_classes, input_size, dropout, ceil_mode=False):
    """``convs``: (out_channels, kernel, stride, padding, then) with ``then`` in
    "", "pool", "pool+lrn" -- what follows the conv's ReLU."""
    inp = Input((3, input_size, input_size))
    f, x, c_in = Namer("features"), inp, 3
    for c_out, k, s, p, then in convs:
        x = f(nn.Conv2d, c_in, c_out, k, stride=s, padding=p)(x)
        x = f(nn.ReLU)(x)
        if then.startswith("pool"):
            x = f(nn.MaxPool2d, 3, stride=2, ceil_mode=ceil_mode)(x)
        if then.endswith("lrn"):
            x = f(nn.LocalResponseNorm, **lrn())(x)
        c_in = c_out
    c, h, w = x.shape
    return Model(inp, _head(x, c * h * w, num_classes, dropout, vgg=False), name=name)


def alexnet(num_classes=1000, input_size=227, dropout=0.5):
    """AlexNet, the notes' single-tower version: 227x227x3 -> CONV1 96 11x11 s4 ->
    55x55x96 -> POOL 3x3 s2 -> 27x27x96 -> LRN -> CONV2 256 5x5 p2 -> 27x27x256 ->
    POOL -> 13x13x256 -> LRN -> CONV3 384, CONV4 384, CONV5 256 (3x3 p1) -> POOL ->
    6x6x256 -> FC 4096 -> FC 4096 -> FC num_classes, dropout before each
    hidden FC; 62,378,344 parameters for 1000 classes."""
    return _alexnet_like("alexnet", [
        (96, 11, 4, 0, "pool+lrn"), (256, 5, 1, 2, "pool+lrn"),
        (384, 3, 1, 1, ""), (384, 3, 1, 1, ""), (256, 3, 1, 1, "pool")],
        num_classes, input_size, dropout)


def zfnet(num_classes=1000, input_size=224, dropout=0.5):
    """ZFNet (Zeiler & Fergus 2013) as in the notes: AlexNet with CONV1 7x7 stride 2
    and CONV3/4/5 of 512/1024/512 filters. Geometry from the paper's figure 3:
    224 -> CONV1 (pad 1) 110x110x96 -> POOL 55 -> LRN -> CONV2 256 5x5 s2 26x26 ->
    POOL 13 -> LRN -> CONV3-5 13x13 -> POOL 6x6x512 -> FC 4096, 4096, num_classes.
    The pools round up (``ceil_mode``, as Caffe) to give the paper's 55 and 13."""
    return _alexnet_like("zfnet", [
        (96, 7, 2, 1, "pool+lrn"), (256, 5, 2, 0, "pool+lrn"),
        (512, 3, 1, 1, ""), (1024, 3, 1, 1, ""), (512, 3, 1, 1, "pool")],
        num_classes, input_size, dropout, ceil_mode=True)


# Simonyan & Zisserman 2015, table 1: an int is a 3x3 conv of that width,
# (width, 1) a 1x1 conv (configuration C), "L" local response norm, "M" 2x2 max pool.
VGG_CFGS = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "A-LRN": [64, "L", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "C": [64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M",
          512, 512, (512, 1), "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
          512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


def vgg(cfg="D", num_classes=1000, batch_norm=False, input_size=224, dropout=0.5):
    """VGG configuration ``cfg`` ("A", "A-LRN", "B", "C", "D", "E") as torchvision
    builds it: ``features`` (conv [BN] ReLU ..., max pools), an adaptive average
    pool to 7x7 (so smaller inputs run; identity at 224), ``classifier``.
    ``vgg("D")`` has 138,357,544 parameters."""
    if cfg not in VGG_CFGS:
        raise ValueError(f"vgg: cfg must be one of {list(VGG_CFGS)}, got {cfg!r}")
    inp = Input((3, input_size, input_size))
    f, x, c_in = Namer("features"), inp, 3
    for v in VGG_CFGS[cfg]:
        if v == "M":
            x = f(nn.MaxPool2d, 2, stride=2)(x)
        elif v == "L":
            x = f(nn.LocalResponseNorm, **lrn())(x)
        else:
            c_out, k = v if isinstance(v, tuple) else (v, 3)
            x = f(nn.Conv2d, c_in, c_out, k, padding=k // 2)(x)
            if batch_norm:
                x = f(nn.BatchNorm2d, c_out)(x)
            x = f(nn.ReLU)(x)
            c_in = c_out
    x = nn.AdaptiveAvgPool2d((7, 7), name="avgpool")(x)
    suffix = "_bn" if batch_norm else ""
    return Model(inp, _head(x, 512 * 7 * 7, num_classes, dropout, vgg=True),
                 name=f"vgg_{cfg}{suffix}")


def vgg11(**kw):
    return vgg("A", **kw)


def vgg13(**kw):
    return vgg("B", **kw)


def vgg16(**kw):
    return vgg("D", **kw)


def vgg19(**kw):
    return vgg("E", **kw)

"""The benchmark cases: layers of the classic CNNs with their published shapes.

Convolutions (input C x H x W, C_out, kernel/stride/padding) are those of
LeNet-5 (LeCun et al. 1998), torchvision's AlexNet, VGG-16 (its 9 distinct
3x3 layers), ResNet-18's 7x7 stem and 3x3 layers, ResNet-50's 1x1
bottleneck layers (torchvision v1.5, stride on the 3x3) and a MobileNet
depthwise layer; then the pooling, normalization, activation, softmax,
linear, loss and GEMM ops at the shapes where those networks use them.

Batch sizes keep each case around 0.5-4 GFLOP so the default run stays
within a few minutes on a 2-core machine; ``quick=True`` shrinks them.
Arrays are built lazily (``Case.make``): the suite would need ~1 GB at once.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

# Largest float64 reference work (FLOPs) a check may take: conv layers are
# checked on their first images only, as many as fit (at least one).
_REF_FLOPS = 6e8


@dataclass
class Case:
    """One op at one shape.

    ``make()`` returns the op's positional arrays (fresh, seeded). ``batched``
    lists the arrays whose first axis is the batch (sliced to ``check_n``
    entries for the reference check); ``no_grad`` the arrays that get no
    gradient (class targets, running statistics). ``flops`` counts the
    forward pass (multiply-add = 2); backward counts twice that (GEMM-like
    ops compute two products of the forward's size).
    """

    name: str
    op: str
    make: Callable[[], list]
    kwargs: dict = field(default_factory=dict)
    flops: Optional[float] = None
    torch_fn: Optional[Callable] = None
    batch: int = 1
    check_n: Optional[int] = None
    batched: tuple = (0,)
    no_grad: tuple = ()

    @property
    def full_name(self):
        """What ``--filter`` matches: the op name and the case name."""
        return f"{self.op} {self.name}"

    def is_conv(self):
        return self.op == "conv2d"


def _rng(name):
    # Seeded by the case name: a case's data do not depend on which others run.
    return np.random.default_rng(zlib.crc32(name.encode()))


def _conv(net, layer, n, c_in, hw, c_out, k, stride=1, padding=0, groups=1):
    h_out = (hw + 2 * padding - k) // stride + 1
    per_image = 2.0 * c_out * h_out * h_out * (c_in // groups) * k * k
    kind = f"{k}x{k}" + (f"/{stride}" if stride > 1 else "") + (" dw" if groups == c_in > 1 else "")
    name = f"{net} {layer} {kind} {c_in}->{c_out} {hw}x{hw} b{n}"
    kw = dict(stride=stride, padding=padding, groups=groups)

    def make():
        rng = _rng(name)
        x = rng.standard_normal((n, c_in, hw, hw), dtype=np.float32)
        # He-style scale keeps outputs O(1) whatever the fan-in.
        w = (rng.standard_normal((c_out, c_in // groups, k, k)) /
             math.sqrt(c_in // groups * k * k)).astype(np.float32)
        b = rng.standard_normal(c_out, dtype=np.float32)
        return [x, w, b]

    def torch_fn(F, x, w, b):
        return F.conv2d(x, w, b, **kw)

    check_n = int(min(n, max(1, _REF_FLOPS // per_image)))
    return Case(name, "conv2d", make, kw, per_image * n, torch_fn, batch=n, check_n=check_n)


def conv_cases(quick=False):
    """LeNet-5, AlexNet, VGG-16, ResNet-18/50 and MobileNet convolution layers."""
    q = 4 if quick else 1
    lenet, alex, vgg, res, dw = 64 // q, 16 // q, 1 if quick else 2, 16 // q, 16 // q
    cases = [
        _conv("lenet5", "conv1", lenet, 1, 32, 6, 5),
        _conv("lenet5", "conv2", lenet, 6, 14, 16, 5),
        _conv("alexnet", "conv1", alex, 3, 224, 64, 11, stride=4, padding=2),
        _conv("alexnet", "conv2", alex, 64, 27, 192, 5, padding=2),
        _conv("alexnet", "conv3", alex, 192, 13, 384, 3, padding=1),
        _conv("alexnet", "conv4", alex, 384, 13, 256, 3, padding=1),
        _conv("alexnet", "conv5", alex, 256, 13, 256, 3, padding=1),
    ]
    vgg_layers = [("conv1_1", 3, 224, 64), ("conv1_2", 64, 224, 64), ("conv2_1", 64, 112, 128),
                  ("conv2_2", 128, 112, 128), ("conv3_1", 128, 56, 256), ("conv3_2", 256, 56, 256),
                  ("conv4_1", 256, 28, 512), ("conv4_2", 512, 28, 512), ("conv5_x", 512, 14, 512)]
    if quick:  # the 224x224 and 112x112 layers (and their float64 checks) are the slow ones
        vgg_layers = vgg_layers[5:]
    cases += [_conv("vgg16", layer, vgg, c, hw, o, 3, padding=1) for layer, c, hw, o in vgg_layers]
    cases += [
        _conv("resnet18", "conv1", res, 3, 224, 64, 7, stride=2, padding=3),
        _conv("resnet18", "layer1", res, 64, 56, 64, 3, padding=1),
        _conv("resnet18", "layer2.0", res, 64, 56, 128, 3, stride=2, padding=1),
        _conv("resnet18", "layer2", res, 128, 28, 128, 3, padding=1),
        _conv("resnet18", "layer3", res, 256, 14, 256, 3, padding=1),
        _conv("resnet18", "layer4", res, 512, 7, 512, 3, padding=1),
        _conv("resnet50", "layer1 reduce", res, 256, 56, 64, 1),
        _conv("resnet50", "layer1 expand", res, 64, 56, 256, 1),
        _conv("resnet50", "layer2 reduce", res, 512, 28, 128, 1),
        _conv("resnet50", "layer3.0 downsample", res, 512, 28, 1024, 1, stride=2),
        _conv("resnet50", "layer3 reduce", res, 1024, 14, 256, 1),
        _conv("resnet50", "layer4 expand", res, 512, 7, 2048, 1),
        _conv("mobilenet", "dw", dw, 128, 56, 128, 3, padding=1, groups=128),
    ]
    return cases


def _arrays(name, *shapes):
    def make():
        rng = _rng(name)
        return [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    return make


def _case(name, op, shape, torch_fn, kwargs=None, **kw):
    return Case(name, op, _arrays(name, shape), kwargs or {}, torch_fn=torch_fn, batch=shape[0],
                **kw)


def other_cases(quick=False):
    """Pooling, normalization, activations, softmax, linear, loss and GEMM."""
    q = 4 if quick else 1
    b16, b64, b256 = 16 // q, 64 // q, 256 // q
    stem = (b16, 64, 112, 112)  # ResNet after conv1
    act = (b16, 64, 56, 56)
    cases = [
        _case(f"resnet18 maxpool 3x3/2 pad1 64@112 b{b16}", "max_pool2d", stem,
              lambda F, x: F.max_pool2d(x, 3, 2, 1), dict(kernel_size=3, stride=2, padding=1)),
        _case(f"alexnet maxpool1 3x3/2 64@55 b{b16}", "max_pool2d", (b16, 64, 55, 55),
              lambda F, x: F.max_pool2d(x, 3, 2), dict(kernel_size=3, stride=2)),
        _case(f"lenet5 subsample 2x2/2 6@28 b{b64}", "avg_pool2d", (b64, 6, 28, 28),
              lambda F, x: F.avg_pool2d(x, 2), dict(kernel_size=2)),
        _case(f"densenet121 transition 2x2/2 128@56 b{b16}", "avg_pool2d", (b16, 128, 56, 56),
              lambda F, x: F.avg_pool2d(x, 2), dict(kernel_size=2)),
        _case(f"resnet18 head 512@7->1 b{b16}", "adaptive_avg_pool2d", (b16, 512, 7, 7),
              lambda F, x: F.adaptive_avg_pool2d(x, 1), dict(output_size=1)),
        _case(f"resnet50 head 2048@7->1 b{b16}", "adaptive_avg_pool2d", (b16, 2048, 7, 7),
              lambda F, x: F.adaptive_avg_pool2d(x, 1), dict(output_size=1)),
        _bn(f"resnet18 bn train 64@56 b{b16}", act, True),
        _bn(f"resnet50 bn eval 256@56 b{b16}", (b16, 256, 56, 56), False),
        _case(f"alexnet paper lrn 5 96@55 b{b16}", "local_response_norm", (b16, 96, 55, 55),
              lambda F, x: F.local_response_norm(x, 5, 1e-4, 0.75, 2.0),
              dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),
        _case(f"resnet18 relu 64@112 b{b16}", "relu", stem, lambda F, x: F.relu(x)),
        _case(f"sigmoid 64@56 b{b16}", "sigmoid", act, lambda F, x: F.sigmoid(x)),
        _case(f"tanh 64@56 b{b16}", "tanh", act, lambda F, x: F.tanh(x)),
        _case(f"imagenet softmax 1000 b{b256}", "softmax", (b256, 1000),
              lambda F, x: F.softmax(x, 1), dict(dim=1)),
        _case(f"imagenet log_softmax 1000 b{b256}", "log_softmax", (b256, 1000),
              lambda F, x: F.log_softmax(x, 1), dict(dim=1)),
        _linear(f"alexnet fc6 9216->4096 b{b16}", b16, 9216, 4096),
        _linear(f"vgg16 fc8 4096->1000 b{b64}", b64, 4096, 1000),
        _cross_entropy(f"imagenet cross_entropy 1000 b{b256}", b256, 1000),
    ]
    m = 512 if quick else 1024
    cases.append(_matmul(f"square {m}x{m}x{m}", m, m, m))
    cases.append(_matmul(f"im2col-like 64x{9 * 64}x{56 * 56 // q}", 64, 9 * 64, 56 * 56 // q))
    return cases


def _bn(name, shape, training):
    c = shape[1]

    def make():
        rng = _rng(name)
        return [rng.standard_normal(shape, dtype=np.float32),
                rng.standard_normal(c, dtype=np.float32) * 0.1,
                rng.uniform(0.5, 2.0, c).astype(np.float32),
                rng.standard_normal(c, dtype=np.float32),
                rng.standard_normal(c, dtype=np.float32)]

    def torch_fn(F, x, rm, rv, w, b):
        return F.batch_norm(x, rm, rv, w, b, training=training)

    return Case(name, "batch_norm", make, dict(training=training), None, torch_fn, batch=shape[0],
                no_grad=(1, 2))


def _linear(name, m, k, n):
    def make():
        rng = _rng(name)
        return [rng.standard_normal((m, k), dtype=np.float32),
                (rng.standard_normal((n, k)) / math.sqrt(k)).astype(np.float32),
                rng.standard_normal(n, dtype=np.float32)]
    return Case(name, "linear", make, {}, 2.0 * m * k * n, lambda F, x, w, b: F.linear(x, w, b),
                batch=m)


def _matmul(name, m, k, n):
    def make():
        rng = _rng(name)
        return [rng.standard_normal((m, k), dtype=np.float32),
                rng.standard_normal((k, n), dtype=np.float32)]
    return Case(name, "matmul", make, {}, 2.0 * m * k * n, lambda F, a, b: a @ b, batch=m)


def _cross_entropy(name, n, c):
    def make():
        rng = _rng(name)
        return [rng.standard_normal((n, c), dtype=np.float32), rng.integers(0, c, n)]
    return Case(name, "cross_entropy", make, {}, None, lambda F, z, t: F.cross_entropy(z, t),
                batch=n, batched=(0, 1), no_grad=(1,))


def build_cases(quick=False):
    """Every benchmark case, convolutions first (``quick``: smaller batches)."""
    cases = conv_cases(quick) + other_cases(quick)
    names = [c.name for c in cases]
    assert len(set(names)) == len(names), "case names must be unique"
    return cases

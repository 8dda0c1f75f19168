"""PyTorch definitions of the zoo's networks, with torchvision's module and
parameter names (torchvision itself may be absent), so a torch model's
``state_dict()`` loads into the striate model of the same name. Shared by the
tests (outputs equal torch's) and the inference benchmark. Every builder
takes the ``torch`` module, so importing this file does not import torch.
"""


def torch_resnet(torch, bottleneck, depths, num_classes, cifar_option=None, se=False):
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self, c_in, planes, stride):
            super().__init__()
            k = [1, 3, 1] if bottleneck else [3, 3]
            outs = [planes, planes, planes * 4] if bottleneck else [planes, planes]
            strides = [1, stride, 1] if bottleneck else [stride, 1]
            c = c_in
            for i, (kk, o, s) in enumerate(zip(k, outs, strides), start=1):
                setattr(self, f"conv{i}", tnn.Conv2d(c, o, kk, s, kk // 2, bias=False))
                setattr(self, f"bn{i}", tnn.BatchNorm2d(o))
                c = o
            self.n, self.c_out = len(k), c
            if se:  # timm's SEModule: 1x1 convs with bias on the pooled map
                self.se = tnn.Module()
                self.se.fc1 = tnn.Conv2d(c, c // 16, 1)
                self.se.fc2 = tnn.Conv2d(c // 16, c, 1)
            self.downsample = None
            self.option_a = None
            if stride != 1 or c_in != c:
                if cifar_option == "A":
                    lo = (c - c_in) // 2
                    self.option_a = lambda x: tnn.functional.pad(
                        x[:, :, ::stride, ::stride], (0, 0, 0, 0, lo, c - c_in - lo))
                else:
                    self.downsample = tnn.Sequential(tnn.Conv2d(c_in, c, 1, stride, bias=False),
                                                     tnn.BatchNorm2d(c))

        def forward(self, x):
            y = x
            for i in range(1, self.n + 1):
                y = getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(y))
                if i < self.n:
                    y = torch.relu(y)
            if se:
                pooled = y.mean((2, 3), keepdim=True)
                y = y * torch.sigmoid(self.se.fc2(torch.relu(self.se.fc1(pooled))))
            s = x
            if self.downsample is not None:
                s = self.downsample(x)
            elif self.option_a is not None:
                s = self.option_a(x)
            return torch.relu(y + s)

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            widths = (16, 32, 64) if cifar_option else (64, 128, 256, 512)
            if cifar_option:
                self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
                self.bn1 = tnn.BatchNorm2d(16)
            else:
                self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
                self.bn1 = tnn.BatchNorm2d(64)
            c = widths[0]
            for stage, (planes, n) in enumerate(zip(widths, depths), start=1):
                blocks = []
                for b in range(n):
                    blocks.append(Block(c, planes, 2 if stage > 1 and b == 0 else 1))
                    c = blocks[-1].c_out
                setattr(self, f"layer{stage}", tnn.Sequential(*blocks))
            self.stages = len(widths)
            self.fc = tnn.Linear(c, num_classes)
            self.cifar = bool(cifar_option)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            if not self.cifar:
                x = tnn.functional.max_pool2d(x, 3, 2, 1)
            for s in range(1, self.stages + 1):
                x = getattr(self, f"layer{s}")(x)
            return self.fc(torch.flatten(tnn.functional.adaptive_avg_pool2d(x, 1), 1))

    return Net()


def torch_resnet18(torch, num_classes=1000):
    return torch_resnet(torch, False, (2, 2, 2, 2), num_classes)


def randomize_bn(torch, net):
    # Non-trivial running statistics, so eval-mode batch norm is really tested.
    g = torch.Generator().manual_seed(0)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def features_classifier(torch, features, classifier, pool=None):
    """torchvision's AlexNet/VGG layout: features, [avgpool], flatten, classifier."""
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = features
            if pool is not None:
                self.avgpool = pool
            self.classifier = classifier

        def forward(self, x):
            x = self.features(x)
            if pool is not None:
                x = self.avgpool(x)
            return self.classifier(torch.flatten(x, 1))

    return Net()


def torch_vgg16(torch, num_classes=1000):
    from striate.models import VGG_CFGS
    tnn = torch.nn
    layers, c = [], 3
    for v in VGG_CFGS["D"]:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers += [tnn.Conv2d(c, v, 3, padding=1), tnn.ReLU()]
            c = v
    classifier = tnn.Sequential(
        tnn.Linear(512 * 49, 4096), tnn.ReLU(), tnn.Dropout(), tnn.Linear(4096, 4096),
        tnn.ReLU(), tnn.Dropout(), tnn.Linear(4096, num_classes))
    return features_classifier(torch, tnn.Sequential(*layers), classifier,
                               tnn.AdaptiveAvgPool2d((7, 7)))


def torch_alexnet(torch, num_classes=1000):
    tnn = torch.nn
    lrn = lambda: tnn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
    features = tnn.Sequential(
        tnn.Conv2d(3, 96, 11, 4), tnn.ReLU(), tnn.MaxPool2d(3, 2), lrn(),
        tnn.Conv2d(96, 256, 5, padding=2), tnn.ReLU(), tnn.MaxPool2d(3, 2), lrn(),
        tnn.Conv2d(256, 384, 3, padding=1), tnn.ReLU(),
        tnn.Conv2d(384, 384, 3, padding=1), tnn.ReLU(),
        tnn.Conv2d(384, 256, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(3, 2))
    classifier = tnn.Sequential(
        tnn.Dropout(), tnn.Linear(9216, 4096), tnn.ReLU(),
        tnn.Dropout(), tnn.Linear(4096, 4096), tnn.ReLU(), tnn.Linear(4096, num_classes))
    return features_classifier(torch, features, classifier)

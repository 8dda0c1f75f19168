"""striate.models: the classic CNNs as one-liners."""

from .. import nn
from .classic import VGG_CFGS, alexnet, vgg, vgg11, vgg13, vgg16, vgg19, zfnet
from .inception import googlenet
from .resnet import (resnet18, resnet20, resnet32, resnet34, resnet44, resnet50, resnet56,
                     resnet101, resnet152, se_resnet50)


def lenet5(num_classes=10, in_channels=1, activation="relu"):
    """LeNet-5 on a 1x32x32 input: CONV(6, 5x5) - POOL(2) - CONV(16, 5x5) - POOL(2) -
    FC 120 - FC 84 - FC num_classes; 61,706 parameters for 10 classes.

    ``activation`` is "relu" (the modern default) or "tanh" (LeCun 1998);
    pooling is 2x2 max pooling at stride 2. Keys match the equivalent
    ``torch.nn.Sequential`` ("0.weight", "3.weight", "7.weight", ...).
    """
    act = {"relu": nn.ReLU, "tanh": nn.Tanh}.get(activation)
    if act is None:
        raise ValueError(f"lenet5: activation must be 'relu' or 'tanh', got {activation!r}")
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5), act(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), act(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), act(),
        nn.Linear(120, 84), act(),
        nn.Linear(84, num_classes),
    )


MODELS = {f.__name__: f for f in (
    lenet5, alexnet, zfnet, vgg, vgg11, vgg13, vgg16, vgg19, googlenet,
    resnet18, resnet34, resnet50, resnet101, resnet152, se_resnet50,
    resnet20, resnet32, resnet44, resnet56)}

__all__ = list(MODELS) + ["MODELS", "VGG_CFGS"]

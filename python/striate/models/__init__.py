"""striate.models: the classic CNNs as one-liners."""

from .. import nn


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


MODELS = {"lenet5": lenet5}

__all__ = ["lenet5", "MODELS"]

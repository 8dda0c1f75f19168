"""Helpers for building functional models with torchvision's dotted layer names."""


class Namer:
    """Names layers "prefix.0", "prefix.1", ... in call order, as a torch
    ``nn.Sequential`` would index them, so state-dict keys match PyTorch's.
    Create the layers one per statement: in ``f(A)(f(B)(x))`` A is created
    (and numbered) before B although B runs first."""

    def __init__(self, prefix):
        self.prefix, self.i = prefix, 0

    def __call__(self, layer_cls, *args, **kwargs):
        layer = layer_cls(*args, name=f"{self.prefix}.{self.i}", **kwargs)
        self.i += 1
        return layer


def lrn():
    # Krizhevsky et al. 2012, section 3.3: k=2, n=5, alpha=1e-4, beta=0.75.
    return dict(size=5, alpha=1e-4, beta=0.75, k=2.0)


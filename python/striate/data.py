"""Batching, seeded shuffling and augmentation over NumPy arrays (NCHW float32).

Augmentations are callables ``t(batch, rng) -> batch`` on a whole batch, with
per-sample randomness drawn from ``rng`` (a ``numpy.random.Generator``), so
``fit(..., augment=t, seed=s)`` is reproducible.
"""

import math

import numpy as np


def batches(X, y=None, batch_size=32, shuffle=False, seed=None, drop_last=False):
    """Yield ``(X_batch, y_batch)`` (or ``X_batch`` when y is None) in order or
    in a seeded random order."""
    n = len(X)
    if y is not None and len(y) != n:
        raise ValueError(f"batches: X has {n} samples but y has {len(y)}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        xb = np.ascontiguousarray(X[idx], dtype=np.float32)
        yield xb if y is None else (xb, np.asarray(y)[idx])


class DataLoader:
    """An iterable over batches that reshuffles every epoch (seeded) and applies a transform."""

    def __init__(self, X, y=None, batch_size=32, shuffle=False, seed=None, transform=None,
                 drop_last=False):
        self.X, self.y, self.batch_size = X, y, batch_size
        self.shuffle, self.transform, self.drop_last = shuffle, transform, drop_last
        self.rng = np.random.default_rng(seed)
        next(iter(batches(X[:1], None if y is None else y[:1], batch_size)))  # validate early

    def __len__(self):
        n = len(self.X)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self):
        seed = int(self.rng.integers(2**63))
        for b in batches(self.X, self.y, self.batch_size, self.shuffle, seed, self.drop_last):
            if self.transform is None:
                yield b
            elif self.y is None:
                yield self.transform(b, self.rng)
            else:
                yield self.transform(b[0], self.rng), b[1]


def _check_batch(x, what):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{what} expects an (N, C, H, W) batch, got shape {x.shape}")
    return x


class Compose:
    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x, rng=None):
        for t in self.transforms:
            x = t(x, rng)
        return x


class RandomCrop:
    """Zero-pad by ``padding`` on every side, then crop ``size`` at a random
    offset per sample (the CIFAR recipe: size 32, padding 4)."""

    def __init__(self, size, padding=0):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.padding = int(padding)
        if self.padding < 0 or min(self.size) < 1:
            raise ValueError(f"RandomCrop: bad size {size!r} or padding {padding!r}")

    def __call__(self, x, rng=None):
        x = _check_batch(x, "RandomCrop")
        rng = rng or np.random.default_rng()
        p = self.padding
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        th, tw = self.size
        H, W = xp.shape[2:]
        if th > H or tw > W:
            raise ValueError(f"RandomCrop: crop {self.size} is larger than the padded input {(H, W)}")
        top = rng.integers(0, H - th + 1, len(x))
        left = rng.integers(0, W - tw + 1, len(x))
        out = np.empty(x.shape[:2] + (th, tw), dtype=x.dtype)
        for i, (t, l) in enumerate(zip(top, left)):
            out[i] = xp[i, :, t:t + th, l:l + tw]
        return out


class RandomHorizontalFlip:
    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, x, rng=None):
        x = _check_batch(x, "RandomHorizontalFlip")
        rng = rng or np.random.default_rng()
        flip = rng.random(len(x)) < self.p
        out = x.copy()
        out[flip] = x[flip, :, :, ::-1]
        return out


class Normalize:
    """(x - mean[c]) / std[c] per channel."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, x, rng=None):
        x = _check_batch(x, "Normalize")
        if x.shape[1] != self.mean.shape[1] and self.mean.shape[1] != 1:
            raise ValueError(f"Normalize: {self.mean.shape[1]} channel means for a batch with "
                             f"{x.shape[1]} channels")
        return ((x - self.mean) / self.std).astype(np.float32)


__all__ = ["batches", "DataLoader", "Compose", "RandomCrop", "RandomHorizontalFlip", "Normalize"]

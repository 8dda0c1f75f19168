"""Datasets as NumPy arrays: ``((X_train, y_train), (X_test, y_test))``.

X is float32 NCHW scaled to [0, 1]; y is int64. A missing file raises
FileNotFoundError and a malformed one ValueError, both naming the file.
"""

import gzip
import io
import math
import os
import pickle
import zlib

import numpy as np


def _resize_matrix(n_in, n_out):
    """Linear interpolation weights (half-pixel centers, as PyTorch's
    align_corners=False bilinear), so out = R @ img @ R.T."""
    r = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for i in range(n_out):
        src = max((i + 0.5) * scale - 0.5, 0.0)
        lo = min(int(src), n_in - 1)
        hi = min(lo + 1, n_in - 1)
        t = src - lo
        r[i, lo] += 1 - t
        r[i, hi] += t
    return r


def load_digits(size=32, test_size=0.2, seed=0):
    """scikit-learn's 1,797 real 8x8 handwritten digits, upscaled bilinearly to
    ``size`` x ``size`` (32 for LeNet-5), split with a seeded shuffle.

    Needs scikit-learn (``pip install "striate[datasets]"``); the data ships
    with it, nothing is downloaded.
    """
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        raise ImportError('load_digits needs scikit-learn: pip install "striate[datasets]"') from None
    if int(size) < 8:
        raise ValueError(f"load_digits: size must be >= 8, got {size}")
    if not 0 < test_size < 1:
        raise ValueError(f"load_digits: test_size must be in (0, 1), got {test_size}")
    d = sk_digits()
    images = d.images / 16.0  # pixel values are 0..16
    r = _resize_matrix(8, int(size))
    X = np.einsum("ij,njk,lk->nil", r, images, r).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(len(X) * test_size))
    test, train = order[:n_test], order[n_test:]
    return (X[train], y[train]), (X[test], y[test])


def _open(path):
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt gzip data ({e})") from None
    return raw


def _find(folder, stem):
    for name in (stem, stem + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"{os.path.join(folder, stem)}[.gz]: MNIST file not found")


def read_idx(path):
    """An IDX file (MNIST's format, raw or .gz) as a NumPy array."""
    path = os.fspath(path)
    raw = _open(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(dtypes[raw[2]])
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: a forged header cannot wrap
    if len(raw) != expected:
        raise ValueError(f"{path}: IDX data has {len(raw)} bytes, expected {expected} for shape "
                         f"{shape} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _mnist_split(folder, images, labels):
    xp, yp = _find(folder, images), _find(folder, labels)
    X, y = read_idx(xp), read_idx(yp)
    if X.ndim != 3:
        raise ValueError(f"{xp}: expected images of shape (N, H, W), got {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{yp}: expected {len(X)} labels, got shape {y.shape}")
    if y.size and int(y.max()) > 9:
        raise ValueError(f"{yp}: label {int(y.max())} is not a digit")
    return (X.astype(np.float32) / 255.0)[:, None], y.astype(np.int64)


def load_mnist(path):
    """MNIST from the four IDX files (raw or .gz) in folder ``path``."""
    return (_mnist_split(path, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
            _mnist_split(path, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))


class _ArraysOnly(pickle.Unpickler):
    """CIFAR's batches are pickles: allow only what rebuilds NumPy arrays, so a
    malicious file cannot run code."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
                ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_batch(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: CIFAR-10 batch not found")
    try:
        with open(path, "rb") as f:
            d = _ArraysOnly(io.BytesIO(f.read()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, KeyError) as e:
        raise ValueError(f"{path}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (no dict)")
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 \
            or labels is None or len(labels) != len(data):
        raise ValueError(f"{path}: not a CIFAR-10 python batch (bad data or labels)")
    y = np.asarray(labels, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: labels outside 0..9")
    X = data.astype(np.float32).reshape(-1, 3, 32, 32) / 255.0
    return X, y


def load_cifar10(path):
    """CIFAR-10 from the python batches (``data_batch_1..5`` and ``test_batch``)
    in ``path`` or in its ``cifar-10-batches-py`` subfolder."""
    sub = os.path.join(path, "cifar-10-batches-py")
    if os.path.isdir(sub):
        path = sub
    parts = [_cifar_batch(os.path.join(path, f"data_batch_{i}")) for i in range(1, 6)]
    Xtr = np.concatenate([p[0] for p in parts])
    ytr = np.concatenate([p[1] for p in parts])
    return (Xtr, ytr), _cifar_batch(os.path.join(path, "test_batch"))


__all__ = ["load_digits", "load_mnist", "load_cifar10", "read_idx"]

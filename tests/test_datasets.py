"""striate.datasets on small files written here in the real formats (MNIST's
IDX, raw and gzipped; CIFAR-10's pickled python batches), their error
messages, the refusal of code-running pickles, and load_digits."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from helpers import assert_close, raises
from striate import datasets

MNIST_FILES = {"train-images-idx3-ubyte": ("images", 7), "train-labels-idx1-ubyte": ("labels", 7),
               "t10k-images-idx3-ubyte": ("images", 3), "t10k-labels-idx1-ubyte": ("labels", 3)}


def idx_bytes(a, code=0x08):
    a = np.asarray(a)
    dt = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    return (bytes([0, 0, code, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape)
            + a.astype(dt).tobytes())


def write_mnist(folder, gz, rng, hw=(5, 4)):
    arrays = {}
    for name, (kind, n) in MNIST_FILES.items():
        a = rng.integers(0, 256, (n,) + hw) if kind == "images" else rng.integers(0, 10, n)
        arrays[name] = a
        raw = idx_bytes(a)
        path = os.path.join(folder, name + (".gz" if gz else ""))
        with open(path, "wb") as f:
            f.write(gzip.compress(raw) if gz else raw)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist(tmp_path, gz):
    arrays = write_mnist(str(tmp_path), gz, np.random.default_rng(0))
    (xtr, ytr), (xte, yte) = datasets.load_mnist(str(tmp_path))
    assert xtr.shape == (7, 1, 5, 4) and xte.shape == (3, 1, 5, 4)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert_close(xtr[:, 0], arrays["train-images-idx3-ubyte"] / 255.0, rtol=1e-7)
    assert_close(xte[:, 0], arrays["t10k-images-idx3-ubyte"] / 255.0, rtol=1e-7)
    assert np.array_equal(ytr, arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(yte, arrays["t10k-labels-idx1-ubyte"])
    datasets.load_mnist(tmp_path)  # a pathlib.Path works too


@pytest.mark.parametrize("code", [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_element_types(tmp_path, code):
    a = (np.arange(0, 240, 10) if code == 0x08 else np.arange(-12, 12) * 5).reshape(2, 3, 4)
    p = tmp_path / "a.idx"
    p.write_bytes(idx_bytes(a, code))
    got = datasets.read_idx(p)
    assert got.shape == (2, 3, 4) and np.array_equal(got.astype(np.float64), a)


def test_missing_mnist_file_is_named(tmp_path):
    write_mnist(str(tmp_path), False, np.random.default_rng(1))
    os.remove(tmp_path / "t10k-labels-idx1-ubyte")
    with raises(FileNotFoundError, "t10k-labels-idx1-ubyte"):
        datasets.load_mnist(str(tmp_path))
    with raises(FileNotFoundError, "nothing.idx"):
        datasets.read_idx(str(tmp_path / "nothing.idx"))


def _corruptions(raw):
    return {"truncated": raw[:-3], "header_only": raw[:6], "empty": b"", "too_long": raw + b"\0",
            "bad_magic": b"\x01" + raw[1:], "bad_type": raw[:2] + b"\x07" + raw[3:],
            "text": b"hello, this is not an idx file\n"}


@pytest.mark.parametrize("what", list(_corruptions(b"x" * 10)))
@pytest.mark.parametrize("gz", [False, True])
def test_corrupt_idx_is_a_value_error_naming_the_file(tmp_path, what, gz):
    raw = _corruptions(idx_bytes(np.zeros((3, 4, 4))))[what]
    p = str(tmp_path / ("bad.idx" + (".gz" if gz else "")))
    with open(p, "wb") as f:
        f.write(gzip.compress(raw) if gz else raw)
    with raises(ValueError, p):
        datasets.read_idx(p)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "bad_block", "not_gzip"])
def test_corrupt_gzip_is_a_value_error_naming_the_file(tmp_path, damage):
    good = gzip.compress(idx_bytes(np.random.default_rng(2).integers(0, 256, (50, 8, 8))))
    bad = {"truncated": good[:len(good) // 2],
           "flipped": good[:30] + bytes([good[30] ^ 0xFF]) + good[31:],  # CRC mismatch
           "bad_block": good[:10] + b"\xff" + good[11:],  # invalid deflate block: zlib.error
           "not_gzip": b"plain bytes, no gzip header at all"}[damage]
    p = str(tmp_path / "x.idx.gz")
    with open(p, "wb") as f:
        f.write(bad)
    with raises(ValueError, p):
        datasets.read_idx(p)


def test_mnist_labels_must_match_images(tmp_path):
    write_mnist(str(tmp_path), False, np.random.default_rng(3))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.arange(6) % 10))
    with raises(ValueError, "train-labels-idx1-ubyte", "7 labels"):
        datasets.load_mnist(str(tmp_path))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.full(7, 12)))
    with raises(ValueError, "train-labels-idx1-ubyte", "12"):
        datasets.load_mnist(str(tmp_path))


def write_cifar(folder, rng, sizes=(4, 3, 2, 3, 5, 6)):
    """data_batch_1..5 and test_batch as CIFAR ships them: protocol-2 pickles of
    dicts with bytes keys, uint8 (N, 3072) data and a list of int labels."""
    os.makedirs(folder, exist_ok=True)
    parts = []
    for name, n in zip([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], sizes):
        d = {b"batch_label": b"synthetic", b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
             b"labels": [int(v) for v in rng.integers(0, 10, n)],
             b"filenames": [b"img%d.png" % i for i in range(n)]}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(d, f, protocol=2)
        parts.append(d)
    return parts


@pytest.mark.parametrize("subfolder", [False, True])
def test_load_cifar10(tmp_path, subfolder):
    folder = str(tmp_path / "cifar-10-batches-py") if subfolder else str(tmp_path)
    parts = write_cifar(folder, np.random.default_rng(4))
    (xtr, ytr), (xte, yte) = datasets.load_cifar10(str(tmp_path))
    assert xtr.shape == (17, 3, 32, 32) and xte.shape == (6, 3, 32, 32)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    data = np.concatenate([p[b"data"] for p in parts[:5]])
    assert_close(xtr, data.reshape(-1, 3, 32, 32) / 255.0, rtol=1e-7)
    assert np.array_equal(ytr, np.concatenate([p[b"labels"] for p in parts[:5]]))
    assert np.array_equal(yte, parts[5][b"labels"])
    assert xtr[0, 1, 0, 0] == np.float32(parts[0][b"data"][0, 1024] / 255.0)  # channel-major rows


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_that_runs_code_is_refused(tmp_path):
    write_cifar(str(tmp_path), np.random.default_rng(5))
    marker = tmp_path / "pwned"
    with open(tmp_path / "data_batch_3", "wb") as f:
        pickle.dump({b"data": _Exploit(marker), b"labels": [1]}, f, protocol=2)
    with raises(ValueError, "data_batch_3", "system"):
        datasets.load_cifar10(str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_dict", "wrong_width", "bad_labels",
                                    "label_count"])
def test_corrupt_cifar_batch_is_a_value_error_naming_the_file(tmp_path, damage):
    write_cifar(str(tmp_path), np.random.default_rng(6))
    p = tmp_path / "test_batch"
    raw = p.read_bytes()
    data = np.zeros((2, 3072), np.uint8)
    objects = {"not_a_dict": [1, 2, 3],
               "wrong_width": {b"data": np.zeros((2, 1024), np.uint8), b"labels": [0, 1]},
               "bad_labels": {b"data": data, b"labels": [0, 10]},
               "label_count": {b"data": data, b"labels": [0]}}
    if damage in objects:
        p.write_bytes(pickle.dumps(objects[damage], protocol=2))
    else:
        p.write_bytes(raw[:len(raw) // 2] if damage == "truncated" else b"")
    with raises(ValueError, str(p)):
        datasets.load_cifar10(str(tmp_path))


def test_missing_cifar_batch_is_named(tmp_path):
    write_cifar(str(tmp_path), np.random.default_rng(7))
    os.remove(tmp_path / "data_batch_5")
    with raises(FileNotFoundError, "data_batch_5"):
        datasets.load_cifar10(str(tmp_path))


def test_load_digits():
    pytest.importorskip("sklearn")
    (xtr, ytr), (xte, yte) = datasets.load_digits(32)
    assert xtr.shape == (1438, 1, 32, 32) and xte.shape == (359, 1, 32, 32)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0 and xtr.max() > 0.99
    assert set(np.unique(ytr)) == set(range(10)) and set(np.unique(yte)) == set(range(10))
    (xtr2, ytr2), _ = datasets.load_digits(32)
    assert np.array_equal(xtr, xtr2) and np.array_equal(ytr, ytr2)  # the split is seeded
    (x8, y8), (x8t, _) = datasets.load_digits(8, test_size=0.5, seed=1)
    assert len(x8) + len(x8t) == 1797
    from sklearn.datasets import load_digits
    d = load_digits()
    # size 8 is the identity resize: each sample is one of the originals, with its label.
    k = int(np.flatnonzero((np.abs(d.images / 16.0 - x8[0, 0]) < 1e-6).all(axis=(1, 2)))[0])
    assert d.target[k] == y8[0]
    with raises(ValueError, "size"):
        datasets.load_digits(4)


def test_load_digits_upscaling_is_bilinear_like_torch():
    pytest.importorskip("sklearn")
    torch = pytest.importorskip("torch")
    from sklearn.datasets import load_digits
    images = load_digits().images / 16.0
    (xtr, ytr), (xte, yte) = datasets.load_digits(32, test_size=0.5, seed=3)
    expected = torch.nn.functional.interpolate(torch.from_numpy(images[:, None]), size=32,
                                               mode="bilinear", align_corners=False).numpy()
    order = np.random.default_rng(3).permutation(len(images))
    assert_close(np.concatenate([xte, xtr]), expected[order], rtol=1e-6)

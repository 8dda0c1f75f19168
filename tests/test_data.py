"""striate.data: batching, seeded shuffling, DataLoader, augmentations."""

import numpy as np
import pytest

from helpers import assert_close, raises
from striate import data


def _xy(n=23):
    X = np.arange(n * 2 * 3 * 3, dtype=np.float64).reshape(n, 2, 3, 3)
    return X, np.arange(n) * 10


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_sample_once(shuffle):
    X, y = _xy()
    got = list(data.batches(X, y, batch_size=5, shuffle=shuffle, seed=1))
    assert [len(b[0]) for b in got] == [5, 5, 5, 5, 3]
    xs = np.concatenate([b[0] for b in got])
    ys = np.concatenate([b[1] for b in got])
    assert xs.dtype == np.float32 and xs.flags.c_contiguous
    assert np.array_equal(ys // 10, xs[:, 0, 0, 0] // 18)  # pairs stay aligned
    assert sorted(ys) == list(y)
    assert (list(ys) != list(y)) == shuffle


def test_batches_seeded_shuffle_and_drop_last():
    X, y = _xy()
    a = [b[1] for b in data.batches(X, y, 4, shuffle=True, seed=7, drop_last=True)]
    b = [b[1] for b in data.batches(X, y, 4, shuffle=True, seed=7, drop_last=True)]
    c = [b[1] for b in data.batches(X, y, 4, shuffle=True, seed=8, drop_last=True)]
    assert len(a) == 5 and all(len(v) == 4 for v in a)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    only_x = list(data.batches(X, batch_size=10))
    assert len(only_x) == 3 and isinstance(only_x[0], np.ndarray)
    with raises(ValueError, "23 samples", "22"):
        list(data.batches(X, y[:-1]))
    with raises(ValueError, "batch_size"):
        list(data.batches(X, y, batch_size=0))


def test_dataloader_reshuffles_each_epoch_reproducibly():
    X, y = _xy(20)

    def epochs(seed):
        dl = data.DataLoader(X, y, batch_size=6, shuffle=True, seed=seed)
        return [np.concatenate([b[1] for b in dl]) for _ in range(3)]

    e1, e2 = epochs(3), epochs(3)
    assert all(np.array_equal(a, b) for a, b in zip(e1, e2))
    assert not np.array_equal(e1[0], e1[1])  # a new order every epoch
    assert all(sorted(e) == list(y) for e in e1)
    assert len(data.DataLoader(X, y, batch_size=6)) == 4
    assert len(data.DataLoader(X, y, batch_size=6, drop_last=True)) == 3


def test_dataloader_applies_transform_to_inputs_only():
    X, y = _xy(8)
    dl = data.DataLoader(X, y, batch_size=4, transform=data.Normalize([1.0, 2.0], [2.0, 4.0]))
    xb, yb = next(iter(dl))
    assert_close(xb, (X[:4] - np.array([1, 2]).reshape(1, 2, 1, 1)) / np.array([2, 4]).reshape(1, 2, 1, 1))
    assert np.array_equal(yb, y[:4])


def test_random_crop_takes_windows_of_the_padded_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 2, 6, 6)).astype(np.float32)
    out = data.RandomCrop(6, padding=2)(x, np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.float32
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for i in range(len(x)):
        hits = [(t, l) for t in range(5) for l in range(5)
                if np.array_equal(padded[i, :, t:t + 6, l:l + 6], out[i])]
        assert hits, f"sample {i} is not a crop of its padded input"
        offsets.add(hits[0])
    assert len(offsets) > 4  # per-sample offsets
    again = data.RandomCrop(6, padding=2)(x, np.random.default_rng(1))
    assert np.array_equal(out, again)
    assert np.array_equal(data.RandomCrop(6)(x, rng), x)  # no padding, full size: identity
    assert data.RandomCrop((3, 4))(x, rng).shape == (16, 2, 3, 4)
    with raises(ValueError, "larger"):
        data.RandomCrop(7)(x, rng)
    with raises(ValueError, "(N, C, H, W)"):
        data.RandomCrop(2)(x[0], rng)


def test_random_horizontal_flip():
    x = np.arange(40 * 3 * 2 * 4, dtype=np.float32).reshape(40, 3, 2, 4)
    assert np.array_equal(data.RandomHorizontalFlip(1.0)(x), x[..., ::-1])
    assert np.array_equal(data.RandomHorizontalFlip(0.0)(x), x)
    out = data.RandomHorizontalFlip()(x, np.random.default_rng(2))
    flipped = np.array([np.array_equal(o, s[..., ::-1]) for o, s in zip(out, x)])
    kept = np.array([np.array_equal(o, s) for o, s in zip(out, x)])
    assert (flipped ^ kept).all() and 5 < flipped.sum() < 35
    assert np.array_equal(x, np.arange(x.size, dtype=np.float32).reshape(x.shape))  # input untouched


def test_normalize_and_compose():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (4, 3, 5, 5)).astype(np.float32)
    mean, std = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
    out = data.Normalize(mean, std)(x)
    expected = (x.astype(np.float64) - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    assert out.dtype == np.float32
    assert_close(out, expected, rtol=1e-6)
    t = data.Compose([data.RandomHorizontalFlip(1.0), data.Normalize(mean, std)])
    assert_close(t(x, rng), expected[..., ::-1], rtol=1e-6)
    with raises(ValueError, "3 channel means", "2 channels"):
        data.Normalize(mean, std)(x[:, :2])
    with raises(ValueError, "std"):
        data.Normalize([0.5], [0.0])

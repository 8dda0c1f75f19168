"""Checkpoints: round trips for Sequential and Model (with batch-norm buffers),
atomic writes, and clear errors for truncated, empty, foreign, tampered and
pickle-carrying files."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import striate
from helpers import raises, rand
from striate import models, nn, optim
from striate.nn import Input, Model, Sequential


def bn_sequential():
    return Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=None), nn.ReLU(),
                      nn.AvgPool2d(2), nn.Flatten(), nn.Dropout(0.2), nn.Linear(36, 3))


def bn_model():
    x = Input((2, 6, 6), name="image")
    h = nn.BatchNorm2d(4, name="bn")(nn.Conv2d(2, 4, 3, padding="same", name="conv")(x))
    h = nn.Add()([nn.ReLU()(h), nn.Conv2d(2, 4, 1, bias=False)(x)])
    inner = Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.LeakyReLU(0.2), name="inner")
    h = nn.Concat()([inner(h), h])
    out = nn.Linear(8, 3, name="head")(nn.Flatten()(nn.AdaptiveAvgPool2d(1)(h)))
    return Model(x, [out, nn.Sigmoid()(h)])


def _trained(make):
    striate.manual_seed(0)
    model = make()
    rng = np.random.default_rng(1)
    X = rand(rng, 12, 2, 6, 6)
    y = rng.integers(0, 3, 12)
    if isinstance(model, Model):  # two outputs: a hand-written loop
        opt = optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            outs = model.forward(X, training=True)
            model.zero_grad()
            model.backward([np.ones_like(o) for o in outs])
            opt.step()
    else:
        model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=4,
                  progress=False, seed=0)
    return model, X


@pytest.mark.parametrize("make", [bn_sequential, bn_model, models.lenet5],
                         ids=["sequential", "model", "lenet5"])
def test_round_trip(tmp_path, make):
    if make is models.lenet5:
        model, X = make(), rand(np.random.default_rng(2), 3, 1, 32, 32)
    else:
        model, X = _trained(make)
    model.eval()
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = striate.load(path)
    assert type(loaded) is type(model) and not loaded.training
    s0, s1 = model.state_dict(), loaded.state_dict()
    assert list(s0) == list(s1)
    for k in s0:
        assert s0[k].dtype == s1[k].dtype and np.array_equal(s0[k], s1[k]), k
    outs, again = model(X), loaded(X)
    outs, again = (outs, again) if isinstance(outs, list) else ([outs], [again])
    assert len(outs) == len(again)
    for a, b in zip(outs, again):
        assert np.array_equal(a, b)
    assert loaded.summary(X.shape[1:], print_fn=None) == model.summary(X.shape[1:], print_fn=None)
    if make is bn_sequential:
        assert int(s1["1.num_batches_tracked"]) == 6 and loaded[1].momentum is None


def test_round_trip_keeps_training_mode(tmp_path):
    model = bn_sequential()
    model.train()
    model.save(str(tmp_path / "m.npz"))
    assert striate.load(str(tmp_path / "m.npz")).training


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    model, X = _trained(bn_sequential)
    model.eval()
    model.save(path)
    expected = model(X)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]  # no temporary file left
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes

    real_savez = np.savez

    def savez_then_fail(f, **arrays):
        real_savez(f, **dict(list(arrays.items())[:2]))  # half a file is on disk...
        raise OSError("disk full")  # ...when the save is interrupted

    monkeypatch.setattr(np, "savez", savez_then_fail)
    for p in model.parameters():
        p.data = p.data + 1
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]
    assert np.array_equal(striate.load(path)(X), expected)  # the previous checkpoint is intact


def test_save_refuses_custom_layers(tmp_path):
    class Custom(nn.Identity):
        pass

    with raises(TypeError, "Custom"):
        Sequential(nn.Linear(2, 2), Custom()).save(tmp_path / "c.npz")
    assert not any(tmp_path.iterdir())


def _good_file(tmp_path):
    path = tmp_path / "good.npz"
    bn_sequential().save(path)
    return path, path.read_bytes()


def _damaged(tmp_path, what):
    path, raw = _good_file(tmp_path)
    bad = tmp_path / f"{what}.npz"
    if what == "truncated":
        bad.write_bytes(raw[:len(raw) // 2])
    elif what == "truncated_end":
        bad.write_bytes(raw[:-10])
    elif what == "empty":
        bad.write_bytes(b"")
    elif what == "text":
        bad.write_text("just some notes\n")
    elif what == "random_npz":
        np.savez(bad, a=np.arange(3), b=np.ones((2, 2)))
    elif what == "npy":
        with open(bad, "wb") as f:  # np.save(path) would append ".npy"
            np.save(f, np.arange(5))
    elif what == "flipped_byte":  # inside an array member: the zip CRC catches it
        w = bn_sequential()
        w.save(bad)
        raw = bad.read_bytes()
        weight = w.state_dict()["6.weight"].tobytes()
        at = raw.index(weight) + len(weight) // 2
        bad.write_bytes(raw[:at] + bytes([raw[at] ^ 0x40]) + raw[at + 1:])
    elif what in ("tampered_array", "wrong_format", "wrong_version", "arch_mismatch", "header_fields"):
        # A well-formed zip whose contents disagree with the header: only the
        # checksums and the checks on the header can tell.
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        header = json.loads(np.load(io.BytesIO(members["__striate__.npy"])).tobytes())
        if what == "tampered_array":
            a = np.load(io.BytesIO(members["w/6.bias.npy"]))
            buf = io.BytesIO()
            np.save(buf, a + 1)
            members["w/6.bias.npy"] = buf.getvalue()
        else:
            if what == "wrong_format":
                header["format"] = "something-else"
            elif what == "wrong_version":
                header["version"] = 99
            elif what == "header_fields":
                header["arrays"] = ["6.bias"]
            else:
                header["architecture"]["layers"][6]["config"]["out_features"] = 4
            buf = io.BytesIO()
            np.save(buf, np.frombuffer(json.dumps(header).encode(), np.uint8))
            members["__striate__.npy"] = buf.getvalue()
        with zipfile.ZipFile(bad, "w") as z:
            for n, b in members.items():
                z.writestr(n, b)
    return bad


DAMAGE = ["truncated", "truncated_end", "empty", "text", "random_npz", "npy", "flipped_byte",
          "tampered_array", "wrong_format", "wrong_version", "arch_mismatch", "header_fields"]


@pytest.mark.parametrize("what", DAMAGE)
def test_bad_files_are_value_errors_naming_the_file(tmp_path, what):
    bad = _damaged(tmp_path, what)
    with raises(ValueError, str(bad)):
        striate.load(bad)


def test_missing_file(tmp_path):
    with raises(FileNotFoundError, "nope.npz"):
        striate.load(tmp_path / "nope.npz")


def test_load_never_unpickles(tmp_path):
    """A member holding a pickled object array (which would run code when
    unpickled) is refused, not executed."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path, _ = _good_file(tmp_path)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    np.save(buf, np.array([Exploit()], dtype=object), allow_pickle=True)
    members["w/6.bias.npy"] = buf.getvalue()
    bad = tmp_path / "evil.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with raises(ValueError, str(bad)):
        striate.load(bad)
    assert not marker.exists()
    # And the header is JSON: a pickle there is not a header at all.
    members["__striate__.npy"] = pickle.dumps(Exploit())
    with zipfile.ZipFile(bad, "w") as z:
        for n, b in members.items():
            z.writestr(n, b)
    with raises(ValueError, str(bad)):
        striate.load(bad)
    assert not marker.exists()

"""conv2d autotuning: striate.set_autotune, the persistent JSON cache, conv2d_algorithms."""

import json
import os
import warnings

import numpy as np
import pytest

import striate
from striate import _autotune, ops, reference as ref
from helpers import assert_close, rand


@pytest.fixture
def tuned(tmp_path, monkeypatch):
    """Autotuning on, with an empty cache in a private folder."""
    monkeypatch.setenv("STRIATE_CACHE_DIR", str(tmp_path))
    _autotune.clear()
    striate.set_autotune(True)
    yield tmp_path / "autotune.json"
    striate.set_autotune(False)
    _autotune.clear()


def entries(path):
    with open(path) as f:
        data = json.load(f)
    assert data["format"] == "striate-autotune-1"
    return data["entries"]


def test_off_by_default_and_type_checked():
    assert striate.get_autotune() is False
    with pytest.raises(TypeError, match="enabled"):
        striate.set_autotune("yes")


def test_cache_dir_override(tuned):
    assert striate.autotune_cache_path() == str(tuned)


def test_forward_and_backward_are_tuned_saved_and_correct(tuned):
    rng = np.random.default_rng(0)
    x, w, b = rand(rng, 2, 8, 10, 10), rand(rng, 16, 8, 3, 3), rand(rng, 16)
    y = ops.conv2d(x, w, b, padding=1)
    assert_close(y, ref.conv2d(x, w, b, padding=1))
    saved = entries(tuned)
    assert len(saved) == 1
    (key, alg), = saved.items()
    assert "forward" in key and alg in ops.conv2d_algorithms(x, w, b, padding=1)
    assert ops.conv2d_algorithm(x, w, b, padding=1) == alg

    gy = rand(rng, *y.shape)
    grads = ops.conv2d_backward(gy, x, w, b, padding=1)
    for g, e in zip(grads, ref.conv2d_backward(gy, x, w, b, padding=1)):
        assert_close(g, e)
    assert sorted("backward" in k for k in entries(tuned)) == [False, True]


def test_key_depends_on_shapes_and_threads(tuned):
    rng = np.random.default_rng(1)
    x, w = rand(rng, 1, 4, 6, 6), rand(rng, 4, 4, 3, 3)
    ops.conv2d(x, w)
    ops.conv2d(x, w)  # same configuration: no new entry
    ops.conv2d(x[:, :, :5], w)
    assert len(entries(tuned)) == 2
    before = striate.get_num_threads()
    try:
        striate.set_num_threads(1 if before != 1 else 2)
        ops.conv2d(x, w)
    finally:
        striate.set_num_threads(before)
    assert len(entries(tuned)) == 3


def test_a_saved_winner_is_used_without_timing(tuned):
    rng = np.random.default_rng(2)
    x, w = rand(rng, 1, 32, 8, 8), rand(rng, 32, 32, 3, 3)
    heuristic = striate.ops.conv2d_algorithm(x, w, padding=1)
    saved = next(a for a in ops.conv2d_algorithms(x, w, padding=1) if a != heuristic)
    args = ops._conv._conv2d_args(x, w, None, 1, 1, 1, 1, "auto")
    key = _autotune._key("forward", args)
    tuned.write_text(json.dumps({"format": "striate-autotune-1", "entries": {key: saved}}))
    _autotune._memory.clear()
    _autotune._loaded_from = None  # as a fresh process would
    assert ops.conv2d_algorithm(x, w, padding=1) == saved
    calls = []
    assert _autotune.pick("forward", args, ["direct", "im2col", saved], calls.append) == saved
    assert calls == []
    assert_close(ops.conv2d(x, w, padding=1), ref.conv2d(x, w, padding=1))


def test_stale_entry_naming_an_inapplicable_algorithm_is_retuned(tuned):
    rng = np.random.default_rng(3)
    x, w = rand(rng, 1, 3, 8, 8), rand(rng, 4, 3, 5, 5)
    args = ops._conv._conv2d_args(x, w, None, 1, 0, 1, 1, "auto")
    key = _autotune._key("forward", args)
    tuned.write_text(json.dumps({"format": "striate-autotune-1", "entries": {key: "winograd_f4"}}))
    _autotune._loaded_from = None
    assert_close(ops.conv2d(x, w), ref.conv2d(x, w))
    # The stale name is replaced by one of the algorithms that apply (which one
    # wins the timing varies from run to run: 5x5 also admits F(2x2,5x5)).
    applicable = ops.conv2d_algorithms(x, w)
    assert "winograd_f4" not in applicable
    assert entries(tuned)[key] in applicable


@pytest.mark.parametrize("content", ["{not json", '{"format": "other", "entries": {}}', "[1, 2]", ""])
def test_unreadable_cache_is_ignored_with_a_warning_and_replaced(tuned, content):
    tuned.write_text(content)
    _autotune._loaded_from = None
    rng = np.random.default_rng(4)
    x, w = rand(rng, 1, 2, 5, 5), rand(rng, 3, 2, 3, 3)
    with pytest.warns(RuntimeWarning, match="ignoring"):
        y = ops.conv2d(x, w)
    assert_close(y, ref.conv2d(x, w))
    assert len(entries(tuned)) == 1


def test_unwritable_cache_folder_warns_and_keeps_working(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STRIATE_CACHE_DIR", str(blocker / "sub"))
    _autotune._memory.clear()
    striate.set_autotune(True)
    try:
        rng = np.random.default_rng(5)
        x, w = rand(rng, 1, 2, 5, 5), rand(rng, 3, 2, 3, 3)
        with pytest.warns(RuntimeWarning, match="could not save"):
            y = ops.conv2d(x, w)
        assert_close(y, ref.conv2d(x, w))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ops.conv2d(x, w)  # tuned in memory: no second attempt, no warning
    finally:
        striate.set_autotune(False)
        _autotune._memory.clear()
        _autotune._loaded_from = None


def test_no_temporary_files_left_behind(tuned):
    rng = np.random.default_rng(6)
    ops.conv2d(rand(rng, 1, 2, 5, 5), rand(rng, 3, 2, 3, 3))
    assert os.listdir(tuned.parent) == ["autotune.json"]


def test_bad_grad_out_raises_before_timing(tuned):
    rng = np.random.default_rng(7)
    x, w = rand(rng, 1, 2, 5, 5), rand(rng, 3, 2, 3, 3)
    with pytest.raises(ValueError, match="grad"):
        ops.conv2d_backward(np.zeros((1, 3, 2, 2), np.float32), x, w)
    assert not tuned.exists()

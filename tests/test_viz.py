"""striate.viz: filter and activation grids (NumPy), PNGs and the CLI (matplotlib)."""

import numpy as np
import pytest

import striate
from striate import nn, viz


def test_filter_grid_layout_and_scaling():
    w = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    g = viz.filter_grid(w)
    assert g.shape == (3, 7)  # two 3x3 tiles side by side, 1 px gap
    np.testing.assert_allclose(g[:, :3], (w[0, 0] - w[0, 0].min()) / np.ptp(w[0, 0]))
    np.testing.assert_allclose(g[:, 4:], (w[1, 0] - w[1, 0].min()) / np.ptp(w[1, 0]))
    assert np.isnan(g[:, 3]).all()
    rgb = viz.filter_grid(np.random.default_rng(0).standard_normal((4, 3, 5, 5)))
    assert rgb.shape == (11, 11, 3) and np.nanmin(rgb) == 0.0 and np.nanmax(rgb) == 1.0
    with pytest.raises(ValueError, match="weight"):
        viz.filter_grid(np.zeros((3, 3)))


def test_layer_output_matches_running_the_prefix():
    striate.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    expected = m[1].forward(m[0].forward(x, training=False), training=False)
    np.testing.assert_array_equal(viz.layer_output(m, x, 1), expected)
    inp = striate.Input((1, 8, 8))
    conv = nn.Conv2d(1, 4, 3, name="conv")
    model = striate.Model(inp, nn.Linear(144, 3)(nn.Flatten()(nn.ReLU(name="act")(conv(inp)))))
    np.testing.assert_array_equal(viz.layer_output(model, x, "conv"),
                                  conv.forward(x, training=False))
    with pytest.raises(KeyError):
        viz.layer_output(model, x, "nope")


def test_pngs_and_cli(tmp_path):
    pytest.importorskip("matplotlib")
    striate.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 4 * 4, 10))
    ckpt = tmp_path / "m.npz"
    m.save(str(ckpt))
    img = np.random.default_rng(2).random((1, 8, 8)).astype(np.float32)
    np.save(tmp_path / "img.npy", img)
    assert viz.main(["filters", str(ckpt), "--layer", "0", "--out", str(tmp_path / "f.png")]) == 0
    assert viz.main(["activations", str(ckpt), "--layer", "1", "--image", str(tmp_path / "img.npy"),
                     "--out", str(tmp_path / "a.png")]) == 0
    classes, probs = viz.plot_predictions(m, img, str(tmp_path / "p.png"), top_k=3)
    assert len(classes) == 3 and np.all(np.diff(probs) <= 0)
    for name in ("f.png", "a.png", "p.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not a conv layer"):
        viz.plot_filters(m, 1, str(tmp_path / "x.png"))

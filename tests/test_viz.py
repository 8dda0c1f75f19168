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


def test_edge_kernels_find_the_edges_they_are_named_for():
    # A vertical step edge (dark left half, bright right half): the vertical
    # detector fires only on the two columns next to the step, the horizontal
    # one nowhere; a horizontal step is the transpose.
    img = np.zeros((12, 12))
    img[:, 6:] = 1.0
    r = dict(zip(viz.edge_kernels(), viz.kernel_responses(img)))
    assert r["vertical"].shape == (12, 12)
    cols = np.flatnonzero(np.abs(r["vertical"]).max(axis=0) > 0)
    assert list(cols) == [5, 6]
    np.testing.assert_allclose(np.abs(r["vertical"][:, 5:7]), 4.0)
    assert np.abs(r["horizontal"]).max() == 0.0
    rt = dict(zip(viz.edge_kernels(), viz.kernel_responses(img.T)))
    np.testing.assert_allclose(rt["horizontal"], r["vertical"].T)
    # Sharpen keeps flat regions (its weights sum to 1); reflect padding means
    # the image border is not an edge.
    np.testing.assert_allclose(r["sharpen"][:, :4], 0.0)
    np.testing.assert_allclose(r["sharpen"][:, 8:], 1.0)


def test_kernel_responses_is_a_correlation_with_reflect_padding():
    rng = np.random.default_rng(1)
    img = rng.random((9, 7, 3))
    ks = {"a": rng.standard_normal((3, 3)), "b": rng.standard_normal((3, 3))}
    got = viz.kernel_responses(img, ks)
    gray = img @ np.array([0.299, 0.587, 0.114])
    pad = np.pad(gray, 1, mode="reflect")
    for i, k in enumerate(ks.values()):
        want = sum(k[a, b] * pad[a:a + 9, b:b + 7] for a in range(3) for b in range(3))
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="image"):
        viz.kernel_responses(np.zeros((2, 3, 4, 5)))

"""striate.nn.fuse_for_inference: batch norm folded into convolutions, ReLU
fused into the conv epilogue, dropout/identity dropped -- same outputs as the
unfused model in eval mode, original untouched, checkpoints round-trip."""

import numpy as np
import pytest

import striate
from striate import models, nn
from striate.nn import fuse_for_inference

from helpers import assert_close, raises


def _randomize_bn(model, seed=0):
    # Running statistics and affine terms far from (0, 1, 1, 0), so the fold
    # really changes the weights and a wrong formula shows in the output.
    rng = np.random.default_rng(seed)
    for m in _walk(model):
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean[...] = rng.standard_normal(c) * 0.5
            m.running_var[...] = rng.random(c) * 2 + 0.2
            if m.affine:
                m.weight.data[...] = rng.random(c) + 0.5
                m.bias.data[...] = rng.standard_normal(c) * 0.5
    return model


def _walk(m):
    yield m
    for _, c in m.children():
        yield from _walk(c)


def _count(model, cls):
    return sum(type(m) is cls for m in _walk(model))


def _fused_convs(model):
    return sum(isinstance(m, nn.Conv2d) and m.activation == "relu" for m in _walk(model))


# Both sides are float32. Folding rounds each weight once (w*g, <= 2^-24
# relative) where the unfused model rounds conv output and BN output
# separately, and Winograd's error (<= 2e-5 of max|y| per layer,
# docs/winograd.md) differs between the two weight sets, so outputs agree to
# the suite's float32 bound (1e-4 of max|y|), not bitwise.
@pytest.mark.parametrize("fn, kwargs, size, bns, relus", [
    ("lenet5", {}, 32, 0, 2),                         # Sequential; the FC ReLUs stay
    ("alexnet", {}, 227, 0, 5),
    ("vgg11", {"batch_norm": True}, 32, 8, 8),
    ("resnet18", {}, 64, 20, 9),                      # stem + one per block; add->ReLU stays
    ("resnet20", {"shortcut": "A"}, 32, 19, 10),
    ("resnet20", {"shortcut": "B"}, 32, 21, 10),
    ("googlenet", {}, 64, 57, 57),
    ("se_resnet50", {}, 64, 53, 33 + 16),             # + each SE block's fc1 -> ReLU
])
def test_fused_equals_unfused(fn, kwargs, size, bns, relus):
    striate.manual_seed(0)
    kw = dict(kwargs, input_size=size) if fn != "lenet5" else kwargs
    m = _randomize_bn(models.MODELS[fn](num_classes=10, **kw)).eval()
    before = m.state_dict()
    x = np.random.default_rng(1).standard_normal((2, 3 if fn != "lenet5" else 1, size, size)
                                                 ).astype(np.float32)
    expected = m(x)
    f = fuse_for_inference(m)
    assert _count(m, nn.BatchNorm2d) == bns and _count(f, nn.BatchNorm2d) == 0
    assert _fused_convs(f) == relus and _fused_convs(m) == 0
    assert _count(f, nn.Dropout) == 0 and not f.training
    assert_close(f(x), expected.astype(np.float64), what=fn)
    # The original keeps its layers, weights and outputs.
    after = m.state_dict()
    assert list(after) == list(before)
    for k in before:
        np.testing.assert_array_equal(after[k], before[k], err_msg=k)
    np.testing.assert_array_equal(m(x), expected)


def test_fold_formula_single_conv_bn():
    # One conv with bias + BN, checked against the float64 formula on NumPy.
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(3, 5, 3, padding=1, groups=1, bias=True)
    bn = nn.BatchNorm2d(5, eps=1e-3)
    m = _randomize_bn(nn.Sequential(conv, bn))
    f = fuse_for_inference(m)
    assert len(f) == 1
    fc = f[0]
    g = bn.weight.data.astype(np.float64) / np.sqrt(bn.running_var.astype(np.float64) + 1e-3)
    np.testing.assert_array_equal(
        fc.weight.data, (conv.weight.data.astype(np.float64) * g[:, None, None, None])
        .astype(np.float32))
    np.testing.assert_array_equal(
        fc.bias.data, ((conv.bias.data - bn.running_mean.astype(np.float64)) * g
                       + bn.bias.data).astype(np.float32))
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    assert_close(f(x), m(x).astype(np.float64))


def test_grouped_conv_without_bias_and_bn_without_affine():
    m = _randomize_bn(nn.Sequential(nn.Conv2d(4, 8, 3, groups=4, bias=False),
                                    nn.BatchNorm2d(8, affine=False), nn.ReLU(), nn.Flatten()))
    f = fuse_for_inference(m)
    assert [type(l).__name__ for l in f] == ["Conv2d", "Flatten"] and f[0].bias is not None
    x = np.random.default_rng(3).standard_normal((3, 4, 5, 5)).astype(np.float32)
    assert_close(f(x), m(x).astype(np.float64))


def test_batch_statistics_bn_is_not_folded():
    # track_running_stats=False normalizes by the batch's own statistics even
    # in eval: nothing constant to fold.
    m = nn.Sequential(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4, track_running_stats=False), nn.ReLU())
    f = fuse_for_inference(m)
    assert [type(l).__name__ for l in f] == ["Conv2d", "BatchNorm2d", "ReLU"]
    x = np.random.default_rng(4).standard_normal((3, 2, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(f(x), m(x))


def test_only_single_consumer_outputs_are_fused():
    x = striate.Input((3, 8, 8))
    a = nn.Conv2d(3, 4, 3, padding=1, name="a")(x)
    a_bn = nn.BatchNorm2d(4, name="a_bn")(a)        # a is also read by "side": no fold
    side = nn.Conv2d(4, 4, 1, name="side")(a)
    b = nn.Conv2d(4, 4, 3, padding=1, name="b")(nn.Add(name="add")([a_bn, side]))
    b_bn = nn.BatchNorm2d(4, name="b_bn")(b)        # folded into b
    r = nn.ReLU(name="r")(b_bn)                     # not fused: b_bn is a model output too
    m = _randomize_bn(nn.Model(x, [r, b_bn]))
    f = fuse_for_inference(m)
    names = [l.name for l, *_ in f._steps]
    assert "a_bn" in names and "b_bn" not in names and "r" in names
    assert f.get_layer("b").activation is None and f.get_layer("a").activation is None
    xv = np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32)
    for got, want in zip(f(xv), m(xv)):
        assert_close(got, want.astype(np.float64))


def test_dropout_identity_removed_and_nested_networks_fused():
    inner = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Dropout(0.3))
    x = striate.Input((2, 6, 6))
    y = nn.Identity(name="id")(inner(x))
    y = nn.Dropout(0.5, name="drop")(nn.Flatten(name="flat")(y))
    m = _randomize_bn(nn.Model(x, nn.Linear(48, 4, name="fc")(y)))
    f = fuse_for_inference(m)
    assert [type(l).__name__ for l, *_ in f._steps] == ["Sequential", "Flatten", "Linear"]
    assert [type(l).__name__ for l in f._steps[0][0]] == ["Conv2d"]
    xv = np.random.default_rng(6).standard_normal((2, 2, 6, 6)).astype(np.float32)
    assert_close(f(xv), m(xv).astype(np.float64))


def test_save_load_and_summary(tmp_path):
    striate.manual_seed(1)
    f = fuse_for_inference(_randomize_bn(models.resnet20(num_classes=10)))
    text = f.summary(print_fn=None)
    assert "BatchNorm2d" not in text and "Total params" in text
    assert text.count("Conv2d+ReLU") == _fused_convs(f) == 10
    f.save(tmp_path / "fused.npz")
    g = striate.load(tmp_path / "fused.npz")
    assert _fused_convs(g) == _fused_convs(f) == 10
    x = np.random.default_rng(7).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(g(x), f(x))


def test_conv_relu_layer_backward_equals_conv_then_relu():
    rng = np.random.default_rng(8)
    striate.manual_seed(2)
    fused = nn.Conv2d(3, 4, 3, padding=1, activation="relu")
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    plain.load_state_dict({"0.weight": fused.weight.data, "0.bias": fused.bias.data})
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    g = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(fused.forward(x, training=True), plain.forward(x, training=True))
    np.testing.assert_array_equal(fused.backward(g), plain.backward(g))
    np.testing.assert_array_equal(fused.weight.grad, plain[0].weight.grad)
    np.testing.assert_array_equal(fused.bias.grad, plain[0].bias.grad)
    assert "activation='relu'" in repr(fused)


def test_bad_arguments():
    with raises(TypeError, "fuse_for_inference", "Conv2d"):
        fuse_for_inference(nn.Conv2d(1, 1, 1))
    with raises(ValueError, "activation", "tanh"):
        nn.Conv2d(1, 1, 1, activation="tanh")


def test_fusing_between_forward_and_backward_keeps_the_original_trainable():
    # The copy leaves the saved activations behind; the original still has them.
    striate.manual_seed(3)
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    x = np.random.default_rng(9).standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = m.forward(x, training=True)
    f = fuse_for_inference(m)
    assert all(layer._ctx is None for layer in f)
    assert m.backward(np.ones_like(y)).shape == x.shape

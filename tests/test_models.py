"""striate.models: parameter counts, volumes, shapes, torchvision key names and
outputs equal to PyTorch's with the same weights (torch nets built by hand
below, as torchvision defines them, since torchvision may be absent)."""

import numpy as np
import pytest

import striate
from striate import models
from striate.models.inception import INCEPTION
from striate.nn.layers import LAYERS

from helpers import assert_close, torch_or_skip
from striate.bench.torch_models import randomize_bn, torch_alexnet, torch_resnet


@pytest.mark.parametrize("fn, kwargs, count", [
    ("lenet5", {}, 61_706),
    ("alexnet", {}, 62_378_344),
    ("resnet18", {}, 11_689_512),
    ("resnet34", {}, 21_797_672),
    ("resnet50", {}, 25_557_032),
    ("resnet101", {}, 44_549_160),
    ("resnet152", {}, 60_192_808),
    ("resnet20", {}, 272_474),  # the default: option B projections
    ("resnet20", {"shortcut": "A"}, 269_722),  # option A: the projections' 2,752 parameters are gone
    ("resnet56", {"shortcut": "A"}, 853_018),
    ("resnet56", {}, 855_770),
    ("se_resnet50", {}, 28_088_024),
    ("googlenet", {"branch3_kernel": 3}, 6_624_904),  # torchvision's definition
    ("googlenet", {}, 7_005_832),
])
def test_parameter_counts(fn, kwargs, count):
    assert models.MODELS[fn](**kwargs).num_parameters() == count


def test_vgg_configurations():
    # Simonyan & Zisserman, table 2: 133, 133, 133, 134, 138, 144 million (A-LRN's
    # LRN has no parameters). Each build allocates ~130M floats: three suffice.
    a_bn = models.vgg11(batch_norm=True).num_parameters()
    convs = 2 * (64 + 128 + 2 * 256 + 4 * 512)  # batch norm: scale and shift per channel
    assert a_bn - convs == 132_863_336 and round(132_863_336 / 1e6) == 133
    assert round(models.vgg("C").num_parameters() / 1e6) == 134
    assert round(models.vgg19().num_parameters() / 1e6) == 144
    assert models.vgg("A-LRN", num_classes=10).get_layer("features.2").__class__.__name__ == \
        "LocalResponseNorm"


def test_alexnet_summary_shows_the_notes_volumes():
    text = models.alexnet().summary(print_fn=None)
    rows = [line.split() for line in text.splitlines()
            if line.startswith(("features", "classifier"))]
    got = [(r[1], r[2]) for r in rows if r[1] in ("Conv2d", "MaxPool2d", "Linear")]
    assert got == [("Conv2d", "96×55×55"), ("MaxPool2d", "96×27×27"),
                   ("Conv2d", "256×27×27"), ("MaxPool2d", "256×13×13"),
                   ("Conv2d", "384×13×13"), ("Conv2d", "384×13×13"), ("Conv2d", "256×13×13"),
                   ("MaxPool2d", "256×6×6"),
                   ("Linear", "4096"), ("Linear", "4096"), ("Linear", "1000")]
    kinds = [r[1] for r in rows]
    # LRN right after pools 1 and 2; dropout 0.5 before both hidden FCs.
    before_lrn = [kinds[i - 1] for i, k in enumerate(kinds) if k == "LocalResponseNorm"]
    assert before_lrn == ["MaxPool2d"] * 2
    assert [kinds[i + 1] for i, k in enumerate(kinds) if k == "Dropout"] == ["Linear"] * 2
    assert "Total params: 62,378,344" in text


def test_zfnet_volumes():
    m = models.zfnet(num_classes=10)
    shapes = {l.name: s for l, _, _, s in m._steps}
    assert shapes["features.0"] == (96, 110, 110)
    assert shapes["features.2"] == (96, 55, 55)
    assert shapes["features.4"] == (256, 26, 26)
    assert [shapes[f"features.{i}"][0] for i in (8, 10, 12)] == [512, 1024, 512]
    assert shapes["features.14"] == (512, 6, 6)


@pytest.mark.parametrize("fn, kwargs, size", [
    ("alexnet", {}, 227), ("vgg11", {"batch_norm": True}, 32), ("resnet18", {}, 64),
    ("resnet50", {}, 64), ("resnet20", {}, 32), ("googlenet", {}, 64), ("se_resnet50", {}, 64),
    ("resnet32", {"shortcut": "B"}, 32),
])
def test_forward_shape(fn, kwargs, size):
    striate.manual_seed(0)
    m = models.MODELS[fn](num_classes=7, input_size=size, **kwargs)
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype(np.float32)
    y = m(x)
    assert y.shape == (2, 7) and y.dtype == np.float32 and np.isfinite(y).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="cfg"):
        models.vgg("F")
    with pytest.raises(ValueError, match="branch3_kernel"):
        models.googlenet(branch3_kernel=7)
    with pytest.raises(ValueError, match="shortcut"):
        models.resnet20(shortcut="C")


# -- PyTorch equivalents (striate.bench.torch_models), outputs compared -------

@pytest.mark.parametrize("fn, bottleneck, depths, size, option", [
    ("resnet18", False, (2, 2, 2, 2), 64, None),
    ("se_resnet50", True, (3, 4, 6, 3), 64, None),
    ("resnet50", True, (3, 4, 6, 3), 64, None),
    ("resnet20", False, (3, 3, 3), 32, "A"),
    ("resnet20", False, (3, 3, 3), 32, "B"),
])
def test_resnet_matches_torch(fn, bottleneck, depths, size, option):
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref = torch_resnet(torch, bottleneck, depths, 10, option, se=fn.startswith("se_")).eval()
    randomize_bn(torch, ref)
    kw = {"shortcut": option} if option else {}
    m = models.MODELS[fn](num_classes=10, input_size=size, **kw)
    assert list(m.state_dict()) == list(ref.state_dict())
    m.load_state_dict(ref.state_dict())
    x = np.random.default_rng(1).standard_normal((2, 3, size, size)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).double().numpy()
    assert_close(m(x), expected, what=fn)


def test_resnet20_backward_matches_torch():
    # Gradients are compared with batch norm on running statistics: with batch
    # statistics the float32 rounding differences (~1e-5) of a 20-layer forward
    # can flip a ReLU mask at a near-zero activation and move one gradient
    # entry by O(1) -- a property of the arithmetic, not of either backward.
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref = torch_resnet(torch, False, (3, 3, 3), 10, "A").eval()
    randomize_bn(torch, ref)
    m = models.resnet20(num_classes=10, shortcut="A")
    m.load_state_dict(ref.state_dict())
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    g = rng.standard_normal((4, 10)).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    ref(xt).backward(torch.from_numpy(g))
    m.forward(x, training=False)
    assert_close(m.backward(g), xt.grad.double().numpy(), what="grad x")
    params = dict(m.named_parameters())
    assert len(params) == len(dict(ref.named_parameters()))
    for name, p in ref.named_parameters():
        assert_close(params[name].grad, p.grad.double().numpy(), what=name)


def test_resnet20_trains_a_step():
    striate.manual_seed(0)
    m = models.resnet20(num_classes=10).train()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 32, 32)).astype(np.float32)
    y = m.forward(x, training=True)
    gx = m.backward(np.ones_like(y) / y.size)
    assert gx.shape == x.shape and np.isfinite(gx).all()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.data.shape, name
        assert np.isfinite(p.grad).all(), name
    assert int(m.state_dict()["layer3.0.bn1.num_batches_tracked"]) == 1


def test_alexnet_matches_torch():
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref = torch_alexnet(torch, num_classes=10).eval()
    m = models.alexnet(num_classes=10)
    assert list(m.state_dict()) == list(ref.state_dict())
    m.load_state_dict(ref.state_dict())
    x = np.random.default_rng(3).standard_normal((2, 3, 227, 227)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).double().numpy()
    assert_close(m(x), expected, what="alexnet")


def _torch_googlenet(torch, k5):
    tnn = torch.nn

    def basic(c_in, c_out, k, **kw):
        m = tnn.Module()
        m.conv = tnn.Conv2d(c_in, c_out, k, bias=False, **kw)
        m.bn = tnn.BatchNorm2d(c_out, eps=1e-3)
        m.forward = lambda x: torch.relu(m.bn(m.conv(x)))
        return m

    class Inception(tnn.Module):
        def __init__(self, c_in, c1, r3, c3, r5, c5, pp):
            super().__init__()
            self.branch1 = basic(c_in, c1, 1)
            self.branch2 = tnn.Sequential(basic(c_in, r3, 1), basic(r3, c3, 3, padding=1))
            self.branch3 = tnn.Sequential(basic(c_in, r5, 1), basic(r5, c5, k5, padding=k5 // 2))
            self.branch4 = tnn.Sequential(tnn.MaxPool2d(3, 1, 1, ceil_mode=True),
                                          basic(c_in, pp, 1))

        def forward(self, x):
            branches = (self.branch1, self.branch2, self.branch3, self.branch4)
            return torch.cat([b(x) for b in branches], 1)

    net = tnn.Module()
    net.conv1, net.conv2, net.conv3 = basic(3, 64, 7, stride=2, padding=3), basic(64, 64, 1), \
        basic(64, 192, 3, padding=1)
    c = 192
    for key, w in INCEPTION.items():
        setattr(net, f"inception{key}", Inception(c, *w))
        c = w[0] + w[2] + w[4] + w[5]
    net.fc = tnn.Linear(c, 10)
    pool = lambda x, k=3: tnn.functional.max_pool2d(x, k, 2, ceil_mode=True)  # noqa: E731

    def forward(x):
        x = pool(net.conv3(net.conv2(pool(net.conv1(x)))))
        x = pool(net.inception3b(net.inception3a(x)))
        for key in ("4a", "4b", "4c", "4d", "4e"):
            x = getattr(net, f"inception{key}")(x)
        x = net.inception5b(net.inception5a(pool(x, 2)))
        return net.fc(torch.flatten(x.mean((2, 3)), 1))
    return net, forward


@pytest.mark.parametrize("k5", [3, 5])
def test_googlenet_matches_torch(k5):
    torch = torch_or_skip()
    torch.manual_seed(0)
    ref, ref_forward = _torch_googlenet(torch, k5)
    ref.eval()
    randomize_bn(torch, ref)
    m = models.googlenet(num_classes=10, input_size=64, branch3_kernel=k5)
    assert list(m.state_dict()) == list(ref.state_dict())
    m.load_state_dict(ref.state_dict())
    x = np.random.default_rng(7).standard_normal((2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = ref_forward(torch.from_numpy(x)).double().numpy()
    assert_close(m(x), expected, what="googlenet")


@pytest.mark.parametrize("batch_norm, count", [(False, 138_357_544), (True, 138_365_992)])
def test_vgg16_count_and_torchvision_keys(batch_norm, count):
    m = models.vgg16(batch_norm=batch_norm)
    assert m.num_parameters() == count
    try:
        import torch
    except ImportError:
        return
    tnn = torch.nn
    layers, c = [], 3  # torchvision's vgg make_layers, configuration D
    for v in models.VGG_CFGS["D"]:
        if v == "M":
            layers.append(tnn.MaxPool2d(2, 2))
        else:
            layers.append(tnn.Conv2d(c, v, 3, padding=1))
            layers += [tnn.BatchNorm2d(v), tnn.ReLU()] if batch_norm else [tnn.ReLU()]
            c = v
    expected = ["features." + k for k in tnn.Sequential(*layers).state_dict()] + [
        f"classifier.{i}.{w}" for i in (0, 3, 6) for w in ("weight", "bias")]
    assert list(m.state_dict()) == expected


def test_shortcut_a_is_subsample_and_zero_pad_with_adjoint_backward():
    from striate.models._layers import ShortcutA
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 16, 7, 7)).astype(np.float32)
    s = ShortcutA(16, 32, 2)
    y = s.forward(x)
    assert y.shape == (2, 32, 4, 4) == (2,) + s.output_shape((16, 7, 7))
    np.testing.assert_array_equal(y[:, 8:24], x[:, :, ::2, ::2])
    assert not y[:, :8].any() and not y[:, 24:].any()
    g = rng.standard_normal(y.shape).astype(np.float32)
    gx = s.backward(g)
    # The backward is the forward's adjoint: <S x, g> == <x, S^T g>.
    assert np.isclose(np.vdot(y.astype(np.float64), g), np.vdot(x.astype(np.float64), gx))


def test_checkpoint_round_trip_rebuilds_zoo_layers(tmp_path):
    assert LAYERS["ShortcutA"] is models.resnet20(shortcut="A").get_layer(
        "layer2.0.shortcut").__class__
    striate.manual_seed(0)
    m = models.resnet20(num_classes=10, shortcut="A")
    path = tmp_path / "r20.striate"
    m.save(str(path))
    m2 = striate.load(str(path))
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_array_equal(m2(x), m(x))

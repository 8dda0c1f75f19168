"""striate.nn layers: forward, input and parameter gradients against PyTorch's
modules (float64, same weights) and against striate.reference; initialization,
num_parameters, batch norm's running statistics, dropout, train/eval modes."""

import math
import zlib

import numpy as np
import pytest

import striate
from helpers import assert_close, rand, raises, torch_or_skip
from striate import init, nn
from striate import reference as ref

# (id, striate layer, torch module built from torch.nn, input shape, training)
LAYER_CASES = [
    ("conv", lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
     lambda T: T.Conv2d(3, 4, 3, stride=2, padding=1),
     (2, 3, 9, 9), True),
    ("conv_groups_dilation_nobias",
     lambda: nn.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False, padding=(2, 1)),
     lambda T: T.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False, padding=(2, 1)), (2, 4, 7, 8), True),
    ("conv_same", lambda: nn.Conv2d(2, 3, (3, 4), padding="same"),
     lambda T: T.Conv2d(2, 3, (3, 4), padding="same"), (2, 2, 6, 7), True),
    ("maxpool", lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True),
     lambda T: T.MaxPool2d(3, 2, padding=1, ceil_mode=True), (2, 3, 8, 9), True),
    ("maxpool_dilation", lambda: nn.MaxPool2d(2, 1, dilation=2), lambda T: T.MaxPool2d(2, 1, dilation=2),
     (1, 2, 6, 5), True),
    ("avgpool", lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False),
     lambda T: T.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 8, 9), True),
    ("adaptive", lambda: nn.AdaptiveAvgPool2d((3, None)), lambda T: T.AdaptiveAvgPool2d((3, None)),
     (2, 3, 7, 5), True),
    ("batchnorm_train", lambda: nn.BatchNorm2d(3), lambda T: T.BatchNorm2d(3), (4, 3, 5, 5), True),
    ("batchnorm_eval", lambda: nn.BatchNorm2d(3), lambda T: T.BatchNorm2d(3), (4, 3, 5, 5), False),
    ("batchnorm_noaffine", lambda: nn.BatchNorm2d(3, affine=False, momentum=0.3),
     lambda T: T.BatchNorm2d(3, affine=False, momentum=0.3), (4, 3, 2, 3), True),
    ("lrn", lambda: nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0),
     lambda T: T.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0), (2, 5, 3, 3), True),
    ("relu", lambda: nn.ReLU(), lambda T: T.ReLU(), (2, 3, 4, 4), True),
    ("leaky_relu", lambda: nn.LeakyReLU(0.2), lambda T: T.LeakyReLU(0.2), (2, 3, 4, 4), True),
    ("sigmoid", lambda: nn.Sigmoid(), lambda T: T.Sigmoid(), (2, 3, 4, 4), True),
    ("tanh", lambda: nn.Tanh(), lambda T: T.Tanh(), (2, 3, 4, 4), True),
    ("softmax", lambda: nn.Softmax(dim=1), lambda T: T.Softmax(dim=1), (3, 7), True),
    ("log_softmax", lambda: nn.LogSoftmax(dim=1), lambda T: T.LogSoftmax(dim=1), (3, 7), True),
    ("linear", lambda: nn.Linear(5, 3), lambda T: T.Linear(5, 3), (4, 5), True),
    ("linear_nobias", lambda: nn.Linear(5, 3, bias=False), lambda T: T.Linear(5, 3, bias=False),
     (4, 5), True),
    ("flatten", lambda: nn.Flatten(), lambda T: T.Flatten(), (2, 3, 2, 2), True),
    ("identity", lambda: nn.Identity(), lambda T: T.Identity(), (2, 3), True),
    ("dropout_eval", lambda: nn.Dropout(0.5), lambda T: T.Dropout(0.5), (2, 3, 4, 4), False),
]
IDS = [c[0] for c in LAYER_CASES]


def _randomize_buffers(layer, rng):
    """Non-trivial running statistics, so eval mode is really tested."""
    if isinstance(layer, nn.BatchNorm2d):
        c = layer.num_features
        state = layer.state_dict()
        state["running_mean"] = rand(rng, c)
        state["running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
        if layer.affine:
            state["weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
            state["bias"] = rand(rng, c)
        layer.load_state_dict(state)


def _reference(layer, x, g, training):
    """(y, grad_x, {param name: grad}) of a layer from striate.reference (float64)."""
    p = {k: v.data for k, v in layer.named_parameters()}
    w, b = p.get("weight"), p.get("bias")
    if isinstance(layer, nn.Conv2d):
        kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups)
        gx, gw, gb = ref.conv2d_backward(g, x, w, b, **kw)
        return ref.conv2d(x, w, b, **kw), gx, {"weight": gw, "bias": gb}
    if isinstance(layer, nn.MaxPool2d):
        k = layer.kernel_size
        kw = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                  ceil_mode=layer.ceil_mode)
        return ref.max_pool2d(x, k, **kw), ref.max_pool2d_backward(g, x, k, **kw)[0], {}
    if isinstance(layer, nn.AvgPool2d):
        kw = dict(stride=layer.stride, padding=layer.padding, ceil_mode=layer.ceil_mode,
                  count_include_pad=layer.count_include_pad)
        k = layer.kernel_size
        return ref.avg_pool2d(x, k, **kw), ref.avg_pool2d_backward(g, x, k, **kw)[0], {}
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        o = layer.output_size
        return ref.adaptive_avg_pool2d(x, o), ref.adaptive_avg_pool2d_backward(g, x, o)[0], {}
    if isinstance(layer, nn.BatchNorm2d):
        rm, rv = layer.running_mean.copy(), layer.running_var.copy()
        y = ref.batch_norm(x, rm, rv, w, b, training=training, momentum=layer.momentum, eps=layer.eps)
        gx, _, _, gw, gb = ref.batch_norm_backward(g, x, rm, rv, w, b, training=training, eps=layer.eps)
        return y, gx, {"weight": gw, "bias": gb}
    if isinstance(layer, nn.LocalResponseNorm):
        a = (layer.size, layer.alpha, layer.beta, layer.k)
        return ref.local_response_norm(x, *a), ref.local_response_norm_backward(g, x, *a)[0], {}
    if isinstance(layer, nn.Linear):
        gx, gw, gb = ref.linear_backward(g, x, w, b)
        return ref.linear(x, w, b), gx, {"weight": gw, "bias": gb}
    if isinstance(layer, (nn.Flatten, nn.Identity, nn.Dropout)):  # Dropout only in eval here
        return x.reshape(len(x), -1) if isinstance(layer, nn.Flatten) else x, g.reshape(x.shape), {}
    fns = {nn.ReLU: ("relu", ()), nn.LeakyReLU: ("leaky_relu", (getattr(layer, "negative_slope", 0),)),
           nn.Sigmoid: ("sigmoid", ()), nn.Tanh: ("tanh", ()), nn.LogSoftmax: ("log_softmax", (1,)),
           nn.Softmax: ("softmax", (1,))}
    name, extra = fns[type(layer)]
    return getattr(ref, name)(x, *extra), getattr(ref, name + "_backward")(g, x, *extra)[0], {}


def _run(layer, x, g, training):
    y = layer.forward(x, training=training)
    layer.zero_grad()
    gx = layer.backward(g)
    return y, gx, {k: p.grad for k, p in layer.named_parameters()}


@pytest.mark.parametrize("case", LAYER_CASES, ids=IDS)
def test_layer_matches_reference(case):
    _, make, _, shape, training = case
    rng = np.random.default_rng(zlib.crc32(case[0].encode()))
    layer = make()
    _randomize_buffers(layer, rng)
    x = rand(rng, *shape)
    y_shape = (shape[0],) + tuple(layer.output_shape(shape[1:]))
    g = rand(rng, *y_shape)
    ey, egx, egp = _reference(layer, x, g, training)
    y, gx, gp = _run(layer, x, g, training)
    assert y.shape == y_shape
    assert_close(y, ey, what="forward")
    assert_close(gx, egx, what="grad x")
    assert set(gp) == {k for k, v in egp.items() if v is not None}
    for k in gp:
        assert_close(gp[k], egp[k], what=f"grad {k}")


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", LAYER_CASES, ids=IDS)
def test_layer_matches_torch(case):
    torch = torch_or_skip()
    _, make, make_torch, shape, training = case
    rng = np.random.default_rng(zlib.crc32(case[0].encode()) + 1)
    layer, tmod = make(), make_torch(torch.nn)
    _randomize_buffers(layer, rng)
    # torch's (randomly initialized) weights into ours, our buffers into torch.
    tstate = tmod.state_dict()
    for k, v in layer.named_buffers():
        tstate[k] = torch.from_numpy(np.asarray(v).copy())
    tmod.load_state_dict(tstate)
    layer.load_state_dict(tmod.state_dict())
    assert list(layer.state_dict()) == list(tmod.state_dict())
    tmod = tmod.double().train(training)
    x = rand(rng, *shape)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    ty = tmod(tx)
    g = rand(rng, *ty.shape)
    ty.backward(torch.from_numpy(g.astype(np.float64)))
    y, gx, gp = _run(layer, x, g, training)
    assert_close(y, ty.detach().numpy(), what="forward")
    assert_close(gx, tx.grad.numpy(), what="grad x")
    tgrads = {k: p.grad.numpy() for k, p in tmod.named_parameters()}
    assert set(gp) == set(tgrads)
    for k in gp:
        assert_close(gp[k], tgrads[k], what=f"grad {k}")
    for k, v in tmod.named_buffers():  # running statistics after one step
        assert_close(np.asarray(getattr(layer, k)), v.numpy(), rtol=1e-6, what=k)


def test_num_parameters_match_torch():
    torch = torch_or_skip()
    for _, make, make_torch, _, _ in LAYER_CASES:
        layer, tmod = make(), make_torch(torch.nn)
        assert layer.num_parameters() == sum(p.numel() for p in tmod.parameters())
    assert nn.Conv2d(3, 4, 3).num_parameters() == 4 * 3 * 9 + 4
    assert nn.Conv2d(4, 6, 3, groups=2, bias=False).num_parameters() == 6 * 2 * 9
    assert nn.BatchNorm2d(5).num_parameters() == 10
    lin = nn.Linear(7, 3)
    lin.bias.requires_grad = False
    assert (lin.num_parameters(), lin.num_parameters(trainable_only=True)) == (24, 21)


@pytest.mark.parametrize("make, fan_in", [(lambda: nn.Conv2d(16, 64, 3), 144),
                                          (lambda: nn.Conv2d(32, 64, 3, groups=4), 72),
                                          (lambda: nn.Linear(400, 300), 400)])
def test_default_init_is_pytorchs(make, fan_in):
    """Kaiming-uniform(a=sqrt(5)): weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    striate.manual_seed(0)
    layer = make()
    bound = 1 / math.sqrt(fan_in)
    for p, n in ((layer.weight.data, layer.weight.data.size), (layer.bias.data, layer.bias.data.size)):
        assert p.dtype == np.float32
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > bound * (1 - 10 / n)  # the range is really used
    w = layer.weight.data.astype(np.float64).ravel()
    # U(-b, b): mean 0, variance b^2/3; 6 standard errors of the estimates.
    assert abs(w.mean()) < 6 * bound / math.sqrt(3 * w.size)
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 6 * math.sqrt(0.8 / w.size)
    striate.manual_seed(0)
    again = make()
    assert np.array_equal(again.weight.data, layer.weight.data)
    assert np.array_equal(again.bias.data, layer.bias.data)


@pytest.mark.parametrize("fn, std", [
    (lambda t: init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 200)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 2500)),
    (lambda t: init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / 200)),
    (lambda t: init.xavier_normal_(t), math.sqrt(2 / 2700)),
    (lambda t: init.xavier_uniform_(t, gain=2.0), 2 * math.sqrt(2 / 2700)),
])
def test_init_helpers_statistics(fn, std):
    striate.manual_seed(1)
    p = nn.Parameter(np.zeros((100, 8, 5, 5), np.float32))  # fan_in 8*25 = 200, fan_out 100*25 = 2500
    assert fn(p) is p
    w = p.data.astype(np.float64).ravel()
    assert abs(w.std() / std - 1) < 0.03  # 20,000 samples: standard error ~0.5-0.7%


def test_init_constant_helpers():
    a = np.full((3, 4), 7, np.float32)
    assert init.zeros_(a) is a and not a.any()
    init.ones_(a)
    assert (a == 1).all()
    init.constant_(a, 0.25)
    assert (a == 0.25).all()
    with raises(ValueError, "nonlinearity"):
        init.calculate_gain("swish")


def test_batchnorm_running_stats_and_counter():
    rng = np.random.default_rng(3)
    bn = nn.BatchNorm2d(2, momentum=0.25)
    xs = [rand(rng, 3, 2, 4, 4) * 3 + 1 for _ in range(3)]
    rm, rv = np.zeros(2), np.ones(2)
    for k, x in enumerate(xs):
        bn.forward(x, training=True)
        x64 = x.astype(np.float64)
        rm = 0.75 * rm + 0.25 * x64.mean(axis=(0, 2, 3))
        rv = 0.75 * rv + 0.25 * x64.var(axis=(0, 2, 3), ddof=1)
        assert int(bn.num_batches_tracked) == k + 1
    assert_close(bn.running_mean, rm, rtol=1e-6)
    assert_close(bn.running_var, rv, rtol=1e-6)
    bn.forward(xs[0], training=False)  # eval neither updates nor counts
    assert int(bn.num_batches_tracked) == 3
    assert_close(bn.running_mean, rm, rtol=1e-6)


def test_batchnorm_momentum_none_is_cumulative_average():
    rng = np.random.default_rng(4)
    bn = nn.BatchNorm2d(3, momentum=None)
    xs = [rand(rng, 2, 3, 3, 3) * (k + 1) + k for k in range(4)]
    for x in xs:
        bn.forward(x, training=True)
    means = np.mean([x.astype(np.float64).mean(axis=(0, 2, 3)) for x in xs], axis=0)
    variances = np.mean([x.astype(np.float64).var(axis=(0, 2, 3), ddof=1) for x in xs], axis=0)
    # The cumulative average forgets the initial 0 / 1 entirely.
    assert_close(bn.running_mean, means, rtol=1e-6)
    assert_close(bn.running_var, variances, rtol=1e-6)
    assert int(bn.num_batches_tracked) == 4


def test_batchnorm_momentum_none_matches_torch():
    torch = torch_or_skip()
    rng = np.random.default_rng(5)
    bn, tbn = nn.BatchNorm2d(3, momentum=None), torch.nn.BatchNorm2d(3, momentum=None)
    for _ in range(3):
        x = rand(rng, 4, 3, 2, 2)
        bn.forward(x, training=True)
        tbn(torch.from_numpy(x))
    for k, v in tbn.state_dict().items():
        assert_close(bn.state_dict()[k], v.numpy(), rtol=1e-6, what=k)


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    rng = np.random.default_rng(6)
    bn = nn.BatchNorm2d(3, track_running_stats=False)
    assert list(bn.state_dict()) == ["weight", "bias"]
    x = rand(rng, 4, 3, 3, 3)
    bn.eval()
    assert_close(bn(x), ref.batch_norm(x, None, None, bn.weight.data, bn.bias.data, training=True))


def test_dropout_mask_reproducible_and_backward_consistent():
    rng = np.random.default_rng(7)
    x = rng.uniform(0.5, 1.5, (4, 8, 16, 16)).astype(np.float32)  # no zeros: y == 0 <=> dropped
    d = nn.Dropout(0.3)
    striate.manual_seed(11)
    y1 = d.forward(x, training=True)
    g = rand(rng, *x.shape)
    gx = d.backward(g)
    striate.manual_seed(11)
    y2 = d.forward(x, training=True)
    assert np.array_equal(y1, y2)
    y3 = d.forward(x, training=True)  # the next step draws a new mask
    assert not np.array_equal((y1 == 0), (y3 == 0))
    kept = y1 != 0
    assert abs(kept.mean() - 0.7) < 0.02  # 16,384 draws: standard error 0.0036
    assert_close(y1[kept], x[kept] / 0.7, rtol=1e-6)
    assert np.array_equal(gx == 0, ~kept | (g == 0))
    assert_close(gx[kept], g[kept] / 0.7, rtol=1e-6)


def test_dropout_modes():
    x = np.ones((2, 50), np.float32)
    d = nn.Dropout(0.5)
    d.eval()
    assert np.array_equal(d(x), x)
    assert np.array_equal(d.backward(x * 3), x * 3)
    d.train()
    assert (d(x) == 0).any()
    assert np.array_equal(nn.Dropout(0.0).forward(x, training=True), x)
    assert not nn.Dropout(1.0).forward(x, training=True).any()
    with raises(ValueError, "p", "1.5"):
        nn.Dropout(1.5)


def test_train_eval_mode_controls_forward():
    rng = np.random.default_rng(8)
    bn = nn.BatchNorm2d(2)
    x = rand(rng, 3, 2, 3, 3) + 5.0
    assert bn.training
    bn.eval()
    assert not bn.training
    y_eval = bn(x)  # running stats (0, 1): y = x
    assert_close(y_eval, x, rtol=1e-5)
    assert int(bn.num_batches_tracked) == 0
    bn.train()
    y_train = bn(x)
    assert abs(float(y_train.mean())) < 1e-5 and int(bn.num_batches_tracked) == 1
    # An explicit training= argument overrides the mode for one call.
    assert_close(bn.forward(x, training=False), ref.batch_norm(x, bn.running_mean, bn.running_var,
                                                                bn.weight.data, bn.bias.data))


def test_backward_without_forward_is_an_error():
    with raises(RuntimeError, "Linear", "backward"):
        nn.Linear(2, 2).backward(np.ones((1, 2), np.float32))


@pytest.mark.parametrize("make, shape, fragments", [
    (lambda: nn.Conv2d(3, 4, 3), (4, 8, 8), ("Conv2d", "3 input channels", "(4, 8, 8)")),
    (lambda: nn.Conv2d(3, 4, 5), (3, 3, 3), ("Conv2d", "does not fit", "(3, 3, 3)")),
    (lambda: nn.Linear(10, 2), (3, 4, 4), ("Linear", "(10,)", "(3, 4, 4)", "Flatten")),
    (lambda: nn.MaxPool2d(4), (2, 3, 3), ("MaxPool2d", "(2, 3, 3)")),
    (lambda: nn.BatchNorm2d(3), (4, 5, 5), ("BatchNorm2d", "3 channels", "(4, 5, 5)")),
])
def test_output_shape_errors_name_layer_and_shape(make, shape, fragments):
    with raises(ValueError, *fragments):
        make().output_shape(shape)


def test_bad_constructor_arguments():
    with raises(ValueError, "groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with raises(ValueError, "in_features"):
        nn.Linear(0, 3)
    with raises(ValueError, "num_features"):
        nn.BatchNorm2d(2.5)

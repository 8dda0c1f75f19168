"""Sequential and functional Models: state dicts vs torch.nn.Sequential, DAGs
(residual Add, Inception-like Concat, several inputs and outputs) forward and
backward vs torch autograd on the same graph, build-time errors, summary(),
replace() and freeze()."""

import numpy as np
import pytest

import striate
from helpers import assert_close, rand, raises, torch_or_skip
from striate import models, nn, optim
from striate.nn import Input, Model, Sequential


def small_bn_net():
    return Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 4, 3), nn.Flatten(), nn.Dropout(0.5), nn.Linear(16, 5))


def torch_small_bn_net(T):
    return T.Sequential(T.Conv2d(3, 8, 3, padding=1), T.BatchNorm2d(8), T.ReLU(), T.MaxPool2d(2),
                        T.Conv2d(8, 4, 3), T.Flatten(), T.Dropout(0.5), T.Linear(16, 5))


def torch_lenet5(T):
    return T.Sequential(T.Conv2d(1, 6, 5), T.ReLU(), T.MaxPool2d(2), T.Conv2d(6, 16, 5), T.ReLU(),
                        T.MaxPool2d(2), T.Flatten(), T.Linear(400, 120), T.ReLU(), T.Linear(120, 84),
                        T.ReLU(), T.Linear(84, 10))


@pytest.mark.parametrize("ours, theirs, shape", [(models.lenet5, torch_lenet5, (5, 1, 32, 32)),
                                                 (small_bn_net, torch_small_bn_net, (4, 3, 8, 8))])
def test_sequential_state_dict_and_outputs_match_torch(ours, theirs, shape):
    torch = torch_or_skip()
    torch.manual_seed(0)
    model, tmodel = ours(), theirs(torch.nn)
    tstate = tmodel.state_dict()
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in tstate.items()]
    with torch.no_grad():  # train torch's BN a little so the running statistics are not (0, 1)
        for _ in range(3):
            tmodel(torch.randn(*shape) * 2 + 1)
    tmodel.eval()
    model.load_state_dict(tmodel.state_dict())
    assert model.num_parameters() == sum(p.numel() for p in tmodel.parameters())
    x = rand(np.random.default_rng(1), *shape)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    model.eval()
    assert_close(model(x), expected, rtol=1e-4)
    assert_close(model.predict(x), expected, rtol=1e-4)


def test_load_state_dict_strictness():
    model = small_bn_net()
    state = model.state_dict()
    del state["4.bias"]
    with raises(KeyError, "missing", "4.bias"):
        model.load_state_dict(state)
    state = model.state_dict()
    state["9.weight"] = np.zeros(3, np.float32)
    with raises(KeyError, "unexpected", "9.weight"):
        model.load_state_dict(state)
    del state["4.bias"]
    state["0.weight"] = np.full_like(state["0.weight"], 0.5)
    assert model.load_state_dict(state, strict=False) == (["4.bias"], ["9.weight"])
    assert (model[0].weight.data == 0.5).all()


def test_load_state_dict_shape_mismatch_names_layer_and_shapes_and_changes_nothing():
    model = small_bn_net()
    before = model.state_dict()
    state = model.state_dict()
    state["0.weight"] = state["0.weight"] + 1  # valid, but must not be applied
    state["7.weight"] = np.zeros((5, 17), np.float32)
    with raises(ValueError, "7.weight", "(5, 17)", "(5, 16)"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k
    state = model.state_dict()
    state["0.bias"] = "zeros"
    with raises(TypeError, "0.bias"):
        model.load_state_dict(state)


def test_sequential_checks_shapes_before_running():
    model = Sequential(nn.Conv2d(1, 6, 5), nn.Flatten(), nn.Linear(100, 10))
    with raises(ValueError, "Linear", "(100,)", "(4704,)"):
        model(np.zeros((2, 1, 32, 32), np.float32))
    with raises(ValueError, "Conv2d", "1 input channels", "(3, 32, 32)"):
        model(np.zeros((2, 3, 32, 32), np.float32))


# --- functional graphs, checked against torch autograd on the same graph -----

def residual_model():
    x = Input((4, 6, 6))
    h = nn.Conv2d(4, 4, 3, padding=1, name="c1")(x)
    h = nn.BatchNorm2d(4, name="bn")(nn.ReLU()(h))  # not right after c1: c1.bias's grad would be 0
    h = nn.Conv2d(4, 4, 3, padding=1, name="c2")(h)
    y = nn.ReLU()(nn.Add()([h, x]))  # x is consumed twice: its gradient is a sum
    return Model(x, y)


def residual_torch(F, P, x):
    h = F.conv2d(x, P["c1.weight"], P["c1.bias"], padding=1)
    h = F.batch_norm(F.relu(h), None, None, P["bn.weight"], P["bn.bias"], training=True)
    h = F.conv2d(h, P["c2.weight"], P["c2.bias"], padding=1)
    return F.relu(h + x)


def inception_model():
    x = Input((4, 7, 7))
    b1 = nn.Conv2d(4, 2, 1, name="b1")(x)
    b2 = nn.Conv2d(3, 4, 3, padding=1, name="b2b")(nn.ReLU()(nn.Conv2d(4, 3, 1, name="b2a")(x)))
    b3 = nn.Conv2d(4, 2, 1, name="b3")(nn.MaxPool2d(3, 1, padding=1)(x))
    y = nn.Concat()([b1, b2, b3])
    return Model(x, y)


def inception_torch(F, P, x):
    b1 = F.conv2d(x, P["b1.weight"], P["b1.bias"])
    b2 = F.conv2d(F.relu(F.conv2d(x, P["b2a.weight"], P["b2a.bias"])), P["b2b.weight"], P["b2b.bias"],
                  padding=1)
    b3 = F.conv2d(F.max_pool2d(x, 3, 1, padding=1), P["b3.weight"], P["b3.bias"])
    return _cat([b1, b2, b3])


def _cat(ts):
    import torch
    return torch.cat(ts, 1)


def multi_io_model():
    a, b = Input((3, 5, 5), name="a"), Input((2, 5, 5), name="b")
    s = nn.Add()([nn.Conv2d(3, 4, 3, padding=1, name="ca")(a), nn.Conv2d(2, 4, 1, name="cb")(b)])
    c = nn.Concat()([s, b])
    out1 = nn.Linear(6, 3, name="fc")(nn.Flatten()(nn.AdaptiveAvgPool2d(1)(c)))
    out2 = nn.Tanh()(s)
    return Model([a, b], [out1, out2])


def multi_io_torch(F, P, a, b):
    s = F.conv2d(a, P["ca.weight"], P["ca.bias"], padding=1) + F.conv2d(b, P["cb.weight"], P["cb.bias"])
    c = _cat([s, b])
    out1 = F.linear(F.adaptive_avg_pool2d(c, 1).flatten(1), P["fc.weight"], P["fc.bias"])
    return [out1, s.tanh()]


GRAPHS = {"residual": (residual_model, residual_torch, [(3, 4, 6, 6)]),
          "inception": (inception_model, inception_torch, [(2, 4, 7, 7)]),
          "multi_io": (multi_io_model, multi_io_torch, [(2, 3, 5, 5), (2, 2, 5, 5)])}


@pytest.mark.parametrize("which", list(GRAPHS))
def test_model_forward_backward_match_torch_autograd(which):
    torch = torch_or_skip()
    F = torch.nn.functional
    make, torch_fn, in_shapes = GRAPHS[which]
    striate.manual_seed(3)
    model = make()
    rng = np.random.default_rng(4)
    xs = [rand(rng, *s) for s in in_shapes]
    P = {k: torch.tensor(p.data, dtype=torch.float64, requires_grad=True)
         for k, p in model.named_parameters()}
    txs = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    touts = torch_fn(F, P, *txs)
    touts = touts if isinstance(touts, list) else [touts]
    gs = [rand(rng, *t.shape) for t in touts]
    torch.autograd.backward(touts, [torch.from_numpy(g.astype(np.float64)) for g in gs])

    multi_in, multi_out = len(xs) > 1, len(touts) > 1
    outs = model.forward(xs if multi_in else xs[0], training=True)
    outs = outs if multi_out else [outs]
    model.zero_grad()
    gxs = model.backward(gs if multi_out else gs[0])
    gxs = gxs if multi_in else [gxs]
    for o, t in zip(outs, touts):
        assert_close(o, t.detach().numpy(), what="output")
    for gx, t in zip(gxs, txs):
        assert_close(gx, t.grad.numpy(), what="input grad")
    for k, p in model.named_parameters():
        assert_close(p.grad, P[k].grad.numpy(), what=f"grad {k}")


def test_model_gradients_accumulate_until_zero_grad():
    model = residual_model()
    x = rand(np.random.default_rng(5), 2, 4, 6, 6)
    g = np.ones((2, 4, 6, 6), np.float32)
    model.forward(x, training=True)
    model.zero_grad()
    model.backward(g)
    once = {k: p.grad.copy() for k, p in model.named_parameters()}
    model.backward(g)
    for k, p in model.named_parameters():
        assert_close(p.grad, 2 * once[k].astype(np.float64), rtol=1e-6, what=k)
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_model_state_dict_keys_use_layer_names():
    model = residual_model()
    assert list(model.state_dict()) == [
        "c1.weight", "c1.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
        "bn.num_batches_tracked", "c2.weight", "c2.bias"]
    names = [n for n, _ in model.children()]
    assert names == ["c1", "re_lu", "bn", "c2", "add", "re_lu_1"]


def test_model_shape_errors_at_build_time():
    x = Input((4, 8, 8))
    with raises(ValueError, "Conv2d", "3 input channels", "(4, 8, 8)"):
        nn.Conv2d(3, 2, 3)(x)
    a = nn.Conv2d(4, 2, 3)(x)
    with raises(ValueError, "Add", "(2, 6, 6)", "(4, 8, 8)"):
        nn.Add()([a, x])
    with raises(ValueError, "Concat", "(2, 6, 6)", "(4, 8, 8)"):
        nn.Concat()([a, x])
    with raises(ValueError, "Linear 'head'", "(4, 8, 8)"):
        nn.Linear(256, 3, name="head")(x)


def test_model_build_errors():
    x = Input((4,))
    lin = nn.Linear(4, 4)
    with raises(ValueError, "used twice"):
        Model(x, lin(lin(x)))
    with raises(ValueError, "named 'fc'"):
        Model(x, nn.Linear(4, 4, name="fc")(nn.Linear(4, 4, name="fc")(x)))
    other = Input((4,))
    with raises(ValueError, "Input"):
        Model(x, nn.Add()([nn.Linear(4, 4)(x), other]))
    with raises(TypeError, "Node"):
        Model(x, np.zeros(4))
    model = Model(x, nn.Linear(4, 2)(x))
    with raises(ValueError, "(N, 4)", "(3, 5)"):
        model(np.zeros((3, 5), np.float32))


def _rows(text):
    lines = text.splitlines()
    rows = [l.split() for l in lines[3:] if l and not l.startswith("-") and ":" not in l]
    totals = {l.split(":")[0]: l.split(":")[1].strip() for l in lines if ":" in l}
    return rows, totals


def test_summary_lenet5(capsys):
    text = models.lenet5().summary((1, 32, 32))
    assert capsys.readouterr().out.strip() == text.strip()
    rows, totals = _rows(text)
    assert [r[2] for r in rows] == ["1×32×32", "6×28×28", "6×28×28", "6×14×14", "16×10×10",
                                    "16×10×10",
                                    "16×5×5", "400", "120", "120", "84", "84", "10"]
    assert [r[3] for r in rows] == ["0", "156", "0", "0", "2,416", "0", "0", "0", "48,120", "0", "10,164",
                                    "0", "850"]
    assert totals == {"Total params": "61,706", "Trainable params": "61,706", "Non-trainable params": "0"}


def test_summary_alexnet_like_volumes():
    x = Input((3, 227, 227))
    h = nn.MaxPool2d(3, 2)(nn.ReLU()(nn.Conv2d(3, 96, 11, stride=4, name="conv1")(x)))
    h = nn.Conv2d(96, 256, 5, padding=2, name="conv2")(h)
    model = Model(x, h)
    model.freeze(up_to="conv1")
    rows, totals = _rows(model.summary(print_fn=None))
    assert rows[0] == ["input", "Input", "3×227×227", "0"]
    assert rows[1] == ["conv1", "Conv2d", "96×55×55", "34,944"]
    assert rows[3] == ["max_pool2d", "MaxPool2d", "96×27×27", "0"]
    assert rows[4] == ["conv2", "Conv2d", "256×27×27", "614,656"]
    assert totals["Total params"] == "649,600" and totals["Non-trainable params"] == "34,944"


def head_model():
    x = Input((2, 6, 6))
    h = nn.Flatten()(nn.MaxPool2d(2)(nn.ReLU()(nn.Conv2d(2, 4, 3, padding=1, name="conv")(x))))
    return Model(x, nn.Linear(36, 10, name="head")(h))


def test_replace_head_for_transfer_learning():
    striate.manual_seed(6)
    model = head_model()
    x = rand(np.random.default_rng(7), 3, 2, 6, 6)
    y10 = model.predict(x)
    new = model.replace("head", nn.Linear(36, 3))
    assert new.get_layer("conv") is model.get_layer("conv")  # weights shared
    assert new.get_layer("head").out_features == 3 and new.output_shape(None) == (3,)
    assert model.predict(x).shape == (3, 10) and np.array_equal(model.predict(x), y10)
    feats = nn.Flatten().forward(nn.MaxPool2d(2).forward(nn.ReLU().forward(
        model.get_layer("conv").forward(x))))
    head = new.get_layer("head")
    assert_close(new.predict(x), feats.astype(np.float64) @ head.weight.data.T + head.bias.data)
    assert list(new.state_dict()) == ["conv.weight", "conv.bias", "head.weight", "head.bias"]
    with raises(ValueError, "Linear 'head'", "(36,)"):
        model.replace("head", nn.Linear(35, 3))
    with raises(KeyError, "nope"):
        model.replace("nope", nn.Identity())


def _fit_quietly(model, lr=0.1, epochs=2, **kw):
    rng = np.random.default_rng(8)
    shape = (40,) + tuple(model.input_shapes[0] if isinstance(model, Model) else (1, 32, 32))
    X, y = rand(rng, *shape), rng.integers(0, 3, 40)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=1e-3)
    return model.fit(X, y, optimizer=opt, epochs=epochs, batch_size=8, progress=False, seed=0, **kw)


def test_freeze_up_to_keeps_weights_through_fit():
    striate.manual_seed(9)
    model = models.lenet5(num_classes=3)
    assert model.freeze(up_to="3") == ["0", "1", "2", "3"]
    assert model.num_parameters(trainable_only=True) == model.num_parameters() - 156 - 2416
    before = model.state_dict()
    _fit_quietly(model)
    after = model.state_dict()
    for k in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert np.array_equal(after[k], before[k]), k
    for k in ("7.weight", "9.weight", "11.bias"):
        assert not np.array_equal(after[k], before[k]), k
    model.unfreeze()
    assert model.num_parameters(trainable_only=True) == model.num_parameters()


def test_transfer_learning_frozen_backbone_new_head():
    striate.manual_seed(10)
    new = head_model().replace("head", nn.Linear(36, 3))
    new.get_layer("conv").requires_grad = False
    before = new.state_dict()
    _fit_quietly(new)
    after = new.state_dict()
    assert np.array_equal(after["conv.weight"], before["conv.weight"])
    assert not np.array_equal(after["head.weight"], before["head.weight"])
    with raises(KeyError, "freeze", "nope"):
        new.freeze(up_to="nope")


def test_sequential_inside_functional_model():
    striate.manual_seed(11)
    x = Input((2, 6, 6))
    block = Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), name="block")
    y = nn.Linear(3 * 36, 4, name="fc")(nn.Flatten()(block(x)))
    model = Model(x, y)
    assert list(model.state_dict()) == ["block.0.weight", "block.0.bias", "fc.weight", "fc.bias"]
    xb = rand(np.random.default_rng(12), 2, 2, 6, 6)
    expected = model.get_layer("fc").forward(block.forward(xb).reshape(2, -1))
    assert np.array_equal(model.predict(xb), expected)


def test_sequential_item_assignment_replaces_a_layer():
    striate.manual_seed(0)
    m = nn.Sequential(nn.Flatten(), nn.Linear(12, 4), nn.ReLU(), nn.Linear(4, 3))
    m[3] = nn.Linear(4, 2)
    assert list(m.state_dict()) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert m.state_dict()["3.weight"].shape == (2, 4)
    assert m(np.ones((5, 3, 2, 2), np.float32)).shape == (5, 2)
    with pytest.raises(IndexError):
        m[4] = nn.ReLU()
    with pytest.raises(TypeError, match="Module"):
        m[0] = "relu"

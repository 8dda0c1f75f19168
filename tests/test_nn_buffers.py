"""Planned step buffers (striate.nn.graph buffer plans, src/binding/bind_buffers.cpp):
a training step with the same shapes as an earlier one reuses that step's
output buffers, never one that something still references."""

import numpy as np

import striate
from helpers import rand
from striate import Input, Model, models, nn, ops, optim

ONE = np.ones((), np.float32)


def residual_net():
    x = Input((3, 12, 12))
    h = nn.ReLU()(nn.BatchNorm2d(8)(nn.Conv2d(3, 8, 3, padding=1, bias=False)(x)))
    y = nn.BatchNorm2d(8)(nn.Conv2d(8, 8, 3, padding=1, bias=False)(h))
    h = nn.ReLU()(nn.Add()([y, h]))
    h = nn.MaxPool2d(2)(h)
    return Model(x, nn.Linear(8 * 36, 5)(nn.Flatten()(h)))


def step(net, opt, x, y):
    out = net.forward(x, training=True)
    net.zero_grad()
    net.backward(ops.cross_entropy_backward(ONE, out, y)[0])
    opt.step()
    return out


def plan_counts(net):
    return {key[0]: (p.allocated, p.reused, p.slots) for key, p in net.buffer_plans().items()}


def test_a_repeated_step_allocates_only_what_the_caller_holds():
    for build in (residual_net, lambda: models.lenet5()):
        striate.manual_seed(0)
        net = build()
        shape = (6, 3, 12, 12) if isinstance(net, Model) else (6, 1, 32, 32)
        rng = np.random.default_rng(0)
        x, y = rand(rng, *shape), rng.integers(0, 5, 6)
        opt = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        step(net, opt, x, y)
        first = plan_counts(net)
        assert first["forward"][0] > 5 and first["backward"][0] > 5
        out = None
        for _ in range(3):
            out = step(net, opt, x, y)  # the caller holds one forward output
        now = plan_counts(net)
        # forward: only the output slot the caller still held is allocated again
        assert now["forward"][0] - first["forward"][0] <= 3
        assert now["backward"][0] == first["backward"][0]
        assert now["forward"][1] >= 3 * (first["forward"][2] - 1)
        assert now["backward"][1] == 3 * first["backward"][2]
        assert out is not None


def test_reused_buffers_give_the_same_training_as_fresh_ones():
    rng = np.random.default_rng(1)
    x, y = rand(rng, 4, 3, 12, 12), rng.integers(0, 5, 4)
    nets = []
    for fresh in (False, True):
        striate.manual_seed(3)
        net = residual_net()
        opt = optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
        for _ in range(4):
            if fresh:
                net.release_buffers()
            step(net, opt, x, y)
        nets.append(net)
    for (k, a), (_, b) in zip(nets[0].state_dict().items(), nets[1].state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert nets[0].buffer_plans()[("forward", (4, 3, 12, 12))].reused > 0


def test_an_output_the_caller_keeps_is_never_overwritten():
    striate.manual_seed(0)
    net = residual_net()
    rng = np.random.default_rng(2)
    x1, x2, y = rand(rng, 3, 3, 12, 12), rand(rng, 3, 3, 12, 12), rng.integers(0, 5, 3)
    opt = optim.SGD(net.parameters(), lr=0.1)
    out1 = step(net, opt, x1, y)
    kept = out1.copy()
    grads = {k: p.grad for k, p in net.named_parameters()}  # held across the next step
    kept_grads = {k: g.copy() for k, g in grads.items()}
    step(net, opt, x2, y)
    np.testing.assert_array_equal(out1, kept)
    for k, g in grads.items():
        np.testing.assert_array_equal(g, kept_grads[k], err_msg=k)


def test_plans_per_shape_are_bounded_and_inference_plans_nothing():
    striate.manual_seed(0)
    net = residual_net()
    opt = optim.SGD(net.parameters(), lr=0.01)
    rng = np.random.default_rng(3)
    net(rand(rng, 2, 3, 12, 12))
    net.forward(rand(rng, 2, 3, 12, 12), training=False)
    assert net.buffer_plans() == {}
    for n in range(1, 8):
        step(net, opt, rand(rng, n, 3, 12, 12), rng.integers(0, 5, n))
    assert len(net.buffer_plans()) <= 8  # at most 4 forward + 4 backward shapes
    net.release_buffers()
    assert net.buffer_plans() == {}


def test_fit_reuses_its_step_buffers():
    striate.manual_seed(0)
    net = residual_net()
    rng = np.random.default_rng(4)
    X, y = rand(rng, 40, 3, 12, 12), rng.integers(0, 5, 40)
    net.fit(X, y, optimizer=optim.SGD(net.parameters(), lr=0.01), epochs=2, batch_size=16,
            progress=False, seed=0)
    plans = net.buffer_plans()
    full = plans[("forward", (16, 3, 12, 12))]
    last = plans[("forward", (8, 3, 12, 12))]   # 40 = 16 + 16 + 8
    assert full.reused > full.allocated and last.reused > 0

"""striate.optim: SGD / Adam / AdamW against torch.optim over several steps on
the same parameters and gradients, and the schedulers' lr sequences against
torch's (closed forms when torch is absent)."""

import math

import numpy as np
import pytest

from helpers import assert_close, raises, torch_or_skip
from striate import optim
from striate.nn import Parameter

SHAPES = [(4, 3, 3, 3), (17,), (5, 7)]


def _run_both(make_ours, make_torch, steps=6, seed=0):
    """Step both optimizers on identical float32 parameters with identical
    gradients; compare after every step."""
    torch = torch_or_skip()
    rng = np.random.default_rng(seed)
    params = [Parameter(rng.standard_normal(s).astype(np.float32)) for s in SHAPES]
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt, topt = make_ours(params), make_torch(torch.optim, tparams)
    for step in range(steps):
        for p, t in zip(params, tparams):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad, t.grad = g, torch.from_numpy(g.copy())
        opt.step()
        topt.step()
        for i, (p, t) in enumerate(zip(params, tparams)):
            assert_close(p.data, t.detach().numpy(), rtol=1e-6, what=f"step {step} param {i}")
    return params


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9),
                                dict(lr=0.05, momentum=0.9, nesterov=True),
                                dict(lr=0.05, momentum=0.8, dampening=0.3),
                                dict(lr=0.01, momentum=0.9, weight_decay=5e-4),
                                dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-2)],
                         ids=str)
def test_sgd_matches_torch(kw):
    _run_both(lambda ps: optim.SGD(ps, **kw), lambda O, ps: O.SGD(ps, **kw))


@pytest.mark.parametrize("kw", [dict(), dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6),
                                dict(lr=1e-2, weight_decay=1e-2)], ids=str)
def test_adam_matches_torch(kw):
    _run_both(lambda ps: optim.Adam(ps, **kw), lambda O, ps: O.Adam(ps, **kw))


@pytest.mark.parametrize("kw", [dict(), dict(lr=1e-2, weight_decay=0.1)], ids=str)
def test_adamw_matches_torch(kw):
    _run_both(lambda ps: optim.AdamW(ps, **kw), lambda O, ps: O.AdamW(ps, **kw))


def test_param_groups_match_torch():
    def groups(ps):
        return [{"params": ps[:1], "lr": 0.5}, {"params": ps[1:], "momentum": 0.5}]
    _run_both(lambda ps: optim.SGD(groups(ps), lr=0.1), lambda O, ps: O.SGD(groups(ps), lr=0.1))


def test_sgd_without_torch_closed_form():
    w0 = np.array([1.0, -2.0, 3.0], np.float32)
    p = Parameter(w0.copy())
    opt = optim.SGD([p], lr=0.1, momentum=0.5, weight_decay=0.1)
    g = np.array([0.5, 0.5, -1.0], np.float32)
    w, buf = w0.astype(np.float64), None
    for _ in range(3):
        p.grad = g
        opt.step()
        d = g + 0.1 * w
        buf = d if buf is None else 0.5 * buf + d
        w = w - 0.1 * buf
    assert_close(p.data, w, rtol=1e-6)


def test_frozen_and_gradless_parameters_are_skipped():
    a = Parameter(np.ones(3, np.float32))
    b = Parameter(np.ones(3, np.float32), requires_grad=False)
    c = Parameter(np.ones(3, np.float32))
    for opt in (optim.SGD([a, b, c], lr=0.1, momentum=0.9, weight_decay=0.1), optim.Adam([a, b, c])):
        a.grad = b.grad = np.ones(3, np.float32)
        c.grad = None
        opt.step()
        assert (b.data == 1).all() and (c.data == 1).all() and (a.data < 1).all()
        assert id(b) not in opt.state and id(c) not in opt.state
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_optimizer_argument_errors():
    p = [Parameter(np.ones(2, np.float32))]
    with raises(ValueError, "lr", "-0.1"):
        optim.SGD(p, lr=-0.1)
    with raises(ValueError, "nesterov"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with raises(ValueError, "betas"):
        optim.Adam(p, betas=(0.9, 1.0))
    with raises(ValueError, "empty"):
        optim.SGD([], lr=0.1)


def _lrs(sched, opt, epochs, metrics=None):
    out = [opt.param_groups[0]["lr"]]
    for e in range(epochs):
        if metrics is None:
            sched.step()
        else:
            sched.step(metrics[e])
        out.append(opt.param_groups[0]["lr"])
    return np.array(out)


SCHEDULERS = [
    ("step", lambda O, o: O.lr_scheduler.StepLR(o, step_size=3, gamma=0.5),
     lambda o: optim.StepLR(o, step_size=3, gamma=0.5), None),
    ("cosine", lambda O, o: O.lr_scheduler.CosineAnnealingLR(o, T_max=5, eta_min=0.01),
     lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=0.01), None),
    ("plateau_min", lambda O, o: O.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=1),
     lambda o: optim.ReduceLROnPlateau(o, factor=0.5, patience=1),
     [1.0, 0.9, 0.95, 0.95, 0.8, 0.80001, 0.9, 0.9, 0.9, 0.5, 0.6, 0.7]),
    ("plateau_max_abs_cooldown",
     lambda O, o: O.lr_scheduler.ReduceLROnPlateau(o, mode="max", threshold=0.05, threshold_mode="abs",
                                                    cooldown=1, patience=0, min_lr=0.02, factor=0.7),
     lambda o: optim.ReduceLROnPlateau(o, mode="max", threshold=0.05, threshold_mode="abs",
                                       cooldown=1, patience=0, min_lr=0.02, factor=0.7),
     [0.5, 0.52, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]),
]


@pytest.mark.filterwarnings("ignore:Detected call of")  # torch: no optimizer.step() here
@pytest.mark.parametrize("name, make_torch, make_ours, metrics", SCHEDULERS, ids=[s[0] for s in SCHEDULERS])
def test_scheduler_lr_sequence_matches_torch(name, make_torch, make_ours, metrics):
    torch = torch_or_skip()
    t = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([t], lr=0.1)
    tsched = make_torch(torch.optim, topt)
    opt = optim.SGD([Parameter(np.zeros(1, np.float32))], lr=0.1)
    ours = _lrs(make_ours(opt), opt, 12, metrics)
    theirs = _lrs(tsched, topt, 12, metrics)
    assert_close(ours, theirs, rtol=1e-12)
    assert len(set(np.round(ours, 12))) > 2  # the schedule really moves


def test_scheduler_closed_forms():
    opt = optim.SGD([Parameter(np.zeros(1, np.float32))], lr=0.1)
    got = _lrs(optim.StepLR(opt, 3, gamma=0.1), opt, 7)
    assert_close(got, 0.1 * 0.1 ** (np.arange(8) // 3), rtol=1e-12)
    opt = optim.SGD([Parameter(np.zeros(1, np.float32))], lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4)
    got = _lrs(sched, opt, 4)
    assert_close(got, 0.05 * (1 + np.cos(np.pi * np.arange(5) / 4)), rtol=1e-12)
    assert got[-1] == pytest.approx(0.0, abs=1e-15) and sched.get_last_lr() == [got[-1]]
    opt = optim.SGD([Parameter(np.zeros(1, np.float32))], lr=1e-2)
    plateau = optim.ReduceLROnPlateau(opt, patience=2)  # AlexNet's recipe: /10 on a plateau
    got = _lrs(plateau, opt, 6, [1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    assert_close(got, [1e-2, 1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3], rtol=1e-12)
    with raises(ValueError, "factor"):
        optim.ReduceLROnPlateau(opt, factor=1.0)
    with raises(ValueError, "T_max"):
        optim.CosineAnnealingLR(opt, T_max=0)
    assert math.isclose(optim.StepLR(opt, 1).base_lrs[0], 1e-3)

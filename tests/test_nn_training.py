"""fit / evaluate / predict: history, one SGD step against closed forms and
torch, reproducibility, validation, callbacks and schedulers, NaN detection,
progress output with and without tqdm, the MSE loss."""

import sys

import numpy as np
import pytest

import striate
from helpers import assert_close, rand, raises, torch_or_skip
from striate import nn, ops, optim
from striate import reference as ref
from striate.nn import StopTraining


def blobs(n=60, seed=0):
    """Three separable Gaussian blobs as (N, 1, 4, 4) images."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = rng.standard_normal((3, 1, 4, 4)) * 2
    X = (centers[y] + 0.3 * rng.standard_normal((n, 1, 4, 4))).astype(np.float32)
    return X, y


def small_net(dropout=0.0):
    layers = [nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(64, 3))


def test_history_keys_and_lengths():
    X, y = blobs()
    striate.manual_seed(0)
    model = small_net()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    h = model.fit(X, y, optimizer=opt, epochs=3, batch_size=16, progress=False, seed=0)
    assert set(h) == {"loss", "accuracy", "lr"} and all(len(v) == 3 for v in h.values())
    h = model.fit(X, y, optimizer=opt, epochs=2, batch_size=16, progress=False, seed=0,
                  validation_data=blobs(20, seed=1))
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 2 for v in h.values())
    assert h["accuracy"][-1] > 0.9  # separable blobs are learned
    assert model.training  # fit restores the mode it found


def test_one_cross_entropy_step_matches_torch():
    torch = torch_or_skip()
    X, y = blobs(8)
    striate.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    tmodel = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    opt = optim.SGD(model.parameters(), lr=0.1)
    h = model.fit(X, y, optimizer=opt, epochs=1, batch_size=8, progress=False, shuffle=False)
    tloss = torch.nn.functional.cross_entropy(tmodel(torch.from_numpy(X)), torch.from_numpy(y))
    tloss.backward()
    torch.optim.SGD(tmodel.parameters(), lr=0.1).step()
    assert_close(h["loss"][0], tloss.item(), rtol=1e-6)
    for k, v in tmodel.state_dict().items():
        assert_close(model.state_dict()[k], v.numpy(), rtol=1e-6, what=k)


def test_one_mse_step_matches_closed_form():
    rng = np.random.default_rng(2)
    X, Y = rand(rng, 10, 5), rand(rng, 10, 2)
    model = nn.Sequential(nn.Linear(5, 2))
    W, b = model[0].weight.data.astype(np.float64), model[0].bias.data.astype(np.float64)
    h = model.fit(X, Y, optimizer=optim.SGD(model.parameters(), lr=0.5), loss="mse", epochs=1,
                  batch_size=10, shuffle=False, progress=False)
    assert set(h) == {"loss", "lr"}
    r = X.astype(np.float64) @ W.T + b - Y
    assert_close(h["loss"][0], np.mean(r ** 2), rtol=1e-6)
    g = 2 * r / r.size  # d mean(r^2) / d out
    assert_close(model[0].weight.data, W - 0.5 * g.T @ X, rtol=1e-6)
    assert_close(model[0].bias.data, b - 0.5 * g.sum(0), rtol=1e-6)
    ev = model.evaluate(X, Y, loss="mse")
    out = X.astype(np.float64) @ model[0].weight.data.T.astype(np.float64) + model[0].bias.data
    assert set(ev) == {"loss"} and abs(ev["loss"] - np.mean((out - Y) ** 2)) <= 1e-6 * ev["loss"]


def test_mse_training_reduces_the_loss():
    rng = np.random.default_rng(3)
    X = rand(rng, 64, 6)
    Y = (X @ rand(rng, 6, 2)).astype(np.float32)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 2))
    h = model.fit(X, Y, optimizer=optim.Adam(model.parameters(), lr=1e-2), loss="mse", epochs=20,
                  batch_size=16, seed=0, progress=False)
    assert h["loss"][-1] < 0.1 * h["loss"][0]


def _train(seed, augment=None):
    X, y = blobs()
    striate.manual_seed(123)
    model = small_net(dropout=0.3)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    h = model.fit(X, y, optimizer=opt, epochs=2, batch_size=7, progress=False, seed=seed,
                  augment=augment)
    return h, model.state_dict()


def test_fit_is_reproducible_given_a_seed():
    flip = striate.data.RandomHorizontalFlip()
    h1, s1 = _train(5, flip)
    h2, s2 = _train(5, flip)
    assert h1 == h2
    for k in s1:
        assert np.array_equal(s1[k], s2[k]), k
    h3, s3 = _train(6, flip)  # the seed drives shuffling, dropout and augmentation
    assert not np.array_equal(s1["5.weight"], s3["5.weight"])


def test_training_is_bitwise_identical_for_any_thread_count():
    n = striate.get_num_threads()
    try:
        runs = []
        for threads in (1, 2, 3):
            striate.set_num_threads(threads)
            runs.append(_train(7))
    finally:
        striate.set_num_threads(n)
    for h, s in runs[1:]:
        assert h == runs[0][0]
        assert all(np.array_equal(s[k], runs[0][1][k]) for k in s)


def test_validation_metrics_equal_evaluate():
    X, y = blobs()
    Xv, yv = blobs(30, seed=9)
    striate.manual_seed(2)
    model = small_net(dropout=0.5)
    h = model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.05), epochs=2, batch_size=16,
                  progress=False, seed=0, validation_data=(Xv, yv))
    ev = model.evaluate(Xv, yv, batch_size=7)
    assert abs(h["val_loss"][-1] - ev["loss"]) <= 1e-6 * ev["loss"]
    assert h["val_accuracy"][-1] == ev["accuracy"]
    model.eval()
    logits = model(Xv)
    assert_close(ev["loss"], ref.cross_entropy(logits, yv), rtol=1e-6)
    assert ev["accuracy"] == np.mean(np.argmax(logits, 1) == yv)


def test_evaluate_and_predict_use_eval_mode_and_batches():
    X, y = blobs(50)
    striate.manual_seed(3)
    model = small_net(dropout=0.5)
    model.train()
    bn = model[1]
    stats = (bn.running_mean.copy(), int(bn.num_batches_tracked))
    p1 = model.predict(X, batch_size=7)
    p2 = model.predict(X)
    assert p1.shape == (50, 3)
    assert_close(p1, p2, rtol=1e-6)
    model.eval()
    assert_close(p2, model(X), rtol=1e-6)
    model.train()
    model.evaluate(X, y)
    assert model.training and np.array_equal(bn.running_mean, stats[0])
    assert int(bn.num_batches_tracked) == stats[1]


def test_callbacks_can_stop_training():
    X, y = blobs()
    model = small_net()
    seen = []

    def stop_after_two(m, epoch, logs):
        assert m is model and set(logs) == {"loss", "accuracy"}
        seen.append(epoch)
        return epoch < 1

    h = model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), epochs=10, progress=False,
                  callbacks=[stop_after_two])
    assert seen == [0, 1] and len(h["loss"]) == 2

    def raise_stop(m, epoch, logs):
        raise StopTraining

    h = model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), epochs=10, progress=False,
                  callbacks=[raise_stop])
    assert len(h["loss"]) == 1
    with raises(TypeError, "callbacks"):
        model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), progress=False,
                  callbacks=[42])


def test_schedulers_as_callbacks():
    X, y = blobs()
    model = small_net()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    h = model.fit(X, y, optimizer=opt, epochs=4, progress=False, seed=0,
                  callbacks=[optim.StepLR(opt, step_size=1, gamma=0.5)])
    assert h["lr"] == [0.1, 0.05, 0.025, 0.0125]  # the lr each epoch ran with
    assert opt.param_groups[0]["lr"] == 0.00625

    opt = optim.SGD(model.parameters(), lr=0.1)
    # Only the first epoch counts as an improvement, so the lr drops after the second.
    plateau = optim.ReduceLROnPlateau(opt, patience=0, threshold=10.0, threshold_mode="abs")
    h = model.fit(X, y, optimizer=opt, epochs=3, progress=False, seed=0, callbacks=[plateau],
                  validation_data=blobs(20, 4))
    assert_close(np.array(h["lr"]), np.array([0.1, 0.1, 0.01]), rtol=1e-12)
    assert plateau.best == h["val_loss"][0]  # stepped on the validation loss


def test_stop_on_nan_raises_a_clear_error():
    X, y = blobs()
    model = small_net()
    opt = optim.SGD(model.parameters(), lr=1e10)
    with raises(FloatingPointError, "loss became", "epoch 1", "step", "learning rate"):
        model.fit(X, y, optimizer=opt, epochs=3, batch_size=8, progress=False, seed=0)
    assert model.training


def test_progress_with_tqdm(capsys):
    pytest.importorskip("tqdm")
    X, y = blobs(20)
    model = small_net()
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), epochs=2, batch_size=8,
              progress=True)
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "3/3" in err and "acc" in err


def test_progress_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = blobs(20)
    model = small_net()
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), epochs=2, batch_size=8,
              progress=True)
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert len(lines) == 2
    assert lines[0].startswith("Epoch 1/2 - loss: ") and "accuracy: " in lines[0]
    model.fit(X, y, optimizer=optim.SGD(model.parameters(), lr=0.01), epochs=1, progress=False)
    assert capsys.readouterr().err == ""


def test_fit_argument_errors():
    X, y = blobs(10)
    model = small_net()
    opt = optim.SGD(model.parameters(), lr=0.01)
    with raises(ValueError, "10 samples", "9"):
        model.fit(X, y[:9], optimizer=opt)
    with raises(ValueError, "batch_size"):
        model.fit(X, y, optimizer=opt, batch_size=0)
    with raises(ValueError, "loss", "hinge"):
        model.fit(X, y, optimizer=opt, loss="hinge")
    with raises(ValueError, "empty"):
        model.predict(X[:0])


def two_input_model(outputs=1):
    a, b = nn.Input((3,)), nn.Input((1, 2, 2))
    h = nn.Concat()([nn.Linear(3, 4, name="fa")(a), nn.Flatten()(b)])  # (8,)
    out = nn.Linear(8, 2, name="head")(h)
    return nn.Model([a, b], [out, nn.Tanh()(h)] if outputs == 2 else out)


def test_several_inputs_and_outputs_in_fit_evaluate_predict():
    rng = np.random.default_rng(20)
    Xa, Xb, y = rand(rng, 30, 3), rand(rng, 30, 1, 2, 2), rng.integers(0, 2, 30)
    striate.manual_seed(21)
    model = two_input_model()
    h = model.fit([Xa, Xb], y, optimizer=optim.SGD(model.parameters(), lr=0.1), epochs=2, batch_size=8,
                  progress=False, seed=0)
    assert len(h["loss"]) == 2
    p = model.predict([Xa, Xb], batch_size=7)
    assert_close(p, model.forward([Xa, Xb], training=False), rtol=1e-6)
    ev = model.evaluate([Xa, Xb], y)
    assert_close(ev["loss"], ref.cross_entropy(p, y), rtol=1e-6)
    with raises(ValueError, "list of arrays"):
        model.predict(Xa)
    with raises(ValueError, "30", "29"):
        model.predict([Xa, Xb[:29]])

    two = two_input_model(outputs=2)
    outs = two.predict([Xa, Xb], batch_size=7)
    full = two.forward([Xa, Xb], training=False)
    assert len(outs) == 2 and outs[0].shape == (30, 2) and outs[1].shape == (30, 8)
    for o, f in zip(outs, full):
        assert_close(o, f, rtol=1e-6)
    with raises(ValueError, "several outputs"):
        two.fit([Xa, Xb], y, optimizer=optim.SGD(two.parameters(), lr=0.1), progress=False)


def test_call_accepts_training_keyword_and_freeze_accepts_an_index():
    X, _ = blobs(10)
    striate.manual_seed(22)
    model = small_net(dropout=0.5)
    model.train()
    assert np.array_equal(model(X, training=False), model.predict(X))
    assert model.freeze(up_to=1) == ["0", "1"]
    assert not model[1].requires_grad and model[5].requires_grad


def test_parameter_from_read_only_data_can_be_trained():
    w = np.frombuffer(np.ones(4, np.float32).tobytes(), np.float32)  # read-only
    p = nn.Parameter(w)
    p.grad = np.ones(4, np.float32)
    optim.SGD([p], lr=0.5).step()
    assert (p.data == 0.5).all() and (w == 1).all()

"""fit / evaluate / predict for Sequential and Model (Keras's comfort on striate's kernels)."""

import math
import sys

import numpy as np

from .. import init, ops

_ONE = np.ones((), np.float32)


class StopTraining(Exception):
    """Raise from a callback to end ``fit`` after the current epoch."""


def _loss_fns(loss):
    if loss == "cross_entropy":
        def forward(out, y):
            return float(ops.cross_entropy(out, y))

        def backward(out, y):
            return ops.cross_entropy_backward(_ONE, out, y)[0]
        return forward, backward, True
    if loss == "mse":
        def forward(out, y):
            return float(ops.mse_loss(out, y))

        def backward(out, y):
            return ops.mse_loss_backward(_ONE, out, y)[0]
        return forward, backward, False
    raise ValueError(f"loss must be 'cross_entropy' or 'mse', got {loss!r}")


def _check_xy(model, X, y, what, batch_size):
    """X as a list of arrays (one per model input: a multi-input Model takes a
    list), and y; the sample counts must agree."""
    multi_in, multi_out = getattr(model, "_multi", (False, False))
    if multi_out and y is not None:
        raise ValueError(f"{what}: the model has several outputs; fit and evaluate take one loss "
                         "on one output (use forward/backward for several)")
    if multi_in and not isinstance(X, (list, tuple)):
        raise ValueError(f"{what}: the model has several inputs; pass X as a list of arrays")
    Xs = [np.asarray(x) for x in X] if multi_in else [np.asarray(X)]
    for x in Xs:
        if x.ndim < 2:
            raise ValueError(f"{what}: X must have a batch axis, got shape {x.shape}")
        if len(x) != len(Xs[0]):
            raise ValueError(f"{what}: the inputs have {len(Xs[0])} and {len(x)} samples")
    if y is not None:
        y = np.asarray(y)
        if len(y) != len(Xs[0]):
            raise ValueError(f"{what}: X has {len(Xs[0])} samples but y has {len(y)}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"{what}: batch_size must be a positive int, got {batch_size!r}")
    if len(Xs[0]) == 0 and what != "fit":
        raise ValueError(f"{what}: X is empty")
    return Xs, y, multi_in


def _batch(Xs, idx, multi_in):
    """The model's argument for the samples idx: an array, or a list for a multi-input Model."""
    xb = [np.ascontiguousarray(x[idx], dtype=np.float32) for x in Xs]
    return xb if multi_in else xb[0]


class _Progress:
    """A tqdm bar when tqdm is installed, else one line per epoch."""

    def __init__(self, enabled, total, desc):
        self.bar, self.desc, self.enabled = None, desc, enabled
        if enabled:
            try:
                from tqdm.auto import tqdm
                self.bar = tqdm(total=total, desc=desc, leave=True, unit="batch")
            except ImportError:
                pass

    def update(self, **metrics):
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in metrics.items()}, refresh=False)
            self.bar.update(1)

    def close(self, logs):
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
            self.bar.close()
        elif self.enabled:
            print(self.desc + " - " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()),
                  file=sys.stderr)


def _run_callbacks(callbacks, model, epoch, logs):
    from ..optim import LRScheduler, ReduceLROnPlateau
    stop = False
    for cb in callbacks or ():
        if isinstance(cb, ReduceLROnPlateau):
            cb.step(logs.get("val_loss", logs["loss"]))
        elif isinstance(cb, LRScheduler):
            cb.step()
        elif callable(cb):
            try:
                if cb(model, epoch, logs) is False:
                    stop = True
            except StopTraining:
                stop = True
        else:
            raise TypeError(f"fit: callbacks must be callables or LR schedulers, got {cb!r}")
    return stop


def fit(model, X, y, *, optimizer, loss="cross_entropy", epochs=1, batch_size=32,
        validation_data=None, shuffle=True, seed=None, progress=True, callbacks=None,
        augment=None, stop_on_nan=True):
    """Train ``model`` on (X, y); returns the history dict of per-epoch metrics.

    Args:
        optimizer: a :mod:`striate.optim` optimizer over ``model.parameters()``.
        loss: "cross_entropy" (logits vs integer classes; accuracy is tracked)
            or "mse".
        validation_data: optional (X_val, y_val), evaluated after every epoch.
        shuffle, seed: batches are drawn in a seeded random order; ``seed``
            also seeds augmentation and dropout (via :func:`striate.manual_seed`),
            so a run is reproducible given the seed and the initial weights.
        progress: a tqdm bar per epoch with running loss/accuracy (one line
            per epoch when tqdm is not installed).
        callbacks: LR schedulers (stepped once per epoch; ReduceLROnPlateau
            on val_loss, else loss) and callables ``cb(model, epoch, logs)``
            that may return False or raise :class:`StopTraining` to stop.
        augment: optional ``augment(batch, rng) -> batch`` (see striate.data).
        stop_on_nan: raise FloatingPointError naming the epoch and step when the
            loss becomes NaN or infinite (on by default).

    History: {"loss": [...], "accuracy": [...], "val_loss": [...],
    "val_accuracy": [...], "lr": [...]} (accuracy only for cross-entropy,
    val_* only with validation_data).
    """
    Xs, y, multi_in = _check_xy(model, X, y, "fit", batch_size)
    if augment is not None and multi_in:
        raise ValueError("fit: augment works on single-input models")
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    loss_f, loss_b, classify = _loss_fns(loss)
    rng = np.random.default_rng(seed)
    if seed is not None:
        init.manual_seed(seed)
    n = len(Xs[0])
    n_batches = math.ceil(n / batch_size)
    history = {"loss": []}
    if classify:
        history["accuracy"] = []
    was_training = model.training
    model.train()
    try:
        for epoch in range(int(epochs)):
            order = rng.permutation(n) if shuffle else np.arange(n)
            bar = _Progress(progress, n_batches, f"Epoch {epoch + 1}/{epochs}")
            total, correct, seen = 0.0, 0, 0
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                xb, yb = _batch(Xs, idx, multi_in), y[idx]
                if augment is not None:
                    xb = np.ascontiguousarray(augment(xb, rng), dtype=np.float32)
                out = model.forward(xb, training=True)
                value = loss_f(out, yb)
                if stop_on_nan and not math.isfinite(value):
                    bar.close({"loss": value})
                    raise FloatingPointError(
                        f"fit: the loss became {value} at epoch {epoch + 1}, step {b + 1}; "
                        "lower the learning rate or check the data (stop_on_nan=False to go on)")
                model.zero_grad()
                model.backward(loss_b(out, yb))
                optimizer.step()
                total += value * len(idx)
                seen += len(idx)
                metrics = {"loss": total / seen}
                if classify:
                    correct += int(np.count_nonzero(np.argmax(out, axis=1) == yb))
                    metrics["acc"] = correct / seen
                bar.update(**metrics)
            logs = {"loss": total / max(seen, 1)}
            if classify:
                logs["accuracy"] = correct / max(seen, 1)
            if validation_data is not None:
                ev = evaluate(model, *validation_data, loss=loss)
                logs.update({f"val_{k}": v for k, v in ev.items()})
            bar.close(logs)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            history.setdefault("lr", []).append(optimizer.param_groups[0]["lr"])
            if _run_callbacks(callbacks, model, epoch, logs):
                break
    finally:
        model.train(was_training)
    return history


def evaluate(model, X, y, batch_size=256, loss="cross_entropy"):
    """Mean loss (and accuracy for cross-entropy) over (X, y), in eval mode."""
    Xs, y, multi_in = _check_xy(model, X, y, "evaluate", batch_size)
    n = len(Xs[0])
    loss_f, _, classify = _loss_fns(loss)
    total, correct = 0.0, 0
    # model(x) is inference: the model's mode and saved inputs are left
    # alone, so evaluating while another thread trains it is safe.
    for start in range(0, n, batch_size):
        xb, yb = _batch(Xs, slice(start, start + batch_size), multi_in), y[start:start + batch_size]
        out = model(xb)
        total += loss_f(out, yb) * len(yb)
        if classify:
            correct += int(np.count_nonzero(np.argmax(out, axis=1) == yb))
    result = {"loss": total / n}
    if classify:
        result["accuracy"] = correct / n
    return result


def predict(model, X, batch_size=256):
    """The model's outputs for X (a list of arrays for several inputs), computed
    in eval mode in batches; a list of arrays for a model with several outputs."""
    Xs, _, multi_in = _check_xy(model, X, None, "predict", batch_size)
    outs = [model(_batch(Xs, slice(s, s + batch_size), multi_in))  # inference, as evaluate
            for s in range(0, len(Xs[0]), batch_size)]
    if getattr(model, "_multi", (False, False))[1]:
        return [np.concatenate([o[i] for o in outs]) for i in range(len(outs[0]))]
    return np.concatenate(outs)

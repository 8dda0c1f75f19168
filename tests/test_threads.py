"""Calls from several Python threads at once: one shared model serving 4
threads, ops on separate arrays, the GIL released during kernels, and
set_num_threads changed while other threads compute.

Kernels are deterministic for any thread count, so a concurrent result must
equal the serial one bit for bit: any difference is a shared buffer or a
race, not rounding.
"""

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import striate
from helpers import rand, raises
from striate import models, nn, ops
from striate.nn import Input, Model

WORKERS = 4


@pytest.fixture(autouse=True)
def restore_threads():
    before = striate.get_num_threads()
    yield
    striate.set_num_threads(before)


def run_concurrently(tasks, rounds=3):
    """Run every task `rounds` times on WORKERS threads, all released together
    by a barrier so the calls overlap; returns the results per task and round."""
    jobs = [(i, r) for r in range(rounds) for i in range(len(tasks))]
    barrier = threading.Barrier(WORKERS)

    def worker(k):
        barrier.wait()
        return [(i, r, tasks[i]()) for i, r in jobs[k::WORKERS]]

    with ThreadPoolExecutor(WORKERS) as pool:
        done = [item for f in [pool.submit(worker, k) for k in range(WORKERS)] for item in f.result()]
    out = [[None] * rounds for _ in tasks]
    for i, r, res in done:
        out[i][r] = res
    return out


def assert_identical(got, expected, what):
    got = got if isinstance(got, (list, tuple)) else [got]
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    assert len(got) == len(expected), what
    for k, (a, b) in enumerate(zip(got, expected)):
        if b is None:
            assert a is None, f"{what}[{k}]"
            continue
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, f"{what}[{k}]"
        assert a.tobytes() == b.tobytes(), f"{what}[{k}]: concurrent result differs from serial"


def bn_winograd_model():
    """Convs that take every path: Winograd F4 and F2 (16 channels, so the
    transformed-filter cache is shared by the threads), im2col, direct (5x5
    depthwise); batch norm in eval mode with non-trivial running statistics;
    max and adaptive pooling; dropout (off in inference); a residual Add."""
    x = Input((3, 16, 16))
    h = nn.ReLU()(nn.BatchNorm2d(16)(nn.Conv2d(3, 16, 3, padding=1, algorithm="im2col")(x)))
    r = nn.Conv2d(16, 16, 3, padding=1, algorithm="winograd_f4")(h)
    r = nn.Conv2d(16, 16, 3, padding=1, algorithm="winograd_f2")(nn.ReLU()(nn.BatchNorm2d(16)(r)))
    h = nn.Add()([h, r])
    h = nn.Conv2d(16, 16, 5, padding=2, groups=16, algorithm="direct")(nn.MaxPool2d(2)(h))
    h = nn.Flatten()(nn.AdaptiveAvgPool2d(2)(h))
    out = nn.Linear(64, 10)(nn.Dropout(0.5)(h))
    model = Model(x, out)
    rng = np.random.default_rng(5)
    state = model.state_dict()
    for k, v in state.items():
        if k.endswith("running_mean"):
            state[k] = rand(rng, *v.shape) * 0.1
        elif k.endswith("running_var"):
            state[k] = rng.uniform(0.5, 2.0, v.shape).astype(np.float32)
    model.load_state_dict(state)
    return model


@pytest.mark.parametrize("make, shape", [
    (models.lenet5, (1, 32, 32)),
    (bn_winograd_model, (3, 16, 16)),
    (lambda: models.resnet20().eval(), (3, 32, 32)),
], ids=["lenet5", "bn_winograd", "resnet20"])
def test_shared_model_inference_matches_serial(make, shape):
    striate.manual_seed(0)
    model = make()
    rng = np.random.default_rng(1)
    # Different batch sizes too: per-thread workspaces of different sizes.
    inputs = [rand(rng, 1 + i % 3 * 3, *shape) for i in range(8)]
    expected = [model(x) for x in inputs]
    tasks = [lambda x=x: model(x) for x in inputs]
    for i, results in enumerate(run_concurrently(tasks)):
        for r, y in enumerate(results):
            assert_identical(y, expected[i], f"input {i} round {r}")
    state = model.state_dict()
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in state.items())


def _op_tasks():
    """(name, task) pairs; each task owns its arrays (batch norm's running
    statistics are fresh copies per call, returned with the output)."""
    rng = np.random.default_rng(2)
    x = rand(rng, 4, 16, 12, 12)
    w = rand(rng, 16, 16, 3, 3) * 0.1
    b = rand(rng, 16)
    gy = rand(rng, 4, 16, 12, 12)
    tasks = []
    for alg in ("direct", "im2col", "winograd_f2", "winograd_f4"):
        kw = dict(padding=1, algorithm=alg)
        tasks.append((f"conv2d {alg}", lambda kw=kw: ops.conv2d(x, w, b, **kw)))
        tasks.append((f"conv2d_backward {alg}",
                      lambda kw=kw: ops.conv2d_backward(gy, x, w, b, **kw)))
    x2, w2 = rand(rng, 3, 5, 17, 9), rand(rng, 7, 5, 3, 2)
    tasks.append(("conv2d strided", lambda: ops.conv2d(x2, w2, None, stride=2, padding=(1, 0))))
    rm, rv = rand(rng, 16) * 0.1, rng.uniform(0.5, 2, 16).astype(np.float32)
    bw, bb = rand(rng, 16), rand(rng, 16)

    def bn_train():
        m, v = rm.copy(), rv.copy()
        y = ops.batch_norm(x, m, v, bw, bb, training=True, momentum=0.1)
        return y, m, v

    tasks.append(("batch_norm training", bn_train))
    tasks.append(("batch_norm_backward",
                  lambda: ops.batch_norm_backward(gy, x, None, None, bw, bb, training=True)))
    logits = rand(rng, 64, 100)
    target = rng.integers(0, 100, 64)
    tasks.append(("softmax", lambda: ops.softmax(logits, 1)))
    tasks.append(("log_softmax_backward",
                  lambda: ops.log_softmax_backward(logits, logits, 1)))
    tasks.append(("cross_entropy", lambda: (ops.cross_entropy(logits, target),
                                            *ops.cross_entropy_backward(np.float32(1), logits,
                                                                        target))))
    tasks.append(("max_pool2d", lambda: ops.max_pool2d(x, 3, 2, padding=1)))
    tasks.append(("max_pool2d_backward",
                  lambda: ops.max_pool2d_backward(rand(np.random.default_rng(3), 4, 16, 6, 6),
                                                  x, 2)))
    tasks.append(("avg_pool2d", lambda: ops.avg_pool2d(x, 2)))
    a, bm = rand(rng, 70, 300), rand(rng, 300, 90)
    tasks.append(("matmul", lambda: ops.matmul(a, bm)))
    lw, lb = rand(rng, 33, 300), rand(rng, 33)
    tasks.append(("linear", lambda: ops.linear(a, lw, lb)))
    tasks.append(("dropout", lambda: ops.dropout(x, 0.3, seed=12345)))
    tasks.append(("local_response_norm", lambda: ops.local_response_norm(x, 5)))
    return tasks


def test_ops_on_separate_arrays_match_serial():
    striate.set_num_threads(2)
    named = _op_tasks()
    expected = [t() for _, t in named]
    results = run_concurrently([t for _, t in named])
    for (name, _), exp, res in zip(named, expected, results):
        for r, got in enumerate(res):
            assert_identical(got, exp, f"{name} round {r}")


def test_errors_raised_while_other_threads_compute():
    """An exception thrown with the GIL released (a target out of range is
    found inside the op) re-acquires it and reaches its own thread only."""
    rng = np.random.default_rng(4)
    logits, bad = rand(rng, 8, 5), np.array([0, 1, 2, 3, 4, 5, 0, 1])
    x, w = rand(rng, 2, 16, 20, 20), rand(rng, 16, 16, 3, 3)
    expected = ops.conv2d(x, w, padding=1)

    def failing():
        with raises(IndexError, "target[5] = 5"):
            ops.cross_entropy(logits, bad)
        with raises(ValueError, "weight"):
            ops.conv2d(x, w[:, :3])
        return "raised"

    tasks = [failing, lambda: ops.conv2d(x, w, padding=1)]
    for res in run_concurrently(tasks, rounds=6):
        for got in res:
            if isinstance(got, str):
                assert got == "raised"
            else:
                assert_identical(got, expected, "conv2d next to failing calls")


def _counter_during(call):
    """How often a Python thread got to run during `call()`, and its duration.

    The counter thread sleeps 1 ms between increments, and the switch
    interval is raised to 10 s meanwhile, so the main thread never hands the
    GIL over while it runs Python code: the counter can only advance while
    the main thread is inside a call that released the GIL."""
    count, stop = [0], threading.Event()
    started = threading.Event()

    def counter():
        started.set()
        while not stop.is_set():
            count[0] += 1
            time.sleep(0.001)

    t = threading.Thread(target=counter)
    t.start()
    started.wait()
    old = sys.getswitchinterval()
    sys.setswitchinterval(10.0)
    try:
        c0 = count[0]
        t0 = time.perf_counter()
        call()
        dt = time.perf_counter() - t0
        c1 = count[0]
    finally:
        sys.setswitchinterval(old)
        stop.set()
        t.join()
    return c1 - c0, dt


def test_counter_check_detects_a_held_gil():
    """The check below fails for code that keeps the GIL: here 0.3 s of
    Python bytecode (a C call that never releases it behaves the same)."""
    def spin():
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass

    ticks, dt = _counter_during(spin)
    assert dt >= 0.3 and ticks <= 1, (ticks, dt)


@pytest.mark.parametrize("op", ["conv2d", "conv2d_backward", "matmul"])
def test_gil_released_during_kernels(op):
    striate.set_num_threads(1)  # leave a core to the counter thread
    rng = np.random.default_rng(6)
    x, w = rand(rng, 8, 32, 40, 40), rand(rng, 32, 32, 5, 5)
    a, b = rand(rng, 1024, 1024), rand(rng, 1024, 1024)
    call = {"conv2d": lambda: ops.conv2d(x, w, padding=2, algorithm="direct"),
            "conv2d_backward": lambda: ops.conv2d_backward(ops.conv2d(x, w, padding=2), x, w,
                                                           padding=2, algorithm="direct"),
            "matmul": lambda: ops.matmul(a, b)}[op]
    reps = 1
    call()
    while True:  # enough repetitions of the call that the kernels run >= 200 ms in all
        ticks, dt = _counter_during(lambda: [call() for _ in range(reps)])
        if dt >= 0.2:
            break
        reps *= 2
    # With the GIL released the counter advances every ~1 ms (>= 100 in 200
    # ms when it gets a core); held, it could not advance at all. 10 leaves
    # room for a heavily loaded machine.
    assert ticks >= 10, f"{op}: the counter advanced {ticks} times in {dt:.2f} s"


def test_set_num_threads_while_other_threads_compute():
    """The count is process-wide: set_num_threads stores it, and each kernel
    call applies it when it starts, so a call in flight keeps its count and
    the next call of every thread uses the new one. Results do not depend on
    it, so they stay bitwise identical while it changes."""
    rng = np.random.default_rng(7)
    x, w = rand(rng, 4, 16, 24, 24), rand(rng, 32, 16, 3, 3)
    a, b = rand(rng, 200, 300), rand(rng, 300, 150)
    expected = (ops.conv2d(x, w, padding=1), ops.matmul(a, b))
    stop = threading.Event()
    seen = set()

    def toggler():
        n = 0
        while not stop.is_set():
            striate.set_num_threads(1 + n % 3)
            seen.add(striate.get_num_threads())
            n += 1
            time.sleep(0.0005)

    def compute():
        for _ in range(15):
            assert_identical((ops.conv2d(x, w, padding=1), ops.matmul(a, b)), expected,
                             "conv2d + matmul while the thread count changes")
        return True

    t = threading.Thread(target=toggler)
    t.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            assert all(f.result() for f in [pool.submit(compute) for _ in range(3)])
    finally:
        stop.set()
        t.join()
    assert seen == {1, 2, 3}
    setter = threading.Thread(target=striate.set_num_threads, args=(3,))
    setter.start()
    setter.join()
    assert striate.get_num_threads() == 3  # one count for the whole process


def test_inference_does_not_disturb_a_training_step():
    """model(x) keeps nothing on the layers: an inference (another thread
    serving the same model) between a training forward and its backward
    leaves the gradients those of the training batch."""
    striate.manual_seed(3)
    model = bn_winograd_model()
    rng = np.random.default_rng(8)
    xt, xi = rand(rng, 4, 3, 16, 16), rand(rng, 6, 3, 16, 16)

    def grads(between):
        striate.manual_seed(9)  # the same dropout seed for both runs
        for p in model.parameters():
            p.grad = None
        out = model.forward(xt, training=True)
        if between is not None:
            t = threading.Thread(target=between)
            t.start()
            t.join()
        model.backward(np.ones_like(out))
        return [p.grad.copy() for p in model.parameters()]

    state = model.state_dict()
    expected = grads(None)
    model.load_state_dict(state)  # undo the running-stat update of the first forward
    got = grads(lambda: model(xi))
    assert_identical(got, expected, "gradients with an inference in between")


def test_inference_keeps_no_activations():
    model = models.lenet5()
    model(rand(np.random.default_rng(0), 2, 1, 32, 32))
    assert all(layer._ctx is None for layer in model.layers)
    model.forward(rand(np.random.default_rng(0), 2, 1, 32, 32), training=False)
    assert model[0]._ctx is not None  # forward() is the one to pair with backward()

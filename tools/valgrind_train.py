"""A tiny end-to-end training run for valgrind memcheck (tools/valgrind_train.sh).

Small enough to finish in a few minutes under memcheck's ~50x slowdown, but it
goes through every kernel family a real run uses: LeNet-5 (direct/im2col conv,
max pool, linear, cross-entropy, SGD with momentum) and a second net with the
rest (Winograd 3x3 conv, depthwise conv, batch norm, dropout, leaky ReLU, avg
and adaptive pools, residual add, concat, LRN, Adam), each fit for a few steps,
evaluated, saved to and reloaded from a temporary folder, and checked to give
the same outputs after the reload.
"""

import os
import sys
import tempfile

import numpy as np

import striate
from striate import nn, optim
from striate.models import lenet5


def second_net():
    x = striate.Input((3, 12, 12))
    a = nn.Conv2d(3, 16, 3, padding=1)(x)
    a = nn.BatchNorm2d(16)(a)
    a = nn.ReLU()(a)
    b = nn.Conv2d(16, 16, 3, padding=1, algorithm="winograd")(a)  # 3x3 s1: Winograd
    b = nn.LeakyReLU(0.1)(b)
    r = nn.Add()([a, b])
    d = nn.Conv2d(16, 16, 3, padding=1, groups=16)(r)  # depthwise
    c = nn.Concat()([r, d])
    c = nn.LocalResponseNorm(3)(c)
    c = nn.AvgPool2d(2)(c)
    c = nn.Tanh()(c)
    c = nn.AdaptiveAvgPool2d(2)(c)
    c = nn.Flatten()(c)
    c = nn.Dropout(0.25)(c)
    y = nn.Linear(32 * 4, 5)(c)
    return striate.Model(inputs=x, outputs=y)


def run(model, x, y, opt, folder, name):
    hist = model.fit(x, y, optimizer=opt, epochs=2, batch_size=8, seed=0, progress=False,
                     validation_data=(x[:8], y[:8]))
    metrics = model.evaluate(x, y)
    path = os.path.join(folder, name + ".npz")
    model.save(path)
    again = striate.load(path)
    same = np.array_equal(model.predict(x), again.predict(x))
    print(f"{name}: loss {hist['loss'][0]:.4f} -> {metrics['loss']:.4f}, reload identical: {same}")
    return same and np.isfinite(metrics["loss"])


def main():
    striate.set_num_threads(int(os.environ.get("STRIATE_THREADS", "2")))
    print(striate.build_info())
    rng = np.random.default_rng(0)
    striate.manual_seed(0)
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        x = rng.standard_normal((24, 1, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, 24)
        net = lenet5()
        ok &= run(net, x, y, optim.SGD(net.parameters(), lr=0.01, momentum=0.9), folder, "lenet5")
        x = rng.standard_normal((16, 3, 12, 12)).astype(np.float32)
        y = rng.integers(0, 5, 16)
        net = second_net()
        ok &= run(net, x, y, optim.Adam(net.parameters(), lr=1e-3), folder, "second")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

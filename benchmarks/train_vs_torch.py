"""Training speed, striate vs PyTorch, side by side in one process.

    python benchmarks/train_vs_torch.py [--threads 2] [--repeats 5]

1. LeNet-5 on scikit-learn's digits upscaled to 32x32 (1,437 training
   images), batch 32, SGD with momentum: time per epoch (min over repeats).
2. A CIFAR-shaped ResNet-20 (3 stages x 3 basic blocks, 16/32/64 channels;
   1x1-conv projection shortcuts where the shape changes), batch 128 of
   3x32x32: time per training step (forward, loss, backward, SGD step).

Both libraries run the same architecture at the same thread count, with
interleaved repeats; the minimum is reported. Needs torch and scikit-learn.
"""

import argparse
import time

import numpy as np


def striate_resnet20(nn, Input, Model):
    x = Input((3, 32, 32))
    h = nn.ReLU()(nn.BatchNorm2d(16)(nn.Conv2d(3, 16, 3, padding=1, bias=False)(x)))
    c = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            y = nn.Conv2d(c, width, 3, stride=stride, padding=1, bias=False)(h)
            y = nn.ReLU()(nn.BatchNorm2d(width)(y))
            y = nn.BatchNorm2d(width)(nn.Conv2d(width, width, 3, padding=1, bias=False)(y))
            short = h
            if stride != 1 or c != width:
                short = nn.BatchNorm2d(width)(nn.Conv2d(c, width, 1, stride=stride, bias=False)(h))
            h = nn.ReLU()(nn.Add()([y, short]))
            c = width
    h = nn.Flatten()(nn.AdaptiveAvgPool2d(1)(h))
    return Model(x, nn.Linear(64, 10)(h))


def torch_resnet20(tnn):
    class Block(tnn.Module):
        def __init__(self, c, width, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(c, width, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(width)
            self.conv2 = tnn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(width)
            self.short = (tnn.Sequential(tnn.Conv2d(c, width, 1, stride, bias=False),
                                         tnn.BatchNorm2d(width))
                          if stride != 1 or c != width else tnn.Identity())

        def forward(self, x):
            y = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            return (y + self.short(x)).relu()

    layers = [tnn.Conv2d(3, 16, 3, 1, 1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU()]
    c = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            layers.append(Block(c, width, 2 if stage > 0 and block == 0 else 1))
            c = width
    layers += [tnn.AdaptiveAvgPool2d(1), tnn.Flatten(), tnn.Linear(64, 10)]
    return tnn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import torch
    import striate
    from striate import Input, Model, datasets, models, nn, optim

    torch.set_num_threads(args.threads)
    striate.set_num_threads(args.threads)
    print(f"threads {args.threads}; striate {striate.__version__} "
          f"({striate.build_info()['isa_selected']}), torch {torch.__version__}")

    # -- LeNet-5 epoch on digits --------------------------------------------
    (xtr, ytr), _ = datasets.load_digits(32)
    striate.manual_seed(0)
    s_model = models.lenet5()
    s_opt = optim.SGD(s_model.parameters(), lr=0.01, momentum=0.9)
    t_model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))
    t_model.load_state_dict({k: torch.from_numpy(v) for k, v in s_model.state_dict().items()})
    t_opt = torch.optim.SGD(t_model.parameters(), lr=0.01, momentum=0.9)
    txs, tys = torch.from_numpy(xtr), torch.from_numpy(ytr)
    order = np.random.default_rng(0).permutation(len(xtr))

    def torch_epoch():
        for s in range(0, len(order), 32):
            idx = torch.from_numpy(order[s:s + 32])
            t_opt.zero_grad()
            torch.nn.functional.cross_entropy(t_model(txs[idx]), tys[idx]).backward()
            t_opt.step()

    def striate_epoch():
        s_model.fit(xtr, ytr, optimizer=s_opt, epochs=1, batch_size=32, seed=0, progress=False)

    best = {"striate": 1e9, "torch": 1e9}
    for _ in range(args.repeats):
        for name, fn in (("striate", striate_epoch), ("torch", torch_epoch)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"LeNet-5 epoch (digits, 1437 images, batch 32): striate {best['striate'] * 1e3:.0f} ms, "
          f"torch {best['torch'] * 1e3:.0f} ms, ratio torch/striate "
          f"{best['torch'] / best['striate']:.2f}")

    # -- ResNet-20 training step, batch 128 ---------------------------------
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    striate.manual_seed(0)
    s_net = striate_resnet20(nn, Input, Model)
    s_opt = optim.SGD(s_net.parameters(), lr=0.01, momentum=0.9)
    t_net = torch_resnet20(torch.nn)
    t_opt = torch.optim.SGD(t_net.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    one = np.ones((), np.float32)

    def s_step():
        out = s_net.forward(x, training=True)
        s_net.zero_grad()
        s_net.backward(striate.ops.cross_entropy_backward(one, out, y)[0])
        s_opt.step()

    def t_step():
        t_opt.zero_grad()
        torch.nn.functional.cross_entropy(t_net(tx), ty).backward()
        t_opt.step()

    best = {"striate": 1e9, "torch": 1e9}
    for fn in (s_step, t_step):
        fn()  # warm-up
    for _ in range(args.repeats):
        for name, fn in (("striate", s_step), ("torch", t_step)):
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    print(f"ResNet-20 training step (batch 128, 3x32x32): striate {best['striate'] * 1e3:.0f} ms, "
          f"torch {best['torch'] * 1e3:.0f} ms, ratio torch/striate "
          f"{best['torch'] / best['striate']:.2f}")


if __name__ == "__main__":
    main()

"""Transfer learning with striate, the notes' two strategies, end to end.

Source task: LeNet-5 learns the digits 0-4 (scikit-learn's digits, upscaled to
32x32). New small task: the digits 5-9 from only 5 examples per class.

1. Feature extractor: freeze the convolutional layers, replace the
   classifier head, train only the head.
2. Fine-tuning: unfreeze everything and train all layers with a 10x lower
   learning rate.
A network trained from scratch on the same 25 examples is the baseline.

    python examples/transfer_learning.py      (needs scikit-learn; ~10 s)
"""

import numpy as np

import striate
from striate import data, datasets, models, nn, optim


def subset(x, y, classes, per_class=None, seed=0):
    rng = np.random.default_rng(seed)
    idx = []
    for k, c in enumerate(classes):
        where = np.flatnonzero(y == c)
        idx.append(where if per_class is None else rng.choice(where, per_class, replace=False))
    idx = np.concatenate(idx)
    remap = {c: k for k, c in enumerate(classes)}
    return x[idx], np.array([remap[v] for v in y[idx]], np.int64)


def main():
    striate.set_num_threads(2)
    (xtr, ytr), (xte, yte) = datasets.load_digits(32)
    shift = data.RandomCrop(32, padding=2)
    src_tr, src_te = subset(xtr, ytr, range(5)), subset(xte, yte, range(5))
    new_tr = subset(xtr, ytr, range(5, 10), per_class=5)
    new_te = subset(xte, yte, range(5, 10))

    # The source model.
    striate.manual_seed(0)
    model = models.lenet5(num_classes=5)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.fit(*src_tr, optimizer=opt, epochs=10, seed=0, progress=False, augment=shift,
              callbacks=[optim.CosineAnnealingLR(opt, 10)])
    print(f"source task (digits 0-4): accuracy {model.evaluate(*src_te)['accuracy']:.3f}")

    # 1. Feature extractor: freeze the convolutional layers (0-5: conv1, relu,
    #    pool1, conv2, relu, pool2), replace the output layer, train the rest.
    model.freeze(up_to=5)
    model[11] = nn.Linear(84, 5)
    print(f"trainable parameters: {model.num_parameters(trainable_only=True):,} "
          f"of {model.num_parameters():,}")
    head = [p for p in model.parameters() if p.requires_grad]
    opt = optim.SGD(head, lr=0.05, momentum=0.9)
    model.fit(*new_tr, optimizer=opt, epochs=100, batch_size=25, seed=0, progress=False,
              augment=shift)
    print(f"new task, frozen convs: accuracy {model.evaluate(*new_te)['accuracy']:.3f}")

    # 2. Fine-tune every layer with a low learning rate.
    model.unfreeze()
    opt = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    model.fit(*new_tr, optimizer=opt, epochs=30, batch_size=25, seed=0, progress=False,
              augment=shift)
    print(f"new task, fine-tuned:    accuracy {model.evaluate(*new_te)['accuracy']:.3f}")

    # Baseline: the same 25 examples, from scratch, as many epochs.
    striate.manual_seed(1)
    scratch = models.lenet5(num_classes=5)
    opt = optim.SGD(scratch.parameters(), lr=0.05, momentum=0.9)
    scratch.fit(*new_tr, optimizer=opt, epochs=130, batch_size=25, seed=0, progress=False,
                augment=shift)
    print(f"new task, from scratch:  accuracy {scratch.evaluate(*new_te)['accuracy']:.3f}")


if __name__ == "__main__":
    main()

"""``python -m striate.train MODEL --dataset NAME``: train, report test accuracy, save.

Example: ``python -m striate.train lenet5 --dataset digits --epochs 15``
trains LeNet-5 with SGD (momentum 0.9, cosine learning-rate decay) on
scikit-learn's digits upscaled to 32x32 with random 2-pixel shifts, prints the held-out accuracy, writes the checkpoint (``--out``) and,
with ``--plot PATH``, the loss/accuracy curves as a PNG (needs matplotlib).
"""

import argparse
import sys
import time

from . import data, datasets, load, manual_seed, models, optim, set_num_threads


def _load_data(args):
    if args.dataset == "digits":
        return datasets.load_digits(32)
    if args.data_dir is None:
        raise SystemExit(f"--dataset {args.dataset} needs --data-dir")
    if args.dataset == "mnist":
        (xtr, ytr), (xte, yte) = datasets.load_mnist(args.data_dir)
        import numpy as np
        pad = ((0, 0), (0, 0), (2, 2), (2, 2))  # 28x28 -> LeNet's 32x32
        return (np.pad(xtr, pad), ytr), (np.pad(xte, pad), yte)
    return datasets.load_cifar10(args.data_dir)


def plot_history(history, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit('--plot needs matplotlib: pip install "striate[plot]"') from None
    epochs = range(1, len(history["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(epochs, history["loss"], label="train")
    if "val_loss" in history:
        a.plot(epochs, history["val_loss"], label="test")
    a.set_xlabel("epoch"), a.set_ylabel("loss"), a.legend()
    if "accuracy" in history:
        b.plot(epochs, history["accuracy"], label="train")
    if "val_accuracy" in history:
        b.plot(epochs, history["val_accuracy"], label="test")
    b.set_xlabel("epoch"), b.set_ylabel("accuracy"), b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m striate.train", description=__doc__.split("\n")[0])
    ap.add_argument("model", choices=sorted(models.MODELS))
    ap.add_argument("--dataset", default="digits", choices=["digits", "mnist", "cifar10"])
    ap.add_argument("--data-dir", help="folder with the MNIST IDX files or CIFAR-10 batches")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--out", help="checkpoint path (default MODEL-DATASET.npz)")
    ap.add_argument("--plot", help="write loss/accuracy curves to this PNG")
    ap.add_argument("--resume", help="start from this checkpoint instead of a fresh model")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--no-augment", action="store_true",
                    help="train without the default augmentation (random 2-pixel shifts: "
                         "RandomCrop(size, padding=2); plus horizontal flips on CIFAR-10)")
    args = ap.parse_args(argv)
    if args.threads:
        set_num_threads(args.threads)

    (xtr, ytr), (xte, yte) = _load_data(args)
    manual_seed(args.seed)
    if args.resume:
        model = load(args.resume)
    else:
        kw = {"in_channels": xtr.shape[1]} if args.model == "lenet5" else {}
        # Both splits: a small training set may lack the highest class.
        num_classes = int(max(ytr.max(), yte.max())) + 1
        model = models.MODELS[args.model](num_classes=num_classes, **kw)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                    weight_decay=args.weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=max(args.epochs, 1))
    t0 = time.perf_counter()
    augment = None
    if not args.no_augment:
        crop = data.RandomCrop(xtr.shape[2:], padding=2)
        augment = (data.Compose([crop, data.RandomHorizontalFlip()])
                   if args.dataset == "cifar10" else crop)
    history = model.fit(xtr, ytr, optimizer=opt, augment=augment, epochs=args.epochs, batch_size=args.batch_size,
                        validation_data=(xte, yte), seed=args.seed,
                        progress=not args.no_progress, callbacks=[sched])
    seconds = time.perf_counter() - t0
    result = model.evaluate(xte, yte)
    out = args.out or f"{args.model}-{args.dataset}.npz"
    model.save(out)
    print(f"{args.model} on {args.dataset}: test accuracy {result['accuracy']:.4f}, "
          f"loss {result['loss']:.4f}, {args.epochs} epochs in {seconds:.1f} s; saved {out}")
    if args.plot:
        plot_history(history, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's figures: what a trained LeNet-5 looks at, and the notes'
hand-made edge kernels on a real photograph.

    pip install "striate[plot,datasets]" scikit-image
    python examples/readme_figures.py [--out docs/images]   (~20 s)

LeNet-5 is trained here with tanh, the squashing nonlinearity of the
original paper: with ReLU, several of the six 5x5 first-layer filters of a
digits-trained LeNet end up "dead" (a negative bias on non-negative pixel
inputs: the filter never fires, gets no gradient and keeps its random
initial weights), which trains fine but makes a poor picture of what the
layer learned.
"""

import argparse
import os

import numpy as np

import striate
from striate import data, datasets, models, optim, viz


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join("docs", "images"))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    striate.manual_seed(0)

    (xtr, ytr), (xte, yte) = datasets.load_digits(32)
    model = models.lenet5(activation="tanh")
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.fit(xtr, ytr, optimizer=opt, epochs=15, batch_size=64, seed=0, progress=False,
              augment=data.RandomCrop(32, padding=2),
              callbacks=[optim.CosineAnnealingLR(opt, T_max=15)])
    print(f"LeNet-5 (tanh) on digits: test accuracy {model.evaluate(xte, yte)['accuracy']:.4f}")

    digit = xte[0]
    out = lambda name: os.path.join(args.out, name)  # noqa: E731
    viz.plot_filters(model, 0, out("lenet_conv1_filters.png"))
    viz.plot_activations(model, digit, 1, out("lenet_conv1_activations.png"))
    viz.plot_activations(model, digit, 4, out("lenet_conv2_activations.png"))
    viz.plot_predictions(model, digit, out("lenet_predictions.png"), top_k=3)

    from skimage import data as photos  # a photograph that ships with scikit-image
    # 2x2 block means: 256x256 keeps the edges visible and the PNG small.
    photo = photos.camera().reshape(256, 2, 256, 2).mean(axis=(1, 3)) / 255.0
    viz.plot_kernel_responses(photo, out("edge_kernels.png"))
    print(f"wrote the figures to {args.out}")


if __name__ == "__main__":
    main()

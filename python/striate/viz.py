"""Looking inside a CNN: filter grids, activation maps, top-k predictions.

Each ``plot_*`` function writes a PNG (matplotlib, ``pip install "striate[plot]"``)
and returns the array it drew; the ``*_grid`` helpers are plain NumPy.

CLI::

    python -m striate.viz filters CHECKPOINT --layer 0 --out filters.png
    python -m striate.viz activations CHECKPOINT --layer 1 --digit 0 --out maps.png
"""

import argparse
import math
import sys

import numpy as np

from .nn.graph import Model, Sequential


def _grid(tiles, cols=None, pad=1):
    """Tile (K, h, w[, 3]) images into one image with ``pad`` pixels of gap (NaN
    for matplotlib: drawn as background)."""
    k, h, w = tiles.shape[:3]
    cols = cols or int(math.ceil(math.sqrt(k)))
    rows = int(math.ceil(k / cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad) + tiles.shape[3:], np.nan)
    for i in range(k):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = tiles[i]
    return out


def _scale01(a):
    lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def filter_grid(weight, cols=None):
    """The filters of a conv weight (C_out, C_in, kh, kw) as one image.

    With 3 input channels (a first layer on RGB) each filter is shown in
    color, scaled jointly to [0, 1]; otherwise each input channel of each
    filter is a grayscale tile, scaled per filter.
    """
    w = np.asarray(weight, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected a (C_out, C_in, kh, kw) weight, got shape {w.shape}")
    if w.shape[1] == 3:
        return _grid(_scale01(w.transpose(0, 2, 3, 1)), cols)
    tiles = np.stack([_scale01(f) for f in w]).reshape(-1, *w.shape[2:])
    return _grid(tiles, cols or (w.shape[1] if w.shape[1] > 1 else None))


def layer_output(model, x, layer):
    """The output of layer ``layer`` (a name, or an index for Sequential) for input x."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if isinstance(model, Sequential):
        names = list(model._modules)
        key = names[layer] if isinstance(layer, int) else str(layer)
        if key not in model._modules:
            raise KeyError(f"no layer {layer!r}; layers: {names}")
        for name, mod in model.children():
            x = mod.forward(x, training=False)
            if name == key:
                return x
    if isinstance(model, Model):
        model.get_layer(layer)  # KeyError naming the layers
        values = [x] + [None] * len(model._steps)
        for k, (mod, srcs, merge, _) in enumerate(model._steps):
            arg = [values[s] for s in srcs] if merge else values[srcs[0]]
            values[1 + k] = mod.forward(arg, training=False)
            if mod.name == layer:
                return values[1 + k]
    raise TypeError(f"layer_output: expected a striate Sequential or Model, got {type(model).__name__}")


def activation_grid(maps, cols=None):
    """One sample's activation maps (C, H, W) as one image, each map scaled to [0, 1]."""
    a = np.asarray(maps, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"activation_grid: expected (C, H, W) maps, got shape {a.shape}")
    return _grid(np.stack([_scale01(m) for m in a]), cols)


def edge_kernels():
    """The hand-made 3x3 kernels of the notes, as {name: (3, 3) float32}.

    The edge detectors are Sobel operators (a derivative across the edge,
    smoothed along it): "vertical" responds to vertical edges (a horizontal
    intensity change), "horizontal" is its transpose, "45°"/"135°" are the
    diagonal versions; "sharpen" adds the Laplacian to the identity.
    """
    v = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], np.float32)
    d = np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]], np.float32)
    return {"vertical": v, "horizontal": v.T.copy(), "45°": d, "135°": np.fliplr(d).copy(),
            "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], np.float32)}


def kernel_responses(image, kernels=None):
    """Convolve a grayscale (H, W) or RGB (H, W, 3) image with each kernel.

    One ``ops.conv2d`` call with the kernels stacked as output channels; the
    image is reflect-padded first (zero padding would make the image border
    itself an edge). RGB is first reduced to luminance (ITU-R 601 weights).
    Returns (K, H, W) float32 in the order of ``kernels`` (default
    :func:`edge_kernels`).
    """
    from . import ops
    kernels = edge_kernels() if kernels is None else kernels
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114])
    if img.ndim != 2:
        raise ValueError(f"kernel_responses: expected an (H, W) or (H, W, 3) image, got shape {img.shape}")
    w = np.stack([np.asarray(k, np.float32) for k in kernels.values()])[:, None]
    kh, kw = w.shape[2:]
    x = np.pad(img, ((kh // 2, (kh - 1) // 2), (kw // 2, (kw - 1) // 2)), mode="reflect")
    return ops.conv2d(x.astype(np.float32)[None, None], w)[0]


def plot_kernel_responses(image, path, kernels=None):
    """Write the image and its response to each kernel (absolute value for the
    edge detectors, scaled to their 99.5th percentile so thin edges show;
    clipped to the input range for "sharpen") to ``path``; returns the
    (K, H, W) responses."""
    kernels = edge_kernels() if kernels is None else kernels
    resp = kernel_responses(image, kernels)
    img = np.asarray(image, dtype=np.float64)
    gray = img[..., :3] @ np.array([0.299, 0.587, 0.114]) if img.ndim == 3 else img
    plt = _pyplot()
    n = len(kernels) + 1
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6))
    panels = [("input", gray, "gray")]
    for (name, _), r in zip(kernels.items(), resp):
        if name == "sharpen":
            shown = np.clip(r, gray.min(), gray.max())
        else:
            shown = np.minimum(np.abs(r) / max(np.percentile(np.abs(r), 99.5), 1e-12), 1.0)
        panels.append((name, shown, "gray"))
    for ax, (title, a, cmap) in zip(axes, panels):
        ax.imshow(a, cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return resp


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('striate.viz needs matplotlib: pip install "striate[plot]"') from None
    return plt


def _save(img, path, title, cmap):
    plt = _pyplot()
    h, w = img.shape[:2]
    fig = plt.figure(figsize=(max(3, w / 12), max(3, h / 12) + 0.4))
    ax = fig.add_axes([0, 0, 1, 0.92])
    ax.imshow(np.ma.masked_invalid(img) if img.ndim == 2 else np.nan_to_num(img, nan=1.0),
              cmap=cmap, interpolation="nearest")
    ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_filters(model, layer, path):
    """Write the filters of conv layer ``layer`` to ``path``; returns the grid."""
    mod = model[layer] if isinstance(model, Sequential) and isinstance(layer, int) \
        else model.get_layer(str(layer))
    if not hasattr(mod, "weight") or mod.weight.data.ndim != 4:
        raise ValueError(f"plot_filters: layer {layer!r} is a {type(mod).__name__}, not a conv layer")
    img = filter_grid(mod.weight.data)
    _save(img, path, f"layer {layer}: {mod.weight.data.shape[0]} filters "
          f"{mod.weight.data.shape[2]}x{mod.weight.data.shape[3]}", "gray")
    return img


def plot_activations(model, image, layer, path):
    """Write the activation maps of ``layer`` for one image (C, H, W) to ``path``."""
    maps = layer_output(model, np.asarray(image, np.float32)[None], layer)[0]
    img = activation_grid(maps)
    _save(img, path, f"layer {layer}: {maps.shape[0]} maps {maps.shape[1]}x{maps.shape[2]}",
          "viridis")
    return img


def plot_predictions(model, image, path, top_k=5, class_names=None):
    """Write a bar chart of the top-k softmax probabilities for one image;
    returns (classes, probabilities) of the top k."""
    from . import ops
    logits = model(np.asarray(image, np.float32)[None])
    p = ops.softmax(logits, 1)[0].astype(np.float64)
    top = np.argsort(-p, kind="stable")[:top_k]
    names = [str(class_names[i]) if class_names is not None else str(i) for i in top]
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3))
    im = np.asarray(image, np.float64)
    a.imshow(im[0] if im.shape[0] == 1 else _scale01(im.transpose(1, 2, 0)), cmap="gray")
    a.set_axis_off()
    b.barh(range(len(top))[::-1], p[top])
    b.set_yticks(range(len(top))[::-1], names)
    b.set_xlim(0, 1)
    b.set_xlabel("probability")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return top, p[top]


def main(argv=None):
    from . import datasets, load
    ap = argparse.ArgumentParser(prog="python -m striate.viz")
    ap.add_argument("what", choices=["filters", "activations"])
    ap.add_argument("checkpoint", help="a file written by model.save()")
    ap.add_argument("--layer", required=True, help="layer name (a Sequential's index)")
    ap.add_argument("--out", required=True, help="PNG to write")
    ap.add_argument("--image", help=".npy file with one (C, H, W) image (activations)")
    ap.add_argument("--digit", type=int, default=0,
                    help="else: this test image of load_digits(32) (needs scikit-learn)")
    args = ap.parse_args(argv)
    model = load(args.checkpoint)
    layer = int(args.layer) if isinstance(model, Sequential) and args.layer.isdigit() else args.layer
    if args.what == "filters":
        plot_filters(model, layer, args.out)
    else:
        if args.image:
            image = np.load(args.image, allow_pickle=False)
        else:
            image = datasets.load_digits(32)[1][0][args.digit]
        plot_activations(model, image, layer, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

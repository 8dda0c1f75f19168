"""Inference-time graph rewriting: ``fuse_for_inference(model)``.

What ``torch.ao.quantization.fuse_modules`` and ONNX Runtime's basic graph
optimizations do for a CNN, on a copy of a striate network:

- Conv2d -> BatchNorm2d (running statistics) becomes one Conv2d with
  w' = w * g and b' = (b - mean) * g + beta, g = gamma / sqrt(var + eps),
  computed in float64 and rounded once to float32;
- Conv2d (-> BatchNorm2d) -> ReLU becomes one Conv2d whose kernel applies
  bias + ReLU while the output block is in cache (``activation="relu"``);
- Dropout and Identity, no-ops in inference, are dropped.

A layer is merged into its predecessor only when the predecessor's output
has that layer as its single consumer and is not itself a model output, so
no value another layer reads disappears. Nested Sequential/Model networks
are fused recursively.

The result computes the same function as ``model`` in eval mode (up to
float32 rounding of the folded weights, ~1 ulp per weight); training it is
possible but it no longer has batch norm or dropout.
"""

import copy

import numpy as np

from .graph import Model, Network, Node, Sequential, call_symbolic
from .layers import BatchNorm2d, Conv2d, Dropout, Identity, ReLU
from .module import Parameter


def fuse_for_inference(model):
    """A new network equal to ``model`` in eval mode, with batch norm folded into
    the preceding convolutions, ReLUs fused into them and dropout removed.

    ``model`` (a Sequential or functional Model) is not modified; the weights
    are copied. The result is in eval mode; ``summary()``, ``save()`` and
    ``striate.load`` work on it as on any network."""
    if not isinstance(model, Network):
        raise TypeError(f"fuse_for_inference: expected a striate Sequential or Model, got "
                        f"{type(model).__name__}")
    return _fuse(_copy(model)).eval()


def _modules(m):
    yield m
    for _, child in m.children():
        yield from _modules(child)


def _copy(model):
    # What a forward saved for its backward is not part of the model (and
    # after a large forward it is most of the memory): leave it behind.
    # Set in the instance dict directly: Layer._ctx is a property over "_saved_ctx".
    saved = [(m, key, m.__dict__[key]) for m in _modules(model)
             for key in ("_ctx", "_saved_ctx") if key in m.__dict__]
    try:
        for m, key, _ in saved:
            m.__dict__[key] = None
        out = copy.deepcopy(model)
    finally:
        for m, key, ctx in saved:
            m.__dict__[key] = ctx
    for p in out.parameters():
        p.grad = None
    return out


def _fuse(net):
    return _fuse_sequential(net) if isinstance(net, Sequential) else _fuse_model(net)


def _foldable_bn(layer, conv):
    return (isinstance(layer, BatchNorm2d) and layer.track_running_stats
            and layer.num_features == conv.out_channels)


def _fold_bn(conv, bn):
    """conv (a copy, modified in place) followed by bn in eval mode, as one conv."""
    w = conv.weight.data.astype(np.float64)
    b = np.zeros(conv.out_channels) if conv.bias is None else conv.bias.data.astype(np.float64)
    gamma = np.ones(bn.num_features) if bn.weight is None else bn.weight.data.astype(np.float64)
    beta = np.zeros(bn.num_features) if bn.bias is None else bn.bias.data.astype(np.float64)
    g = gamma / np.sqrt(np.asarray(bn.running_var, np.float64) + bn.eps)
    trainable = conv.weight.requires_grad  # a frozen backbone stays frozen
    conv.weight = Parameter(w * g.reshape(-1, 1, 1, 1), requires_grad=trainable)
    conv.bias = Parameter((b - np.asarray(bn.running_mean, np.float64)) * g + beta,
                          requires_grad=trainable)
    return conv


def _is_plain_relu(layer):
    return type(layer) is ReLU


def _is_noop(layer):
    return isinstance(layer, (Dropout, Identity))


def _fuse_sequential(seq):
    layers = [_fuse(l) if isinstance(l, Network) else l for l in seq.layers]
    layers = [l for l in layers if not _is_noop(l)]
    out, i = [], 0
    while i < len(layers):
        layer = layers[i]
        i += 1
        if isinstance(layer, Conv2d) and layer.activation is None:
            if i < len(layers) and _foldable_bn(layers[i], layer):
                layer = _fold_bn(layer, layers[i])
                i += 1
            if i < len(layers) and _is_plain_relu(layers[i]):
                layer.activation = "relu"
                i += 1
        out.append(layer)
    for k, layer in zip(seq._modules, seq.layers):
        if getattr(layer, "name", None) == k:
            object.__setattr__(layer, "name", None)  # an index name: renumbered by append
    return Sequential(*out, name=seq.name)


def _fuse_model(model):
    n_in = len(model._inputs)
    steps = model._steps
    consumers = [[] for _ in range(n_in + len(steps))]
    for k, (_, srcs, _, _) in enumerate(steps):
        for s in srcs:
            consumers[s].append(k)
    for o in model._outputs:
        consumers[o].append(None)  # a model output: never fused away

    def sole_consumer(value):
        c = consumers[value]
        if len(c) != 1 or c[0] is None or steps[c[0]][2]:
            return None
        return c[0]

    nodes = [Node(None, [], n.shape, n.name) for n in model._inputs] + [None] * len(steps)
    absorbed = set()
    for k, (layer, srcs, merge, _) in enumerate(steps):
        if k in absorbed:
            continue
        ins = [nodes[s] for s in srcs]
        out = n_in + k
        if isinstance(layer, Network):
            layer = _fuse(layer)
        elif _is_noop(layer) and not merge:
            nodes[out] = ins[0]
            continue
        elif isinstance(layer, Conv2d) and layer.activation is None:
            j = sole_consumer(out)
            if j is not None and _foldable_bn(steps[j][0], layer):
                layer = _fold_bn(layer, steps[j][0])
                absorbed.add(j)
                out = n_in + j
            j = sole_consumer(out)
            if j is not None and _is_plain_relu(steps[j][0]):
                layer.activation = "relu"
                absorbed.add(j)
                out = n_in + j
        nodes[out] = call_symbolic(layer, ins if merge else ins[0])
    outs = [nodes[o] for o in model._outputs]
    multi_in, multi_out = model._multi
    return Model(nodes[:n_in] if multi_in else nodes[0], outs if multi_out else outs[0],
                 name=model.name)
